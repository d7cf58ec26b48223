from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.backup import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Write a consistent backup (database dump, stored originals, manifest with "
        "checksums) into BACKUP_DIR or --output-dir. Safe while the stack runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output-dir", type=Path, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = backup_create(
                target_dir=options["output_dir"], progress=self.stdout.write
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if result.missing:
            self.stderr.write(
                f"{len(result.missing)} originals were deleted while the backup ran; "
                "their documents are in the dump without a file."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.path} ({result.size_bytes:,} bytes, {result.documents} "
                f"documents, {result.seconds:.1f} s)"
            )
        )
