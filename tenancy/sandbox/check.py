"""The checks a template passes before it is saved or compiled: its size, that it compiles in the sandbox,
and that it holds no huge constant, written out (`10000...`) or computed from constants (`3 ** (2 * 10**7)`,
`'a' * 10**9`, `range(10**9)`), which is refused here, with its line, rather than at every render.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Template, TemplateSyntaxError, nodes

from core.errors import TemplateError, TemplateLimitExceeded
from tenancy.sandbox.environment import BudgetedEnvironment
from tenancy.sandbox.limits import Budget, Limits, exceeded
from tenancy.sandbox.sizes import check_binop

_UNKNOWN = object()
_ARITHMETIC = {"+", "-", "*", "/", "//", "%", "**"}


def compile_checked(env: BudgetedEnvironment, source: str, limits: Limits) -> Template:
    """The compiled template, or TemplateError saying what is wrong with the source."""
    if len(source) > limits.max_source_chars:
        exceeded("max_source_chars", f"the source is {len(source)} characters", limits.max_source_chars)
    try:
        tree = env.parse(source)
        check_constants(tree, limits)
        code = env.compile(tree)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"it does not compile: {exc.message} (line {exc.lineno})") from exc
    except ValueError:  # the lexer reads numbers with int(), which refuses over 4300 digits
        exceeded("max_number_digits", "a number written in it has over 4300 digits", limits.max_number_digits)
    except (RecursionError, MemoryError, SyntaxError) as exc:
        raise TemplateError("it nests expressions or blocks too deeply to compile; flatten it") from exc
    return env.template_class.from_code(env, code, env.make_globals(None))


def check_constants(tree: nodes.Template, limits: Limits) -> None:
    budget = Budget(limits)
    for const in tree.find_all(nodes.Const):
        value = const.value
        where = f"line {const.lineno}: "
        if isinstance(value, int) and not isinstance(value, bool):
            _at(where, budget.number, value, "a number")
        elif isinstance(value, str):
            _at(where, budget.length, len(value), "a string")
    folded: dict[int, Any] = {}
    for node in tree.find_all((nodes.BinExpr, nodes.Call)):
        _fold(node, budget, folded)


def _at(where: str, check: Any, *args: Any) -> None:
    try:
        check(*args)
    except TemplateLimitExceeded as exc:
        raise TemplateLimitExceeded(where + exc.message, **exc.context) from None


def _fold(node: nodes.Node, budget: Budget, folded: dict[int, Any]) -> Any:
    """The value of a constant expression, computed within the limits; _UNKNOWN where it is not constant."""
    if id(node) not in folded:
        folded[id(node)] = _UNKNOWN  # while it is being folded
        folded[id(node)] = _fold_node(node, budget, folded)
    return folded[id(node)]


def _fold_node(node: nodes.Node, budget: Budget, folded: dict[int, Any]) -> Any:
    where = f"line {node.lineno}: "
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.Neg, nodes.Pos)):
        operand = _fold(node.node, budget, folded)
        if isinstance(operand, (int, float)):
            return -operand if isinstance(node, nodes.Neg) else operand
    elif isinstance(node, nodes.BinExpr) and node.operator in _ARITHMETIC:
        left, right = _fold(node.left, budget, folded), _fold(node.right, budget, folded)
        if left is not _UNKNOWN and right is not _UNKNOWN:
            _at(where, check_binop, budget, node.operator, left, right)
            value = _compute(node.operator, left, right)
            if isinstance(value, int) and not isinstance(value, bool):
                _at(where, budget.number, value, "a constant expression")
            return value
    elif isinstance(node, (nodes.Tuple, nodes.List)):
        items = [_fold(item, budget, folded) for item in node.items]
        if all(item is not _UNKNOWN for item in items):
            return tuple(items) if isinstance(node, nodes.Tuple) else items
    elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range":
        _check_range(node, budget, folded, where)
    return _UNKNOWN


def _check_range(node: nodes.Call, budget: Budget, folded: dict[int, Any], where: str) -> None:
    args = [_fold(arg, budget, folded) for arg in node.args]
    if node.kwargs or not 1 <= len(args) <= 3 or not all(isinstance(a, int) for a in args) or 0 in args[2:]:
        return
    try:
        size = len(range(*args))
    except OverflowError:
        size = budget.limits.max_length + 1
    _at(where, budget.length, size, "range(...)")


def _compute(operator: str, left: Any, right: Any) -> Any:
    try:
        return BudgetedEnvironment.default_binop_table[operator](left, right)
    except (ArithmeticError, TypeError, ValueError):
        return _UNKNOWN  # left for the render to report, with the variables it has then
