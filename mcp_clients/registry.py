"""MCP server registrations in the master database: collection `mcp_servers`, one document per server.

A document is an `McpServerConfig` with the name as `_id`:

    {"_id": "erp", "transport": "stdio", "command": "/usr/bin/python3",
     "args": ["-m", "mcp_clients.erp_server", "--tenant", "{tenant_id}", "--records", "10000"],
     "env": {}, "allowed_tools": ["erp_describe", "erp_read"], "timeout_s": 60}

    {"_id": "perplexity", "transport": "stdio", "command": "npx",
     "args": ["-y", "server-perplexity-ask"], "env": {"PERPLEXITY_API_KEY": "${PERPLEXITY_API_KEY}"},
     "allowed_tools": ["perplexity_ask"], "timeout_s": 60}

Functions take the Database, so they work against any pymongo database (the fleet passes
`tenancy.mongo.master_db()`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from pymongo.database import Database

from core.errors import ConfigurationError, ToolUnavailable
from mcp_clients.erp_contract import DESCRIBE_TOOL, READ_TOOL
from schemas.mcp import TENANT_PLACEHOLDER, McpServerConfig, McpTransport

COLLECTION = "mcp_servers"


def _config(doc: Mapping[str, Any]) -> McpServerConfig:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    try:
        return McpServerConfig(name=doc["_id"], **fields)
    except ValidationError as exc:
        raise ConfigurationError(
            f"MCP server {doc['_id']!r} is registered with an invalid document: {exc.errors()[0]['msg']}. "
            f"Fix it in the {COLLECTION!r} collection of the master database.", server=doc["_id"],
        ) from exc


def load_servers(db: Database[Any], names: Iterable[str]) -> list[McpServerConfig]:
    """The registrations of `names`, in that order; a name nobody registered raises ToolUnavailable."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    found = {doc["_id"]: _config(doc) for doc in db[COLLECTION].find({"_id": {"$in": wanted}})}
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ToolUnavailable(
            f"MCP server(s) {', '.join(map(repr, missing))} named by the agent are not registered; register "
            f"them in the {COLLECTION!r} collection or remove them from the agent template.",
            server=", ".join(missing),
        )
    return [found[name] for name in wanted]


def register_server(db: Database[Any], config: McpServerConfig) -> None:
    """Insert or replace a registration (validated, so no literal secret is ever written)."""
    doc = {"_id": config.name, **config.model_dump(mode="json", exclude={"name"})}
    db[COLLECTION].replace_one({"_id": config.name}, doc, upsert=True)


def unregister_server(db: Database[Any], name: str) -> bool:
    return db[COLLECTION].delete_one({"_id": name}).deleted_count == 1


def bundled_erp_server(name: str = "erp", *, records: int = 10_000, seed: int = 1, timeout_s: float = 60.0,
                       python: str | None = None) -> McpServerConfig:
    """The registration of the bundled ERP server: one process per tenant, started with this Python."""
    return McpServerConfig(
        name=name, transport=McpTransport.stdio, command=python or sys.executable,
        args=["-m", "mcp_clients.erp_server", "--tenant", TENANT_PLACEHOLDER, "--records", str(records),
              "--seed", str(seed)],
        allowed_tools=[DESCRIBE_TOOL, READ_TOOL], timeout_s=timeout_s,
    )
