"""The parser process: reads one JSON request per line on stdin, parses the
file with unstructured (or the fast PDF text path) and writes one JSON answer
per line on stdout.

It runs apart from the Celery worker, under a memory limit, so a file that
crashes a C library or eats all memory kills only this process; the worker
reports the file as failed and starts a fresh parser. It never touches the
database or Django settings.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from ingest.layout import strip_page_furniture

TITLE_MAX_CHARS = 120
TEXT_KINDS = {"text", "md", "csv", "tsv", "html", "eml", "rst", "org"}


class ParseProblem(Exception):
    """Why the file gave no text, as a code the worker words in the uploader's
    language (``ingest.parsing.REASONS``), with the numbers it needs."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def _element_dict(
    element: Any, default_page: int | None = None
) -> dict[str, Any] | None:
    text = (getattr(element, "text", "") or "").strip()
    if not text:
        return None
    metadata = getattr(element, "metadata", None)
    page = getattr(metadata, "page_number", None) or default_page
    html = getattr(metadata, "text_as_html", None) if metadata is not None else None
    return {
        "type": getattr(element, "category", "NarrativeText") or "NarrativeText",
        "text": text,
        "page": int(page) if page else None,
        "html": html,
    }


_LIST_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)])\s+")


def _looks_like_title(paragraph: str) -> bool:
    if "\n" in paragraph or len(paragraph) > TITLE_MAX_CHARS or len(paragraph) < 3:
        return False
    if paragraph.rstrip()[-1:] in ".,;:!?。，；：！？":
        return False
    words = paragraph.split()
    return (
        len(words) <= 14
        and sum(ch.isalpha() for ch in paragraph) >= len(paragraph) * 0.5
    )


def _text_elements(text: str, page: int | None) -> list[Any]:
    """Paragraphs of a PDF page as unstructured elements (Title or
    NarrativeText/ListItem), without the slow NLP classifier."""
    from unstructured.documents.elements import (
        ElementMetadata,
        ListItem,
        NarrativeText,
        Title,
    )

    elements: list[Any] = []
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    for block in re.split(r"\n\s*\n", normalised):
        paragraph = block.strip()
        if not paragraph:
            continue
        metadata = ElementMetadata(page_number=page)
        if _looks_like_title(paragraph):
            elements.append(Title(paragraph, metadata=metadata))
        elif _LIST_BULLET.match(paragraph):
            elements.append(ListItem(paragraph, metadata=metadata))
        else:
            # Join lines broken by the PDF layout; keep hyphenated words whole.
            joined = re.sub(r"-\n(?=\w)", "", paragraph)
            joined = re.sub(r"\s*\n\s*", " ", joined)
            elements.append(NarrativeText(joined, metadata=metadata))
    return elements


def _ocr_image(path: str) -> str:
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        raise ParseProblem("no_ocr")
    result = subprocess.run(  # noqa: S603 - fixed program, a file we wrote
        [tesseract, path, "stdout", "-l", os.environ.get("OCR_LANGUAGES", "eng")],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(f"tesseract: {result.stderr.decode(errors='replace')[:500]}\n")
        raise ParseProblem("ocr_failed")
    return result.stdout.decode("utf-8", errors="replace")


def parse_pdf(path: str, max_pages: int) -> tuple[list[dict[str, Any]], int, list[str]]:
    import pypdfium2 as pdfium

    notes: list[str] = []
    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise ParseProblem("pdf_password") from exc
        sys.stderr.write(f"pdfium: {message}\n")
        raise ParseProblem("pdf_damaged") from exc
    try:
        page_count = len(pdf)
        if page_count > max_pages:
            raise ParseProblem("too_many_pages", pages=page_count, limit=max_pages)
        elements: list[dict[str, Any]] = []
        pages_without_text = []
        texts: list[str] = []
        for index in range(page_count):
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                text = textpage.get_text_bounded() or ""
                textpage.close()
                if len(text.strip()) < 10 and shutil.which("tesseract"):
                    with tempfile.NamedTemporaryFile(suffix=".png") as image_file:
                        page.render(scale=2).to_pil().save(image_file.name)
                        text = _ocr_image(image_file.name)
                    notes.append(f"page {index + 1} read by OCR")
            finally:
                page.close()
            if not text.strip():
                pages_without_text.append(index + 1)
            texts.append(text)
        for index, text in enumerate(strip_page_furniture(texts)):
            for element in _text_elements(text, index + 1):
                item = _element_dict(element)
                if item:
                    elements.append(item)
        if pages_without_text:
            notes.append(
                f"{len(pages_without_text)} of {page_count} pages have no text layer"
                + ("" if shutil.which("tesseract") else " (OCR is not installed)")
            )
        return elements, page_count, notes
    finally:
        pdf.close()


def _convert_with_libreoffice(kind: str, path: str, outdir: str, timeout: float) -> str:
    """The old binary .doc/.ppt saved as .docx/.pptx by one LibreOffice run.

    unstructured's own conversion runs LibreOffice again and again, for up to a
    hundred tries, while a damaged file gives no output, so one such file held
    the worker for two minutes. Here a file gets one run, in a session of its
    own (killed whole on timeout) and with this process's own profile, so two
    workers converting at once do not lock each other out.
    """
    soffice = shutil.which("soffice")
    if soffice is None:
        raise ParseProblem("needs_libreoffice", kind=kind)
    target = f"{kind}x"
    command = [
        soffice,
        f"-env:UserInstallation={_libreoffice_profile().as_uri()}",
        "--headless",
        "--norestore",
        "--convert-to",
        target,
        "--outdir",
        outdir,
        path,
    ]
    process = subprocess.Popen(  # noqa: S603 - fixed program, a file we wrote
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ParseProblem("timeout", seconds=round(timeout)) from None
    # The folder is new: whatever LibreOffice wrote there is the file.
    converted = next(Path(outdir).glob(f"*.{target}"), None)
    if process.returncode != 0 or converted is None:
        sys.stderr.write(
            f"soffice ({process.returncode}): {stderr.decode(errors='replace')[:500]}\n"
        )
        raise ParseProblem("unreadable")
    return str(converted)


_PROFILE_PREFIX = "archivist-libreoffice-"
_profile_dir: Path | None = None


def _libreoffice_profile() -> Path:
    """This process's LibreOffice profile, made on first use. It is removed at
    exit, and a killed parser's is removed by the next one to convert."""
    global _profile_dir
    if _profile_dir is None:
        temp = Path(tempfile.gettempdir())
        for stale in temp.glob(f"{_PROFILE_PREFIX}*"):
            pid = stale.name.removeprefix(_PROFILE_PREFIX)
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(stale, ignore_errors=True)
        _profile_dir = temp / f"{_PROFILE_PREFIX}{os.getpid()}"
        _profile_dir.mkdir(mode=0o700, exist_ok=True)
        atexit.register(shutil.rmtree, _profile_dir, ignore_errors=True)
    return _profile_dir


def _partition(kind: str, path: str, encoding: str | None, timeout: float) -> list[Any]:
    if kind in {"doc", "ppt"}:
        with tempfile.TemporaryDirectory(prefix="archivist-convert-") as outdir:
            converted = _convert_with_libreoffice(kind, path, outdir, timeout)
            return _partition(f"{kind}x", converted, None, timeout)
    from unstructured.partition.auto import partition

    kwargs: dict[str, Any] = {"strategy": "fast"}
    if encoding and kind in TEXT_KINDS:
        kwargs["encoding"] = encoding
    if kind in {"eml", "msg"}:
        # Attachments may be anything (audio, archives); they are not this document.
        kwargs["process_attachments"] = False
    content_types = {
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xls": "application/vnd.ms-excel",
        "odt": "application/vnd.oasis.opendocument.text",
        "epub": "application/epub+zip",
        "msg": "application/vnd.ms-outlook",
        "rtf": "text/rtf",
        "html": "text/html",
        "eml": "message/rfc822",
        "md": "text/markdown",
        "csv": "text/csv",
        "tsv": "text/tsv",
        "rst": "text/x-rst",
        "org": "text/org",
        "text": "text/plain",
    }
    try:
        return list(
            partition(filename=path, content_type=content_types[kind], **kwargs)
        )
    except Exception:
        if kind not in TEXT_KINDS or kind == "text":
            raise
        # A malformed CSV or e-mail is still text: index it as plain text.
        from unstructured.partition.text import partition_text

        return list(partition_text(filename=path, encoding=encoding))


def parse(request: dict[str, Any]) -> dict[str, Any]:
    path: str = request["path"]
    kind: str = request["kind"]
    if kind == "pdf":
        elements, pages, notes = parse_pdf(path, int(request.get("max_pages", 5000)))
        return {"elements": elements, "pages": pages, "notes": notes}
    if kind == "text":
        # Plain text: paragraphs and headings by layout, as for PDFs; unstructured's
        # NLP classifier costs ~70 ms a file and adds nothing to plain prose.
        text = (
            Path(path)
            .read_bytes()
            .decode(request.get("encoding") or "utf-8", errors="replace")
        )
        items = [
            item
            for element in _text_elements(text, None)
            if (item := _element_dict(element))
        ]
        return {"elements": items, "pages": None, "notes": []}
    if kind == "image":
        text = _ocr_image(path)
        items = [
            item
            for element in _text_elements(text, 1)
            if (item := _element_dict(element))
        ]
        return {"elements": items, "pages": 1, "notes": ["read by OCR"]}
    # The worker stops this process at its own deadline; a conversion stops a
    # little before, so LibreOffice is not left running.
    timeout = max(1.0, float(request.get("timeout", 300)) - 5)
    elements = _partition(kind, path, request.get("encoding"), timeout)
    items = [item for element in elements if (item := _element_dict(element))]
    last_page = max((item["page"] or 0 for item in items), default=0)
    return {"elements": items, "pages": last_page or None, "notes": []}


def _limit_memory() -> None:
    limit_mb = int(os.environ.get("PARSE_MEMORY_LIMIT_MB", "3072"))
    limit = limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    _limit_memory()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ingest.nlp import install_offline_spacy_model

    install_offline_spacy_model()
    out = sys.stdout
    sys.stdout = sys.stderr  # parsers that print must not corrupt the protocol
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = {"ok": True, **parse(json.loads(line))}
        except ParseProblem as exc:
            answer = {"ok": False, "code": exc.code, "params": exc.params}
        except MemoryError:
            answer = {"ok": False, "code": "memory", "params": {}}
        except Exception:
            # The parser's own words (an exception, a temporary path) are for
            # the log; the uploader is told what to do with the file.
            traceback.print_exc(file=sys.stderr)
            answer = {"ok": False, "code": "unreadable", "params": {}}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
