"""The Python example of docs/api.md runs, as written, against the real web
server (uvicorn) with a real token: only the address, the token and the file
it uploads are filled in."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from accounts.services import token_create
from tests.conftest import World
from tests.inference.conftest import FaultyLLM
from tests.ingest.conftest import FORMATS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_python_example_runs(
    asgi_server: Callable[..., str],
    faulty_llm: type[FaultyLLM],
    library: World,
    tmp_path: Path,
) -> None:
    faulty_llm.behaviour = "brief"
    base = asgi_server(LLM_BASE_URL=faulty_llm.url)
    token = token_create(user=library.alice, name="docs example").plaintext
    code = (
        _python_example()
        .replace("http://127.0.0.1:8000", base)
        .replace("Bearer ak_...", f"Bearer {token}")
    )
    shutil.copy(FORMATS / "category-level.docx", tmp_path / "handbook.docx")
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "queued"
