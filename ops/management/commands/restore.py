from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into an empty installation. "
        "The archive is verified against its manifest before anything changes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path)
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace an installation that already holds data.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = backup_restore(
                archive=options["archive"],
                force=options["force"],
                progress=self.stdout.write,
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        counts = result["manifest"]["counts"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {counts['documents']} documents, {counts['chunks']} chunks, "
                f"{counts['collections']} collections, {counts['grants']} grants."
            )
        )
