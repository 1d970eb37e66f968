"""email_reply: a reply to an inbound lead e-mail, in the tenant agent's voice."""

from __future__ import annotations

from typing import Any

from schemas.jobs import EmailReplyPayload
from tasks.context import JobContext


def messages(ctx: JobContext, payload: EmailReplyPayload) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": ctx.render("email_reply")},
        {"role": "user", "content": f"Subject: {payload.subject}\n\n{payload.body}"},
    ]


def handle(ctx: JobContext, payload: EmailReplyPayload) -> dict[str, Any]:
    answer = ctx.complete(messages(ctx, payload))
    subject = payload.subject if payload.subject.lower().startswith("re:") else f"Re: {payload.subject}"
    return {
        "subject": subject.strip(),
        "body": answer.text.strip(),
        "in_reply_to": payload.message_id,
        "lead_id": payload.lead_id,
        "model": answer.model,
        "offline": answer.usage.offline,
    }
