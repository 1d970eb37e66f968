"""How a command run by hand reaches the fleet: a quick probe first, and one line instead of a traceback when
Redis or MongoDB cannot be reached.

The fleet's own clients wait seconds for a server (MONGODB_TIMEOUT_MS, Redis's socket timeouts), which suits
workers riding out a restart, not a person at a prompt: the probe pings each server with a timeout of about a
second, and connection errors, then or later in the command, become FleetUnreachable naming the server. URLs
are shown without their credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import ConfigurationError, FleetUnreachable

PROBE_TIMEOUT_S = 1.0
MONGO_AUTH_CODES = (13, 18)
"""Unauthorized, AuthenticationFailed: the server answered, so it is the credentials, not the fleet."""


def public_url(url: str) -> str:
    """The URL without its user and password, fit for a terminal or a log."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{tail}"


def unreachable(server: str, url: str) -> FleetUnreachable:
    shown = public_url(url)
    return FleetUnreachable(f"cannot reach {server} at {shown}: is the fleet running? (tenantq up)",
                            server=server, url=shown)


@contextmanager
def reaching_fleet(redis_url: str, mongodb_url: str) -> Iterator[None]:
    """Probe Redis, then MongoDB, then run the block; a connection error of either, in the probe or in the
    block, becomes one line that names the server and its URL."""
    import redis
    from pymongo.errors import ConnectionFailure, OperationFailure

    try:
        _probe(redis_url, mongodb_url)
        yield
    except redis.AuthenticationError as exc:  # a ConnectionError to redis-py, but the server did answer
        raise ConfigurationError(f"Redis at {public_url(redis_url)} refused the credentials of REDIS_URL: {exc}",
                                 server="Redis", url=public_url(redis_url)) from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise unreachable("Redis", redis_url) from exc
    except ConnectionFailure as exc:
        raise unreachable("MongoDB", mongodb_url) from exc
    except OperationFailure as exc:
        if exc.code not in MONGO_AUTH_CODES:
            raise
        raise ConfigurationError(f"MongoDB at {public_url(mongodb_url)} refused the credentials of MONGODB_URL",
                                 server="MongoDB", url=public_url(mongodb_url)) from exc


def _probe(redis_url: str, mongodb_url: str) -> None:
    import redis
    from pymongo import MongoClient

    broker = redis.Redis.from_url(redis_url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S)
    try:
        broker.ping()
    finally:
        broker.close()
    ms = int(PROBE_TIMEOUT_S * 1000)
    database: MongoClient[dict[str, object]] = MongoClient(
        mongodb_url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms,
    )
    try:
        database.admin.command("ping")
    finally:
        database.close()
