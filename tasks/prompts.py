"""System prompts: tenant-owned Jinja2 templates, rendered in a sandbox because they are untrusted data."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.errors import TemplateError

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)


@lru_cache(maxsize=1024)
def _compile(source: str) -> Template:
    return _env.from_string(source)


def render(source: str, variables: dict[str, Any], *, tenant_id: str, name: str) -> str:
    """Render one template; any template fault (syntax, unknown variable, sandbox refusal) is a TemplateError."""
    try:
        return _compile(source).render(**variables).strip()
    except JinjaError as exc:
        raise TemplateError(
            f"System prompt {name!r} failed to render: {exc}. Fix the template in the master database.",
            tenant_id=tenant_id, template=name,
        ) from exc
