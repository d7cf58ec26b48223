"""Create the first administrator if there is none.

Credentials come from ``ADMIN_USERNAME`` / ``ADMIN_PASSWORD`` (or
``ADMIN_PASSWORD_FILE``); without a password one is generated and printed
once, here, and never stored in plain text anywhere.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from core.env import env_optional_str, env_str


class Command(BaseCommand):
    help = "Create the first superuser from ADMIN_USERNAME/ADMIN_PASSWORD, or a generated password."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("  admin      exists (unchanged)")
            return
        username = env_str("ADMIN_USERNAME", "admin")
        email = env_str("ADMIN_EMAIL", "admin@localhost")
        password = env_optional_str("ADMIN_PASSWORD")
        generated = password is None
        if password is None:
            password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(
            username=username, email=email, password=password
        )
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    "\n  First administrator created. Write this down; it is shown once:\n"
                    f"    username: {username}\n    password: {password}\n"
                    "  (change it later with `manage.py changepassword "
                    f"{username}`)\n"
                )
            )
        else:
            self.stdout.write(
                f"  admin      created as {username!r} (password from ADMIN_PASSWORD)"
            )
