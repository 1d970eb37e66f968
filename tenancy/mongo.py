"""MongoDB access: one client per process, the master database, and each tenant's own database.

Tenant data lives only in the database named after its tenant: every accessor here takes a validated
tenant id, so no query can be pointed at another tenant's collections by accident.
"""

from __future__ import annotations

import os
import threading

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.database import Database

from schemas.ids import TENANT_ID_RE
from tenantq.errors import InvalidTenantId
from tenantq.settings import get_settings

Doc = dict[str, object]

_lock = threading.Lock()
_client: MongoClient[Doc] | None = None
_client_pid: int | None = None
_databases: dict[str, Database[Doc]] = {}
"""Databases of this process's client whose indexes exist, by name: every job looks its tenant's up several
times, and building the handle and checking the indexes each time cost more than the lookup."""

TENANT_INDEXES: dict[str, list[IndexModel]] = {
    "executions": [
        IndexModel([("idempotency_key", ASCENDING)], unique=True,
                   partialFilterExpression={"idempotency_key": {"$type": "string"}}),
        IndexModel([("status", ASCENDING), ("enqueued_at", ASCENDING)]),
    ],
    "results": [IndexModel([("job_id", ASCENDING)], unique=True)],
    "token_usage": [IndexModel([("created_at", DESCENDING)]), IndexModel([("job_id", ASCENDING)])],
    "audit_log": [IndexModel([("job_id", ASCENDING), ("at", ASCENDING)])],
}

MASTER_INDEXES: dict[str, list[IndexModel]] = {
    "api_keys": [IndexModel([("tenant_id", ASCENDING)])],
    "tenants": [IndexModel([("status", ASCENDING)])],
}


def validate_tenant_id(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID_RE.match(tenant_id):
        raise InvalidTenantId(
            f"Tenant id {tenant_id!r} is invalid: use 2-63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit.",
        )
    return tenant_id


def client() -> MongoClient[Doc]:
    """The process's client; a forked child makes its own (pymongo clients are not fork-safe)."""
    global _client, _client_pid
    current = _client
    if current is not None and _client_pid == os.getpid():
        return current  # the fast path of every query takes no lock: 100 job threads pass here
    with _lock:
        if _client is None or _client_pid != os.getpid():
            settings = get_settings()
            _databases.clear()
            _client = MongoClient(
                settings.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=settings.mongodb.timeout_ms,
                socketTimeoutMS=settings.mongodb.timeout_ms * 6, maxPoolSize=200,
            )
            _client_pid = os.getpid()
        return _client


def reset() -> None:
    """Forget the client (tests and `tenantq up` call this after changing MONGODB_URL)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _databases.clear()


def master_db() -> Database[Doc]:
    return _database(get_settings().mongodb.master_database, MASTER_INDEXES)


def tenant_db(tenant_id: str) -> Database[Doc]:
    return _database(get_settings().mongodb.tenant_database_prefix + validate_tenant_id(tenant_id), TENANT_INDEXES)


def _database(name: str, indexes: dict[str, list[IndexModel]]) -> Database[Doc]:
    """The named database of the process's client, its indexes created on first use."""
    current = client()
    db = _databases.get(name)
    if db is None or db.client is not current:
        db = current[name]
        for collection, models in indexes.items():
            db[collection].create_indexes(models)
        _databases[name] = db
    return db
