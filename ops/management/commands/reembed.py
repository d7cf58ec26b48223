from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.reembed import ReembedError, reembed


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
            "EMBEDDING_BASE_URL, a model the embedding server serves).",
        )
        parser.add_argument(
            "--restart",
            action="store_true",
            help="Discard vectors built by an interrupted run and start again.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
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
