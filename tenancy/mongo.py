"""MongoDB access: one client per process, the master database, each tenant's own database, and grouped
writes.

Tenant data lives only in the database named after its tenant: every accessor here takes a validated
tenant id, so no query can be pointed at another tenant's collections by accident.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, MongoClient, ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ConnectionFailure, PyMongoError, WriteError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from core.errors import DatabaseUnavailable, InvalidTenantId
from core.logs import get_logger
from core.settings import get_settings
from schemas.ids import TENANT_ID_RE

Doc = dict[str, object]
T = TypeVar("T")

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
        # Executions newest first, whole or by instance; ties on enqueued_at are broken by _id, which
        # nx-27017 cannot hold in a compound index.
        IndexModel([("enqueued_at", DESCENDING)]),
        IndexModel([("instance_id", ASCENDING), ("enqueued_at", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("finished_at", DESCENDING)]),  # the dashboard's last failures
    ],
    "results": [IndexModel([("job_id", ASCENDING)], unique=True)],
    "token_usage": [IndexModel([("created_at", DESCENDING)]), IndexModel([("job_id", ASCENDING)])],
    "audit_log": [IndexModel([("job_id", ASCENDING), ("at", ASCENDING)]),
                  # the audit-log view: newest first, by job event or by change action
                  IndexModel([("at", DESCENDING)]), IndexModel([("event", ASCENDING), ("at", DESCENDING)]),
                  IndexModel([("action", ASCENDING), ("at", DESCENDING)])],
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


def unreachable(error: BaseException) -> bool:
    """A failure of MongoDB being there (down, restarting, unreachable, failing over), not of the request."""
    return isinstance(error, ConnectionFailure) or (
        isinstance(error, PyMongoError) and error.has_error_label("RetryableWriteError"))


def durable(operation: Callable[[], T], what: str, wait_s: float | None = None) -> T:
    """Run `operation`, retrying it with backoff while MongoDB is unreachable, for up to `wait_s` (default:
    MONGODB_OUTAGE_WAIT_S); then raise DatabaseUnavailable. The operation must be idempotent: a write that
    MongoDB applied before the connection dropped is sent again."""
    try:
        return operation()  # the common case, without building a retry loop on every job's path
    except PyMongoError as error:
        if not unreachable(error):
            raise
    limit = get_settings().mongodb.outage_wait_s if wait_s is None else wait_s

    def waiting(state: Any) -> None:
        get_logger().warning("mongodb.unreachable", what=what, attempt=state.attempt_number,
                             error=type(state.outcome.exception()).__name__)

    try:
        for attempt in Retrying(stop=stop_after_delay(limit), wait=wait_random_exponential(multiplier=0.2, max=5),
                                retry=retry_if_exception(unreachable), before_sleep=waiting, reraise=True):
            with attempt:
                return operation()
    except PyMongoError as error:
        if not unreachable(error):
            raise
        raise DatabaseUnavailable(f"MongoDB was unreachable for {limit:g} s while {what}; the job is kept and "
                                  "goes on once it is back. Check MONGODB_URL and the server.") from error
    raise AssertionError("tenacity returned without an outcome")  # pragma: no cover


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



@dataclass(frozen=True)
class Write:
    """One write to a collection of the database given to `write_grouped`."""

    collection: str
    kind: Literal["insert", "replace", "update"]
    document: Mapping[str, Any]
    """insert: the document; replace: the replacement; update: the update operators."""
    filter: Mapping[str, Any] | None = None
    upsert: bool = False

    def operation(self) -> InsertOne[Any] | ReplaceOne[Any] | UpdateOne:
        if self.kind == "insert":
            return InsertOne(dict(self.document))
        if self.kind == "replace":
            return ReplaceOne(dict(self.filter or {}), dict(self.document), upsert=self.upsert)
        return UpdateOne(dict(self.filter or {}), dict(self.document), upsert=self.upsert)


@dataclass(eq=False)
class _Caller:
    writes: Sequence[Write]
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    done: bool = False
    error: PyMongoError | None = None

    def collections(self) -> list[str]:
        return list(dict.fromkeys(w.collection for w in self.writes))


@dataclass(eq=False)
class _Group:
    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: list[_Caller] = field(default_factory=list)
    writing: bool = False


_groups: dict[tuple[int, str], _Group] = {}


def write_grouped(db: Database[Doc], writes: Sequence[Write]) -> None:
    """Apply `writes` to collections of `db` in their order, stopping at the first that fails (raised here),
    sharing round trips with the callers that are writing to the same database at the same moment.

    A job's outcome is four writes (result, usage, execution, audit). Done one by one from 100 threads they
    were most of a worker's MongoDB round trips; grouped, the callers that arrive while a group is being
    written go together in the next one: one bulk write per collection for all of them (group commit).
    Alone, a caller writes at once; nobody waits for a timer. Callers must write their collections in one
    consistent order (jobs: results, token_usage, audit_log, executions); one that does not is written alone.
    """
    if not writes:
        return
    key = (os.getpid(), db.name)
    group = _groups.get(key) or _groups.setdefault(key, _Group())
    caller = _Caller(writes)
    with group.lock:
        group.waiting.append(caller)
        caller.lead = not group.writing
        group.writing = True
    if not caller.lead:
        caller.woken.wait()  # written by a leader, or asked to lead the next group (ours is in it)
    if caller.lead:
        with group.lock:
            batch, group.waiting = group.waiting, []
        try:
            _write_group(db, batch)
        finally:
            for member in batch:  # cut short (not by MongoDB): nobody may think their writes were made
                if not member.done and member.error is None:
                    member.error = PyMongoError("A grouped write was cut short; its leader logged why.")
            with group.lock:
                if group.waiting:
                    group.waiting[0].lead = True
                    group.waiting[0].woken.set()
                else:
                    group.writing = False
            for other in batch:
                if other is not caller:
                    other.woken.set()
    if caller.error is not None:
        raise caller.error


def _write_group(db: Database[Doc], batch: list[_Caller]) -> None:
    order: list[str] = []
    for caller in batch:
        order.extend(c for c in caller.collections() if c not in order)
    rank = {name: i for i, name in enumerate(order)}
    together = [c for c in batch if [rank[n] for n in c.collections()] == sorted(rank[n] for n in c.collections())]
    for collection in order:
        _write_collection(db, collection, [c for c in together if c.error is None])
    for caller in batch:
        if all(caller is not c for c in together):
            for collection in caller.collections():
                _write_collection(db, collection, [caller] if caller.error is None else [])
    for caller in batch:
        caller.done = True


def _write_collection(db: Database[Doc], collection: str, callers: list[_Caller]) -> None:
    """One unordered bulk write of the callers' writes to one collection; each caller gets its own error."""
    owners: list[_Caller] = []
    operations: list[Any] = []
    for caller in callers:
        for write in caller.writes:
            if write.collection == collection:
                owners.append(caller)
                operations.append(write.operation())
    if not operations:
        return
    try:
        db[collection].bulk_write(operations, ordered=False)
    except BulkWriteError as error:
        for failed in error.details.get("writeErrors", []):
            owner = owners[failed["index"]]
            owner.error = owner.error or WriteError(failed.get("errmsg", "write failed"), failed.get("code"), failed)
        if error.details.get("writeConcernErrors"):
            for owner in owners:
                owner.error = owner.error or error
    except PyMongoError as error:
        for owner in owners:
            owner.error = owner.error or error
