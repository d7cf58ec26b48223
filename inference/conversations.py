"""Writes on a user's conversations: rename, delete, and feedback on an answer."""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts.models import User
from core.inputs import has_nul
from inference.models import Conversation, Feedback, Message
from inference.services import NUL_REFUSED, AskError


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = title.strip()
    if not title:
        raise AskError(_("A conversation needs a title."))
    if has_nul(title):
        raise AskError(str(NUL_REFUSED))
    conversation.title = title[:200]
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def feedback_set(
    *, message: Message, user: User, helpful: bool, comment: str = ""
) -> Feedback:
    if (
        message.role != Message.Role.ASSISTANT
        or message.conversation.user_id != user.pk
    ):
        raise AskError(_("Feedback can only be given on your own answers."))
    if has_nul(comment):
        raise AskError(str(NUL_REFUSED))
    feedback, _created = Feedback.objects.update_or_create(
        message=message,
        user=user,
        defaults={"helpful": helpful, "comment": comment.strip()[:2000]},
    )
    return feedback
