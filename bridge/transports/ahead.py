"""A large chunk's pure work started as soon as it arrives, beside the database thread.

The peer endpoint takes envelopes in over several connections at once (a sender keeps up to
``[delivery] in_flight`` of them on their way), but the database thread takes them one at a
time, in sequence order. Most of a large chunk's cost needs nothing of the store
(``bridge.engine.chunk_ahead``), so while the database thread stores chunk k, chunk k + 1 is
opened on a thread and its entries decoded and checked in a process beside the daemon
(``PrepareBeside``: the daemon's ``checkers``); on its turn, the database thread opens it
again, decides everything as always, and stores what was prepared only if it came from the
very payload it opened.

Only what is worth the hop goes: an envelope of at least ``AHEAD_BYTES``, while the processes
are ready (they are started by the first such envelope; until then, and whenever one fails,
the database thread does all of it, as before).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from bridge.core.errors import PeerError
from bridge.engine.chunk_ahead import Ahead, PreparedChunk
from bridge.engine.exchange import Exchange
from bridge.engine.inbound import Parsed
from bridge.engine.kinds import KIND_CHUNK

AHEAD_BYTES = 128 * 1024
"""An envelope smaller than this (a few hundred entries) is taken in on the database thread
alone: its work costs less than the hop to a process and back."""


class PrepareBeside(Protocol):
    def can_prepare(self) -> bool:
        """Is there a process ready now? If not, one is started (this call does not wait)."""
        ...

    async def prepare(self, payload: bytes) -> PreparedChunk | None:
        """``chunk_ahead.prepare_chunk(payload)`` beside the daemon; None if it refused the
        chunk or no process could do it."""
        ...


async def ahead_of_turn(exchange: Exchange, beside: PrepareBeside | None, body: bytes,
                        parsed: Parsed | PeerError) -> Ahead | None:
    """The chunk in ``body`` prepared beside the database thread, or None (not a large chunk
    from a pinned peer to us, no process ready, or anything refused: its turn says why)."""
    if (beside is None or len(body) < AHEAD_BYTES or isinstance(parsed, PeerError)
            or parsed[0].kind != KIND_CHUNK):
        return None
    if not beside.can_prepare():
        return None
    payload = await asyncio.get_running_loop().run_in_executor(None, exchange.open_ahead,
                                                               body, parsed)
    if payload is None:
        return None
    prepared = await beside.prepare(payload)
    return Ahead(payload=payload, prepared=prepared) if prepared is not None else None


__all__ = ["AHEAD_BYTES", "PrepareBeside", "ahead_of_turn"]
