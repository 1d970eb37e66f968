"""The one redaction of tenantq: what may reach a log line, a dead letter or a stored error.

Masked wherever they appear in a text:

- secret values this process knows (the values of environment variables whose names say they are secrets,
  such as `*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD*`, and the admin token), whatever their shape;
- keys by their shape (`tq_…`, `sk-…`, and other providers' prefixes), bearer and basic credentials;
- the password of a URL (`scheme://user:***@host`) and the value of a secret-named parameter
  (`?token=***`, `api_key=***`, `"password": "***"`);
- e-mail addresses, Unicode and IDN ones and those without a dot in the domain (`admin@localhost`)
  included, which become a short stable hash (`<email:…>`) so support can still correlate lines.

In a mapping, a key that names a secret has its whole value masked. This runs on every log line: the
patterns are compiled once, the known secrets are kept as a tuple, and each pattern runs only where the
character it needs (`@`, `://`, `=`, `:`) is present.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "<redacted>"
MIN_SECRET_CHARS = 8
"""Shorter values of secret-named variables are not masked wherever they appear: a `USE_TOKEN=1` would
otherwise mask every "1"."""

# Combining marks: a decomposed "ö" is an "o" and U+0308, and the mark must not split an address in two.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_LOCAL = rf"[\w{_MARKS}.+%\-]"
_LABEL = rf"[\w{_MARKS}%\-]{{1,63}}"
# A match starts only at the start of a run of address characters, so a long run without "@" costs one pass.
_EMAIL = re.compile(rf"(?<!{_LOCAL})[\w{_MARKS}]{_LOCAL}{{0,63}}(?:@|%40)(?:{_LABEL}\.){{0,8}}{_LABEL}")
# "token" but not "tokens": total_tokens and prompt_tokens are counts, not secrets.
_SECRET_KEY = re.compile(
    r"api[_-]?key|authorization|password|passwd|secret|token(?!s)|credential|cookie|signature", re.I)
_SECRET_PARAM = (r"(?:(?:[\w.\-]*[_.\-])?(?:token|api_?key|(?:secret|private|access|client)[_.\-]?key|secret|"
                 r"password|passwd|pwd|sig|signature|credentials?|auth)|key)")
_PARAM_WORDS = ("token", "key", "secret", "passw", "pwd", "sig", "credential", "auth")
"""What a secret-named parameter's name contains: texts without any of these skip the two patterns below."""
_ASSIGNED = re.compile(rf"(?<![\w.\-])({_SECRET_PARAM})=(?!\*\*\*)[^&\s#\"'<>,;)\]}}]+", re.I)
_QUOTED = re.compile(rf"([\"'])({_SECRET_PARAM})\1(\s*:\s*)([\"'])(?!\*\*\*)[^\"']*\4", re.I)
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.\-]*://[^/\s:@]*):(?!\*\*\*@)[^/\s@]+@", re.I)
# Each alternative starts with one of a few letters, which the lookahead checks before trying them all.
_KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9_\-])(?=[tsprxghAe])(?:"
    r"tq_[A-Za-z0-9_\-]{20,}"
    r"|(?:sk|pk|rk)[-_][A-Za-z0-9_\-]{8,}"
    r"|(?:pplx|xai|gsk|hf|r8|ghp|gho|ghu|ghs|ghr|github_pat|glpat)[-_][A-Za-z0-9_\-]{16,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|AKIA[0-9A-Z]{16}\b"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*)"
)
_CREDENTIAL = re.compile(r"(?:(?<=[Bb]earer )|(?<=BEARER ))[A-Za-z0-9._~+/=\-]{6,}"
                         r"|(?:(?<=[Bb]asic )|(?<=BASIC ))[A-Za-z0-9+/=]{8,}")
_SECRET_VARIABLE = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWD|CREDENTIALS?)$|PASSWORD|SECRET", re.I)

_known: tuple[str, ...] = ()
_kept: frozenset[str] = frozenset()


def mask_email(match: re.Match[str]) -> str:
    address = match.group(0)
    if address in _kept:
        return address
    digest = hashlib.sha256(urllib.parse.unquote(address).lower().encode()).hexdigest()[:10]
    return f"<email:{digest}>"


def redact_text(text: str) -> str:
    """`text` with every secret and address it holds masked."""
    return _redact_short(text) if len(text) <= _SHORT else _redact_text(text)


_SHORT = 256
"""Short texts (ids, names, kinds: most values of a log line) repeat from line to line: their redaction is
cached, and the cache is emptied whenever what is masked changes."""


@functools.lru_cache(maxsize=8192)
def _redact_short(text: str) -> str:
    return _redact_text(text)


def _redact_text(text: str) -> str:
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    if "@" in text and "://" in text:
        text = _URL_PASSWORD.sub(r"\1:***@", text)
    lower = text.lower()
    if any(word in lower for word in _PARAM_WORDS):
        if "=" in text:
            text = _ASSIGNED.sub(r"\1=***", text)
        if ":" in text and ('"' in text or "'" in text):
            text = _QUOTED.sub(r"\1\2\1\3\4***\4", text)
    if "bearer " in lower or "basic " in lower:
        text = _CREDENTIAL.sub(MASK, text)
    text = _KEY_SHAPES.sub(MASK, text)
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(mask_email, text)
    return text


def redact(value: Any) -> Any:
    """`value` with every string in it redacted, and the values of secret-named keys masked whole."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: MASK if secret_name(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


@functools.lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Whether a field, header or log key of this name holds a secret (`api_key`, `Authorization`, …)."""
    return _SECRET_KEY.search(name) is not None


def secret_variable(name: str) -> bool:
    """Whether an environment variable of this name holds a secret (`OPENAI_API_KEY`, `HF_TOKEN`, …)."""
    return _SECRET_VARIABLE.search(name) is not None


def learn_environment(environ: Mapping[str, str] | None = None) -> None:
    """Know the secrets of the environment: the values of secret-named variables, and the passwords of URLs
    (`REDIS_URL=redis://:pw@host`), from now on masked wherever they appear."""
    environ = os.environ if environ is None else environ
    found = [value for name, value in environ.items() if secret_variable(name)]
    for value in environ.values():
        if "://" in value and "@" in value:
            try:
                password = urllib.parse.urlsplit(value).password
            except ValueError:  # not a URL after all
                continue
            if password:
                found.extend({password, urllib.parse.unquote(password)})
    remember(*found)


def remember(*secrets: str) -> None:
    """Mask these values wherever they appear from now on (those under MIN_SECRET_CHARS are left out)."""
    global _known
    merged = {*_known, *(s for s in secrets if len(s) >= MIN_SECRET_CHARS)}
    _known = tuple(sorted(merged, key=len, reverse=True))  # a secret that contains another goes first
    _redact_short.cache_clear()


def keep(*names: Iterable[str] | str) -> None:
    """Names shaped like addresses that are not anyone's address (a Celery node name, `worker-1@host`):
    they stay readable in logs."""
    global _kept
    flat = [n for name in names for n in ([name] if isinstance(name, str) else name)]
    _kept = _kept | frozenset(flat)
    _redact_short.cache_clear()
