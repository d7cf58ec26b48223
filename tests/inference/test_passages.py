"""Which passages the model reads: a token budget, best first, no repeats,
no tables of contents, the best one cut rather than dropped."""

from __future__ import annotations

from inference.llm import estimate_tokens
from inference.passages import (
    Passage,
    choose_passages,
    cut_to_tokens,
    truncate_to_tokens,
)
from kb.text import looks_like_navigation


def _passage(number: int, text: str) -> Passage:
    return Passage(number, number, 1, 1, "doc", None, "", text, f"/c/{number}")


def test_passages_fill_the_budget_best_first_and_are_renumbered() -> None:
    long = "The cluster has forty nodes in two racks. " * 30
    short = "Backups run nightly at 02:30 and keep fourteen copies."
    other = "Mail is relayed through the gateway on port 587 with TLS."
    chosen = choose_passages(
        [_passage(1, short), _passage(2, long), _passage(3, other)],
        budget_tokens=estimate_tokens(short) + estimate_tokens(other) + 60,
    )
    # The long one does not fit; the shorter one after it still does.
    assert [p.text for p in chosen] == [short, other]
    assert [p.number for p in chosen] == [1, 2]


def test_a_near_duplicate_adds_nothing() -> None:
    text = "Backups run nightly at 02:30 and keep fourteen copies of the data."
    chosen = choose_passages(
        [_passage(1, text), _passage(2, text + " Really."), _passage(3, "Other.")],
        budget_tokens=1000,
    )
    assert [p.text for p in chosen] == [text, "Other."]


def test_a_table_of_contents_is_never_prompted() -> None:
    contents = "\n".join(
        f"{n}.{m} Package management {'.' * 20} {n * 10 + m}"
        for n in range(1, 4)
        for m in range(1, 4)
    )
    body = "Package management on Debian uses apt to install packages."
    chosen = choose_passages([_passage(1, contents), _passage(2, body)], 1000)
    assert [p.text for p in chosen] == [body]


def test_the_best_passage_is_cut_to_the_budget_not_dropped() -> None:
    text = "Sentence number one is here. " * 200
    chosen = choose_passages([_passage(1, text)], budget_tokens=100)
    assert len(chosen) == 1
    assert estimate_tokens(chosen[0].text) <= 100
    assert chosen[0].text.endswith(".")


def test_a_long_best_passage_keeps_the_part_holding_the_question_words() -> None:
    history = "公司成立于一九九八年，最初只有五名员工，主要从事软件外包业务。" * 12
    answer = "机房位于三号楼地下一层，进入机房需要刷工卡并在值班室登记。"
    text = history + answer + "此后公司又陆续开设了上海和深圳的分部。" * 3
    chosen = choose_passages([_passage(1, text)], 200, terms=("机房", "登记"))
    kept = chosen[0].text
    assert estimate_tokens(kept) <= 200 - 24
    # Begun at a sentence before the words, not mid-sentence; the answer whole.
    assert answer in kept and kept.startswith("公司成立于")
    # Without the words the passage is cut at its start, as before.
    assert choose_passages([_passage(1, text)], 200)[0].text == truncate_to_tokens(
        text, 200 - 24
    )


def test_an_english_passage_is_cut_around_the_question_words_too() -> None:
    filler = "The company history section describes early offices. " * 40
    answer = "Backups run nightly at 02:30 and keep fourteen copies."
    cut = cut_to_tokens(filler + answer + " " + filler, 120, ("backups", "copies"))
    # Begun at the sentence holding the words, which ends the window's lead.
    assert cut.startswith(answer)
    assert estimate_tokens(cut) <= 120
    # Words found nowhere: the start.
    assert cut_to_tokens(filler, 50, ("submarine",)) == truncate_to_tokens(filler, 50)


def test_truncation_keeps_chinese_within_the_budget() -> None:
    text = "知识库中的文档。" * 200
    cut = truncate_to_tokens(text, 50)
    assert 0 < estimate_tokens(cut) <= 50 and text.startswith(cut)


def test_navigation_is_recognised_in_both_languages_and_prose_is_not() -> None:
    assert looks_like_navigation(
        "第一章 软件包管理 ........ 12 第二章 系统初始化 ........ 45 "
        "第三章 网络配置 ........ 78 第四章 用户管理 ........ 102"
    )
    index_page = "\n".join(f"apt-get {n}\nsystemd {n + 3}" for n in range(10, 20))
    assert looks_like_navigation(index_page)
    assert not looks_like_navigation(
        "Wait... the daemon restarts. Then the log shows 3 lines. "
        "This is ordinary prose about version 12 of the tool."
    )
    assert not looks_like_navigation("")
