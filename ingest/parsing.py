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

from ingest.filetypes import DetectedFile

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent


class ParseFailed(Exception):
    """Parsing gave no usable result; ``str(exc)`` is meant for the uploader."""


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
                raise ParseFailed(
                    f"Parsing took longer than {timeout:.0f} seconds and was stopped; "
                    "the file may be too large or malformed."
                )
            ready, _, _ = select.select([stdout], [], [], min(remaining, 5.0))
            if on_wait is not None:
                on_wait()
            if ready:
                break
        line = stdout.readline()
        if not line:
            code = process.wait(5)
            self._process = None
            reason = (
                "it ran out of memory"
                if code in (-9, 137) or code == -6
                else f"the parser stopped with code {code}"
            )
            raise ParseFailed(
                f"The file crashed the parser ({reason}); it is probably damaged."
            )
        answer = json.loads(line)
        if not answer.get("ok"):
            raise ParseFailed(answer.get("error") or "The file could not be parsed.")
        return ParseResult(
            elements=answer["elements"],
            pages=answer.get("pages"),
            notes=answer.get("notes", []),
        )


def _pipes(process: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    if process.stdin is None or process.stdout is None:
        raise ParseFailed("The parser process has no pipes; this is a bug.")
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
