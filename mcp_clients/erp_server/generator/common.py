"""What every part of the generator shares: the clock, the currencies, the materials and the plant log.

The data set is a pure function of (records, seed, tenant id): one `random.Random` drives every choice in
a fixed order, so the same arguments give the same documents, the same exceptions and the same report.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

AS_OF = date(2025, 6, 30)
BASE_CURRENCY = "EUR"
FOREIGN_RATES = {"USD": 0.92, "GBP": 1.17, "CHF": 1.04, "JPY": 0.0061, "SEK": 0.088}
PERIODS = [f"{2024 + (6 + m) // 12}-{(6 + m) % 12 + 1:02d}" for m in range(12)]  # 2024-07 .. 2025-06
PLANTS = ["P100", "P200", "P300"]
APPROVAL_LIMIT = 10_000.0  # base currency; the detectors use the same limit


@dataclass(frozen=True)
class Planted:
    """An exception the generator put in on purpose: what a detector must report, and about which key."""

    category: str
    detector: str
    key: str


def period_of(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def mixed_seed(seed: int, tenant_id: str) -> int:
    digest = hashlib.sha256(f"{seed}:{tenant_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class Gen:
    """The generator's state: random source, size, planted exceptions and shared master data."""

    records: int
    seed: int
    plant: bool
    rng: random.Random = field(init=False)
    planted: list[Planted] = field(default_factory=list)
    tables: dict[str, list[Any]] = field(default_factory=dict)
    fx: dict[tuple[str, str], float] = field(default_factory=dict)
    material_cost: dict[str, float] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def share(self, fraction: float, minimum: int) -> int:
        return max(minimum, round(self.records * fraction))

    def plants_per_detector(self) -> int:
        return 2 + self.records // 20_000 if self.plant else 0

    def record(self, category: str, detector: str, key: str) -> None:
        self.planted.append(Planted(category, detector, key))

    def day(self, lo: int, hi: int) -> date:
        """A day `lo`..`hi` days from the as-of date (negative: in the past)."""
        return AS_OF + timedelta(days=self.rng.randint(lo, hi))

    def money(self, lo: float, hi: float) -> float:
        return round(self.rng.uniform(lo, hi), 2)

    def rate(self, currency: str, day: date) -> float:
        return 1.0 if currency == BASE_CURRENCY else self.fx[(period_of(day), currency)]

    def pick(self, candidates: list[int], count: int, tag: str) -> list[int]:
        """Up to `count` distinct candidate indexes not yet used by another plant under `tag`."""
        free = [i for i in candidates if f"{tag}:{i}" not in self.used]
        chosen = self.rng.sample(free, min(count, len(free)))
        self.used.update(f"{tag}:{i}" for i in chosen)
        return chosen


def make_materials(gen: Gen) -> None:
    """Materials: the first 40% are finished goods (sold and produced), the rest bought raw materials."""
    count = gen.share(0.022, 30)
    for n in range(1, count + 1):
        material = f"M-{n:05d}"
        gen.material_cost[material] = gen.money(2, 400)
        (gen.finished if n <= count * 0.4 else gen.raw).append(material)
