"""The Jinja2 environment of tenants' templates: the immutable sandbox, with every operation on the budget.

Jinja2's sandbox lets an environment intercept arithmetic operators (`call_binop`) and calls (`call`); an
intercepted operator is never folded into a constant while compiling, so `3 ** (2 * 10**7)` is not computed
by the compiler. The rest is generated code: a code generator of our own sends every loop's iterable, every
`~`, every comparison and every output buffer through the environment, so that loop steps, built strings and
written characters are counted wherever a template produces them (its body, macros, blocks, call blocks).
"""

from __future__ import annotations

import operator
import types
from collections.abc import Callable, Iterable, Iterator
from functools import update_wrapper
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import pass_environment
from markupsafe import EscapeFormatter, Markup

from tenancy.sandbox.filters import bounded_filter, bounded_lipsum, bounded_range, bounded_test, built
from tenancy.sandbox.limits import Budget, active
from tenancy.sandbox.sizes import (
    SIZED,
    check_binop,
    check_format_spec,
    describe,
    joined_size,
    method_size,
    text_size,
)

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gteq": operator.ge, "lt": operator.lt,
    "lteq": operator.le, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}


COUNT_STEPS = "count_steps"


class BudgetedCodeGenerator(CodeGenerator):
    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        if isinstance(node.node, nodes.EnvironmentAttribute) and node.node.name == COUNT_STEPS:
            self.write(f"environment.{COUNT_STEPS}(")  # a loop's iterable (see BudgetedEnvironment._parse)
            self.visit(node.args[0], frame)
            self.write(")")
        else:
            super().visit_Call(node, frame, forward_caller=forward_caller)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_strings((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("environment.compare(")
        self.visit(node.expr, frame)
        for operand in node.ops:
            self.write(f", {operand.op!r}, ")
            self.visit(operand.expr, frame)
        self.write(")")


class _Written(list[str]):
    """An output buffer (of a macro, a block, a `set` block) that charges every chunk as it is written."""

    __slots__ = ("_budget",)

    def __init__(self, budget: Budget) -> None:
        super().__init__()
        self._budget = budget

    def append(self, chunk: str) -> None:
        self._budget.charge(len(chunk))
        super().append(chunk)

    def extend(self, chunks: Iterable[str]) -> None:
        written = list(chunks)
        self._budget.charge(sum(map(len, written)))
        super().extend(written)


class _Counted:
    __slots__ = ("_budget", "_items")

    def __init__(self, items: Any, budget: Budget) -> None:
        self._items = items
        self._budget = budget

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        budget = self._budget
        for item in self._items:
            budget.step()
            yield item


@pass_environment
def _finalize(environment: Any, value: Any) -> Any:
    """Every `{{ value }}` is written out as text: a list is sized as text before it is."""
    if not isinstance(value, str):
        budget = active()
        budget.length(text_size(value, budget.limits.max_length), f"writing out {describe(value)}")
    return value


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = BudgetedCodeGenerator

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, trim_blocks=True, finalize=_finalize,
                         cache_size=0, auto_reload=False)
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        self.tests = {name: bounded_test(name, test) for name, test in self.tests.items()}
        self.globals.update(range=bounded_range, lipsum=bounded_lipsum)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in list(tree.find_all(nodes.For)):  # Jinja2 allows no node types of our own: a call stands in
            counted = nodes.Call(nodes.EnvironmentAttribute(COUNT_STEPS), [loop.iter], [], None, None,
                                 lineno=loop.iter.lineno)
            counted.set_environment(self)
            loop.iter = counted
        return tree

    # --- what the generated code calls ---------------------------------------------------------------------

    def output_buffer(self) -> list[str]:
        return _Written(active())

    def count_steps(self, items: Any) -> _Counted:
        return _Counted(items, active())

    def concat_strings(self, parts: tuple[Any, ...]) -> str:
        budget = active()
        budget.length(sum(text_size(p, budget.limits.max_length) for p in parts), "joining strings with ~")
        joined = "".join(map(str, parts))
        budget.charge(len(joined))
        return joined

    def compare(self, left: Any, *chain: Any) -> Any:
        budget = active()
        result: Any = True
        for op, right in zip(chain[::2], chain[1::2], strict=True):
            for side in (left, right):
                if isinstance(side, SIZED):
                    budget.charge(text_size(side, budget.limits.max_render_chars))
            result = COMPARISONS[op](left, right)
            if not result:
                return result
            left = right
        return result

    # --- sandbox hooks -------------------------------------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = active()
        check_binop(budget, operator, left, right)
        return built(budget, self.binop_table[operator](left, right), f"{describe(left)} {operator} ...")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = active()
        receiver = getattr(obj, "__self__", None)
        if isinstance(obj, LoopContext) and args:
            args = (self.count_steps(args[0]), *args[1:])
        elif _is_join(obj) and len(args) == 1 and not kwargs:
            items = list(args[0])
            budget.length(joined_size(items, receiver, budget.limits.max_length), f"{describe(receiver)}.join")
            args = (items,)
        else:
            size = method_size(obj, args, kwargs)
            if size is not None:
                budget.length(size, f"{describe(receiver)}.{obj.__name__}(...)")
        if isinstance(receiver, SIZED):
            budget.charge(len(receiver))
        budget.enter()
        try:
            result = super().call(context, obj, *args, **kwargs)
        finally:
            budget.leave()
        return built(budget, result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` and `format_map`, with every field's width and text sized before it is written."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
                "format", "format_map"):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        mapping = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if mapping:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs = args[0]
                args = ()
            budget = active()
            formatter: _BoundedFormatter = (
                _BoundedEscapeFormatter(self, budget, escape=owner.escape) if isinstance(owner, Markup)
                else _BoundedFormatter(self, budget))
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return update_wrapper(bounded, value)


def _is_join(obj: Any) -> bool:
    return (isinstance(obj, types.BuiltinMethodType) and obj.__name__ == "join"
            and isinstance(obj.__self__, (str, bytes, bytearray)))


class _BoundedFormatter(SandboxedFormatter):
    def __init__(self, env: BudgetedEnvironment, budget: Budget, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._budget = budget
        self._written = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = self._budget
        budget.tick()
        check_format_spec(budget, format_spec)
        if not isinstance(value, (str, int, float)):
            budget.length(text_size(value, budget.limits.max_length), f"the format field {describe(value)}")
        text = super().format_field(value, format_spec)
        self._written += len(text)
        budget.length(self._written, "str.format")
        budget.charge(len(text))
        return text

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("r", "a"):
            self._budget.length(text_size([value], self._budget.limits.max_length), "a !r format field")
        return super().convert_field(value, conversion)


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass
