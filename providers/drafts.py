"""What the offline stand-in writes: plausible drafts in the agent's voice, built only from the job itself.

A laptop without a provider key, the demo and the test suite still need answers that look like the real
thing: an email that greets the lead and answers the subject, a chat reply with quick replies, an ERP report
written from the detectors' findings. Everything here is a pure function of its input (no randomness, no
clock), so the same job always gets the same draft and tests can compare outputs.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from providers.schema_fill import fit_to_schema

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}

_PHRASES: dict[str, dict[str, str]] = {
    "english": {
        "hi": "Hi {name},", "hi_anon": "Hello,", "dear": "Dear {name},", "dear_anon": "Good day,",
        "thanks_subject": 'Thank you for your message about "{subject}".',
        "thanks": "Thank you for your message.",
        "question": 'You asked: "{question}" I am looking into it and will come back to you with '
        "the details.",
        "answer": "I have noted your request and will take care of it.",
        "detail": "If you can share a little more context, such as timelines or the people involved, "
        "I can prepare a precise answer for you.",
        "sign": "Best regards,", "sign_warm": "Warm regards,",
        "chat": "Thanks for reaching out! {answer}",
        "chat_answer": 'Happy to help with "{topic}".',
        "more": "Tell me more", "call": "Book a call", "done": "That's all, thanks",
        "pricing": "See pricing", "demo": "Book a demo", "support": "Talk to support",
    },
    "german": {
        "hi": "Hallo {name},", "hi_anon": "Hallo,", "dear": "Guten Tag {name},", "dear_anon": "Guten Tag,",
        "thanks_subject": 'vielen Dank für Ihre Nachricht zu "{subject}".',
        "thanks": "vielen Dank für Ihre Nachricht.",
        "question": 'Sie fragten: "{question}" Ich kläre das und melde mich mit den Details bei Ihnen.',
        "answer": "Ich habe Ihr Anliegen aufgenommen und kümmere mich darum.",
        "detail": "Wenn Sie mir etwas mehr Kontext geben, etwa Zeitplan oder Beteiligte, kann ich Ihnen "
        "eine genaue Antwort vorbereiten.",
        "sign": "Mit freundlichen Grüßen", "sign_warm": "Herzliche Grüße",
        "chat": "Danke für Ihre Nachricht! {answer}",
        "chat_answer": 'Gern helfe ich Ihnen bei "{topic}".',
        "more": "Mehr erfahren", "call": "Termin vereinbaren", "done": "Das war alles, danke",
        "pricing": "Preise ansehen", "demo": "Demo buchen", "support": "Support kontaktieren",
    },
}
_LANGUAGE_ALIASES = {"de": "german", "deutsch": "german", "en": "english"}
_GENERIC_MAILBOXES = {
    "info", "sales", "contact", "noreply", "no-reply", "admin", "office", "support", "hello", "team",
}
_QUICK_REPLY_KEYWORDS = (
    (("price", "pricing", "cost", "quote", "preis", "kosten", "angebot"), "pricing"),
    (("demo", "trial", "test"), "demo"),
    (("error", "problem", "bug", "broken", "fehler", "issue"), "support"),
)
_ACTIONS = {
    "financial": "Reconcile the affected ledger entries and post correcting journal entries before closing.",
    "procurement": "Review the flagged purchase orders with the buyers and enforce the approval limits.",
    "inventory": "Run a cycle count on the affected items and correct the stock records.",
    "order_fulfilment": "Expedite the late orders and tell the affected customers their new delivery dates.",
    "production": "Review the production orders with planning and fix the routing or material shortages.",
    "invoice_matching": "Hold the mismatched invoices from payment and clear the three-way match with "
    "the suppliers.",
}


def write(kind: str, metadata: dict[str, Any], messages: list[dict[str, Any]],
          json_schema: dict[str, Any] | None) -> str:
    """The draft for one request; valid JSON (fitted to `json_schema` when given) for structured kinds."""
    nested = metadata.get("tenantq")
    context: dict[str, Any] = {**metadata, **nested} if isinstance(nested, dict) else metadata
    agent: dict[str, Any] = context.get("agent") or {}
    payload: dict[str, Any] = context.get("payload") or {}
    last_user = _last_user_text(messages)
    document: dict[str, Any] | None = None
    if kind == "chat_draft":
        document = chat_draft(agent, str(payload.get("message") or last_user))
    elif kind == "erp_analysis":
        document = erp_report([_as_dict(f) for f in context.get("findings") or []])
    elif kind == "email_reply" or payload:
        text = email_reply(agent, payload, last_user)
        if json_schema is None:
            return text
        document = {"subject": _reply_subject(str(payload.get("subject") or "")), "body": text}
    else:
        text = str(chat_draft(agent, last_user)["reply"])
        if json_schema is None:
            return text
        document = {"reply": text}
    if json_schema is not None:
        document = fit_to_schema(json_schema, document, _plain_text(document))
    return json.dumps(document, ensure_ascii=False, sort_keys=False)


def email_reply(agent: dict[str, Any], payload: dict[str, Any], fallback_body: str) -> str:
    phrases = _phrases(agent)
    name = _first_name(str(payload.get("from") or ""))
    formal = "formal" in str(agent.get("tonality") or "").lower()
    if name:
        greeting = phrases["dear" if formal else "hi"].format(name=name)
    else:
        greeting = phrases["dear_anon" if formal else "hi_anon"]
    subject = _clip(str(payload.get("subject") or ""), 120)
    thanks = phrases["thanks_subject"].format(subject=subject) if subject else phrases["thanks"]
    question = _first_question(str(payload.get("body") or fallback_body))
    answer = phrases["question"].format(question=question) if question else phrases["answer"]
    paragraphs = [greeting, f"{thanks} {answer}"]
    if "detail" in str(agent.get("response_style") or "").lower():
        paragraphs.append(phrases["detail"])
    warm = any(word in str(agent.get("tonality") or "").lower() for word in ("warm", "friendly"))
    sign = phrases["sign_warm" if warm else "sign"]
    paragraphs.append(f"{sign}\n{agent.get('name') or 'Assistant'}")
    return "\n\n".join(paragraphs)


def chat_draft(agent: dict[str, Any], message: str) -> dict[str, Any]:
    phrases = _phrases(agent)
    topic = _clip(_first_question(message) or message, 100) or "..."
    reply = phrases["chat"].format(answer=phrases["chat_answer"].format(topic=topic))
    lowered = message.lower()
    quick = [phrases[key] for words, key in _QUICK_REPLY_KEYWORDS if any(w in lowered for w in words)]
    for key in ("more", "call", "done"):
        if len(quick) >= 3:
            break
        quick.append(phrases[key])
    return {"reply": reply, "quick_replies": quick[:3]}


def erp_report(findings: list[dict[str, Any]]) -> dict[str, Any]:
    if not findings:
        return {"summary": "No exceptions were found in the analysed categories.", "root_causes": [],
                "recommended_actions": ["No action needed; keep the detectors running on schedule."]}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in findings:
        groups[str(finding.get("category") or "uncategorised")].append(finding)
    ordered = sorted(groups.items(), key=lambda item: (_worst(item[1]), -len(item[1]), item[0]))
    worst = min((_rank(f) for f in findings), default=len(SEVERITY_RANK))
    worst_name = next((k for k, v in SEVERITY_RANK.items() if v == worst), "unknown")
    summary = (f"{len(findings)} exception(s) in {len(groups)} categor{'y' if len(groups) == 1 else 'ies'}"
               f" totalling {_amounts(findings)}; the worst severity is {worst_name}. "
               f"Most urgent: {ordered[0][0]} ({len(ordered[0][1])} finding(s)).")
    causes, actions = [], []
    for category, items in ordered:
        top = sorted(items, key=lambda f: (_rank(f), -_amount(f)))[0]
        detectors = sorted({str(f.get("detector") or "unknown") for f in items})
        causes.append(f"{category}: {len(items)} finding(s), {_amounts(items)}, found by "
                      f"{', '.join(detectors)}; worst: {_clip(str(top.get('summary') or ''), 200)}")
        actions.append(_ACTIONS.get(category, f"Review the {category} findings with their owner."))
    return {"summary": summary, "root_causes": causes, "recommended_actions": actions}


def _as_dict(finding: Any) -> dict[str, Any]:
    if hasattr(finding, "model_dump"):
        dumped: dict[str, Any] = finding.model_dump(mode="json")
        return dumped
    return dict(finding) if isinstance(finding, dict) else {"summary": str(finding)}


def _phrases(agent: dict[str, Any]) -> dict[str, str]:
    language = str(agent.get("language") or "english").strip().lower()
    return _PHRASES.get(_LANGUAGE_ALIASES.get(language, language), _PHRASES["english"])


def _first_name(address: str) -> str:
    local = address.split("@", 1)[0].lower()
    if not local or local in _GENERIC_MAILBOXES:
        return ""
    first = re.split(r"[._+\-0-9]", local)[0]
    return first.capitalize() if first.isalpha() and len(first) > 1 else ""


def _first_question(text: str) -> str:
    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
        if sentence.endswith("?"):
            return _clip(sentence, 160)
    return ""


def _reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _plain_text(document: Any) -> str:
    if isinstance(document, dict):
        return next((v for v in document.values() if isinstance(v, str)), "")
    return str(document)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _rank(finding: dict[str, Any]) -> int:
    return SEVERITY_RANK.get(str(finding.get("severity") or "").lower(), len(SEVERITY_RANK))


def _worst(findings: list[dict[str, Any]]) -> int:
    return min(_rank(f) for f in findings)


def _amount(finding: dict[str, Any]) -> float:
    try:
        return float(finding.get("amount") or 0)
    except (TypeError, ValueError):
        return 0.0


def _amounts(findings: list[dict[str, Any]]) -> str:
    totals: dict[str, float] = defaultdict(float)
    for finding in findings:
        totals[str(finding.get("currency") or "EUR")] += _amount(finding)
    return " and ".join(f"{total:,.2f} {currency}" for currency, total in sorted(totals.items()))
