"""Prometheus metrics read from Redis at scrape time: the figures an autoscaler scales workers on.

Any ingress replica answers for the whole fleet, since the figures live in Redis, not in the process.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.jobs import PriorityClass
from tenancy.queues import get_queues


class FleetCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        queues = get_queues()
        backlog = GaugeMetricFamily("tenantq_backlog", "Jobs waiting for admission, by class.", labels=["class"])
        in_flight = GaugeMetricFamily("tenantq_in_flight", "Admitted jobs not yet ended, by class.", labels=["class"])
        for priority in PriorityClass:
            backlog.add_metric([priority.value], queues.backlog(priority))
            in_flight.add_metric([priority.value], queues.in_flight(priority))
        yield backlog
        yield in_flight
        yield GaugeMetricFamily("tenantq_dead_letters", "Messages in the dead-letter list.",
                                value=queues.dead_letter_count())
