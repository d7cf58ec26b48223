"""Talks to the parser process (``ingest.parser_child``).

Each worker process keeps one parser process and reuses it file after file
(importing unstructured costs seconds). A file that makes the parser crash,
exceed its memory limit or run past the time limit fails alone with a reason;
the parser is replaced and the worker carries on.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext_lazy

from ingest.filetypes import DetectedFile

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent


# What went wrong with a file, and what to do about it, by the parser's code.
REASONS: dict[str, Any] = {
    "no_ocr": gettext_lazy(
        "This page or picture has no text layer, and text recognition (OCR) is "
        "not installed on this server. Ask an administrator to install the "
        "tesseract-ocr package, then press Retry."
    ),
    "ocr_failed": gettext_lazy(
        "Text recognition could not read this picture. Upload a sharper scan, or "
        "a version of the file with text in it."
    ),
    "pdf_password": gettext_lazy(
        "The PDF is password-protected; remove the password and upload it again."
    ),
    "pdf_damaged": gettext_lazy(
        "The PDF is damaged and cannot be read. Open it in a PDF reader, save or "
        "print it as a new PDF, and upload that."
    ),
    "too_many_pages": gettext_lazy(
        "The PDF has %(pages)d pages; the limit is %(limit)d. Split it into parts "
        "and upload those."
    ),
    "needs_libreoffice": gettext_lazy(
        "Old .%(kind)s files need LibreOffice, which is not installed on this "
        "server; save the file as .%(kind)sx and upload it again."
    ),
    "memory": gettext_lazy(
        "The file needs more memory to read than this server allows. Split it "
        "into smaller files and upload those."
    ),
    "unreadable": gettext_lazy(
        "This %(kind)s file could not be read: it may be damaged, or not really "
        "of the type its name says. Open it in the program that made it, save it "
        "again, and upload the new file."
    ),
    "timeout": gettext_lazy(
        "Reading the file took longer than %(seconds)d seconds and was stopped; "
        "it may be too large or malformed. Split it, or save it again, and upload "
        "it."
    ),
    "crashed": gettext_lazy(
        "The file made the reader stop; it is probably damaged. Save it again "
        "from the program that made it and upload the new file."
    ),
}


class ParseFailed(Exception):
    """Parsing gave no usable result; ``str(exc)`` is meant for the uploader,
    worded in the language active when it is read."""

    def __init__(self, message: Any, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params

    @classmethod
    def from_code(cls, code: str, **params: Any) -> ParseFailed:
        return cls(REASONS.get(code, REASONS["unreadable"]), **params)

    def __str__(self) -> str:
        text = str(self.message)
        return text % self.params if self.params else text


@dataclass
class ParseResult:
    elements: list[dict[str, Any]]
    pages: int | None
    notes: list[str] = field(default_factory=list)


class ParserProcess:
    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PARSE_MEMORY_LIMIT_MB": str(settings.PARSE_MEMORY_LIMIT_MB),
            "PYTHONUNBUFFERED": "1",
        }
        return subprocess.Popen(
            [sys.executable, "-m", "ingest.parser_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the worker's log
            cwd=BASE_DIR,
            env=env,
        )

    def start(self) -> None:
        self._alive()

    def _alive(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        return self._process

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        self._process = None

    def parse(
        self,
        path: Path,
        detected: DetectedFile,
        *,
        timeout: float,
        on_wait: Callable[[], None] | None = None,
    ) -> ParseResult:
        process = self._alive()
        request = {
            "path": str(path),
            "kind": detected.kind,
            "encoding": detected.encoding,
            "max_pages": settings.MAX_PDF_PAGES,
            "timeout": timeout,
        }
        line_out = (json.dumps(request) + "\n").encode()
        try:
            _pipes(process)[0].write(line_out)
            _pipes(process)[0].flush()
        except BrokenPipeError:
            self.stop()
            process = self._alive()
            _pipes(process)[0].write(line_out)
            _pipes(process)[0].flush()
        stdout = _pipes(process)[1]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise ParseFailed.from_code("timeout", seconds=round(timeout))
            ready, _, _ = select.select([stdout], [], [], min(remaining, 5.0))
            if on_wait is not None:
                on_wait()
            if ready:
                break
        line = stdout.readline()
        if not line:
            code = process.wait(5)
            self._process = None
            logger.warning("The parser process stopped with code %s on %s", code, path)
            if code in (-9, 137) or code == -6:
                raise ParseFailed.from_code("memory")
            raise ParseFailed.from_code("crashed")
        answer = json.loads(line)
        if not answer.get("ok"):
            params = answer.get("params") or {}
            if answer.get("code") == "unreadable":
                params = {"kind": detected.kind.upper()}
            raise ParseFailed.from_code(answer.get("code", "unreadable"), **params)
        return ParseResult(
            elements=answer["elements"],
            pages=answer.get("pages"),
            notes=answer.get("notes", []),
        )


def _pipes(process: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    if process.stdin is None or process.stdout is None:
        raise RuntimeError("The parser process has no pipes; this is a bug.")
    return process.stdin, process.stdout


_parser: ParserProcess | None = None


def _the_parser() -> ParserProcess:
    global _parser
    if _parser is None:
        _parser = ParserProcess()
    return _parser


def start_parser() -> None:
    """Start this worker process's parser process ahead of the first file."""
    _the_parser().start()


def parse_file(
    path: Path, detected: DetectedFile, *, on_wait: Callable[[], None] | None = None
) -> ParseResult:
    """Parse in this worker process's parser process (started on first use)."""
    return _the_parser().parse(
        path, detected, timeout=settings.PARSE_TIMEOUT_SECONDS, on_wait=on_wait
    )
