"""An in-process harness: two engines, each on its own home and real SQLite store file, wired
by an in-memory courier, on a clock the test moves. It shows in milliseconds what the daemon
tests show in seconds for everything that is the engine's (exchange, duplicates, gaps, forks,
rotation, acknowledgements, hostile answers); the daemon tests stay for what only processes,
sockets and HTTP can show.

``wire.py`` is the only module that calls the engine; ``pair.py`` builds the parties and the
courier; ``hostile.py`` signs what an honest peer never would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.core.crypto.identity import PrivateIdentity

from . import hostile, wire
from .clock import FakeClock
from .pair import Courier, Party, Trip, make_pair


@dataclass
class Harness:
    alpha: Party
    beta: Party
    courier: Courier
    clock: FakeClock


@contextmanager
def open_pair(root: Path, alpha: PrivateIdentity, beta: PrivateIdentity, *,
              clock: FakeClock | None = None, chunk_items: int = 4) -> Iterator[Harness]:
    clock = clock or FakeClock()
    a, b = make_pair(root, alpha, beta, clock=clock, chunk_items=chunk_items)
    try:
        yield Harness(alpha=a, beta=b, courier=Courier(a, b), clock=clock)
    finally:
        a.close()
        b.close()


def person(n: int) -> dict[str, Any]:
    """A synthetic prisoner-of-war record (invented names, no real person)."""
    return {"id": f"P-{n:05d}", "surname": f"Testname{n}", "first_names": "Sample Person",
            "rank": "private", "date_of_birth": f"{1980 + n % 25}-0{1 + n % 9}-1{n % 10}",
            "service_number": f"SN-{n:07d}"}


__all__ = ["Courier", "FakeClock", "Harness", "Party", "Trip", "hostile", "open_pair",
           "person", "wire"]
