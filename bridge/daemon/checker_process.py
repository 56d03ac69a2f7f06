"""What each process beside the daemon (``checkers``) runs first, before any batch: it ends
once the daemon that started it is gone.

Kept apart, with nothing but the standard library, so that such a process imports no more
than it needs (``bridge.local.packed_batch`` for its work): this module is what the pool
names as its start.
"""

from __future__ import annotations

import os
import threading
import time

PARENT_POLL_SECONDS = 1.0


def end_with(parent: int) -> None:
    """A process whose parent dies is handed to another (its parent id changes), which nobody
    tells it: it only waits for work on a pipe the dead daemon held. So it looks, every
    second, and ends (even after a SIGKILL of the daemon, which says nothing to anyone)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(0)
    threading.Thread(target=watch, name="bridge-check-parent", daemon=True).start()


__all__ = ["PARENT_POLL_SECONDS", "end_with"]
