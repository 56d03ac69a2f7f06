"""The relay courier (``bridge.engine.ports.Courier``): our envelopes to one peer through the
mediator's broker, and the peer's answers as they come back (PROTOCOL.md, "Relay binding").

``send`` publishes each envelope on ``bridge.v1.PEER.US`` with ``Nats-Msg-Id`` = its hash and
waits for the broker's PubAck; the peer's signed answer arrives later, pulled by our consumer
(``bridge.transports.relay.consumer``), which hands it here (``offer``). A PubAck proves
nothing to us: the outbox row is done only when the engine has verified the signed answer.

Several envelopes may be in flight at once (PROTOCOL.md §8.7): each ``send`` adds to those
awaited, unless it starts the window over (it begins at or before the last one sent: after a
failure or a rewind), and the loop's ``let_go`` takes out one whose wait ran out. Two facts
of the broker shape what is kept here:

- the broker drops a second publish of the same ``Nats-Msg-Id`` inside its duplicate window,
  so sending an envelope again brings no second answer: the answer that came while nobody
  waited for it (after the delivery loop's wait ran out) is kept, the latest per (seq, hash),
  and handed back at once when that envelope is sent again;
- an answer's broker message is acked only once the delivery loop is done with it (it asks
  for the next arrival only after the engine's transaction on that answer ended), so a daemon
  killed in between gets the answer again from the broker, never loses it. Not at ``send``:
  with a window, an answer may already be taken from here and not yet acted on when the loop
  sends more.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg

from bridge.engine.ports import Arrival, Carried, Outgoing
from bridge.transports.relay import binding
from bridge.transports.relay.link import RelayLink, RelayUnavailable

log = logging.getLogger("bridge.relay")

# Answers kept for envelopes not awaited now (a peer answering very late, or twice): few in
# practice (at most a window's worth); past this many the oldest is let go unacked, and the
# broker brings it again after its ack wait.
MAX_KEPT = 256

Key = tuple[int, bytes]


@dataclass(frozen=True, kw_only=True)
class Kept:
    """A peer's answer off the broker: its bytes, and the broker message to ack when done."""

    body: bytes
    msg: Msg | None


class RelayCourier:
    """Carries envelopes to ``peer`` through ``link``; its answers come from ``offer``."""

    def __init__(self, *, link: RelayLink, me: str, peer: str) -> None:
        self.link = link
        self.peer = peer
        self.subject = binding.subject(peer, me)
        self._queue: asyncio.Queue[tuple[Arrival, Msg | None]] = asyncio.Queue()
        self._awaited: set[Key] = set()
        self._kept: OrderedDict[Key, Kept] = OrderedDict()
        self._handed: list[Msg] = []
        self._sent_up_to = 0  # the highest seq sent since the window last started over
        # A publish failed since the window last started over: nothing after it is published
        # until it does again, so that the broker never holds an envelope past one of ours it
        # lacks (the receiver leaves such a gap unanswered, and the loop would wait for its
        # answer until its time ran out).
        self._failed = False

    async def send(self, batch: Sequence[Outgoing]) -> None:
        keys = {(env.seq, env.digest) for env in batch}
        if batch and batch[0].seq <= self._sent_up_to:
            # The window starts over (after a failure, or a rewind): the loop awaits this
            # batch alone, and what came for the others is kept for when they go again.
            self._awaited, self._failed = keys, False
            self._requeue_unawaited()
        else:
            self._awaited |= keys
        if batch:
            self._sent_up_to = max(env.seq for env in batch)
        for env in batch:
            key = (env.seq, env.digest)
            kept = self._kept.pop(key, None)
            if kept is not None:  # it came while nobody waited: the broker would not repeat it
                self._hand(key, kept)
                continue
            if self._failed:
                detail = "not published: an envelope before it could not be"
            else:
                try:
                    await self.link.publish(self.subject, env.data,
                                            binding.envelope_headers(env.data))
                    continue
                except RelayUnavailable as exc:
                    self._failed, detail = True, str(exc)
            self._awaited.discard(key)
            await self._queue.put((Arrival(seq=env.seq, digest=env.digest,
                                           result=Carried.UNREACHABLE, detail=detail), None))

    async def receive(self) -> Arrival:
        # The loop asks again only after it finished with what the last call handed it: those
        # answers are in the store now (or will come again), so the broker may drop them.
        await self._ack_handed()
        arrival, msg = await self._queue.get()
        if msg is not None:
            self._handed.append(msg)
        return arrival

    async def close(self) -> None:
        # Not acked: whether the engine finished with them is not known here. The broker
        # brings them again after its ack wait, and an answer to a finished envelope is then
        # acked by the consumer as late.
        self._handed.clear()
        self._awaited, self._sent_up_to, self._failed = set(), 0, False
        self._requeue_unawaited()

    def let_go(self, seq: int, digest: bytes) -> None:
        """No longer awaited (the loop's wait ran out): an answer for it, queued or to come,
        is kept for its next send, not handed to a loop that would drop it."""
        key = (seq, digest)
        self._awaited.discard(key)
        self._requeue_unawaited(only=key)  # the others queued are still the loop's

    def offer(self, seq: int | None, digest: bytes, body: bytes, msg: Msg | None) -> None:
        """An answer off the broker for an envelope of ours (checked by the consumer: signed
        by this peer, naming that envelope). Handed on now if that envelope is awaited, else
        kept for when it is sent again."""
        key = next((k for k in self._awaited if k[1] == digest and seq in (k[0], None)), None)
        if key is not None:
            self._hand(key, Kept(body=body, msg=msg))
            return
        if seq is None:
            seq = -1  # a rejection of bytes that were not authenticated names no seq
        self._keep((seq, digest), Kept(body=body, msg=msg))

    # ------------------------------------------------------------ the answers held

    def _hand(self, key: Key, kept: Kept) -> None:
        self._awaited.discard(key)
        self._queue.put_nowait((Arrival(seq=key[0], digest=key[1], result=Carried.ANSWERED,
                                        body=kept.body, note="the relay's answer"), kept.msg))

    def _keep(self, key: Key, kept: Kept) -> None:
        self._kept.pop(key, None)  # the latest answer replaces an earlier one (same message
        self._kept[key] = kept     # redelivered, or a newer answer such as after "unavailable")
        while len(self._kept) > MAX_KEPT:
            self._kept.popitem(last=False)

    def _requeue_unawaited(self, only: Key | None = None) -> None:
        """Answers queued for an envelope no longer awaited (with ``only``, that one) go back
        to the kept ones (the loop would drop them as not in flight, and the broker would not
        bring them again)."""
        waiting = []
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for arrival, msg in waiting:
            key = (arrival.seq, arrival.digest)
            if key in self._awaited or (only is not None and key != only):
                self._queue.put_nowait((arrival, msg))
            elif arrival.result is Carried.ANSWERED:
                self._keep(key, Kept(body=arrival.body, msg=msg))
            # else: a failed try at an envelope no longer awaited says nothing any more

    async def _ack_handed(self) -> None:
        handed, self._handed = self._handed, []
        for msg in handed:
            try:
                await msg.ack()
            except Exception as exc:  # a lost ack only means a redelivery
                log.info("relay: could not ack an answer (%s); it will come again", exc)


__all__ = ["MAX_KEPT", "RelayCourier"]
