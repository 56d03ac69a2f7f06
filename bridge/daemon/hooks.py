"""What only a caller in Python gives a daemon: the hooks with which the tests' launcher makes
a real daemon show what only it can (a host whose clock is wrong, a full disk, a lost relay
ack). No variable in the environment, file in the home or option of ``bridge daemon`` sets
any of them (SECURITY.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.core.errors import UsageError
from bridge.engine.ports import Clock


@dataclass(frozen=True, kw_only=True)
class DaemonHooks:
    """What only a caller in Python (the tests' launcher) gives a daemon, so that real daemons
    can show what only they can: no variable in the environment, file in the home or option of
    ``bridge daemon`` sets any of it."""

    clock: Clock | None = None  # another wall clock than the system's (a host's wrong clock)
    max_pages: int | None = None  # the store capped (a real SQLITE_FULL, no disk filled)
    relay_skip_acks: int = 0  # the first N relay envelopes left unacked (lost acks)
    hold_acks: Path | None = None  # each acknowledgement's work waits until this file exists

    def __post_init__(self) -> None:
        if self.max_pages is not None and self.max_pages < 1:
            raise UsageError("max_pages is at least 1")
        if self.relay_skip_acks < 0:
            raise UsageError("relay_skip_acks is at least 0")

    def said(self) -> list[str]:
        """Each hook given, for a warning: never mistaken for the host's clock or disk."""
        return [text for given, text in (
            (self.clock is not None, "its clock is not the system's"),
            (self.max_pages is not None, f"its store is capped at {self.max_pages} pages"),
            (self.relay_skip_acks > 0, f"it leaves {self.relay_skip_acks} relay acks out"),
            (self.hold_acks is not None, f"its acknowledgements wait for {self.hold_acks}"))
            if given]

    def hold(self, exchange: Any) -> None:
        """With ``hold_acks``: ``exchange``'s acknowledgements ``held`` until the file is there."""
        if self.hold_acks is not None:
            exchange.acknowledge = held(exchange.acknowledge, self.hold_acks)


def held(work: Callable[..., Any], until: Path) -> Callable[..., Any]:
    """``work`` that, on the database thread where it runs, first waits until ``until``
    exists: an operation as slow as the test makes it, and no slower (a long operation on a
    loaded host, made deterministic)."""
    def waiting(*args: Any, **kwargs: Any) -> Any:
        while not until.exists():
            time.sleep(0.01)
        return work(*args, **kwargs)
    return waiting


__all__ = ["DaemonHooks", "held"]
