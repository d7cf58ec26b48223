"""Every shared sample file reaches a final state through the real pipeline:
ingested and findable, or refused/failed with a reason a user understands."""

from __future__ import annotations

import re

import pytest

from kb.models import Chunk, Document
from kb.search import SearchFilters, search_chunks
from tests.conftest import World
from tests.ingest.conftest import ADVERSARIAL, FORMATS, upload, wait_final

pytestmark = pytest.mark.slow

NO_TEXT = "No text could be extracted"
RAW_EXCEPTION = re.compile(
    r"\b\w+(Error|Exception)\b|Traceback|/tmp/|/var/|/work/|exitcode|\bcode -?\d"
)
# The files expected not to become searchable, and the reason they give.
EXPECTED_FAILURES = {
    "CantinaBand3.wav": "not supported",  # audio
    "img/DA-1p.heic": "not supported",  # HEIC pictures are not read
    "simple.zip": "ZIP archives are not ingested",
    "password_protected.xlsx": "password-protected",
    "pdf/password.pdf": "password-protected",
    "eml/empty.eml": NO_TEXT,
    "eml/fake-encrypted.eml": NO_TEXT,  # S/MIME: the body is ciphertext
    "eml/mime-multipart-digest.eml": NO_TEXT,  # a digest of empty messages
    "eml/mime-no-body.eml": NO_TEXT,
    "fake-encrypted.msg": NO_TEXT,
    "empty.txt": "The file is empty",
    "empty.xlsx": NO_TEXT,
    "fake-text-all-whitespace.txt": NO_TEXT,
    "picture.pptx": NO_TEXT,  # one picture, no words
    "test-image-jpg-mime.pptx": NO_TEXT,
    "img/bmp_24.bmp": NO_TEXT,  # a colour chart: OCR finds no words
    "img/example.jpg": NO_TEXT,  # a photograph
}
# A word standing alone (not inside an e-mail address, URL or file name,
# which the full-text parser keeps as one token).
_WORD = re.compile(r"(?:(?<=\s)|^)([A-Za-z]{6,})(?=[\s,;:!?)\]]|\.(?:\s|$)|$)")


def _distinctive_word(text: str) -> str | None:
    words = _WORD.findall(text)
    return max(words, key=len) if words else None


def test_every_format_sample_reaches_a_final_state(ingest_world: World) -> None:
    world = ingest_world
    files = sorted(path for path in FORMATS.rglob("*") if path.is_file())
    outcomes = {}
    for path in files:
        outcome = upload(world, world.collection_a, path)
        outcomes[str(path.relative_to(FORMATS))] = outcome
    ids = [o.document.pk for o in outcomes.values() if o.document is not None]
    documents = wait_final(ids, timeout=900)
    problems = []
    for name, outcome in outcomes.items():
        expected = EXPECTED_FAILURES.get(name)
        if outcome.duplicate_of is not None:
            continue  # same bytes as another sample: reported, not ingested twice
        if outcome.document is None:
            reason = outcome.rejected_reason
            if expected is None or expected not in reason:
                problems.append(f"{name}: refused ({reason})")
            continue
        document = documents[outcome.document.pk]
        if not document.is_final:
            problems.append(f"{name}: still {document.status} after the time bound")
        elif expected is not None:
            if (
                document.status != Document.Status.FAILED
                or expected not in document.failure_reason
            ):
                problems.append(
                    f"{name}: expected failure '{expected}', got {document.status} ({document.failure_reason})"
                )
        elif document.status != Document.Status.READY:
            problems.append(f"{name}: {document.status} ({document.failure_reason})")
        else:
            first = Chunk.objects.filter(document=document).order_by("ordinal").first()
            word = _distinctive_word(first.text) if first else None
            if word:
                hits = search_chunks(
                    user=world.bob,
                    query=word,
                    mode="lexical",
                    filters=SearchFilters(document_ids=(document.pk,)),
                ).hits
                if not hits:
                    problems.append(
                        f"{name}: ready but '{word}' is not found by search"
                    )
    assert problems == [], "\n".join(problems)


def test_adversarial_files_end_cleanly_and_the_worker_survives(
    ingest_world: World, celery_worker
) -> None:
    world = ingest_world
    files = sorted(path for path in ADVERSARIAL.rglob("*") if path.is_file())
    ids = []
    for path in files:
        outcome = upload(
            world, world.collection_b, path, name=f"{path.parent.name}-{path.name}"
        )
        if outcome.document is not None:
            ids.append(outcome.document.pk)
        else:
            assert outcome.duplicate_of is not None or outcome.rejected_reason
    documents = wait_final(ids, timeout=900)
    stuck = [d.title for d in documents.values() if not d.is_final]
    assert stuck == []
    raw = []
    for document in documents.values():
        if document.status == Document.Status.FAILED:
            assert document.failure_reason, document.title
            if RAW_EXCEPTION.search(document.failure_reason):
                raw.append(f"{document.title}: {document.failure_reason}")
    # A reason says what is wrong and what to do; exceptions and server
    # paths belong in the log.
    assert raw == []
    assert celery_worker.alive()
