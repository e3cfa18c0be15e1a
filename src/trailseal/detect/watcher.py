"""Detection that keeps running: the engine under a supervisor.

Whatever stops the engine (a full disk, a lost database connection, a bug) is
caught, reported in :class:`Health` (which `/healthz` and `/metrics` show) and
retried with backoff; every retry opens the log and the detection state afresh
and resumes from the last committed batch, so no entry is skipped or evaluated
twice. When detection could not run, or stayed behind the log, for longer than
``max_lag``, the engine raises an alert about it as soon as it can.

:class:`Watcher` runs this in a thread of `trailseal serve --watch`; `trailseal
watch` runs :func:`supervise` in its own process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trailseal.config import Settings
from trailseal.detect.config import DetectionConfig, load_config
from trailseal.detect.engine import Engine
from trailseal.detect.rules import RulePack, load
from trailseal.detect.sinks import Dispatcher
from trailseal.detect.store import open_store
from trailseal.errors import TrailsealError
from trailseal.ledger import Ledger
from trailseal.storage.lease import Lease, open_lease

__all__ = ["Health", "Lease", "Watcher", "detection_lease", "running", "supervise"]

logger = logging.getLogger("trailseal.detect")

MAX_BACKOFF = 15.0  # seconds between retries, at most


@dataclass
class Health:
    """How detection is doing, for `/healthz` and `/metrics` (read from other threads)."""

    max_lag: int = 300
    state: str = "starting"  # running, retrying, standby (another process holds the lease), stopped
    cursor: int = 0
    size: int = 0
    failures: int = 0  # failed runs since the start
    in_a_row: int = 0  # failed runs since the last good step
    last_error: str | None = None
    last_error_at: float | None = None
    failing_since: float | None = None  # wall time of the first failure of this outage
    behind_since: float | None = None

    def stepped(self, engine: Engine) -> None:
        """A step went through: report an outage that just ended, then the position."""
        if self.failing_since is not None:
            engine.report_outage(time.time() - self.failing_since, self.last_error or "")
            self.failing_since = None
        self.state, self.in_a_row = "running", 0
        self.cursor, self.size = engine.cursor, max(engine.size, engine.cursor)
        self.behind_since = engine.behind_since

    def failed(self, exc: BaseException) -> float:
        """A run failed; returns how long to wait before the next."""
        now = time.time()
        self.state = "retrying"
        self.failures += 1
        self.in_a_row += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self.last_error_at = now
        if self.failing_since is None:
            self.failing_since = now
        return float(min(MAX_BACKOFF, 0.5 * 2 ** min(self.in_a_row - 1, 10)))

    def problem(self, now: float | None = None) -> str | None:
        """Why detection is not healthy, or None: stopped, or failing or behind the log
        for longer than ``max_lag``."""
        now = time.time() if now is None else now
        if self.state == "stopped":
            return f"detection stopped: {self.last_error or 'the engine exited'}"
        if self.failing_since is not None and now - self.failing_since > self.max_lag:
            return f"detection failing for {now - self.failing_since:.0f} s: {self.last_error}"
        if self.behind_since is not None and now - self.behind_since > self.max_lag:
            return f"detection behind the log for {now - self.behind_since:.0f} s"
        return None

    def report(self, size: int | None = None) -> dict[str, Any]:
        """What `/healthz` shows; ``size``, the log's size now, makes the lag current
        (without it, the size the last good step saw)."""
        return {
            "state": self.state,
            "position": self.cursor,
            "lag": max(0, max(size or 0, self.size) - self.cursor),
            "failing_since": self.failing_since,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "problem": self.problem(),
        }


def detection_lease(store_url: str, data_dir: Path) -> Lease:
    """The lease detection runs under: once per log, across every process serving it."""
    return open_lease("detection", store_url, data_dir)


STANDBY_POLL = 2.0  # seconds between tries for a lease another process holds


class _Held:
    """Whether this process still holds its lease, asked of the store at most once a
    second (the engine checks its stop condition far more often)."""

    def __init__(self, lease: Lease) -> None:
        self.lease, self.checked, self.ok = lease, 0.0, True

    def lost(self) -> bool:
        now = time.monotonic()
        if now - self.checked >= 1.0:
            self.checked, self.ok = now, self.lease.held()
        return not self.ok


def supervise(
    start: Callable[[], AbstractContextManager[Engine]],
    halt: threading.Event,
    health: Health,
    lease: Lease | None = None,
) -> None:
    """Run engines from ``start`` until ``halt``, starting a new one after any failure.
    With ``lease``, only while holding it: several processes serving one log run
    detection once, and another takes over within seconds of the holder's death."""
    while not halt.is_set():
        if lease is not None and not _take(lease, halt, health):
            continue
        held = _Held(lease) if lease is not None else None

        def stop(held: _Held | None = held) -> bool:
            return halt.is_set() or (held is not None and held.lost())

        try:
            with start() as engine:
                engine.follow(stop, observe=health.stepped)
        except Exception as exc:  # whatever stopped it, detection goes on
            wait = health.failed(exc)
            if isinstance(exc, TrailsealError):  # named by the error: no traceback
                logger.warning("trailseal: detection failed (%s); retrying in %.1f s", exc, wait)
            else:
                logger.exception("trailseal: detection failed; retrying in %.1f s", wait)
            halt.wait(wait)
    if lease is not None:
        lease.release()
    health.state = "stopped"


def _take(lease: Lease, halt: threading.Event, health: Health) -> bool:
    """Whether the lease is this process's now; if another holds it, wait on standby."""
    try:
        if lease.acquire():
            return True
    except TrailsealError as exc:  # the store unreachable: a failure like any other
        halt.wait(health.failed(exc))
        return False
    health.state = "standby"
    halt.wait(STANDBY_POLL)
    return False


class Watcher(threading.Thread):
    """Follows the log in ``data_dir`` until :meth:`stop`; its own connections throughout."""

    def __init__(self, data_dir: Path, key: str | None = None) -> None:
        super().__init__(name="trailseal-watch", daemon=True)
        self.data_dir, self.key = data_dir, key
        self.config = load_config(data_dir)  # a bad configuration stops the start, not later
        self.pack = load(self.config.rules)
        for problem in self.pack.problems:
            logger.warning("trailseal: rule skipped: %s", problem)
        self.halt = threading.Event()
        self.health = Health(max_lag=self.config.max_lag)

    def stop(self) -> None:
        self.halt.set()

    def run(self) -> None:
        settings = Settings.load(self.data_dir, key_path=self.key)
        supervise(
            lambda: running(self.data_dir, self.key, self.pack, self.config),
            self.halt,
            self.health,
            detection_lease(settings.store, self.data_dir),
        )


@contextmanager
def running(
    data_dir: Path, key: str | None, pack: RulePack, config: DetectionConfig
) -> Iterator[Engine]:
    """An engine over the log in ``data_dir``, with its sinks delivering, until closed."""
    with Ledger.open(data_dir, key_path=key) as ledger:
        store = open_store(data_dir)
        try:
            dispatcher = Dispatcher(store.reopen, config.sinks)
            dispatcher.start()
            try:
                yield Engine(ledger, store, pack, config, on_alert=dispatcher.wake.set)
            finally:
                dispatcher.stop()
                dispatcher.join(timeout=10)
        finally:
            store.close()
