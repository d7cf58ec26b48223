"""Tables of contents are recognised at ingestion: kept (the document viewer
shows them), ranked after the content pages that hold the same words, and
never given to the LLM as a passage."""

from __future__ import annotations

import pytest

from kb.models import Chunk
from kb.search import search_chunks
from tests.conftest import World
from tests.ingest.conftest import upload_bytes, wait_final

pytestmark = pytest.mark.slow

CONTENTS = [
    "Contents",
    "1 Package management basics .......... 2",
    "2 Installing a package .......... 2",
    "3 Removing a package .......... 3",
    "4 Package management with apt .......... 3",
    "5 Upgrading every package .......... 3",
    "6 Package management tips .......... 3",
]
PAGE_TWO = [
    "Package management basics",
    "A package bundles a program with its files. Package management keeps",
    "track of which package is installed and which version it has.",
]
PAGE_THREE = [
    "Package management with apt",
    "Run apt install followed by the package name to add a program, and",
    "apt remove to take it away again. Package management with apt also",
    "resolves what each package depends on.",
]


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with a text layer: one line of Helvetica per string."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, once the pages' numbers are known
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for lines in pages:
        script = (
            "BT /F1 11 Tf 14 TL 50 780 Td "
            + " ".join(
                "({}) '".format(
                    line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                )
                for line in lines
            )
            + " ET"
        )
        stream = script.encode("latin-1")
        objects.append(
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
        )
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_content_pages_outrank_the_table_of_contents(ingest_world: World) -> None:
    world = ingest_world
    pdf = text_pdf([CONTENTS, PAGE_TWO, PAGE_THREE])
    document = upload_bytes(world, world.collection_a, "guide.pdf", pdf).document
    assert document is not None
    done = wait_final([document.pk], 180)[document.pk]
    assert done.status == "ready", done.failure_reason
    chunks = Chunk.objects.filter(document=document)
    contents = [chunk for chunk in chunks if chunk.page == 1]
    assert contents and all(chunk.is_navigation for chunk in contents)
    assert not any(chunk.is_navigation for chunk in chunks if chunk.page != 1)
    # The contents page holds "package management" more often than any page.
    for mode in ("hybrid", "lexical"):
        hits = search_chunks(user=world.bob, query="package management", mode=mode).hits
        pages = [hit.page for hit in hits if hit.document_id == document.pk]
        assert pages[-1] == 1 and set(pages[:-1]) == {2, 3}, (mode, pages)
