"""An OpenAI-compatible face: ``/v1/models`` lists the collections a token may
read as "models", ``/v1/chat/completions`` answers from them (streaming or
not), so the official ``openai`` client and tools built on it can use
Archivist as a private knowledge model.

Model names: ``archivist`` (every collection you may read) or
``collection-<id>`` (one collection; several joined by ``+``). The answer's
text ends with its sources, and the response carries them as ``citations``.
Errors use OpenAI's shape: ``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.current import request_token, signed_in_user
from accounts.throttling import ApiRateThrottle, AskRateThrottle
from core.api_errors import openai_error_body
from core.inputs import parse_id
from inference import services
from inference.api import event_stream_response
from inference.events import AnswerEvent
from inference.queue import QueueFull
from kb.models import Action, Collection

ALL_COLLECTIONS = "archivist"
PREFIX = "collection-"


def _error(message: str, kind: str, code: str, http_status: int) -> Response:
    return Response(openai_error_body(message, kind, code), status=http_status)


def _readable(request: Request) -> Any:
    return Collection.objects.for_user(
        signed_in_user(request), Action.VIEW, token=request_token(request)
    )


def _model_collections(request: Request, model: str) -> tuple[int, ...] | None:
    """The collection ids a model name stands for, or None if it names one
    the caller may not read (or that does not exist: the same answer)."""
    if model == ALL_COLLECTIONS:
        return ()
    ids: list[int] = []
    for part in model.split("+"):
        number = parse_id(part.removeprefix(PREFIX))
        if not part.startswith(PREFIX) or number is None:
            return None
        ids.append(number)
    if _readable(request).filter(pk__in=ids).count() != len(set(ids)):
        return None
    return tuple(ids)


class ModelsView(APIView):
    """OpenAI ``GET /v1/models``: the collections this token may read."""

    @extend_schema(
        responses=inline_serializer(
            "OpenAIModelList",
            {"object": serializers.CharField(), "data": serializers.ListField()},
        )
    )
    def get(self, request: Request) -> Response:
        collections = _readable(request).order_by("pk")
        data = [{"id": ALL_COLLECTIONS, "object": "model", "created": 0, "owned_by": "archivist",
                 "description": "Every collection you may read"}]  # fmt: skip
        data += [
            {
                "id": f"{PREFIX}{collection.pk}",
                "object": "model",
                "created": int(collection.created_at.timestamp()),
                "owned_by": "archivist",
                "description": collection.name,
            }
            for collection in collections
        ]
        return Response({"object": "list", "data": data})


class ChatMessage(serializers.Serializer):
    role = serializers.ChoiceField(
        choices=["system", "user", "assistant", "tool", "developer"]
    )
    content = serializers.JSONField()


class ChatInput(serializers.Serializer):
    model = serializers.CharField(max_length=2000)
    messages = serializers.ListField(
        child=ChatMessage(), allow_empty=False, min_length=1, max_length=200
    )
    stream = serializers.BooleanField(default=False)


def _text(content: Any) -> str:
    """OpenAI content: a string, or a list of parts of which text parts count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        )
    return ""


def _sources_text(citations: list[dict[str, Any]]) -> str:
    if not citations:
        return ""
    lines = [
        f"[{c['n']}] {c['title']}"
        + (f", page {c['page']}" if c.get("page") else "")
        + f" — {c['url']}"
        for c in citations
    ]
    return "\n\nSources:\n" + "\n".join(lines)


class ChatCompletionsView(APIView):
    """OpenAI ``POST /v1/chat/completions``: an answer drawn from the chosen
    collections, with citations; ``"stream": true`` sends chunks."""

    read_only_token_allowed = True
    throttle_classes = [ApiRateThrottle, AskRateThrottle]

    @extend_schema(
        request=ChatInput,
        responses=inline_serializer(
            "OpenAIChatCompletion",
            {
                "id": serializers.CharField(),
                "object": serializers.CharField(),
                "choices": serializers.ListField(),
                "citations": serializers.ListField(),
            },
        ),
    )
    def post(self, request: Request) -> Any:
        data = ChatInput(data=request.data)
        if not data.is_valid():
            return _error(
                json.dumps(data.errors), "invalid_request_error", "invalid_body", 400
            )
        values = data.validated_data
        collection_ids = _model_collections(request, values["model"])
        if collection_ids is None:
            return _error(
                _(
                    "The model %(model)r does not exist or you may not read it; "
                    "GET /v1/models lists yours."
                )
                % {"model": values["model"]},
                "invalid_request_error",
                "model_not_found",
                404,
            )
        turns = [(m["role"], _text(m["content"]).strip()) for m in values["messages"]]
        turns = [
            (role, text)
            for role, text in turns
            if text and role in ("user", "assistant")
        ]
        if not turns or turns[-1][0] != "user":
            return _error(
                _("The last message must be a user message with text."),
                "invalid_request_error",
                "no_question",
                400,
            )
        try:
            events = services.ask(
                user=signed_in_user(request),
                question=turns[-1][1],
                token=request_token(request),
                collection_ids=collection_ids,
                history=turns[:-1],
            )
        except services.AskError as exc:
            return _error(str(exc), "invalid_request_error", "invalid_question", 400)
        except QueueFull as exc:
            busy = _error(str(exc), "rate_limit_error", "queue_full", 429)
            busy["Retry-After"] = str(exc.retry_after)
            return busy
        created = int(time.time())
        if values["stream"]:
            return event_stream_response(
                request, _chunks(events, values["model"], created)
            )
        result = services.collect(events)
        if result.get("error"):
            return _error(
                result["error"],
                "server_error",
                "llm_unavailable",
                status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        content = result.get("answer", "") + _sources_text(result.get("citations", []))
        return Response(
            {
                "id": f"chatcmpl-{result.get('message_id')}",
                "object": "chat.completion",
                "created": created,
                "model": values["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "total_tokens": 0,
                },
                "citations": result.get("citations", []),
            }
        )


def _chunks(events: Iterator[AnswerEvent], model: str, created: int) -> Iterator[bytes]:
    completion_id = "chatcmpl-pending"

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()

    try:
        yield chunk({"role": "assistant", "content": ""})
        for event in events:
            if event["event"] == "queue":
                # A comment line: OpenAI clients skip it, and the connection
                # stays visibly alive while the question waits its turn.
                yield f": {event['message']}\n\n".encode()
            elif event["event"] == "token":
                yield chunk({"content": event["text"]})
            elif event["event"] == "done":
                completion_id = f"chatcmpl-{event['message_id']}"
                sources = _sources_text(event.get("citations", []))
                yield chunk(
                    {"content": sources} if sources else {},
                    "stop",
                    citations=event.get("citations", []),
                )
            elif event["event"] == "error":
                yield chunk({"content": f"\n\n{event['message']}"}, "stop")
        yield b"data: [DONE]\n\n"
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
