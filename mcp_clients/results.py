"""Tool results are checked before use: an error result, an empty one, or data of the wrong shape becomes
a ToolError naming the server and the tool, never a KeyError deep inside an analysis."""

from __future__ import annotations

from typing import TypeVar

import mcp_types
from pydantic import TypeAdapter, ValidationError

from core.errors import ToolError, ToolResultInvalid

T = TypeVar("T")
_SHOWN = 500


def _texts(result: mcp_types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mcp_types.TextContent))


def checked(result: mcp_types.CallToolResult, server: str, tool: str) -> mcp_types.CallToolResult:
    if result.is_error:
        detail = _texts(result).strip()[:_SHOWN] or "no detail given"
        raise ToolError(
            f"MCP server {server!r} reported an error from {tool!r}: {detail}. Check the arguments and the "
            "server's data; the same call will fail again.", server=server, tool=tool,
        )
    return result


def text_of(result: mcp_types.CallToolResult, server: str, tool: str) -> str:
    text = _texts(result).strip()
    if not text:
        raise ToolResultInvalid(
            f"MCP server {server!r} returned no text from {tool!r}.", server=server, tool=tool,
        )
    return text


def parse_json(result: mcp_types.CallToolResult, adapter: TypeAdapter[T], server: str, tool: str) -> T:
    """Validate structured content if the server sent it, else the text as JSON, against `adapter`."""
    try:
        if result.structured_content is not None:
            return adapter.validate_python(result.structured_content)
        return adapter.validate_json(text_of(result, server, tool))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'top level'}: {err['msg']}" for err in exc.errors()[:3]
        )
        raise ToolResultInvalid(
            f"MCP server {server!r} returned data from {tool!r} that does not have the expected shape "
            f"({exc.error_count()} problem(s): {problems}). The server may speak another version of the "
            "contract; fix the server or its registration.", server=server, tool=tool,
        ) from exc
