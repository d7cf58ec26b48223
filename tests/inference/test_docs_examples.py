"""The examples of docs/api.md run, as written, against the real web server
(uvicorn) with a real token: only the address, the token, the ids and the
files they upload are filled in."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from accounts.services import token_create
from tests.conftest import World
from tests.inference.conftest import FaultyLLM
from tests.ingest.conftest import FORMATS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EXAMPLE_ADDRESS = "http://127.0.0.1:8000"


def _blocks(language: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.fixture
def live(
    asgi_server: Callable[..., str],
    faulty_llm: type[FaultyLLM],
    library: World,
    tmp_path: Path,
) -> tuple[str, str, Path]:
    faulty_llm.behaviour = "brief"
    base = asgi_server(LLM_BASE_URL=faulty_llm.url)
    token = token_create(user=library.alice, name="docs examples").plaintext
    shutil.copy(FORMATS / "category-level.docx", tmp_path / "handbook.docx")
    shutil.copy(FORMATS / "category-level.docx", tmp_path / "notes.docx")
    shutil.copy(FORMATS / "rotated-page-90.pdf", tmp_path / "report.pdf")
    return base, token, tmp_path


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_python_examples_run(live: tuple[str, str, Path]) -> None:
    base, token, folder = live
    rest, openai = _blocks("python")  # the REST API's, the OpenAI client's
    uploaded = _run([sys.executable, "-c", _filled(rest, base, token)], folder)
    assert uploaded.returncode == 0, uploaded.stderr
    assert uploaded.stdout.splitlines()[0] == "queued"
    chatted = _run([sys.executable, "-c", _filled(openai, base, token)], folder)
    assert chatted.returncode == 0, chatted.stderr
    assert "archivist" in chatted.stdout.splitlines()[0]


def _filled(code: str, base: str, token: str) -> str:
    return code.replace(EXAMPLE_ADDRESS, base).replace("ak_...", token)


def test_the_curl_examples_run(live: tuple[str, str, Path], library: World) -> None:
    base, token, folder = live
    (script,) = _blocks("sh")
    asked = httpx.post(
        f"{base}/api/v1/ask/",
        json={"question": "What is the refund window for Zephyr headphones?"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    conversation = asked.json()["conversation_id"]
    script = (
        _filled(script, base, token)
        .replace("COLLECTION=1", f"COLLECTION={library.collection_a.pk}")
        .replace("DOCUMENT=7", f"DOCUMENT={library.zephyr.pk}")
        .replace("CONVERSATION=3", f"CONVERSATION={conversation}")
    )
    run = _run(["bash", "-e", "-c", script], folder)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    # curl prints each answer as it came, with no newline between them.
    collections, _end = json.JSONDecoder().raw_decode(run.stdout)
    assert collections["count"] >= 2
    assert (folder / "zephyr.txt").exists()  # the download
