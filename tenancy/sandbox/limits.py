"""What one render may spend, and the budget that counts it.

A render's budget lives in a context variable while the render runs, so a compiled template (shared by every
thread of a process) charges the render that is running it. Time is the rendering thread's CPU time, read
between operations: a render that waits for the GIL behind others is not charged for their work, and one that
computes is stopped within one bounded operation of its limit.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import NoReturn

from core.errors import TemplateLimitExceeded, TemplateTimeout
from core.settings import TemplateSettings, get_settings
from tenancy.sandbox.cpu_share import SHARES

SETTING_PREFIX = "TENANTQ_TEMPLATE_"
PATIENCE = 10
"""A render waits for its tenant's CPU share at most this many times its own CPU limit, then stops: a job
does not hold its slot for ever."""
CLOCK_EVERY = 32
"""Cheap operations between two readings of the CPU clock; an operation that handles over HEAVY
characters reads it at once."""
HEAVY = 1_000
NICE_EVERY_S = 0.001
NICE_PAUSE_S = 0.0002
"""A render that keeps computing lets the GIL go this long after each NICE_EVERY_S of CPU, so that the
process's other threads (jobs waiting on the network, the dispatcher renewing leases) are not queued
behind it for the interpreter's whole switch interval (5 ms) every time they wake."""


@dataclass(frozen=True)
class Limits:
    max_source_chars: int
    max_number_digits: int
    max_length: int
    max_loop_steps: int
    max_render_chars: int
    max_call_depth: int
    cpu_seconds: float
    timeout_setting: str
    cpu_share: float
    cpu_burst: float

    @classmethod
    def of(cls, settings: TemplateSettings | None = None, *, estimate: bool = False) -> Limits:
        """The limits of a worker's render, or with `estimate` those of the ingress's cost estimate."""
        s = settings or get_settings().template
        return cls(s.max_source_chars, s.max_number_digits, s.max_length, s.max_loop_steps, s.max_render_chars,
                   s.max_call_depth, s.estimate_timeout_s if estimate else s.render_timeout_s,
                   "estimate_timeout_s" if estimate else "render_timeout_s", s.cpu_share, s.render_timeout_s)

    @property
    def max_bits(self) -> int:
        """Bits of the largest number allowed, rounded up: a cheap test before an exact one."""
        return self.max_number_digits * 3322 // 1000 + 1


def setting(field: str) -> str:
    return SETTING_PREFIX + field.upper()


def exceeded(field: str, what: str, limit: object) -> NoReturn:
    raise TemplateLimitExceeded(f"{what} (limit {setting(field)} = {limit})", limit=setting(field))


class Budget:
    """The counters of one render: loop steps, characters handled, call depth and CPU time. With an `owner`
    (the tenant), the CPU time is charged to its share too (cpu_share); a `patient` render waits for its share,
    another stops."""

    def __init__(self, limits: Limits, owner: str | None = None, *, patient: bool = True) -> None:
        self.limits = limits
        self.owner = owner
        self.patient = patient
        self.steps = 0
        self.chars = 0
        self.depth = 0
        self._ops = 0
        self._largest = 10 ** limits.max_number_digits
        self._cpu_seen = time.thread_time()
        self._cpu_deadline = self._cpu_seen + limits.cpu_seconds
        self._nice_at = self._cpu_seen + NICE_EVERY_S
        self._paused = 0.0

    def tick(self, weight: int = 1) -> None:
        """One operation; the clock is read every CLOCK_EVERY of them, and after any heavy one."""
        self._ops += 1
        if weight >= HEAVY or self._ops % CLOCK_EVERY == 0:
            self.clock()

    def clock(self) -> None:
        now = time.thread_time()
        if now > self._cpu_deadline:
            field = self.limits.timeout_setting
            raise TemplateTimeout(f"rendering used more than {self.limits.cpu_seconds} s of CPU (limit "
                                  f"{setting(field)} = {self.limits.cpu_seconds})", limit=setting(field))
        if self.owner is not None:
            pause = self.settle(now)
            if pause and (not self.patient or self._paused + pause > PATIENCE * self.limits.cpu_seconds):
                raise TemplateTimeout(f"this tenant's renders used more than their share of CPU (limit "
                                      f"{setting('cpu_share')} = {self.limits.cpu_share})",
                                      limit=setting("cpu_share"))
            if pause:
                time.sleep(pause)
                self._paused += pause
                self._cpu_seen = time.thread_time()
        if now > self._nice_at:
            time.sleep(NICE_PAUSE_S)
            self._nice_at = time.thread_time() + NICE_EVERY_S

    def settle(self, now: float | None = None) -> float:
        """Charge the CPU used since the last reading to the owner's share; the pause it owes."""
        if self.owner is None:
            return 0.0
        now = time.thread_time() if now is None else now
        used, self._cpu_seen = now - self._cpu_seen, now
        return SHARES.spend(self.owner, used, self.limits.cpu_share, self.limits.cpu_burst)

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_loop_steps:
            exceeded("max_loop_steps", "its loops ran too many steps", self.limits.max_loop_steps)
        self.tick()

    def charge(self, chars: int) -> None:
        """Characters or items read, built or written by one operation."""
        self.chars += chars
        if self.chars > self.limits.max_render_chars:
            exceeded("max_render_chars", "the render read, built and wrote too many characters",
                     self.limits.max_render_chars)
        self.tick(chars)

    def length(self, size: int, what: str) -> None:
        """Refuse before building: `what` would be `size` characters or items long."""
        if size > self.limits.max_length:
            exceeded("max_length", f"{what} would be {size} long", self.limits.max_length)

    def number(self, value: int, what: str = "a number") -> None:
        if -self._largest < value < self._largest:
            return
        digits = value.bit_length() * 30103 // 100_000 + 1
        exceeded("max_number_digits", f"{what} would have about {digits} digits", self.limits.max_number_digits)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_call_depth:
            exceeded("max_call_depth", "macro calls and recursive loops nested too deep",
                     self.limits.max_call_depth)
        self.tick()

    def leave(self) -> None:
        self.depth -= 1


_active: ContextVar[Budget | None] = ContextVar("tenantq_template_budget", default=None)


def active() -> Budget:
    """The running render's budget. Outside a render (Jinja2 folding constants while it compiles) this
    raises, so that nothing a template asks for is computed unbudgeted."""
    budget = _active.get()
    if budget is None:
        raise RuntimeError("template operations run only inside a budgeted render")
    return budget


def running(budget: Budget) -> Token[Budget | None]:
    """Make `budget` the running render's; pass the returned token to `finished`."""
    return _active.set(budget)


def finished(token: Token[Budget | None]) -> None:
    _active.reset(token)
