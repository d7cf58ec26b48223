"""The ask, conversation, feedback and answer-cache endpoints of /api/v1/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.current import request_token, signed_in_user
from accounts.throttling import ApiRateThrottle, AskRateThrottle
from core.streaming import stream_for
from inference import conversations, services
from inference.cache import AnswerCache, hit_rate
from inference.events import AnswerEvent
from inference.models import Conversation, DocumentSummary, Message
from inference.queue import QueueFull
from inference.selectors import answer_for_user, conversations_for_user
from inference.summaries import summary_request
from kb.models import Action
from kb.selectors import document_for_action


class AskInput(serializers.Serializer):
    question = serializers.CharField(max_length=services.QUESTION_MAX_CHARS)
    conversation = serializers.IntegerField(required=False, allow_null=True)
    collections = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=100
    )
    stream = serializers.BooleanField(default=False)


class CitationOutput(serializers.Serializer):
    n = serializers.IntegerField()
    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    collection_id = serializers.IntegerField()
    title = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    url = serializers.CharField()
    supported = serializers.BooleanField(
        default=True,
        help_text="Whether the passage holds the words of the sentences citing it.",
    )


class PassageOutput(serializers.Serializer):
    number = serializers.IntegerField()
    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    collection_id = serializers.IntegerField()
    title = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    section = serializers.CharField()
    text = serializers.CharField()
    url = serializers.CharField()


class AskOutput(serializers.Serializer):
    conversation_id = serializers.IntegerField()
    message_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Message.Status.choices)
    standalone_question = serializers.CharField()
    answer = serializers.CharField(allow_blank=True)
    answer_html = serializers.CharField(
        allow_blank=True, help_text="The answer's Markdown as sanitised HTML."
    )
    citations = CitationOutput(many=True)
    passages = PassageOutput(many=True)
    from_cache = serializers.CharField()
    error = serializers.CharField(allow_null=True)
    timings_ms = serializers.DictField(child=serializers.FloatField())


def sse(events: Iterator[AnswerEvent]) -> Iterator[bytes]:
    try:
        for event in events:
            name = event.get("event", "message")
            data = json.dumps(
                {k: v for k, v in event.items() if k != "event"}, ensure_ascii=False
            )
            yield f"event: {name}\ndata: {data}\n\n".encode()
    finally:
        # A client that went away closes this stream: the answer is closed
        # with it, at once, so it is recorded as cancelled and frees its turn.
        close = getattr(events, "close", None)
        if close is not None:
            close()


def event_stream_response(
    request: Any, chunks: Iterator[bytes]
) -> StreamingHttpResponse:
    """A server-sent-events response for already encoded ``chunks``."""
    response = StreamingHttpResponse(
        stream_for(request, chunks), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not hold the stream back
    return response


class AskAPIView(APIView):
    """Ask a question; the answer cites the passages it used. With
    ``"stream": true`` (or ``Accept: text/event-stream``) the answer comes as
    server-sent events: ``meta``, ``token``…, then ``done`` or ``error``."""

    read_only_token_allowed = True
    throttle_classes = [ApiRateThrottle, AskRateThrottle]

    @extend_schema(request=AskInput, responses={200: AskOutput})
    def post(self, request: Request) -> Any:
        data = AskInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        conversation = None
        if values.get("conversation"):
            conversation = (
                conversations_for_user(request.user, request_token(request))
                .filter(pk=values["conversation"])
                .first()
            )
            if conversation is None:
                raise ValidationError({"conversation": [_("No such conversation.")]})
        try:
            events = services.ask(
                user=signed_in_user(request),
                question=values["question"],
                conversation=conversation,
                token=request_token(request),
                collection_ids=tuple(values.get("collections") or ()),
            )
        except services.AskError as exc:
            raise ValidationError({"question": [str(exc)]}) from exc
        except QueueFull as exc:
            raise Throttled(wait=exc.retry_after, detail=str(exc)) from exc
        wants_stream = values["stream"] or "text/event-stream" in request.headers.get(
            "Accept", ""
        )
        if wants_stream:
            return event_stream_response(request, sse(events))
        return Response(services.collect(events))


class MessageOutput(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id", "role", "content", "standalone_question", "status", "error",
            "citations", "from_cache", "created_at",
        ]  # fmt: skip


class ConversationOutput(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "title", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ConversationDetailOutput(ConversationOutput):
    messages = MessageOutput(many=True, read_only=True)

    class Meta(ConversationOutput.Meta):
        fields = [*ConversationOutput.Meta.fields, "messages"]


class ConversationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your conversations (nobody else's): list, read, rename, delete."""

    def get_queryset(self) -> Any:
        return conversations_for_user(self.request.user, request_token(self.request))

    def get_serializer_class(self) -> Any:
        return (
            ConversationDetailOutput
            if self.action == "retrieve"
            else ConversationOutput
        )

    def perform_update(self, serializer: Any) -> None:
        try:
            conversations.conversation_rename(
                conversation=serializer.instance,
                title=serializer.validated_data.get("title", ""),
            )
        except services.AskError as exc:
            raise ValidationError({"title": [str(exc)]}) from exc

    def perform_destroy(self, instance: Conversation) -> None:
        conversations.conversation_delete(conversation=instance)


class FeedbackInput(serializers.Serializer):
    helpful = serializers.BooleanField()
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class FeedbackAPIView(APIView):
    """Thumbs up or down, with an optional comment, on one of your answers.
    A read-only token may not: feedback is stored and read by the admins."""

    @extend_schema(
        request=FeedbackInput,
        responses={
            200: inline_serializer(
                "FeedbackOutput",
                {
                    "helpful": serializers.BooleanField(),
                    "comment": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        message = answer_for_user(request.user, pk, request_token(request))
        data = FeedbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            feedback = conversations.feedback_set(
                message=message,
                user=signed_in_user(request),
                helpful=data.validated_data["helpful"],
                comment=data.validated_data.get("comment", ""),
            )
        except services.AskError as exc:
            raise ValidationError({"comment": [str(exc)]}) from exc
        return Response({"helpful": feedback.helpful, "comment": feedback.comment})


class AnswerCacheAPIView(APIView):
    """Answer-cache hit rate (GET) and purge (DELETE); staff only."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        responses=inline_serializer(
            "AnswerCacheStats",
            {
                "exact": serializers.IntegerField(),
                "semantic": serializers.IntegerField(),
                "miss": serializers.IntegerField(),
                "hit_rate": serializers.FloatField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        stats = AnswerCache().stats()
        return Response({**stats, "hit_rate": round(hit_rate(stats), 4)})

    @extend_schema(responses={204: None})
    def delete(self, request: Request) -> Response:
        AnswerCache().purge()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SummaryOutput(serializers.ModelSerializer):
    class Meta:
        model = DocumentSummary
        fields = [
            "status",
            "progress",
            "text",
            "error",
            "model",
            "document_version",
            "updated_at",
        ]


class DocumentSummaryAPIView(APIView):
    """A document's summary: GET reads it, POST (re)writes it in the background
    (not with a read-only token: a rewrite replaces the stored summary)."""

    @extend_schema(responses=SummaryOutput)
    def get(self, request: Request, pk: int) -> Response:
        document = document_for_action(
            request.user, pk, Action.VIEW, token=request_token(request)
        )
        summary = DocumentSummary.objects.filter(document=document).first()
        if summary is None:
            raise NotFound(_("This document has no summary yet; POST to write one."))
        return Response(SummaryOutput(summary).data)

    @extend_schema(request=None, responses={202: SummaryOutput})
    def post(self, request: Request, pk: int) -> Response:
        document = document_for_action(
            request.user, pk, Action.VIEW, token=request_token(request)
        )
        summary = summary_request(document=document)
        return Response(SummaryOutput(summary).data, status=status.HTTP_202_ACCEPTED)
