"""Failed authentication, throttled per client address, in Redis so that every ingress replica sees it.

An address may fail `TENANTQ_AUTH_FAILURE_LIMIT` times in a window of `TENANTQ_AUTH_FAILURE_WINDOW_S` (opened
by its first failure); past that it is refused until the window ends, whatever credentials it sends, so
guessing keys or the admin token costs a window per few guesses, and a refusal tells nothing of whether a
guess was right. Successful requests are neither counted nor slowed: they pay one Redis read. IPv6 addresses
count by their /64, which one client commonly holds whole.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from importlib import resources

import redis

from core.logs import get_logger


@cache
def _script_source() -> str:
    return resources.files("ingress").joinpath("throttle.lua").read_text()


def client_key(address: str | None) -> str:
    """What an address counts as: itself, or its /64 for IPv6; "unknown" where the server gives none."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return f"{ipaddress.ip_network(f'{ip}/64', strict=False).network_address}/64"
    return str(ip)


class AuthThrottle:
    """Counts failed authentications per client address. Redis being unreachable throttles nobody (logged):
    the throttle is a defence against guessing, and must not turn a Redis outage into refusing every caller."""

    def __init__(self, client: redis.Redis, prefix: str, limit: int, window_s: float) -> None:
        self.r = client
        self.p = prefix
        self.limit = limit
        self.window_ms = max(1, round(window_s * 1000))
        self._count = client.register_script(_script_source())

    def _key(self, address: str | None) -> str:
        return f"{self.p}:authfail:{client_key(address)}"

    def retry_after(self, address: str | None) -> float | None:
        """Seconds until the address may try again, or None when it may now."""
        key = self._key(address)
        try:
            failures = self.r.get(key)
            if failures is None or int(failures) < self.limit:
                return None
            left_ms = int(self.r.pttl(key))
        except redis.RedisError as exc:
            get_logger().warning("ingress.throttle_unavailable", error=str(exc))
            return None
        return left_ms / 1000 if left_ms > 0 else None

    def failed(self, address: str | None) -> int:
        """Count one failed authentication; returns the address's failures in its window (0: not counted)."""
        try:
            return int(self._count(keys=[self._key(address)], args=[self.window_ms]))
        except redis.RedisError as exc:
            get_logger().warning("ingress.throttle_unavailable", error=str(exc))
            return 0
