"""The evaluation pages under the dashboard: staff start a run as a chosen
user on collections that user may read, and read and compare its figures;
nobody else reaches them."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from inference.evaluation.runner import run_create
from inference.evaluation.sets import SetQuestion
from inference.models import EvaluationRun
from tests.conftest import World

SET = b'{"question": "When do backups run?", "answers": ["02:30"]}\n'


def _form(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "name": "nightly",
        "questions": SimpleUploadedFile("handbook.jsonl", SET),
        "asker": world.bob.pk,
        "collections": [world.collection_a.pk],
        "overhead_sample": 0,
        **extra,
    }


def test_staff_start_a_run_as_a_user_and_see_its_progress(
    world: World, client: Client
) -> None:
    client.force_login(world.admin)
    response = client.post("/operations/dashboard/evaluations/", _form(world))
    run = EvaluationRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/operations/dashboard/evaluations/{run.pk}/"
    assert run.asker == world.bob and run.collection_ids == [world.collection_a.pk]
    assert run.total == 1 and run.status == "queued"
    assert run.results.get().expected_answers == ["02:30"]
    page = client.get(response["Location"]).content.decode()
    assert "When do backups run?" in page and "0 of 1 questions" in page
    listing = client.get("/operations/dashboard/evaluations/").content.decode()
    assert "nightly" in listing


def test_a_run_may_not_reach_what_its_user_cannot_read(
    world: World, client: Client
) -> None:
    client.force_login(world.admin)
    page = client.post(
        "/operations/dashboard/evaluations/",
        _form(world, collections=[world.collection_b.pk]),
    ).content.decode()
    assert "bob may not read: Collection B" in page
    bad = client.post(
        "/operations/dashboard/evaluations/",
        _form(world, questions=SimpleUploadedFile("s.jsonl", b"{not json\n")),
    ).content.decode()
    assert "line 1 is not JSON" in bad
    assert not EvaluationRun.objects.exists()


def test_two_runs_are_compared(world: World, client: Client) -> None:
    runs = []
    for contains in (0.8, 0.6):
        run = run_create(
            name=f"run {contains}",
            question_set="s.jsonl",
            questions=[SetQuestion("q")],
            asker=world.bob,
        )
        EvaluationRun.objects.filter(pk=run.pk).update(
            status="complete", metrics={"answer_contains": contains}
        )
        runs.append(run)
    client.force_login(world.admin)
    page = client.get(
        f"/operations/dashboard/evaluations/{runs[1].pk}/?baseline={runs[0].pk}"
    ).content.decode()
    assert "answer_contains" in page and "-0.2" in page


def test_people_without_staff_rights_never_see_evaluations(
    world: World, client: Client
) -> None:
    run = run_create(
        name="secret", question_set="s.jsonl", questions=[SetQuestion("q")],
        asker=world.alice,
    )  # fmt: skip
    for user in (world.alice, world.bob, world.charlie):
        client.force_login(user)
        for url in (
            "/operations/dashboard/evaluations/",
            f"/operations/dashboard/evaluations/{run.pk}/",
        ):
            response = client.get(url)
            assert response.status_code == 302
            assert "/admin/login/" in response["Location"]
    client.logout()
    assert client.get("/operations/dashboard/evaluations/").status_code == 302
