"""``manage.py evaluate``: score the knowledge base's answers on a question set.

manage.py evaluate questions.jsonl --user alice --collection Handbook
manage.py evaluate questions.jsonl --user alice --baseline 12 --fail-if-worse 0.02
manage.py evaluate --compare 12 15
manage.py evaluate --list
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from accounts.models import User
from inference.evaluation.compare import MetricChange, compare_metrics
from inference.evaluation.drafting import draft_questions
from inference.evaluation.metrics import LATENCY_METRICS
from inference.evaluation.runner import run_create, run_execute
from inference.evaluation.sets import QuestionSetError, parse_question_set
from inference.models import EvaluationRun
from inference.relevance import reader_name
from kb.models import Action, Collection

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Run a question set (JSONL or CSV) through the real ask path as a user, "
        "and report retrieval, answer correctness, citation support, refusals "
        "and latency; compare with an earlier run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("questions", nargs="?", type=Path, help="question set file")
        parser.add_argument("--user", help="ask as this user (permissions apply)")
        parser.add_argument(
            "--collection",
            action="append",
            default=[],
            help="collection id or name to ask on (repeatable; default: all the user may read)",
        )
        parser.add_argument("--name", help="a name for the run")
        parser.add_argument("--limit", type=int, help="only the first N questions")
        parser.add_argument(
            "--overhead-sample",
            type=int,
            default=0,
            help="for the first N questions, also time the LLM server alone on the same prompt",
        )
        parser.add_argument(
            "--use-cache",
            action="store_true",
            help="let answers come from the answer cache",
        )
        parser.add_argument(
            "--baseline",
            help="run id to compare with, or 'previous' for the last complete run of the same set",
        )
        parser.add_argument(
            "--fail-if-worse",
            type=float,
            metavar="DROP",
            help="exit 1 when a quality figure drops by more than DROP (0.02 = two points)",
        )
        parser.add_argument(
            "--fail-if-slower",
            type=float,
            metavar="RATIO",
            help="exit 1 when a latency figure grows by more than RATIO (0.1 = 10 %%)",
        )
        parser.add_argument(
            "--compare",
            nargs=2,
            type=int,
            metavar=("BASELINE", "RUN"),
            help="compare two stored runs",
        )
        parser.add_argument(
            "--show-misses",
            type=int,
            default=0,
            metavar="N",
            help="print up to N questions answered wrongly, declined or failed",
        )
        parser.add_argument("--list", action="store_true", help="list stored runs")
        parser.add_argument(
            "--draft",
            type=Path,
            metavar="OUTPUT",
            help="draft a starter question set (marked synthetic) from the "
            "collections' passages with the LLM, write it to OUTPUT, and stop",
        )
        parser.add_argument(
            "--count", type=int, default=20, help="questions to draft (default 20)"
        )
        parser.add_argument(
            "--json", action="store_true", help="print the figures as JSON"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            self._list()
            return
        if options["compare"]:
            baseline, current = (self._run(pk) for pk in options["compare"])
            self._report_comparison(baseline, current, options)
            return
        if options["draft"] is not None:
            self._draft(options)
            return
        if options["questions"] is None or not options["user"]:
            raise CommandError("Give a question set file and --user (see --help).")
        run = self._create(options)
        self.stderr.write(
            f"Run {run.pk}: {run.total} questions as {options['user']} "
            f"({run.configuration.get('llm_model', '') or 'configured model'})"
        )
        if (name := reader_name()) is not None:
            self.stderr.write(
                f"The answer reader {name} loads before the first question."
            )
        started = time.monotonic()
        run_execute(
            run_id=run.pk,
            progress=self._progress(started),
            use_cache=options["use_cache"],
        )
        self.stderr.write("")
        run.refresh_from_db()
        if run.status == EvaluationRun.Status.FAILED:
            raise CommandError(f"Run {run.pk} failed: {run.error}")
        self._report(run, options)
        if options["show_misses"]:
            self._misses(run, options["show_misses"])
        earlier = self._baseline(run, options["baseline"])
        if earlier is not None:
            self._report_comparison(earlier, run, options)
        elif (
            options["fail_if_worse"] is not None
            or options["fail_if_slower"] is not None
        ):
            raise CommandError(
                "--fail-if-worse needs --baseline (a run id or 'previous')."
            )

    # -- creating -----------------------------------------------------------
    def _draft(self, options: dict[str, Any]) -> None:
        user = self._user(options["user"])
        collection_ids = [self._collection(user, ref) for ref in options["collection"]]

        def show(done: int, total: int) -> None:
            self.stderr.write(f"\r{done}/{total} questions drafted", ending="")

        drafted = draft_questions(
            user=user,
            collection_ids=collection_ids,
            count=options["count"],
            progress=show,
        )
        self.stderr.write("")
        if not drafted:
            raise CommandError(
                "No question could be drafted: the collections hold no passage "
                "long enough, or the LLM did not answer (see the log)."
            )
        path: Path = options["draft"]
        with path.open("w", encoding="utf-8") as handle:
            for item in drafted:
                row = {
                    "question": item.question,
                    "answers": list(item.answers),
                    "documents": list(item.documents),
                    "answerable": True,
                    "synthetic": True,
                }
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.stdout.write(
            f"Wrote {len(drafted)} synthetic questions to {path}; read them "
            "before trusting them."
        )

    def _user(self, username: str | None) -> User:
        if not username:
            raise CommandError("Give --user: the run sees what that user may read.")
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        return user

    def _create(self, options: dict[str, Any]) -> EvaluationRun:
        path: Path = options["questions"]
        try:
            questions = parse_question_set(path.read_bytes(), path.name)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        except QuestionSetError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        if options["limit"]:
            questions = questions[: options["limit"]]
        user = self._user(options["user"])
        collection_ids = [self._collection(user, ref) for ref in options["collection"]]
        return run_create(
            name=options["name"] or path.stem,
            question_set=path.name,
            questions=questions,
            asker=user,
            collection_ids=collection_ids,
            overhead_sample=options["overhead_sample"],
        )

    def _collection(self, user: User, ref: str) -> int:
        readable = Collection.objects.for_user(user, Action.VIEW)
        match = (
            Q(name=ref) | Q(pk=int(ref))
            if ref.isascii() and ref.isdigit()
            else Q(name=ref)
        )
        found = list(readable.filter(match).values_list("pk", flat=True)[:2])
        if not found:
            raise CommandError(f"{user.username} may read no collection {ref!r}.")
        if len(found) > 1:
            raise CommandError(
                f"{user.username} may read several collections named {ref!r}; "
                "give the collection's id instead."
            )
        return int(found[0])

    def _run(self, pk: int) -> EvaluationRun:
        run = EvaluationRun.objects.filter(pk=pk).first()
        if run is None:
            raise CommandError(f"No evaluation run {pk}.")
        if run.status != EvaluationRun.Status.COMPLETE:
            raise CommandError(f"Run {pk} is {run.status}, not complete.")
        return run

    def _baseline(self, run: EvaluationRun, ref: str | None) -> EvaluationRun | None:
        if not ref:
            return None
        if ref == "previous":
            previous = (
                EvaluationRun.objects.filter(
                    question_set=run.question_set,
                    status=EvaluationRun.Status.COMPLETE,
                    pk__lt=run.pk,
                )
                .order_by("-pk")
                .first()
            )
            if previous is None:
                raise CommandError(f"No earlier complete run of {run.question_set}.")
            return previous
        if not ref.isascii() or not ref.isdigit():
            raise CommandError("--baseline takes a run id or 'previous'.")
        return self._run(int(ref))

    # -- reporting ----------------------------------------------------------
    def _progress(self, started: float) -> Any:
        def show(run: EvaluationRun) -> None:
            filled = round(BAR_WIDTH * run.done / run.total) if run.total else BAR_WIDTH
            elapsed = time.monotonic() - started
            left = elapsed / run.done * (run.total - run.done) if run.done else 0
            self.stderr.write(
                f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{run.done}/{run.total} questions, {elapsed:.0f}s, about {left:.0f}s left",
                ending="",
            )
            self.stderr.flush()

        return show

    def _report(self, run: EvaluationRun, options: dict[str, Any]) -> None:
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "run": run.pk,
                        "configuration": run.configuration,
                        "metrics": run.metrics,
                    },
                    ensure_ascii=False,
                )
            )
            return
        self.stdout.write(f"Run {run.pk} ({run.name}): {run.total} questions")
        for key, value in run.configuration.items():
            self.stdout.write(f"  {key:<24} {value}")
        for key, value in run.metrics.items():
            self.stdout.write(f"  {key:<28} {_format(key, value)}")

    def _report_comparison(
        self, baseline: EvaluationRun, current: EvaluationRun, options: dict[str, Any]
    ) -> None:
        changes = compare_metrics(
            baseline.metrics,
            current.metrics,
            max_drop=options["fail_if_worse"],
            max_slowdown=options["fail_if_slower"],
        )
        self.stdout.write(f"Run {current.pk} against run {baseline.pk}:")
        for change in changes:
            if change.baseline is None and change.current is None:
                continue
            self.stdout.write(_change_line(change))
        worse = [change.name for change in changes if change.worse]
        if worse:
            self.stdout.flush()
            raise CommandError(
                f"Run {current.pk} is worse than run {baseline.pk} on: {', '.join(worse)}"
            )

    def _misses(self, run: EvaluationRun, limit: int) -> None:
        shown = 0
        for result in run.results.all():
            scores = result.scores
            missed = (
                scores.get("contains") is False
                if result.answerable
                else not scores.get("declined")
            )
            if not missed:
                continue
            self.stderr.write(
                f"#{result.position} [{result.status}] {result.question}\n"
                f"    expected: {' | '.join(result.expected_answers) or '(decline)'}\n"
                f"    answer:   {result.answer[:300]}"
            )
            shown += 1
            if shown >= limit:
                break

    def _list(self) -> None:
        for run in EvaluationRun.objects.all()[:100]:
            figure = run.metrics.get("answer_contains")
            self.stdout.write(
                f"{run.pk:>5}  {run.created_at:%Y-%m-%d %H:%M}  {run.status:<9} "
                f"{run.done}/{run.total}  contains={_format('answer_contains', figure)}  {run.name}"
            )


def _format(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name.endswith("_ms"):
        return f"{value:.0f} ms"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _change_line(change: MetricChange) -> str:
    delta = change.delta
    mark = "  WORSE" if change.worse else ""
    if delta is None:
        shown = ""
    elif change.name in LATENCY_METRICS:
        shown = f"{delta:+.0f} ms"
    else:
        shown = f"{delta:+.3f}"
    return (
        f"  {change.name:<28} {_format(change.name, change.baseline):>10} -> "
        f"{_format(change.name, change.current):>10}  {shown}{mark}"
    )
