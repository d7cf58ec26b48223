from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops.backup import storage_check


class Command(BaseCommand):
    help = (
        "Find stored files without a document row, document rows without a file, "
        "and encrypted files whose key is not configured."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--delete-orphans",
            action="store_true",
            help="Delete files that no document refers to.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = storage_check(delete_orphans=options["delete_orphans"])
        action = "deleted" if options["delete_orphans"] else "found"
        for path in report.orphan_files:
            self.stdout.write(f"file without a document ({action}): {path}")
        for pk, name in report.missing_files:
            self.stdout.write(f"document {pk} has no stored file ({name})")
        for path in report.unknown_keys:
            self.stdout.write(f"encrypted with a key not in ENCRYPTION_KEYS: {path}")
        if (
            report.missing_files
            or report.unknown_keys
            or (report.orphan_files and not options["delete_orphans"])
        ):
            raise CommandError(
                f"{len(report.orphan_files)} orphan files, {len(report.missing_files)} "
                f"documents without files, {len(report.unknown_keys)} files with "
                "unknown keys."
            )
        self.stdout.write(self.style.SUCCESS("Storage and database agree."))
