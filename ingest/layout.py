"""Page furniture that PDF text extraction mixes into the text: running
headers and footers repeated on most pages, and lone page numbers. They
repeat the document's title and chapter names on every page, so they match
searches without answering them, and they split sentences that run across a
page break. The original file keeps them."""

from __future__ import annotations

import re
from collections import Counter

# A line that is only a page number: "12", "- 12 -", "Page 3 of 40",
# "3 / 40", "第 3 页", "第3页 共40页".
_PAGE_NUMBER = re.compile(
    r"^\s*(?:(?:page|p\.)\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?"
    r"(?:\s*(?:of|/)\s*\d{1,4})?\s*$"
    r"|^\s*第\s*\d{1,4}\s*页(?:\s*[/，,]?\s*共\s*\d{1,4}\s*页)?\s*$",
    re.IGNORECASE,
)
# Lines looked at on each edge of a page.
EDGE_LINES = 2
# A line on the edge of at least this share of the pages (and of three) is
# a running header or footer.
RUNNING_SHARE = 0.5
RUNNING_MIN_PAGES = 3


def _key(line: str) -> str:
    """The line with its numbers blanked: "Chapter 2 · page 14" repeats."""
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def _edges(lines: list[str]) -> set[int]:
    filled = [index for index, line in enumerate(lines) if line.strip()]
    return set(filled[:EDGE_LINES] + filled[-EDGE_LINES:])


def strip_page_furniture(pages: list[str]) -> list[str]:
    """Each page's text without its running header, footer and page number."""
    split = [page.splitlines() for page in pages]
    seen: Counter[str] = Counter()
    for lines in split:
        seen.update({_key(lines[index]) for index in _edges(lines)})
    needed = max(RUNNING_MIN_PAGES, len(pages) * RUNNING_SHARE)
    running = {key for key, count in seen.items() if count >= needed and key}
    stripped = []
    for lines in split:
        edges = _edges(lines)
        kept = [
            line
            for index, line in enumerate(lines)
            if index not in edges
            or not (_key(line) in running or _PAGE_NUMBER.match(line))
        ]
        stripped.append("\n".join(kept))
    return stripped
