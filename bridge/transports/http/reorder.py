"""Envelopes that overtook an earlier one: a short wait at the peer endpoint (PROTOCOL.md §8.7).

A sender with several envelopes in flight POSTs them at once, each on a connection of its
own, so envelope n + 1 may reach us before n. The store takes nothing past a gap (§8.2): run
at once, n + 1 would be answered ``gap`` and sent again. So a request whose envelope claims a
seq past the next one due from its (pinned) sender waits, at most ``wait`` seconds, until the
envelopes before it have been handed to the engine. The database thread takes calls in the
order they are handed over, so n + 1 is then decided right after n, in order.

Nothing here is trusted: the sender and seq are the envelope's claims, read before any check
(a forger can make a request wait ``wait`` seconds, no more, and the usual checks follow). The
wait is bounded in bytes too (``max_bytes`` held at once, the rest go at once), and what comes
after a wait is decided exactly as it would have been: a gap is still a gap.

An envelope this endpoint refuses before its turn (over its sender's rate limit, 429) is not
handed on in this try: the ones after it do not wait for it (``refused``), whether they came
before the refusal or after it, until it is handed on in its turn (or the chain has passed
it); each is decided at once, a gap. Kept waiting they held the sender's whole window for the
full ``wait`` while the refused one could only come back after the sender had heard every
answer (PROTOCOL.md §8.4, §8.7): a stall of ``wait`` seconds each time a burst ran out. A
forger that spends a pinned peer's budget (``bridge.engine.limits``) can so make that peer's
overtaking envelopes go at once: a gap each, sent again, nothing accepted out of order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

WAIT = 2.0  # seconds an overtaking envelope waits for the ones before it
MAX_HELD_BYTES = 64 << 20  # bodies held waiting, all senders together


class Reorder:
    """The next seq due from each pinned sender, as this endpoint has handed them on."""

    def __init__(self, *, wait: float = WAIT, max_bytes: int = MAX_HELD_BYTES,
                 on_hold: Callable[[], None] = lambda: None) -> None:
        self.wait = wait
        self.on_hold = on_hold  # told as a wait begins (a metric)
        self.max_bytes = max_bytes
        self.held = 0  # bytes of the requests waiting now
        self._due: dict[str, int] = {}
        # Per sender, the lowest seq refused since it was due: nothing past it waits. Stale
        # once the due seq has passed it (it came again and was handed on, or was decided).
        self._refused: dict[str, int] = {}
        self._changed = asyncio.Condition()

    async def turn(self, sender: str, seq: int, size: int) -> None:
        """Return once envelope ``seq`` of ``sender`` may go to the engine: at once unless
        an earlier one is due first, else when it has gone or the wait is over."""
        due = self._due.get(sender)
        if due is None or seq <= due or self.held + size > self.max_bytes \
                or self._refused_before(sender, seq):
            return
        self.held += size
        self.on_hold()
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(
                    lambda: self._due.get(sender, 0) >= seq
                    or self._refused_before(sender, seq)), timeout=self.wait)
        except TimeoutError:
            pass  # the earlier one is lost or slow: decided now, a gap if it is one
        finally:
            self.held -= size

    async def refused(self, sender: str, seq: int) -> None:
        """Envelope ``seq`` of ``sender`` was refused before its turn: nothing after it waits
        for it (above) until it is handed on in turn, or the engine decides on it or one past
        it."""
        if seq < self._due.get(sender, seq) or self._refused_before(sender, seq + 1):
            return  # handed on before (no one waits for it), or an earlier one is refused
        self._refused[sender] = seq
        async with self._changed:
            self._changed.notify_all()

    def _refused_before(self, sender: str, seq: int) -> bool:
        """An envelope of ``sender`` due before ``seq`` was refused, and is still due."""
        refused = self._refused.get(sender)
        return refused is not None and self._due.get(sender, 0) <= refused < seq

    async def handed(self, sender: str, seq: int) -> None:
        """Envelope ``seq`` of ``sender`` went to the engine: the next one's turn."""
        due = self._due.get(sender)
        if due is not None and seq != due:
            return  # out of turn (a wait ran out): what is due stays due
        self._due[sender] = seq + 1
        async with self._changed:
            self._changed.notify_all()

    async def decided(self, sender: str, seq: int) -> None:
        """The engine took envelope ``seq`` of ``sender`` into its chain (or had it): the
        next one is due whatever this endpoint saw (the store may have moved on by another
        way, a carrier file say, and a stale due must not hold every envelope after)."""
        if self._due.get(sender, 0) <= seq:
            self._due[sender] = seq + 1
            async with self._changed:
                self._changed.notify_all()


__all__ = ["MAX_HELD_BYTES", "WAIT", "Reorder"]
