"""What a file really is, read from its bytes, and whether it is safe to parse.

The extension is only a hint for plain-text flavours (Markdown vs CSV);
binary formats are recognised by their signatures and, for ZIP and OLE
containers, by what is inside. A refusal is a :class:`RejectedFile` whose
message is meant for the person who uploaded the file.
"""

from __future__ import annotations

import codecs
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

TEXT_EXTENSIONS = {
    ".md": "md",
    ".markdown": "md",
    ".csv": "csv",
    ".tsv": "tsv",
    ".rst": "rst",
    ".org": "org",
    ".html": "html",
    ".htm": "html",
    ".eml": "eml",
    ".json": "text",
    ".ndjson": "text",
    ".xml": "text",
    ".yaml": "text",
    ".yml": "text",
}
IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}
# "BM" alone also starts plain text ("BMI of adults..."): a BMP must also have
# its reserved bytes at zero and a known DIB header size.
BMP_DIB_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}


def _is_bmp(head: bytes) -> bool:
    return (
        len(head) >= 18
        and head.startswith(b"BM")
        and head[6:10] == b"\x00\x00\x00\x00"
        and int.from_bytes(head[14:18], "little") in BMP_DIB_HEADER_SIZES
    )


MIME_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "epub": "application/epub+zip",
    "doc": "application/msword",
    "ppt": "application/vnd.ms-powerpoint",
    "xls": "application/vnd.ms-excel",
    "msg": "application/vnd.ms-outlook",
    "rtf": "application/rtf",
    "html": "text/html",
    "eml": "message/rfc822",
    "md": "text/markdown",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "rst": "text/x-rst",
    "org": "text/x-org",
    "text": "text/plain",
    "image": "image/*",
}


class RejectedFile(Exception):
    """The file is refused before parsing; ``str(exc)`` tells the user why."""


@dataclass(frozen=True)
class DetectedFile:
    kind: str
    mime: str
    encoding: str | None = None


def _ooxml_or_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = {info.filename for info in infos}
            if any(info.flag_bits & 0x1 for info in infos):
                raise RejectedFile(
                    _(
                        "The file is password-protected; remove the password and upload it again."
                    )
                )
            _check_decompression(infos, path.stat().st_size)
            if "mimetype" in names:
                mimetype = archive.read("mimetype").decode("ascii", "replace").strip()
                if mimetype == "application/epub+zip":
                    return "epub"
                if mimetype == "application/vnd.oasis.opendocument.text":
                    manifest = (
                        archive.read("META-INF/manifest.xml")
                        if "META-INF/manifest.xml" in names
                        else b""
                    )
                    if b"encryption-data" in manifest:
                        raise RejectedFile(
                            _(
                                "The document is password-protected; remove the password and upload it again."
                            )
                        )
                    return "odt"
                raise RejectedFile(
                    _("This OpenDocument type (%(type)s) is not supported yet.")
                    % {"type": mimetype}
                )
            if "[Content_Types].xml" in names:
                if any(name.startswith("word/") for name in names):
                    return "docx"
                if any(name.startswith("ppt/") for name in names):
                    return "pptx"
                if any(name.startswith("xl/") for name in names):
                    return "xlsx"
            raise RejectedFile(
                _(
                    "ZIP archives are not ingested; upload the documents inside it instead."
                )
            )
    except zipfile.BadZipFile as exc:
        raise RejectedFile(
            _("The file looks like an Office document but is damaged (%(error)s).")
            % {"error": exc}
        ) from exc


def _check_decompression(infos: list[zipfile.ZipInfo], compressed_size: int) -> None:
    total = sum(info.file_size for info in infos)
    if total > settings.MAX_UNCOMPRESSED_BYTES:
        raise RejectedFile(
            _("The document expands to %(mb)d MB, above the %(limit)d MB limit.")
            % {"mb": total // 2**20, "limit": settings.MAX_UNCOMPRESSED_BYTES // 2**20}
        )
    if compressed_size and total / compressed_size > settings.MAX_DECOMPRESSION_RATIO:
        raise RejectedFile(
            _(
                "The document expands %(ratio)d times its size, which looks like a decompression bomb."
            )
            % {"ratio": total // compressed_size}
        )


def _ole_kind(path: Path) -> str:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            streams = {
                "/".join(entry) for entry in ole.listdir(streams=True, storages=True)
            }
    except OSError as exc:
        raise RejectedFile(
            _("The file looks like an old Office document but is damaged (%(error)s).")
            % {"error": exc}
        ) from exc
    if "EncryptedPackage" in streams or "EncryptionInfo" in streams:
        raise RejectedFile(
            _(
                "The file is password-protected; remove the password and upload it again."
            )
        )
    if "WordDocument" in streams:
        return "doc"
    if "PowerPoint Document" in streams:
        return "ppt"
    if "Workbook" in streams or "Book" in streams:
        return "xls"
    if any(name.startswith("__substg1.0_") for name in streams):
        return "msg"
    raise RejectedFile(_("This old Office file type is not supported."))


def _text_encoding(head: bytes) -> str | None:
    """The encoding of a text file, or None if the bytes are not text."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return encoding
    if not head:
        return "utf-8"
    if b"\x00" in head:
        return _utf16_or_32_without_bom(head)
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut by the sample's end
            return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    return best.encoding if best is not None else None


def _utf16_or_32_without_bom(head: bytes) -> str | None:
    """UTF-16/32 text without a byte-order mark: NULs sit at regular offsets."""
    sample = head[: len(head) - len(head) % 4]
    if len(sample) < 8:
        return None
    for encoding in ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be"):
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError:
            continue
        printable = sum(ch.isprintable() or ch.isspace() for ch in text)
        if text and printable / len(text) > 0.95 and "\x00" not in text:
            return encoding
    return None


def _text_kind(path: Path, head: bytes, encoding: str) -> str:
    sample = head.decode(encoding, errors="replace").lstrip("\ufeff").lstrip()
    lowered = sample[:2048].lower()
    if lowered.startswith(("<!doctype html", "<html")) or "<html" in lowered[:1024]:
        return "html"
    suffix = path.suffix.lower()
    if suffix in TEXT_EXTENSIONS:
        return TEXT_EXTENSIONS[suffix]
    first_lines = sample.splitlines()[:20]
    headers = sum(
        1
        for line in first_lines
        if line.split(":", 1)[0].lower()
        in {"from", "to", "subject", "date", "received", "mime-version", "message-id"}
    )
    if headers >= 3:
        return "eml"
    return "text"


def _inspect_container(inspect: Callable[[Path], str], path: Path) -> str:
    """Run a container inspection; a malformed container (fuzzed, truncated)
    may make the ZIP or OLE reader raise anything, which is the file's fault."""
    try:
        return inspect(path)
    except RejectedFile:
        raise
    except Exception as exc:
        raise RejectedFile(
            _("The file is damaged and cannot be read (%(error)s).")
            % {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        ) from exc


def detect(path: Path, original_name: str = "") -> DetectedFile:
    """Identify ``path`` from its bytes and apply the size and safety limits."""
    size = path.stat().st_size
    if size == 0:
        raise RejectedFile(
            _("The file is empty (0 bytes): there is nothing to ingest.")
        )
    if size > settings.MAX_UPLOAD_BYTES:
        raise RejectedFile(
            _("The file is %(mb)d MB; the limit is %(limit)d MB.")
            % {"mb": size // 2**20, "limit": settings.MAX_UPLOAD_BYTES // 2**20}
        )
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    hint = Path(original_name or path.name)
    if head.startswith(b"%PDF-") or b"%PDF-" in head[:1024]:
        return DetectedFile("pdf", MIME_TYPES["pdf"])
    if head.startswith(b"PK\x03\x04"):
        kind = _inspect_container(_ooxml_or_zip, path)
        return DetectedFile(kind, MIME_TYPES[kind])
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        kind = _inspect_container(_ole_kind, path)
        return DetectedFile(kind, MIME_TYPES[kind])
    if head.startswith(b"{\\rtf"):
        return DetectedFile("rtf", MIME_TYPES["rtf"])
    for signature, image_type in IMAGE_SIGNATURES.items():
        if head.startswith(signature):
            return DetectedFile("image", f"image/{image_type}")
    if _is_bmp(head):
        return DetectedFile("image", "image/bmp")
    encoding = _text_encoding(head)
    if encoding is None:
        raise RejectedFile(
            _(
                "This file type is not supported (it is binary data of an unknown format)."
            )
        )
    kind = _text_kind(hint, head, encoding)
    return DetectedFile(kind, MIME_TYPES[kind], encoding)
