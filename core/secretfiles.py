"""Secrets a local fleet keeps in its data dir, in files only their owner may read, instead of printing them.

`tenantq up` prints where a secret is, never the secret: its output is often captured into a log or a CI
transcript. The admin token lives in `<data dir>/admin-token` (the operator's TENANTQ_ADMIN_TOKEN where set,
else one generated on the first start and kept across restarts); a demo tenant's API key in
`<data dir>/keys/<tenant id>`. Commands read them from there: `curl -H "Authorization: Bearer $(cat
.tenantq/admin-token)"`, and the settings of any process of the data dir (core.settings).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ADMIN_TOKEN_FILE = "admin-token"
KEYS_DIR = "keys"


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable and writable by its owner only (0600), whole or not at all: it is
    written beside and renamed over, so a file that was readable by others is replaced, not reused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
    partial.replace(path)


def admin_token_path(data_dir: Path) -> Path:
    return data_dir / ADMIN_TOKEN_FILE


def read_admin_token(data_dir: Path) -> str | None:
    """The admin token kept in data_dir, if there is one and this process may read it."""
    try:
        token = admin_token_path(data_dir).read_text().strip()
    except OSError:
        return None
    return token or None


def ensure_admin_token(data_dir: Path, given: str | None) -> tuple[Path, str]:
    """Keep the admin token in data_dir: `given` (the operator's) where set, else the one kept there, else a
    new one. Returns the file and the token."""
    path = admin_token_path(data_dir)
    kept = read_admin_token(data_dir)
    token = given or kept or secrets.token_urlsafe(32)
    if token != kept or path.stat().st_mode & 0o077:
        write_private(path, token + "\n")
    return path, token


def keep_tenant_key(data_dir: Path, tenant_id: str, key: str) -> Path:
    """Keep a tenant's new API key in `<data dir>/keys/<tenant id>` (0600, in a 0700 directory)."""
    keys = data_dir / KEYS_DIR
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys / tenant_id
    write_private(path, key + "\n")
    return path
