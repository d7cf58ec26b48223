"""Running headers, footers and page numbers leave a PDF's page text; what
only looks like them (a line on a few pages, a number inside a sentence)
stays."""

from __future__ import annotations

from ingest.layout import strip_page_furniture


def _page(number: int, body: str) -> str:
    return (
        f"Debian Reference Manual\n{body}\nChapter 2. Package management\n- {number} -"
    )


def test_running_headers_footers_and_page_numbers_are_removed() -> None:
    bodies = [
        "APT installs packages and what they depend on.",
        "dpkg works on single package files.",
        "Aptitude offers a text interface.",
        "Use apt-mark to hold a package at its version of 2024.",
    ]
    pages = [_page(number, body) for number, body in enumerate(bodies, start=12)]
    assert strip_page_furniture(pages) == bodies


def test_chinese_page_numbers_and_few_pages() -> None:
    pages = [
        "软件包管理\n使用 apt 安装软件包。\n第 3 页",
        "第二章\n升级系统。\n第 4 页 共 9 页",
    ]
    # Two pages cannot show what repeats; lone page numbers still go.
    assert strip_page_furniture(pages) == [
        "软件包管理\n使用 apt 安装软件包。",
        "第二章\n升级系统。",
    ]


def test_content_that_only_looks_like_furniture_stays() -> None:
    pages = [
        "Results\nThe trial enrolled 120 adults.\n42",
        "Methods\nWe measured 42 markers.\nThe dose was 5 mg.",
        "Discussion\nFurther work is needed.\nSee table 3.",
    ]
    stripped = strip_page_furniture(pages)
    # The lone "42" at a page's foot is a page number; the rest is content.
    assert stripped[0] == "Results\nThe trial enrolled 120 adults."
    assert stripped[1:] == pages[1:]
