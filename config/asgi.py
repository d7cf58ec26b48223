"""ASGI entry point: uvicorn serves ``config.asgi:application``.

``/mcp`` goes to the Model Context Protocol server (``inference.mcp_server``),
which also takes the lifespan events; everything else to Django.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Under ASGI each request runs in a thread of its own, and a persistent
# connection would stay with a thread that is gone: one connection a request.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")

django_application = get_asgi_application()

# Imported once Django is set up: the MCP tools use the ORM.
from inference.mcp_server import PATH as MCP_PATH  # noqa: E402
from inference.mcp_server import mcp_application  # noqa: E402
from inference.relevance import warm_reader  # noqa: E402

mcp = mcp_application()
# The answer reader takes tens of seconds to load: not on the first question.
warm_reader()


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan" or (
        scope["type"] == "http"
        and (scope["path"] == MCP_PATH or scope["path"].startswith(MCP_PATH + "/"))
    ):
        await mcp(scope, receive, send)
    else:
        await django_application(scope, receive, send)
