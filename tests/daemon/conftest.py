"""Helpers for the daemon tests: real daemons (subprocesses), real SQLite files, the real Unix
socket and real HTTP on 127.0.0.1. Nothing here is mocked.

Timing: the machine running these may be shared and slow, so every wait polls or follows events
with a generous deadline, and no test asserts on how long anything took.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bridge.client import BridgeClient, DaemonUnavailable, Event
from bridge.daemon.pair import Node, make_pair
from bridge.home.config import Delivery

from .relay_fixtures import relay_pair  # noqa: F401 -- the relay tests' fixture
from .witness_fixtures import witnessed  # noqa: F401 -- the witness tests' fixture

T = TypeVar("T")

# Long enough for a slow, shared machine; a healthy run takes a small fraction of it.
TIMEOUT = 90.0
# Retries come quickly (a restarted peer is found within a second), still with jitter.
FAST = Delivery(initial_backoff=0.05, max_backoff=0.5, request_timeout=30.0)


def wait_for(predicate: Callable[[], T], *, what: str, timeout: float = TIMEOUT,
             interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``.
    A daemon that is restarting (no socket for a moment) counts as "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except DaemonUnavailable as exc:
            last = exc
        else:
            last = value
            if value:
                return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what} (last seen: {last!r})")
        time.sleep(interval)


class EventLog:
    """Follows a daemon's server-sent events (``client.events``) in a background thread, from
    the first event in its log, reconnecting across restarts with ``Last-Event-ID``."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True,
                                        name=f"events-{node.party}")
        self._thread.start()

    def _follow(self) -> None:
        last: str | None = "0"
        while not self._stop.is_set():
            try:
                for ev in BridgeClient(str(self.node.home.socket_path), timeout=5).events(
                        last, read_timeout=1.0):
                    with self._cond:
                        self.events.append(ev)
                        self._cond.notify_all()
                    last = ev.id or last
                    if self._stop.is_set():
                        return
            except DaemonUnavailable:
                pass  # read timeout, or the daemon is (re)starting: reconnect
            time.sleep(0.05)

    def wait(self, kind: str, /, *, timeout: float = TIMEOUT, **data: Any) -> Event:
        """The first event of type ``kind`` whose data has all of ``data``'s key-value pairs."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if ev.type == kind and all(ev.data.get(k) == v for k, v in data.items()):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(e.type, e.data) for e in self.events]
                    pytest.fail(f"no {kind} event with {data} from {self.node.party}; "
                                f"saw {seen}")
                self._cond.wait(timeout=min(left, 1.0))

    def of_type(self, kind: str) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.type == kind]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def make_nodes(tmp_path: Path, request: pytest.FixtureRequest
               ) -> Iterator[Callable[..., tuple[Node, Node]]]:
    """``make_nodes(delivery=..., suites=(1, 2))``: two homes in ``tmp_path`` that pin each
    other, with keys of these suites (daemons not started). Whatever is still running at the
    end is stopped, and killed if it will not stop."""
    made: list[Node] = []
    request.node.bridge_nodes = made

    def make(delivery: Delivery = FAST, suites: tuple[int, int] = (2, 2)
             ) -> tuple[Node, Node]:
        a, b = make_pair(tmp_path, delivery=delivery, suites=suites)
        made.extend((a, b))
        sock = str(a.home.socket_path)
        assert len(sock.encode()) < 100, f"socket path too long for AF_UNIX: {sock}"
        return a, b

    yield make
    for node in made:
        with contextlib.suppress(Exception):
            node.stop(timeout=10)
        with contextlib.suppress(Exception):
            node.kill()


@pytest.fixture
def events() -> Iterator[Callable[[Node], EventLog]]:
    """``events(node)`` starts an ``EventLog`` on ``node``; all are closed at the end."""
    logs: list[EventLog] = []

    def follow(node: Node) -> EventLog:
        log = EventLog(node)
        logs.append(log)
        return log

    yield follow
    for log in logs:
        log.close()


def db(node: Node) -> sqlite3.Connection:
    """A read-only connection to a node's store (for checks after the daemon has stopped)."""
    return sqlite3.connect(f"file:{node.home.db_path}?mode=ro", uri=True)


def metric(node: Node, name: str) -> int:
    """A gauge or counter from the daemon's /metrics (0 when absent)."""
    for line in node.client.metrics().splitlines():
        if line.startswith(f"bridge_{name}{{"):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def person(n: int) -> dict[str, Any]:
    """A synthetic prisoner-of-war record (invented names, no real person)."""
    return {"id": f"P-{n:05d}", "surname": f"Testname{n}", "first_names": "Sample Person",
            "rank": "private", "date_of_birth": f"{1980 + n % 25}-0{1 + n % 9}-1{n % 10}",
            "service_number": f"SN-{n:07d}", "eligibility": {"seriously_ill": n % 7 == 0}}


def exchange(sender: Node, recipient: Node, doc_id: str, n: int = 3) -> None:
    """One manifest of ``n`` items from ``sender``, received and acknowledged by ``recipient``."""
    sender.client.submit_document(
        "manifest", recipient.party,
        [{"id": f"{doc_id}-{i}", "kind": "person"} for i in range(n)], id=doc_id)
    wait_for(lambda: any(d["id"] == doc_id and d["state"] == "received"
                         for d in recipient.client.documents(direction="in")),
             what=f"{doc_id} at {recipient.party}")
    recipient.client.acknowledge(doc_id, all="RECEIVED")
    wait_for(lambda: sender.client.document(doc_id)["state"] == "acknowledged",
             what=f"{doc_id} acknowledged at {sender.party}")
