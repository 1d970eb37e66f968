"""chat_draft: the next chat reply for a human agent to send, with quick replies for the customer."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from schemas.jobs import ChatDraftPayload
from tasks.context import JobContext


class ChatDraft(BaseModel):
    reply: str = Field(min_length=1)
    quick_replies: list[str] = Field(default_factory=list, max_length=5)


def messages(ctx: JobContext, payload: ChatDraftPayload) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": ctx.render("chat_draft")},
        {"role": "user", "content": payload.message},
    ]


def parse(text: str) -> ChatDraft:
    """Models asked for JSON sometimes answer in prose; prose is still a usable reply."""
    try:
        return ChatDraft.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        return ChatDraft(reply=text.strip() or "…")


def handle(ctx: JobContext, payload: ChatDraftPayload) -> dict[str, Any]:
    answer = ctx.complete(messages(ctx, payload), json_schema=ChatDraft.model_json_schema())
    draft = parse(answer.text)
    return {
        **draft.model_dump(),
        "conversation_id": payload.conversation_id,
        "lead_id": payload.lead_id,
        "model": answer.model,
        "offline": answer.usage.offline,
    }
