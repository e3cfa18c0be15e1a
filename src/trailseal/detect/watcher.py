"""The engine in a thread of its own: for `trailseal serve --watch`, which runs detection
in the service's process (`trailseal watch` runs it as a process of its own)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from trailseal.detect.config import load_config
from trailseal.detect.engine import Engine
from trailseal.detect.rules import load
from trailseal.detect.sinks import Dispatcher
from trailseal.detect.store import open_store
from trailseal.ledger import Ledger

logger = logging.getLogger("trailseal.detect")


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
        self.failure: BaseException | None = None

    def stop(self) -> None:
        self.halt.set()

    def run(self) -> None:
        try:
            with Ledger.open(self.data_dir, key_path=self.key) as ledger:
                store = open_store(self.data_dir)
                dispatcher = Dispatcher(store.reopen, self.config.sinks)
                dispatcher.start()
                engine = Engine(ledger, store, self.pack, self.config, on_alert=dispatcher.wake.set)
                try:
                    engine.follow(self.halt.is_set)
                finally:
                    dispatcher.stop()
                    dispatcher.join(timeout=10)
                    store.close()
        except BaseException as exc:
            self.failure = exc
            logger.exception("trailseal: detection stopped")
