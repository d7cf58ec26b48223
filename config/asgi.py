"""ASGI entry point: uvicorn serves ``config.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Under ASGI each request runs in a thread of its own, and a persistent
# connection would stay with a thread that is gone: one connection a request.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")

application = get_asgi_application()
