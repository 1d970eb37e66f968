"""Jinja2's filters, tests and globals, each bounded: what it reads is charged to the render, what it would
build is sized first where an argument can make it large, and what it built is measured.

Filters run only inside a budgeted render, so Jinja2 cannot fold one into a constant while it compiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from jinja2.filters import make_attrgetter
from jinja2.utils import _PassArg, generate_lorem_ipsum

from tenancy.sandbox.limits import Budget, active
from tenancy.sandbox.sizes import SIZED, joined_size, printf_size, replaced_size, text_size

Args = tuple[Any, ...]
Precheck = Callable[[Budget, Any, Args, dict[str, Any], Any], tuple[Any, Args, dict[str, Any]]]

CHEAP = frozenset({"length", "count", "first", "last", "default", "d", "safe", "abs", "int", "float", "round",
                   "attr", "random", "filesizeformat", "string", "e", "escape", "forceescape", "list"})
"""Filters whose work does not grow with a long input (or that are measured by what they build)."""
STRINGIFY = frozenset({"capitalize", "center", "escape", "e", "forceescape", "format", "indent", "lower",
                       "replace", "safe", "string", "striptags", "title", "trim", "truncate", "upper",
                       "urlencode", "urlize", "wordcount", "wordwrap"})
"""Filters that write their input out as text first: a list is sized as text before that."""
COMPARING_TESTS = frozenset({"in", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt",
                             "greaterthan", ">", "ge", ">="})


def built(budget: Budget, result: Any, what: str = "the result") -> Any:
    """Measure what an operation built: its length is charged and bounded, a number's digits are bounded."""
    if isinstance(result, SIZED):
        budget.length(len(result), what)
        budget.charge(len(result))
    elif isinstance(result, int) and not isinstance(result, bool):
        budget.number(result, what)
    return result


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    offset = 0 if _PassArg.from_obj(func) is None else 1
    precheck = PRECHECKS.get(name)

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        budget = active()
        if len(args) <= offset:
            return func(*args, **kwargs)
        value = args[offset]
        if name in STRINGIFY and not isinstance(value, str):
            budget.length(text_size(value, budget.limits.max_length), f"the input of |{name}")
        if name not in CHEAP:
            budget.charge(text_size(value, budget.limits.max_render_chars))
        if precheck is not None:
            value, rest, kwargs = precheck(budget, value, args[offset + 1:], kwargs, args[:offset])
            args = (*args[:offset], value, *rest)
        return built(budget, func(*args, **kwargs), f"the result of |{name}")

    return run


def bounded_test(name: str, func: Any) -> Any:
    """Comparisons walk both operands: a list holding one long string many times is charged in full."""
    if name not in COMPARING_TESTS:
        return func

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        budget = active()
        for arg in args:
            budget.charge(text_size(arg, budget.limits.max_render_chars))
        return func(*args, **kwargs)

    return run


def _arg(args: Args, kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str) else value if isinstance(value, int) else 0


def _center(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
    budget.length(max(len(str(value)), _width(_arg(args, kwargs, 0, "width", 80))), "|center")
    return value, args, kwargs


def _indent(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
    text = str(value)
    budget.length(len(text) + (text.count("\n") + 1) * _width(_arg(args, kwargs, 0, "width", 4)), "|indent")
    return value, args, kwargs


def _wordwrap(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    if isinstance(wrap, str) and len(wrap) > 1:  # with a newline it at most doubles: measured once built
        budget.length(len(str(value)) * (1 + len(wrap)), "|wordwrap")
    return value, args, kwargs


def _replace(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
    if len(args) >= 2 or {"old", "new"} <= kwargs.keys():
        old, new = _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", "")
        count = _arg(args, kwargs, 2, "count", None)
        budget.length(replaced_size(value, old, new, -1 if count is None else count), "|replace")
    return value, args, kwargs


def _attribute(passed: Args, items: list[Any], attribute: Any) -> list[Any]:
    if attribute is None:
        return items
    environment = passed[0] if not hasattr(passed[0], "environment") else passed[0].environment
    return list(map(make_attrgetter(environment, attribute), items))


def _join(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], passed: Any) -> Any:
    separator = _arg(args, kwargs, 0, "d", "")
    items = _attribute(passed, list(value), _arg(args, kwargs, 1, "attribute", None))
    budget.length(joined_size(items, separator, budget.limits.max_length), "|join")
    return items, (separator,), {}


def _format(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
    budget.length(printf_size(str(value), kwargs or tuple(args), budget.limits.max_length), "|format")
    return value, args, kwargs


def _count_arg(index: int, name: str) -> Precheck:
    def check(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
        count = _arg(args, kwargs, index, name, 1)
        if isinstance(count, int):
            budget.length(count, f"{name} {count}")
        return value, args, kwargs

    return check


def _sum(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], passed: Any) -> Any:
    items = _attribute(passed, list(value), _arg(args, kwargs, 0, "attribute", None))
    start = _arg(args, kwargs, 1, "start", 0)
    if not all(isinstance(x, (int, float)) for x in (*items, start)):
        raise TypeError("the sum filter adds numbers only")
    return items, (), {"start": start}


def _tojson(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
    size = text_size(value, budget.limits.max_length)
    budget.length(6 * size + size * _width(_arg(args, kwargs, 0, "indent", 0)), "|tojson")
    return value, args, kwargs


def _pprint(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
    budget.length(2 * text_size(value, budget.limits.max_length), "|pprint")
    return value, args, kwargs


def _urlize(budget: Budget, value: Any, args: Args, kwargs: dict[str, Any], _: Any) -> Any:
    extra = sum(len(str(_arg(args, kwargs, i, n, None) or "")) for i, n in ((2, "target"), (3, "rel"))) + 80
    size = len(str(value))
    budget.length(3 * size + (size // 2 + 1) * extra, "|urlize")
    return value, args, kwargs


PRECHECKS: dict[str, Precheck] = {
    "center": _center, "indent": _indent, "wordwrap": _wordwrap, "replace": _replace, "join": _join,
    "format": _format, "batch": _count_arg(0, "linecount"), "slice": _count_arg(0, "slices"), "sum": _sum,
    "tojson": _tojson, "pprint": _pprint, "urlize": _urlize,
}


def bounded_range(*args: Any) -> range:
    budget = active()
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = budget.limits.max_length + 1
    budget.length(size, f"range({', '.join(map(str, args))})" if all(abs(a) < 10**12 for a in args) else "range")
    budget.charge(size)
    return numbers


WORD = 12
"""Characters of one lorem ipsum word, space and punctuation included, at most."""


def bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    budget = active()
    if all(isinstance(x, int) for x in (n, min, max)):
        budget.length(n * (max if max > 0 else 1) * WORD + n * 16, f"lipsum({n}, max={max})")
    return built(budget, generate_lorem_ipsum(n, html, min, max))  # type: ignore[no-any-return]


def bounded_globals(found: Mapping[str, Any]) -> dict[str, Any]:
    return {**found, "range": bounded_range, "lipsum": bounded_lipsum}
