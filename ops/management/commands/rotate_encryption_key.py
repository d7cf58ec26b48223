from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kb.crypto import DecryptionError, keyring
from ops.encryption import reencrypt_originals


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored original under the first key of ENCRYPTION_KEYS "
        "(also encrypts originals stored before encryption was turned on). Runs "
        "beside the live stack: each file is replaced atomically, and every "
        "listed key still decrypts. Put the new key first everywhere, restart, "
        "run this, then remove the old key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--decrypt",
            action="store_true",
            help="Write every original back as plaintext (before turning encryption off).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ring = keyring()
        if not ring.keys:
            raise CommandError("ENCRYPTION_KEYS is empty: there is no key to use.")
        try:
            counts = reencrypt_originals(
                decrypt=options["decrypt"], progress=self.stdout.write
            )
        except DecryptionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{counts['rewritten']} originals rewritten, {counts['unchanged']} "
                f"already {'plaintext' if options['decrypt'] else 'under key ' + ring.active_id}."
            )
        )
