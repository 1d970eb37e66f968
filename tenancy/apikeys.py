"""Per-tenant API keys, stored only as SHA-256 hashes: the key names its tenant, never the request body."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from core.errors import AuthenticationError
from tenancy.mongo import master_db, validate_tenant_id

KEY_PREFIX = "tq_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(tenant_id: str, label: str = "default") -> str:
    """A new key for the tenant; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    master_db().api_keys.insert_one({
        "_id": _digest(key), "tenant_id": validate_tenant_id(tenant_id), "label": label,
        "hint": key[:7], "created_at": datetime.now(UTC), "revoked": False,
    })
    return key


def authenticate(key: str) -> str:
    """The tenant id behind a key, or AuthenticationError."""
    if not key.startswith(KEY_PREFIX):
        raise AuthenticationError("Missing or malformed API key: send 'Authorization: Bearer tq_...'.")
    doc = master_db().api_keys.find_one({"_id": _digest(key), "revoked": False}, {"tenant_id": 1})
    if doc is None:
        raise AuthenticationError("Unknown or revoked API key: create one with `tenantq tenants create`.")
    return str(doc["tenant_id"])


def revoke_keys(tenant_id: str) -> int:
    result = master_db().api_keys.update_many({"tenant_id": tenant_id}, {"$set": {"revoked": True}})
    return result.modified_count
