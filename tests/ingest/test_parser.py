"""Old binary Office files (.doc, .ppt) go through one LibreOffice run each,
in a session and profile of the parser's own."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest

from ingest import parser_child
from ingest.nlp import install_offline_spacy_model
from ingest.parser_child import ParseProblem, parse
from tests.ingest.conftest import ADVERSARIAL, FORMATS

DAMAGED_DOC = (
    ADVERSARIAL
    / "poi-fuzz"
    / "document"
    / "clusterfuzz-testcase-minimized-POIHWPFFuzzer-5074346559012864.doc"
)


@pytest.fixture(autouse=True, scope="module")
def _offline_spacy_model() -> None:
    """As the parser process does first: unstructured reads English sentences
    with the packaged spaCy model, not one fetched from the internet."""
    install_offline_spacy_model()


def _libreoffice_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The command lines of the LibreOffice runs the parser starts."""
    runs: list[list[str]] = []
    popen = subprocess.Popen

    def counting_popen(command: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(command, list) and Path(command[0]).name == "soffice":
            runs.append(command)
        return popen(command, *args, **kwargs)

    monkeypatch.setattr(parser_child.subprocess, "Popen", counting_popen)
    return runs


def test_old_word_and_powerpoint_files_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = _libreoffice_runs(monkeypatch)
    doc = parse({"path": str(FORMATS / "duplicate-paragraphs.doc"), "kind": "doc"})
    ppt = parse({"path": str(FORMATS / "fake-power-point.ppt"), "kind": "ppt"})
    assert "This document contains duplicates" in [e["text"] for e in doc["elements"]]
    assert "Adding a Bullet Slide" in [e["text"] for e in ppt["elements"]]
    assert len(runs) == 2


def test_a_damaged_doc_is_refused_after_one_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = _libreoffice_runs(monkeypatch)
    with pytest.raises(ParseProblem) as refused:
        parse({"path": str(DAMAGED_DOC), "kind": "doc"})
    assert refused.value.code == "unreadable"
    assert len(runs) == 1


def test_a_conversion_past_its_time_is_stopped_with_all_its_processes(
    tmp_path: Path,
) -> None:
    with pytest.raises(ParseProblem) as stopped:
        parser_child._convert_with_libreoffice(
            "doc", str(FORMATS / "duplicate-paragraphs.doc"), str(tmp_path), 0.01
        )
    assert stopped.value.code == "timeout"
    profile = str(parser_child._libreoffice_profile())
    left = [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if any(profile in part for part in process.info["cmdline"] or ())
    ]
    assert left == []
