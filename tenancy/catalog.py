"""The simple master data: model configs, tools and MCP servers, each a collection keyed by its name.

Create refuses a name that exists (409, naming the PUT that replaces it); replace needs it to exist (404).
Both audit the change. Documents keep exactly the fields of their model, because the fleet reads them back
strictly (`tenancy.registry` for model configs, `mcp_clients.registry` for servers): who changed them and
when lives in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from core.errors import AlreadyExists, InvalidRequest, NotFound
from mcp_clients.registry import COLLECTION as MCP_COLLECTION
from schemas.agents import ModelConfig
from schemas.mcp import McpServerConfig
from schemas.orchestration import Page, ToolSpec
from tenancy import master_audit, pages, references, registry
from tenancy.mongo import master_db

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Catalog(Generic[M]):
    collection: str
    entity: str
    route: str
    model: type[M]
    check: Callable[[M], None] | None = None

    def create(self, item: M, actor: str) -> M:
        name = self._name(item)
        if self.check is not None:
            self.check(item)
        try:
            master_db()[self.collection].insert_one({"_id": name, **self._doc(item)})
        except DuplicateKeyError as exc:
            raise AlreadyExists(f"{self.entity} {name!r} exists already; PUT {self.route}/{name} replaces it.",
                                entity=self.entity, entity_id=name) from exc
        master_audit.record(actor, "created", self.entity, name, None, item)
        return item

    def replace(self, name: str, item: M, actor: str) -> M:
        if self._name(item) != name:
            raise InvalidRequest(f"The body names {self._name(item)!r} but the path {name!r}; nothing was changed.")
        before = self.get(name)
        if self.check is not None:
            self.check(item)
        master_db()[self.collection].replace_one({"_id": name}, {"_id": name, **self._doc(item)})
        registry.clear_agent_cache()  # a changed model route reaches this process's agents at once
        master_audit.record(actor, "updated", self.entity, name, before, item)
        return item

    def get(self, name: str) -> M:
        doc = master_db()[self.collection].find_one({"_id": name})
        if doc is None:
            raise NotFound(f"No {self.entity} {name!r}; GET {self.route} lists them.", entity=self.entity,
                           entity_id=name)
        return self._item(doc)

    def page(self, limit: int, cursor: str | None) -> Page[M]:
        docs, next_cursor = pages.by_id(master_db()[self.collection], {}, limit, cursor)
        return Page(items=[self._item(d) for d in docs], next_cursor=next_cursor)

    def _name(self, item: M) -> str:
        return str(getattr(item, "name"))  # noqa: B009 - every catalogue model keys by `name`

    def _doc(self, item: M) -> dict[str, Any]:
        return item.model_dump(mode="json", exclude={"name"}, exclude_none=True)

    def _item(self, doc: dict[str, Any]) -> M:
        fields = {k: v for k, v in doc.items() if k != "_id"}
        return self.model.model_validate({"name": doc["_id"], **fields})


def _tool_server_registered(tool: ToolSpec) -> None:
    if tool.mcp_server is not None:
        references.require(MCP_COLLECTION, [tool.mcp_server], "mcp_server")


MODEL_CONFIGS = Catalog("model_configs", "model_config", "/api/v1/master/model-configs", ModelConfig)
TOOLS = Catalog("tools", "tool", "/api/v1/master/tools", ToolSpec, _tool_server_registered)
MCP_SERVERS = Catalog(MCP_COLLECTION, "mcp_server", "/api/v1/master/mcp-servers", McpServerConfig)
