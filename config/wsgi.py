"""WSGI entry point, for servers that speak WSGI; ``make run`` and the
image serve ``config.asgi`` with uvicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
