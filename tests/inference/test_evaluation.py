"""Built-in evaluation: question sets are read strictly, answers are scored
by the usual reading-comprehension rules, and ``manage.py evaluate`` runs a
set through the real ask path, stores the run, and gates on a worse one."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from inference.evaluation.compare import compare_metrics
from inference.evaluation.metrics import (
    aggregate,
    contains_answer,
    ndcg_at_10,
    question_scores,
    token_f1,
)
from inference.evaluation.sets import QuestionSetError, parse_question_set
from inference.models import EvaluationRun
from tests.conftest import World
from tests.ingest.conftest import upload_bytes, wait_final


def test_jsonl_and_csv_sets_are_read_with_their_expectations() -> None:
    jsonl = (
        '{"question": "When do backups run?", "answers": ["02:30"], '
        '"documents": ["ops.txt"], "answerable": true}\n\n'
        '{"question": "法国的首都是哪里？", "answerable": "no"}\n'
        '{"question": "BEIR style", "metadata": {"answers": ["x", "y"]}}\n'
    ).encode()
    questions = parse_question_set(jsonl, "set.jsonl")
    assert [q.question for q in questions] == [
        "When do backups run?",
        "法国的首都是哪里？",
        "BEIR style",
    ]
    assert questions[0].answers == ("02:30",) and questions[0].documents == ("ops.txt",)
    assert questions[1].answerable is False and questions[2].answers == ("x", "y")
    csv = b"question,answers,answerable\nWhen?,02:30|2:30 am,yes\n"
    [row] = parse_question_set(csv, "set.csv")
    assert row.answers == ("02:30", "2:30 am") and row.answerable


@pytest.mark.parametrize(
    ("data", "name", "says"),
    [
        (b'{"question": "ok"}\nnot json\n', "s.jsonl", "line 2"),
        (b'{"answers": ["x"]}\n', "s.jsonl", "question is missing"),
        (b'{"question": "q", "answerable": "maybe"}\n', "s.jsonl", "yes or no"),
        (b"answers\nx\n", "s.csv", "question column"),
        (b"", "s.jsonl", "no questions"),
        (b"\xff\xfe\x00", "s.jsonl", "UTF-8"),
    ],
)
def test_a_bad_set_is_refused_with_the_line_and_the_reason(
    data: bytes, name: str, says: str
) -> None:
    with pytest.raises(QuestionSetError, match=says):
        parse_question_set(data, name)


def test_answers_are_compared_after_normalisation() -> None:
    assert contains_answer("It was the New England Patriots [1].", ["Patriots"])
    assert contains_answer("He had 4 interceptions.", ["four"])
    assert contains_answer("比分是23–16。", ["23-16"])
    assert contains_answer("位于张江路88号[1]", ["张江路 88 号"])
    assert not contains_answer("The Broncos won.", ["New England Patriots"])
    assert token_f1("the Broncos won", ["Broncos"]) == pytest.approx(2 / 3)
    assert token_f1("南加州", ["加州"]) == pytest.approx(0.8)


def test_retrieval_and_refusal_scores() -> None:
    assert ndcg_at_10(["a", "b"], {"a"}) == 1.0
    assert ndcg_at_10(["b", "a"], {"a"}) == pytest.approx(0.6309, abs=1e-4)
    declined = question_scores(
        status="not_found",
        answer="",
        gold=[],
        answerable=False,
        cited_texts=[],
        ranked_documents=[],
        expected_documents=set(),
    )
    right = question_scores(
        status="complete",
        answer="At 02:30 [1].",
        gold=["02:30"],
        answerable=True,
        cited_texts=["Backups run at 02:30."],
        ranked_documents=["ops.txt", "other"],
        expected_documents={"ops.txt"},
    )
    rows = [
        {"scores": s, "answerable": a, "first_token_ms": t, "total_ms": t,
         "direct_first_token_ms": None}
        for s, a, t in ((declined, False, None), (right, True, 900.0))
    ]  # fmt: skip
    metrics = aggregate(rows)
    assert metrics["declined_when_unanswerable"] == 1.0
    assert metrics["answer_contains"] == 1.0 and metrics["citation_support"] == 1.0
    assert metrics["hit@1"] == 1.0 and metrics["first_token_p50_ms"] == 900.0


def test_a_worse_run_is_flagged_by_the_threshold() -> None:
    changes = compare_metrics(
        {"answer_contains": 0.8, "total_p50_ms": 1000.0},
        {"answer_contains": 0.7, "total_p50_ms": 1500.0},
        max_drop=0.05,
        max_slowdown=0.2,
    )
    worse = {change.name for change in changes if change.worse}
    assert worse == {"answer_contains", "total_p50_ms"}
    assert not any(
        change.worse
        for change in compare_metrics(
            {"answer_contains": 0.8}, {"answer_contains": 0.78}, max_drop=0.05
        )
    )


HANDBOOK = (
    "Backup policy\n\nThe backup job runs every night at 02:30 and keeps "
    "fourteen daily copies on the storage server in rack B."
)


def _write_set(path: Path) -> Path:
    rows = [
        {
            "question": "When does the backup job run?",
            "answers": ["02:30"],
            "documents": ["backup.txt"],
        },
        {"question": "What is the capital of France?", "answerable": False},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


@pytest.mark.llm
def test_evaluate_runs_a_set_stores_it_and_fails_when_worse(
    ingest_world: World, llm_base_url: str, tmp_path: Path
) -> None:
    """alice reads the handbook: the document is found first. charlie reads
    nothing: the same set finds nothing, and --fail-if-worse says so."""
    world = ingest_world
    outcome = upload_bytes(world, world.collection_a, "backup.txt", HANDBOOK.encode())
    documents = wait_final([outcome.document.pk], timeout=240)
    assert documents[outcome.document.pk].status == "ready"
    questions = _write_set(tmp_path / "handbook.jsonl")

    out = io.StringIO()
    call_command(
        "evaluate", str(questions), user="alice", collection=["Collection A"],
        json=True, stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    report: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    good = EvaluationRun.objects.get(pk=report["run"])
    assert good.status == "complete" and good.done == good.total == 2
    assert good.metrics["hit@1"] == 1.0
    assert good.metrics["declined_when_unanswerable"] == 1.0
    assert good.configuration["prompt_version"]
    assert good.results.get(position=0).retrieved_documents[0] == "backup.txt"
    # The conversation the run asked in is gone: nothing lands in alice's list.
    assert not world.alice.conversations.filter(title__startswith="Evaluation").exists()

    with pytest.raises(CommandError, match="worse than run"):
        call_command(
            "evaluate", str(questions), user="charlie", baseline=str(good.pk),
            fail_if_worse=0.05, stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    worse = EvaluationRun.objects.exclude(pk=good.pk).get()
    assert worse.metrics["hit@1"] == 0.0

    listing = io.StringIO()
    call_command("evaluate", list=True, stdout=listing)
    assert f"{good.pk:>5}" in listing.getvalue()


def test_evaluate_says_what_is_wrong_with_its_input(
    world: World, tmp_path: Path
) -> None:
    questions = _write_set(tmp_path / "set.jsonl")
    with pytest.raises(CommandError, match="No active user"):
        call_command("evaluate", str(questions), user="nobody")
    with pytest.raises(CommandError, match="may read no collection"):
        call_command(
            "evaluate", str(questions), user="charlie", collection=["Collection A"]
        )
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("evaluate", str(tmp_path / "missing.jsonl"), user="alice")
    with pytest.raises(CommandError, match="No evaluation run"):
        call_command("evaluate", compare=[998, 999])
