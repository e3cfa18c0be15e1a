"""Prometheus metrics: appends, batch sizes, latency until durable, log size, verify status."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._appended = Counter(
            "trailseal_events_appended", "Events appended (new entries)", registry=self.registry
        )
        self._batch = Histogram(
            "trailseal_batch_events",
            "Events per append request",
            buckets=(1, 10, 100, 1000, 10000),
            registry=self.registry,
        )
        self._latency = Histogram(
            "trailseal_append_seconds",
            "Time until an append request is durable",
            registry=self.registry,
        )
        self.size = Gauge("trailseal_log_size", "Entries in the log", registry=self.registry)
        self.queue = Gauge(
            "trailseal_queue_depth", "Events waiting for the next commit", registry=self.registry
        )
        self._verify = Gauge(
            "trailseal_verify_ok",
            "1 if the last verification passed, 0 if it failed, -1 before any",
            registry=self.registry,
        )
        self._verify.set(-1)

    def appended(self, new: int, batch: int, seconds: float) -> None:
        self._appended.inc(new)
        self._batch.observe(batch)
        self._latency.observe(seconds)

    def verified(self, *, ok: bool) -> None:
        self._verify.set(1 if ok else 0)

    def text(self, size: int, queue_depth: int) -> bytes:
        self.size.set(size)
        self.queue.set(queue_depth)
        return generate_latest(self.registry)
