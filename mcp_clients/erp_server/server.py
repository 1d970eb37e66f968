"""The bundled ERP MCP server over stdio: `tenantq erp-mcp --tenant ID` or `python -m mcp_clients.erp_server`.

The data set is generated once at start and served read-only, so a worker's pooled session pays for the
generation once and every job after it only pays for the transfer. Pages are compact JSON text (rows as
arrays, serialised by pydantic-core) rather than structured content, which the SDK would send twice.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import TypeAdapter

from mcp_clients.erp_contract import (
    DESCRIBE_TOOL,
    MAX_PAGE,
    READ_TOOL,
    TABLES,
    ErpDescription,
    TableInfo,
    columns,
)
from mcp_clients.erp_server.generator import Dataset, generate

INSTRUCTIONS = (
    "A synthetic ERP. Call erp_describe for the tenant, base currency, as-of date and the tables with their "
    "record counts and columns; then erp_read(table, offset, limit) page by page. Rows are arrays in the "
    "order of the table's columns."
)


def describe(dataset: Dataset) -> ErpDescription:
    return ErpDescription(
        tenant_id=dataset.tenant_id, company=dataset.company, base_currency=dataset.base_currency,
        as_of=dataset.as_of, records=dataset.records,
        tables={name: TableInfo(records=len(rows), columns=columns(name)) for name, rows in dataset.tables.items()},
    )


def build_server(dataset: Dataset) -> MCPServer[Any]:
    """An MCP server answering the ERP contract from one generated data set."""
    app: MCPServer[Any] = MCPServer("tenantq-erp", instructions=INSTRUCTIONS, log_level="WARNING")
    description = describe(dataset).model_dump_json()
    adapters = {name: TypeAdapter(list[row]) for name, row in TABLES.items()}  # type: ignore[valid-type]

    @app.tool(name=DESCRIBE_TOOL, structured_output=False,
              description="Tenant, company, base currency, as-of date, and each table's record count and columns.")
    def erp_describe() -> str:
        return description

    @app.tool(name=READ_TOOL, structured_output=False,
              description=f"One page of a table: rows offset..offset+limit (limit at most {MAX_PAGE}).")
    def erp_read(table: str, offset: int = 0, limit: int = 5_000) -> str:
        rows = dataset.tables.get(table)
        if rows is None:
            raise ToolError(f"Unknown table {table!r}; the tables are {', '.join(sorted(dataset.tables))}.")
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ToolError(f"offset must be >= 0 and limit between 1 and {MAX_PAGE}.")
        page = rows[offset:offset + limit]
        end = offset + len(page)
        header = json.dumps({"table": table, "columns": columns(table), "offset": offset, "total": len(rows),
                             "next_offset": end if end < len(rows) else None}, separators=(",", ":"))
        return f'{header[:-1]},"rows":{adapters[table].dump_json(page).decode()}}}'

    return app


DEFAULT_SEED = 1


def main(tenant_id: str, records: int = 10_000, seed: int | None = None) -> None:
    """Generate the tenant's data set and serve it on stdin/stdout until the client closes stdin.

    The tenant id is mixed into the seed, so tenants get different data from the same (or no) seed.
    """
    build_server(generate(records, DEFAULT_SEED if seed is None else seed, tenant_id)).run("stdio")
