"""Answers are Markdown rendered safely: code, lists and tables show as
such; raw HTML, images and model-written links never become live."""

from __future__ import annotations

from inference.rendering import answer_html

CITATIONS = [
    {"n": 1, "url": "/documents/5/?chunk=9#chunk-9", "supported": True},
    {"n": 2, "url": "/documents/6/?chunk=3#chunk-3", "supported": False},
]


def test_code_blocks_lists_and_tables_are_rendered() -> None:
    html = answer_html(
        "Run this [1]:\n\n```bash\nsudo update-alternatives --config editor\n```\n\n"
        "- first\n- second\n\n| a | b |\n| --- | --- |\n| 1 | 2 |",
        CITATIONS,
    )
    assert "<pre><code" in html and "update-alternatives --config editor" in html
    assert "```" not in html
    assert "<li>first</li>" in html and "<td>1</td>" in html
    assert '<a class="cite" href="/documents/5/?chunk=9#chunk-9">[1]</a>' in html


def test_raw_html_images_and_links_from_the_model_stay_inert() -> None:
    html = answer_html(
        '<script>alert(1)</script> <img src="http://evil.example/x.png"> '
        "![track](http://evil.example/t.png) [click](javascript:alert(1)) "
        "[home](https://evil.example/)",
        CITATIONS,
    )
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<img" not in html
    assert 'href="javascript' not in html and 'href="https://evil' not in html


def test_citation_markers_inside_code_are_left_alone() -> None:
    html = answer_html("Use `arr[1]` as in [1].", CITATIONS)
    assert "<code>arr[1]</code>" in html
    assert html.count('class="cite"') == 1


def test_an_unverified_citation_is_marked_and_an_unknown_one_is_text() -> None:
    html = answer_html("Claimed [2]. Unknown [9].", CITATIONS)
    assert 'class="cite cite-unverified"' in html and "[9]" in html
    assert 'href="[9]' not in html
