#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import secrets
import sys

# Commands that only read the models and sign nothing: a fresh checkout runs
# them without a configured key (every other command still requires one).
KEYLESS_COMMANDS = frozenset({"makemigrations"})


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in KEYLESS_COMMANDS and not (
        os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE")
    ):
        os.environ["SECRET_KEY"] = "throwaway-" + secrets.token_urlsafe(48)
    from config import stack

    # Beside a running `make run`, reach its services; given addresses win.
    stack.apply(os.environ)
    from django.core.management import execute_from_command_line
    from django.db import OperationalError
    from redis import ConnectionError as RedisConnectionError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError:
        if "DATABASE_URL" in os.environ:
            raise  # a database the user named: its own error says more
        sys.exit(stack.NOT_RUNNING.format(what="the database"))
    except RedisConnectionError:
        if "REDIS_URL" in os.environ:
            raise
        sys.exit(stack.NOT_RUNNING.format(what="Redis"))


if __name__ == "__main__":
    main()
