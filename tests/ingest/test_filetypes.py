"""Real types from bytes, not names; limits refused with reasons."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingest.filetypes import RejectedFile, detect
from tests.ingest.conftest import FORMATS


def test_text_starting_with_bm_is_text_not_a_bitmap(tmp_path: Path) -> None:
    path = tmp_path / "abstract.txt"
    path.write_text("BMI and mortality in adults: a cohort study.\n")
    assert detect(path, path.name).kind == "text"


def test_a_real_bitmap_is_an_image() -> None:
    path = FORMATS / "img" / "bmp_24.bmp"
    assert detect(path, path.name).mime == "image/bmp"


def test_word_file_with_a_text_extension_is_word(tmp_path: Path) -> None:
    path = tmp_path / "renamed.txt"
    path.write_bytes((FORMATS / "simple.docx").read_bytes())
    assert detect(path, path.name).kind == "docx"


def test_utf16_without_bom_is_text() -> None:
    path = FORMATS / "fake-text-utf-16-le.txt"
    detected = detect(path, path.name)
    assert detected.kind == "text" and detected.encoding == "utf-16-le"


def test_decompression_bomb_is_refused(tmp_path: Path, settings) -> None:
    settings.MAX_DECOMPRESSION_RATIO = 50
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "a" * 5_000_000)
    with pytest.raises(RejectedFile, match="decompression bomb"):
        detect(path, path.name)


def test_oversized_file_is_refused(tmp_path: Path, settings) -> None:
    settings.MAX_UPLOAD_BYTES = 1024
    path = tmp_path / "big.txt"
    path.write_text("x" * 2048)
    with pytest.raises(RejectedFile, match="the limit is"):
        detect(path, path.name)


def test_password_protected_office_file_is_refused() -> None:
    path = FORMATS / "password_protected.xlsx"
    with pytest.raises(RejectedFile, match="password-protected"):
        detect(path, path.name)


def test_damaged_office_container_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.doc"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\xff" * 600)
    with pytest.raises(RejectedFile):
        detect(path, path.name)
