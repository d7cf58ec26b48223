"""pytest plugin that starts the embedded services before Django loads.

Loaded with ``-p tests.harness`` (see pyproject.toml) so its
``pytest_load_initial_conftests`` wrapper runs before pytest-django reads the
settings. It uses the same :class:`config.launcher.EmbeddedServices` code as
``make run``, in a fresh temporary data directory with free ports, so tests run
beside a running stack. ``DATABASE_URL``, ``REDIS_URL`` and ``LLM_BASE_URL``
in the environment point the tests at running services instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from pathlib import Path

import pytest

from config.launcher import EmbeddedServices, smollm2_gguf

# Tests of the LLM plumbing (streaming, deadlines, caching) run on a tiny model
# that loads in a second; the tests of answers start the default model
# themselves (tests/inference/test_default_model.py).
PLUMBING_LLM_ALIAS = "smollm2-135m-instruct"

_services: EmbeddedServices | None = None


def embedded_services() -> EmbeddedServices:
    if _services is None:
        raise RuntimeError("The test harness did not start the embedded services.")
    return _services


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    global _services
    var_dir = Path(tempfile.mkdtemp(prefix="archivist-test-"))
    _services = EmbeddedServices(var_dir=var_dir)
    # The LLM loads in the background while Django and the database get ready;
    # tests that need it wait through the `llm_base_url` fixture.
    _services.env["SECRET_KEY"] = "test-only-" + "x" * 50
    _services.env["HTTPS"] = "0"
    _services.env["DEBUG"] = "0"
    _services.env["STATIC_MANIFEST"] = "0"
    # Fuzzed files must not hold the suite up: a parse is cut off sooner.
    _services.env.setdefault("PARSE_TIMEOUT_SECONDS", "60")
    # The answer reader (EmbeddingGemma) loads only for the tests that judge
    # answers with it (tests/inference/test_relevance.py, test_default_model.py),
    # never in the background of a test that did not ask for it.
    _services.env.setdefault("ANSWER_READER_MODEL", "off")
    if not os.environ.get("LLM_BASE_URL"):
        os.environ.setdefault("LLM_GGUF_PATH", str(smollm2_gguf()))
        os.environ.setdefault("LLM_MODEL", PLUMBING_LLM_ALIAS)
    try:
        _services.start_backing_services(wait_for_llm=False)
    except BaseException:
        _services.stop_all()
        raise
    os.environ.update(_services.env)
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _services
    if _services is None:
        return
    _services.stop_all()
    if os.environ.get("ARCHIVIST_KEEP_TEST_DATA") != "1":
        shutil.rmtree(_services.var_dir, ignore_errors=True)
    _services = None
