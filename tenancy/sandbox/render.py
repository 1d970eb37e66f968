"""The way in: check a template, and render one within its limits.

Compiled templates are kept per process in a cache bounded by count (TENANTQ_TEMPLATE_CACHE_SIZE), least
recently used evicted first; only templates that passed the checks are kept, and none holds a folded
constant, so a cached template weighs about what its source does. A source that failed the checks is
remembered too, as its error alone, so that a job after job with a refused template does not compile it
again (compiling 64 KiB takes about half a second).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Generator
from typing import Any

from jinja2 import Template
from jinja2 import TemplateError as JinjaError

from core.errors import TemplateError
from core.settings import get_settings
from tenancy.sandbox.check import compile_checked
from tenancy.sandbox.environment import BudgetedEnvironment
from tenancy.sandbox.limits import Budget, Limits, finished, running

_lock = threading.Lock()
_env: BudgetedEnvironment | None = None
_compiled: OrderedDict[str, Template] = OrderedDict()
_refused: OrderedDict[str, tuple[type[TemplateError], str, dict[str, Any]]] = OrderedDict()

TEMPLATE_FAULTS = (JinjaError, ArithmeticError, LookupError, TypeError, ValueError, AttributeError, RuntimeError)
"""What a template's own expressions can raise (RuntimeError includes RecursionError): the template's fault."""


def check(source: str, limits: Limits | None = None) -> None:
    """Raise TemplateError (TemplateLimitExceeded for a limit) when the source may not be saved."""
    compiled(source, limits or Limits.of())


def render(source: str, variables: dict[str, Any], limits: Limits | None = None, *, owner: str | None = None,
           patient: bool = True) -> str:
    """The rendered text, or TemplateError saying what went wrong (TemplateLimitExceeded naming the limit).
    With an `owner` (the tenant), its CPU time counts against the owner's share of the process (cpu_share);
    a `patient` render waits for its share, another stops with TemplateTimeout."""
    limits = limits or Limits.of()
    template = compiled(source, limits)
    budget = Budget(limits, owner, patient=patient)
    token = running(budget)
    try:
        chunks = template.root_render_func(template.new_context(variables))
        try:
            written = []
            for chunk in chunks:
                budget.charge(len(chunk))
                written.append(chunk)
            return "".join(written)
        finally:
            if isinstance(chunks, Generator):
                chunks.close()
    except TemplateError:
        raise
    except RecursionError as exc:
        raise TemplateError("it recursed too deeply (a value nested in itself, or a recursive loop)") from exc
    except TEMPLATE_FAULTS as exc:
        raise TemplateError(str(exc).rstrip(".") or type(exc).__name__) from exc
    finally:
        finished(token)
        budget.settle()


def compiled(source: str, limits: Limits) -> Template:
    with _lock:
        template = _compiled.get(source)
        if template is not None:
            _compiled.move_to_end(source)
            return template
        refusal = _refused.get(source)
    if refusal is not None:
        kind, message, context = refusal
        raise kind(message, **context)
    try:
        template = compile_checked(environment(), source, limits)
    except TemplateError as exc:
        _keep(_refused, source, (type(exc), exc.message, exc.context))
        raise
    _keep(_compiled, source, template)
    return template


def _keep(cache: OrderedDict[str, Any], source: str, entry: Any) -> None:
    size = get_settings().template.cache_size
    with _lock:
        cache[source] = entry
        while len(cache) > size:
            cache.popitem(last=False)


def environment() -> BudgetedEnvironment:
    global _env
    with _lock:
        if _env is None:
            _env = BudgetedEnvironment()
        return _env


def cache_info() -> tuple[int, int]:
    """Compiled templates and refused sources kept in this process."""
    with _lock:
        return len(_compiled), len(_refused)


def clear_cache() -> None:
    with _lock:
        _compiled.clear()
        _refused.clear()
