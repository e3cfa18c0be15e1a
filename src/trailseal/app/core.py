"""The application: one log's operations behind every door (HTTP, CLI, web pages)."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

from trailseal.access import PrincipalStore
from trailseal.app.alerts import Alerts
from trailseal.app.entries import Entries
from trailseal.app.exports import Exports
from trailseal.app.imports import Imports
from trailseal.app.overview import Overviews
from trailseal.app.principals import Principals
from trailseal.app.recorder import Recorder
from trailseal.app.reports import Reports
from trailseal.app.retention import Retention
from trailseal.checkpoints import Verifier
from trailseal.ledger import Ledger
from trailseal.ledger.bulk import worker_pool
from trailseal.storage import PRINCIPALS, open_state

if TYPE_CHECKING:
    from trailseal.detect.store import DetectionStore


@dataclass
class App:
    """A log with its principals and alerts. Make one with :meth:`open`; close it when done."""

    ledger: Ledger
    principal_store: PrincipalStore
    recorder: Recorder = field(init=False)
    entries: Entries = field(init=False)
    principals: Principals = field(init=False)
    alerts: Alerts = field(init=False)
    reports: Reports = field(init=False)
    overviews: Overviews = field(init=False)
    retention: Retention = field(init=False)
    imports: Imports = field(init=False)
    exports: Exports = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = Recorder(self.ledger)
        self.entries = Entries(self.ledger, self.recorder)
        self.principals = Principals(self.principal_store, self.recorder)
        self.alerts = Alerts(self.ledger, self.recorder, self._detection_store)
        self.reports = Reports(
            self.ledger, self.recorder, self.entries, self.principal_store, self._detection_store
        )
        self.overviews = Overviews(self.ledger, self.recorder, self.entries, self.alerts)
        self.retention = Retention(self.ledger, self.recorder)
        self.imports = Imports(self.entries, self.recorder, self.ledger.settings.layout)
        self.exports = Exports(self.ledger, self.recorder, self.ledger.settings.layout)

    @classmethod
    def open(
        cls,
        data_dir: str | Path | None = None,
        *,
        key_path: str | Path | None = None,
        max_event_bytes: int | None = None,
    ) -> Self:
        return cls._around(
            Ledger.open(data_dir, key_path=key_path, max_event_bytes=max_event_bytes)
        )

    @classmethod
    def init(
        cls,
        data_dir: str | Path | None = None,
        *,
        origin: str | None = None,
        key_path: str | Path | None = None,
        log: str | None = None,
        tenants: tuple[str, ...] = (),
    ) -> Self:
        """Create a new log (and its signing key) and open it; with ``log``, a further
        log of the deployment in ``data_dir``, to which ``tenants`` are routed."""
        return cls._around(
            Ledger.init(data_dir, origin=origin, key_path=key_path, log=log, tenants=tenants)
        )

    @classmethod
    def _around(cls, ledger: Ledger) -> Self:
        """The application over an open ledger, with the deployment's principals (one set
        for every log of a deployment)."""
        settings = ledger.settings
        try:
            state = open_state(settings.deployment_url, settings.deployment.principals, PRINCIPALS)
            principals = PrincipalStore(state)
        except BaseException:
            ledger.close()
            raise
        return cls(ledger, principals)

    @property
    def log(self) -> str:
        """This log's name in its deployment (``default`` for the data directory's own)."""
        return self.ledger.settings.log

    @property
    def verifier(self) -> Verifier:
        """The log's public key: checks every checkpoint."""
        return self.ledger.verifier

    def worker_pool(self) -> Executor | None:
        """Long-lived worker processes that prepare large batches (None on one core)."""
        return worker_pool()

    def queue_depth(self) -> int:
        """Events waiting for the sequencer's next commit."""
        return self.ledger.queue_depth()

    def _detection_store(self) -> DetectionStore:
        from trailseal.detect.store import open_store  # noqa: PLC0415 - only alerts need it

        return open_store(self.ledger.settings.data_dir, self.ledger.settings.store)

    def close(self) -> None:
        self.principal_store.close()
        self.ledger.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
