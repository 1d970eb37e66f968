"""Read a tenant's ERP tables from an MCP server that speaks `mcp_clients.erp_contract`.

Tables are read in pages of compact JSON, several pages in flight at once over the one session, and every
page is validated into typed rows before the analysis sees it. 100,000 records take about a second, most of
it in the server; the page size trades message size against round trips and barely matters above 5,000.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import TypeAdapter

from core.errors import TenantqError, ToolResultInvalid
from mcp_clients.erp_contract import (
    DESCRIBE_TOOL,
    MAX_PAGE,
    READ_TOOL,
    TABLES,
    ErpDescription,
    ErpSnapshot,
    Page,
    columns,
)
from mcp_clients.pool import McpPool
from schemas.mcp import McpServerConfig

_DESCRIPTION = TypeAdapter(ErpDescription)
_PAGES: dict[str, TypeAdapter[Page[Any]]] = {name: TypeAdapter(Page[row]) for name, row in TABLES.items()}  # type: ignore[valid-type]


async def describe(pool: McpPool, server: McpServerConfig, tenant_id: str) -> ErpDescription:
    """The server's description, refused if it serves another tenant or another contract version."""
    desc = await pool.call_json(server, DESCRIBE_TOOL, {}, _DESCRIPTION, tenant_id=tenant_id)
    if desc.tenant_id != tenant_id:
        raise ToolResultInvalid(
            f"MCP server {server.name!r} serves the ERP of tenant {desc.tenant_id!r}, not {tenant_id!r}; its "
            "registration must start it for the calling tenant ({tenant_id} in its args).",
            server=server.name, tool=DESCRIBE_TOOL, tenant_id=tenant_id,
        )
    return desc


def _check_tables(server: str, desc: ErpDescription, tables: list[str]) -> None:
    missing = [t for t in tables if t not in desc.tables]
    foreign = [t for t in tables if t in desc.tables and desc.tables[t].columns != columns(t)]
    if missing or foreign:
        raise ToolResultInvalid(
            f"MCP server {server!r} does not serve the ERP tables this analysis needs "
            f"(missing: {', '.join(missing) or 'none'}; other columns: {', '.join(foreign) or 'none'}); it may "
            "speak another version of the ERP contract.", server=server, tool=DESCRIBE_TOOL,
        )


async def fetch_snapshot(pool: McpPool, server: McpServerConfig, tenant_id: str, tables: list[str], *,
                         page_size: int = 10_000, concurrency: int = 4) -> ErpSnapshot:
    """The given tables, complete and validated, as one snapshot."""
    desc = await describe(pool, server, tenant_id)
    _check_tables(server.name, desc, tables)
    size = max(1, min(page_size, MAX_PAGE))
    gate = asyncio.Semaphore(concurrency)

    async def read(table: str, offset: int) -> Page[Any]:
        async with gate:
            page = await pool.call_json(server, READ_TOOL, {"table": table, "offset": offset, "limit": size},
                                        _PAGES[table], tenant_id=tenant_id)
        if page.table != table or page.offset != offset or page.columns != columns(table):
            raise ToolResultInvalid(
                f"MCP server {server.name!r} answered a read of {table!r} at {offset} with another page "
                f"({page.table!r} at {page.offset}).", server=server.name, tool=READ_TOOL,
            )
        return page

    jobs = [(t, offset) for t in tables for offset in range(0, desc.tables[t].records, size)]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read(t, offset)) for t, offset in jobs]
    except BaseExceptionGroup as failed:
        raise _first_error(failed) from None
    snap = ErpSnapshot(desc)
    for table in tables:
        rows: list[Any] = []
        for (t, _), task in zip(jobs, tasks, strict=True):
            if t == table:
                rows.extend(task.result().rows)
        if len(rows) != desc.tables[table].records:
            raise ToolResultInvalid(
                f"MCP server {server.name!r} described {desc.tables[table].records} rows of {table!r} but sent "
                f"{len(rows)}; the data changed while it was read. Run the analysis again.",
                server=server.name, tool=READ_TOOL,
            )
        snap.put(table, rows)
    return snap


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first of our errors in a task group's failures (the rest were cancelled because of it)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if isinstance(exc, TenantqError):
            return exc
    return group.exceptions[0]
