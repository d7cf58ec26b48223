from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kb.embedding import BUNDLED_MODEL_NAME, embedder_for
from kb.index import active_index
from ops.embedding_choice import choose_model
from ops.reembed import ReembedError, index_is_empty, reembed

AUTO = "auto"


class Command(BaseCommand):
    help = (
        "Build every chunk's vector with another embedding model beside the "
        "current ones (search keeps working), then switch to it atomically. "
        "Stopped runs continue where they stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model",
            required=True,
            help="A sentence-transformers name or local path (or, with "
            "EMBEDDING_BASE_URL, a model the embedding server serves). With "
            "--only-if-empty, 'auto' measures the multilingual model here and "
            "takes it if it is fast enough (EMBEDDING_AUTO_MIN_CHUNKS_PER_SECOND).",
        )
        parser.add_argument(
            "--restart",
            action="store_true",
            help="Discard vectors built by an interrupted run and start again.",
        )
        parser.add_argument(
            "--only-if-empty",
            action="store_true",
            help="Switch only while the index holds no chunk (the launcher "
            "runs this at start-up, so a new install takes EMBEDDING_MODEL at "
            "once); otherwise say how to switch and change nothing.",
        )

    def _switch_empty_index(self, model_name: str) -> bool:
        """Whether to go on with the switch: the index holds no chunk and is
        not already of this model and size (the model is loaded only then)."""
        index = active_index()
        if not index_is_empty():
            if index.model_name != model_name:
                self.stdout.write(
                    self.style.WARNING(
                        f"EMBEDDING_MODEL is {model_name} but the index holds chunks "
                        f"of {index.model_name}. Search keeps using "
                        f"{index.model_name}; run `manage.py reembed --model "
                        f"{model_name}` to switch (search keeps working meanwhile)."
                    )
                )
            return False
        return not (
            index.model_name == model_name
            and index.dimensions == embedder_for(model_name).dimensions
        )

    def _automatic_model(self) -> str | None:
        """The model a new installation takes, or None to change nothing: an
        index with chunks, or one already given another model, stays."""
        if settings.EMBEDDING_MODEL:
            return str(settings.EMBEDDING_MODEL)
        index = active_index()
        if (
            settings.EMBEDDING_BASE_URL
            or not index_is_empty()
            or index.model_name != BUNDLED_MODEL_NAME
        ):
            return None
        self.stdout.write(
            "Measuring the multilingual embedding model on this machine "
            "(a new installation only)…"
        )
        choice = choose_model()
        self.stdout.write(choice.reason)
        return None if choice.model_name == BUNDLED_MODEL_NAME else choice.model_name

    def handle(self, *args: Any, **options: Any) -> None:
        if options["model"] == AUTO:
            if not options["only_if_empty"]:
                raise CommandError(
                    "--model auto chooses a new installation's model: give "
                    "--only-if-empty, or name the model to switch to."
                )
            chosen = self._automatic_model()
            if chosen is None:
                return
            options["model"] = chosen
        if options["only_if_empty"] and not self._switch_empty_index(options["model"]):
            return
        try:
            index = reembed(
                model_name=options["model"],
                restart=options["restart"],
                progress=self.stdout.write,
            )
        except ReembedError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Search now uses {index.model_name} ({index.dimensions} dimensions). "
                "Set EMBEDDING_MODEL to it so new installs and logs agree."
            )
        )
