"""Prometheus metrics: appends, batch sizes, latency until durable, log size, verify status."""

from __future__ import annotations

from typing import Any

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
        self.detection_up = Gauge(
            "trailseal_detection_up",
            "1 while detection in this process runs, 0 while it is failing or stopped",
            registry=self.registry,
        )
        self.detection_lag = Gauge(
            "trailseal_detection_lag_entries",
            "Entries appended that detection has not evaluated yet",
            registry=self.registry,
        )
        self.detection_failures = Gauge(
            "trailseal_detection_failures",
            "Times detection failed and was restarted since the service started",
            registry=self.registry,
        )
        self.detection_error_time = Gauge(
            "trailseal_detection_last_error_timestamp_seconds",
            "When detection last failed (0: never)",
            registry=self.registry,
        )

        self.export_lag = Gauge(
            "trailseal_export_lag_entries",
            "Entries a destination of the exporter has yet to be sent (DATA/exports.yaml)",
            ["destination"],
            registry=self.registry,
        )
        self.export_dead = Gauge(
            "trailseal_export_dead_letters",
            "Entries a destination refused for good, waiting for export-to replay",
            ["destination"],
            registry=self.registry,
        )

    def appended(self, new: int, batch: int, seconds: float) -> None:
        self._appended.inc(new)
        self._batch.observe(batch)
        self._latency.observe(seconds)

    def verified(self, *, ok: bool) -> None:
        self._verify.set(1 if ok else 0)

    def text(
        self,
        size: int,
        queue_depth: int,
        detection: dict[str, Any] | None = None,
        exports: dict[str, tuple[int, int]] | None = None,
    ) -> bytes:
        self.size.set(size)
        for name, (lag, dead) in (exports or {}).items():
            self.export_lag.labels(destination=name).set(lag)
            self.export_dead.labels(destination=name).set(dead)
        self.queue.set(queue_depth)
        if detection is not None:
            self.detection_up.set(1 if detection["state"] == "running" else 0)
            self.detection_lag.set(detection["lag"])
            self.detection_failures.set(detection["failures"])
            self.detection_error_time.set(detection["last_error_at"] or 0)
        return generate_latest(self.registry)
