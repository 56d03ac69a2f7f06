"""Following the daemon live: ``bridge status DOC --watch`` (a document until every item is
acknowledged) and the reconnection that ``bridge events`` and ``--watch`` share, so that a
daemon restarting does not end them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import click

from bridge.cli.output import console
from bridge.cli.progress import counts, is_settled, items_of
from bridge.client import ApiError, BridgeClient, DaemonUnavailable
from bridge.core.errors import BridgeError
from bridge.core.printable import json_text, printable

POLL_INTERVAL = 0.5  # seconds between polls when the event stream is not available
SAFETY_POLL = 2.0  # seconds between polls even while events arrive (nothing missed for long)
UNAVAILABLE_GRACE = 30.0  # how long --watch and events wait for a restarting daemon
BURST_PAUSE = 0.05  # let a burst of events land: one refresh for many item changes


class Grace:
    """Tolerates a daemon that goes away for a while (a restart): ``lost()`` says whether to
    keep trying, until ``UNAVAILABLE_GRACE`` seconds have passed since it went away."""

    def __init__(self) -> None:
        self.since: float | None = None

    def lost(self) -> bool:
        now = time.monotonic()
        if self.since is None:
            self.since = now
        return now - self.since < UNAVAILABLE_GRACE

    def back(self) -> None:
        self.since = None

    @staticmethod
    def pause() -> None:
        time.sleep(POLL_INTERVAL)

    def call(self, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        while True:
            try:
                value = fn()
            except DaemonUnavailable:
                if not self.lost():
                    raise
                self.pause()
                continue
            self.back()
            return value


def _wake_on_events(client: BridgeClient, wake: threading.Event,
                    alive: threading.Event) -> threading.Thread:
    """A background reader of the event stream: any event wakes the watcher. If the stream
    cannot be had or ends, ``alive`` is cleared and the watcher polls instead."""

    def run() -> None:
        try:
            for _event in client.events():
                alive.set()
                wake.set()
        except BridgeError:
            pass
        alive.clear()
        wake.set()

    alive.set()
    thread = threading.Thread(target=run, name="bridge-watch-events", daemon=True)
    thread.start()
    return thread


class _Follower:
    """One document, refreshed whenever an event says something happened (or every
    SAFETY_POLL seconds), through a daemon restart."""

    def __init__(self, client: BridgeClient, doc_id: str, direction: str | None) -> None:
        self.client, self.doc_id, self.grace = client, doc_id, Grace()
        self.doc = client.document(doc_id, direction)  # fail fast if there is no daemon at all
        # Pin the direction: an id can later come to exist in the other direction too.
        self.direction = str(self.doc.get("direction") or direction or "") or None
        self.wake, self.alive = threading.Event(), threading.Event()
        _wake_on_events(client, self.wake, self.alive)

    def changed(self) -> dict[str, Any]:
        """Wait for a change, then the document as it is now."""
        self.wake.wait(SAFETY_POLL if self.alive.is_set() else POLL_INTERVAL)
        self.wake.clear()
        time.sleep(BURST_PAUSE)
        self.doc = self.grace.call(lambda: self.client.document(self.doc_id, self.direction))
        return self.doc

    def label(self) -> str:
        return printable(f"{self.doc_id} [{self.doc.get('state')}]")


def _follow_json(follower: _Follower) -> None:
    """One JSON line each time the counts or the state change."""
    doc, last = follower.doc, None
    while True:
        view = items_of(doc), doc.get("state")
        if view != last:
            click.echo(json_text(doc, indent=None))
            last = view
        if is_settled(doc):
            return
        doc = follower.changed()


def _follow_bar(follower: _Follower) -> None:
    """A progress bar of the items acknowledged, then one line of where the document ended."""
    from rich.progress import (  # only here: ``bridge status --json`` never loads it
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (TextColumn("{task.description}", markup=False), BarColumn(),
               MofNCompleteColumn(), TextColumn("acknowledged"), TimeElapsedColumn())
    doc = follower.doc
    with Progress(*columns, console=console(), transient=False) as bar:
        total, acked, _ = items_of(doc)
        task = bar.add_task(follower.label(), total=total or None, completed=acked)
        while not is_settled(doc):
            doc = follower.changed()
            total, acked, _ = items_of(doc)
            bar.update(task, total=total or None, completed=acked, description=follower.label())
    total, acked, by_status = items_of(doc)
    click.echo(printable(f"{follower.doc_id}: {doc.get('state')}; {acked}/{total} acknowledged")
               + (f" ({counts(by_status)})" if by_status else ""))


def watch_document(client: BridgeClient, doc_id: str, direction: str | None,
                   as_json: bool) -> None:
    """Follow ``doc_id`` until every item is acknowledged; a refusal by the peer is an error."""
    follower = _Follower(client, doc_id, direction)
    (_follow_json if as_json else _follow_bar)(follower)
    if follower.doc.get("state") == "refused":
        raise ApiError(409, "document_refused", f"the peer refused document {doc_id}")


__all__ = ["POLL_INTERVAL", "SAFETY_POLL", "UNAVAILABLE_GRACE", "Grace", "watch_document"]
