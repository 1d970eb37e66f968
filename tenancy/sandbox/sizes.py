"""Sizes known before building: how long what a template asks for would be, computed from the operands.

Memory is bounded only if nothing too large is built, so every operation that can multiply its input (an
operator, a string method, `%` and `format`, writing a list out) is sized here first. Each function returns
an upper bound; none of them builds what it measures, and walking a container stops once the bound passes
its cap.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2.utils import Namespace

from tenancy.sandbox.limits import Budget, exceeded

SEQUENCES = (str, bytes, bytearray, list, tuple)
SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
NUMBER_TEXT = 340
"""Characters of the longest number `%d`/`%f` can write: a float near 1e308, sign and dot included."""
OBJECT_TEXT = 120
"""Characters of the repr of an object that is not data (a macro, a loop, a cycler)."""


def text_size(value: Any, cap: int) -> int:
    """An upper bound of `len(str(value))`. A list holding one long string many times is as long, written
    out, as all its copies, so nested values are counted each time they occur, until the total passes `cap`."""
    if isinstance(value, str):
        return len(value)
    total = 0
    stack = [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, str):  # inside a container: its repr, quoted and escaped
            total += (2 if item.isprintable() else 10) * len(item) + 2
        elif isinstance(item, (bytes, bytearray)):
            total += 4 * len(item) + 3
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() * 30103 // 100_000 + 2
        elif isinstance(item, float):
            total += 25
        elif isinstance(item, Namespace):
            total += 14
            stack.append(item._Namespace__attrs)
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, range):
            total += len(repr(item))
        elif isinstance(item, (list, tuple, set, frozenset, types.MappingProxyType)) or _is_view(item):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += OBJECT_TEXT
    return total


def _is_view(item: Any) -> bool:
    return isinstance(item, (type({}.keys()), type({}.values()), type({}.items())))


def describe(value: Any) -> str:
    """A short, safe name of an operand for an error message."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else f"a number of about {value.bit_length() * 3 // 10} digits"
    if isinstance(value, str):
        return repr(value) if len(value) <= 20 else f"a string of {len(value)} characters"
    if isinstance(value, SIZED):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse an arithmetic operation whose result would break a limit, before it is computed."""
    what = f"{describe(left)} {operator} {describe(right)}"
    limits = budget.limits
    if operator == "**":
        bits = (abs(left).bit_length() - 1) * right if _whole(left) and _whole(right) and right > 0 else 0
        if bits > limits.max_bits:
            exceeded("max_number_digits", f"{what} would have about {min(bits, 10**15) * 30103 // 100_000} digits",
                     limits.max_number_digits)
    elif operator == "*":
        if isinstance(left, SEQUENCES) and _whole(right):
            budget.length(len(left) * max(right, 0), what)
        elif isinstance(right, SEQUENCES) and _whole(left):
            budget.length(len(right) * max(left, 0), what)
        elif _whole(left) and _whole(right) and left.bit_length() + right.bit_length() > limits.max_bits + 1:
            exceeded("max_number_digits", f"{what} would have about "
                     f"{(left.bit_length() + right.bit_length()) * 30103 // 100_000} digits", limits.max_number_digits)
    elif operator == "+":
        if isinstance(left, SEQUENCES) and isinstance(right, SEQUENCES):
            budget.length(len(left) + len(right), what)
    elif operator == "%" and isinstance(left, (str, bytes, bytearray)):
        fmt = left if isinstance(left, str) else left.decode("latin-1")
        budget.length(printf_size(fmt, right, limits.max_length), f"{describe(left)} % values")


def _whole(value: Any) -> bool:
    return isinstance(value, int)


_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)


def printf_size(fmt: str, values: Any, cap: int) -> int:
    """An upper bound of `len(fmt % values)`: each conversion's width, precision and value."""
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else None
    total, index = len(fmt), 0
    for key, width, precision, conversion in _PRINTF.findall(fmt):
        if conversion == "%":
            continue
        for part in (width, precision):
            if part == "*":
                star = positional[index] if index < len(positional) else 0
                index += 1
                total += abs(star) if isinstance(star, int) else 0
            elif part:
                total += int(part) if len(part) <= 9 else cap + 1
        if key and mapping is not None:
            value = mapping.get(key)
        else:
            value = positional[index] if index < len(positional) else None
            index += 1
        if conversion in "sra":
            total += text_size(value if conversion == "s" else [value], cap)
        else:
            total += NUMBER_TEXT
        if total > cap:
            break
    return total


_SPEC_NUMBER = re.compile(r"\d+")


def check_format_spec(budget: Budget, spec: str) -> None:
    """A `str.format` field's width and precision: `{:>999999999}` would build what it pads."""
    for number in _SPEC_NUMBER.findall(spec):
        budget.length(int(number) if len(number) <= 9 else 10**9, f"the format field {{:{spec[:30]}}}")


def method_size(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """How long the result of a built-in string or number method would be, where its arguments can make it
    longer than its input (padding, tabs, replacing, translating, `to_bytes`); None for any other call."""
    owner = getattr(method, "__self__", None)
    if not isinstance(method, types.BuiltinMethodType) or isinstance(owner, type):
        return None
    name = method.__name__
    if isinstance(owner, (str, bytes, bytearray)):
        size = len(owner)
        if name in ("center", "ljust", "rjust", "zfill"):
            return max(size, _int_arg(args, kwargs, 0, "width", 0))
        if name == "expandtabs":
            return size * max(_int_arg(args, kwargs, 0, "tabsize", 8), 1)
        if name == "replace" and len(args) >= 2:
            return replaced_size(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
        if name == "translate" and args and isinstance(args[0], Mapping):
            longest = max((len(v) for v in args[0].values() if isinstance(v, SEQUENCES)), default=1)
            return size * max(longest, 1)
        return None
    if isinstance(owner, int) and name == "to_bytes":
        return _int_arg(args, kwargs, 0, "length", 1)
    return None


def replaced_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    text, old, new = (x if isinstance(x, (str, bytes, bytearray)) else str(x) for x in (text, old, new))
    hits = len(text) + 1 if not old else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def joined_size(items: Iterable[Any], separator: Any, cap: int) -> int:
    """An upper bound of `separator.join(map(str, items))`, for a list of items already materialised."""
    items = list(items)
    total = max(len(items) - 1, 0) * len(str(separator))
    for item in items:
        total += text_size(item, cap)
        if total > cap:
            break
    return total


def _int_arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: int) -> int:
    value = args[index] if len(args) > index else kwargs.get(name, default)
    return value if isinstance(value, int) else default
