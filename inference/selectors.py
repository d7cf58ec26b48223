"""Reads: a user's conversations and answers; anyone else's are a 404."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import ApiToken, Person
from inference.models import Conversation, Message


def conversations_for_user(
    user: Person, token: ApiToken | None = None
) -> QuerySet[Conversation]:
    """The user's conversations; through a collection-scoped token, only
    those that token started."""
    if not user.is_authenticated:
        return Conversation.objects.none()
    conversations = Conversation.objects.filter(user=user)
    if token is not None and token.collection_scoped:
        conversations = conversations.filter(api_token=token)
    return conversations


def conversation_for_user(
    user: Person, pk: int, token: ApiToken | None = None
) -> Conversation:
    return get_object_or_404(conversations_for_user(user, token), pk=pk)


def answer_for_user(user: Person, pk: int, token: ApiToken | None = None) -> Message:
    return get_object_or_404(
        Message.objects.select_related("conversation"),
        pk=pk,
        role=Message.Role.ASSISTANT,
        conversation__in=conversations_for_user(user, token),
    )
