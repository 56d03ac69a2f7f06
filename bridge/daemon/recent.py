"""The latest committed events, held in memory by the daemon for the local API's event streams.

With each change the store tells the events it committed (``Written.new_events``). A stream
that is up to date with them writes them to its client at once, without reading them back: one
hop to the database thread and back less on the way of every event to the local client (a
``document_received`` that the client acknowledges is on the path of every round trip).

Only what is known is held: the events that follow, without a gap, the ones already held. A
change whose events are not known (no ``Written`` at all, or one that names events but does
not carry them) forgets everything, and so does a gap: a stream that then asks for anything
not held gets None and reads the store, as every stream did before. Nothing here can make a
stream skip an event: the store's ids are consecutive (``events.id`` is the rowid, and a
rolled-back event's id is taken again), so a held run that covers ``last + 1`` holds every
event after it.
"""

from __future__ import annotations

import itertools
from collections import deque

from bridge.store.sqlite.events import NEW_EVENTS_KEPT
from bridge.store.sqlite.store import Written

Event = tuple[int, str, str]
"""(id, type, data as JSON text), as ``Store.events_after`` gives them."""


class RecentEvents:
    """The latest committed events without a gap between them, at most ``keep``."""

    def __init__(self, keep: int = NEW_EVENTS_KEPT) -> None:
        self._held: deque[Event] = deque(maxlen=keep)

    def told(self, written: Written | None) -> None:
        """A change, on disk (loop thread, before any stream is woken for it)."""
        if written is None or (written.events and not written.new_events):
            self._held.clear()  # which events, unknown: every stream reads the store
            return
        new = written.new_events
        if not new:
            return
        if new[-1][0] - new[0][0] != len(new) - 1:
            self._held.clear()  # a gap among them: hold none (never handed so, but cheap)
            return
        if self._held and new[0][0] != self._held[-1][0] + 1:
            self._held.clear()  # a gap before them: what came between is not held
        self._held.extend(new)

    def after(self, last: int, limit: int) -> list[Event] | None:
        """The events after id ``last`` (at most ``limit``; none when nothing came after it)
        if every one of them is held, else None: then read the store."""
        held = self._held
        if not held or not held[0][0] <= last + 1 <= held[-1][0] + 1:
            return None
        start = last + 1 - held[0][0]
        return list(itertools.islice(held, start, start + limit))


__all__ = ["Event", "RecentEvents"]
