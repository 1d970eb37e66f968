"""The job kinds: each kind's payload model and its handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from pydantic import BaseModel

from core.errors import UnknownJobKind
from schemas.erp import ErpAnalysisPayload
from schemas.jobs import ChatDraftPayload, EmailReplyPayload, JobKind
from tasks.context import JobContext

Handler = Callable[[JobContext, Any], dict[str, Any]]


@dataclass(frozen=True)
class Kind:
    payload: type[BaseModel]
    module: str

    @property
    def handle(self) -> Handler:
        handler: Handler = import_module(self.module).handle
        return handler

    @property
    def messages(self) -> Callable[[JobContext, Any], list[dict[str, Any]]] | None:
        """The kind's prompt messages, where it builds them before calling its handler (for estimates)."""
        found: Callable[[JobContext, Any], list[dict[str, Any]]] | None = getattr(
            import_module(self.module), "messages", None)
        return found


KINDS: dict[JobKind, Kind] = {
    JobKind.email_reply: Kind(EmailReplyPayload, "tasks.email_reply"),
    JobKind.chat_draft: Kind(ChatDraftPayload, "tasks.chat_draft"),
    JobKind.erp_analysis: Kind(ErpAnalysisPayload, "tasks.erp_analysis.handler"),
}


def kind_of(name: str) -> Kind:
    try:
        return KINDS[JobKind(name)]
    except ValueError:
        raise UnknownJobKind(
            f"Unknown job kind {name!r}; use one of {', '.join(k.value for k in JobKind)}.", kind=name
        ) from None
