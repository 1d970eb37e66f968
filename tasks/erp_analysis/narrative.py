"""The model's part: a narrative (summary, root causes, recommended actions) around fixed findings.

The model sees the findings digest and answers JSON against the `Narrative` schema; the answer is
validated before it enters the report. The metadata carries the findings themselves, so the offline
stand-in can write the narrative without a model.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from core.errors import ModelOutputInvalid
from schemas.erp import CategoryResult, Finding, Narrative, ResearchResult
from tasks.erp_analysis.context import JobContext

MAX_METADATA_FINDINGS = 1_000
MAX_TOKENS = 1_500
"""A narrative of a dozen causes and actions; the agent's default (sized for chat replies) cuts it off."""
TOP_PER_CATEGORY = 5
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def finding_digest(f: Finding) -> dict[str, Any]:
    return {"category": f.category.value, "detector": f.detector, "severity": f.severity.value,
            "amount": f.amount, "currency": f.currency, "summary": f.summary}


def _user_message(prompt: str, results: list[CategoryResult], research: ResearchResult, currency: str,
                  system: dict[str, Any] | None = None) -> str:
    lines = [f"Analyst's request: {prompt}", "", "Findings by category:"]
    if system:
        lines[1:1] = ["ERP system: " + "; ".join(f"{k}: {v}" for k, v in system.items())]
    for r in results:
        lines.append(f"## {r.category.value}: {r.count} findings, {r.amount:,.2f} {currency} at stake")
        lines.extend(f"- [{f.severity.value}] {f.detector}: {f.summary} ({f.amount:,.2f} {currency})"
                     for f in r.findings[:TOP_PER_CATEGORY])
        if r.count > TOP_PER_CATEGORY:
            lines.append(f"- ... and {r.count - TOP_PER_CATEGORY} more")
    if research.status == "done" and research.text:
        lines += ["", "External research (for context, may be wrong):", research.text]
    lines += ["", 'Answer with a JSON object with "summary", "root_causes" and "recommended_actions".']
    return "\n".join(lines)


def write_narrative(ctx: JobContext, prompt: str, results: list[CategoryResult], research: ResearchResult,
                    currency: str, system: dict[str, Any] | None = None) -> Narrative:
    findings = sorted((f for r in results for f in r.findings), key=lambda f: -f.amount)
    messages = [
        {"role": "system", "content": ctx.render("erp_analysis")},
        {"role": "user", "content": _user_message(prompt, results, research, currency, system)},
    ]
    metadata = {"kind": "erp_analysis",
                "findings": [finding_digest(f) for f in findings[:MAX_METADATA_FINDINGS]]}
    answer = ctx.complete(messages, json_schema=Narrative.model_json_schema(), metadata=metadata,
                          max_tokens=max(MAX_TOKENS, ctx.agent.max_tokens))
    return parse_narrative(answer.text)


def parse_narrative(text: str) -> Narrative:
    """The model's JSON, tolerating a Markdown code fence around it, or ModelOutputInvalid."""
    match = _FENCE.match(text)
    try:
        return Narrative.model_validate_json(match.group(1) if match else text)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "the top level"
        raise ModelOutputInvalid(
            f"The model's narrative is not the JSON the report needs ({problem['msg']} at {where}). The "
            "findings are unaffected; run the job again or choose a model that supports JSON output.",
        ) from exc
