"""Worker processes that end with the process that started them.

A ProcessPoolExecutor's workers wait on their call queue; when their parent is killed
outright (SIGKILL, the OOM killer) nothing tells them, and they linger. Each worker
here watches its parent and exits when it is gone.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

_POLL = 1.0  # seconds between looks at the parent


def _watch(parent: int) -> None:
    while True:
        time.sleep(_POLL)
        if os.getppid() != parent:  # re-parented: the parent is gone
            os._exit(0)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as ``parent`` is gone."""
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def worker_processes(count: int) -> ProcessPoolExecutor:
    """``count`` spawned worker processes that die with this process."""
    return ProcessPoolExecutor(
        max_workers=count,
        mp_context=get_context("spawn"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
