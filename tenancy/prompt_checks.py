"""Checks of system prompts before anything that depends on them is saved, in the sandbox jobs render in
(tenancy/sandbox): a prompt must compile when it is saved, and an agent instance must give every variable
its prompt uses when it is created, so a fault is a 422 at the request, not a failed job later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import UndefinedError

from core.errors import PromptVariableMissing, TemplateError
from schemas.agents import AgentConfig
from tenancy.sandbox.render import check, render

_UNDEFINED = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)' is undefined$")
MAX_REPORTED = 20


def check_compiles(source: str, prompt_id: str) -> None:
    """TemplateError (422) saying why, when `source` may not be saved: it does not compile in the sandbox,
    or breaks a limit (size, a huge constant)."""
    try:
        check(source)
    except TemplateError as exc:
        raise type(exc)(f"System prompt {prompt_id!r} may not be saved: {exc.message}. Nothing was saved.",
                        **{**exc.context, "template": prompt_id}) from exc


def check_renders(agent: AgentConfig, kind: str, run_variables: Mapping[str, Any] | None = None) -> None:
    """Render the agent's prompt of `kind` as a job would (StrictUndefined). PromptVariableMissing names every
    variable the instance (with the run's variables) does not give; TemplateError any other fault."""
    source = agent.prompt_sources.get(kind)
    if source is None:
        return
    context = agent.prompt_context(kind, run_variables)
    missing: list[str] = []
    while True:
        try:
            render(source, context, owner=agent.tenant_id)
            break
        except TemplateError as exc:
            cause = exc.__cause__
            match = _UNDEFINED.match(str(cause)) if isinstance(cause, UndefinedError) else None
            if match is None or match.group(1) in context or len(missing) >= MAX_REPORTED:
                if missing:
                    break  # report what is missing; a fault that depends on those values shows once they are given
                raise
            missing.append(match.group(1))
            context[match.group(1)] = ""  # stands in for it, to find the next one
    if missing:
        raise PromptVariableMissing(
            f"The {kind} system prompt of template {agent.template_id!r} uses variable(s) "
            f"{', '.join(missing)}, which the instance does not give: add them to its system_prompt_variables "
            "(or to the run's variables). Nothing was written.", variables=missing, template=agent.template_id)
