"""The party's consumer: what the mediator's broker holds for us, pulled from our durable
consumer, judged, and acked only once it is safe to forget (PROTOCOL.md, "Relay binding").

- An envelope goes through ``Exchange.receive_envelope`` exactly as the HTTP endpoint sends it
  there (the same size limit and sender's rate, decoded beside the database thread). A large
  one is opened and prepared beside the daemon first (``bridge.transports.ahead``), and while
  one is taken in, the next large ones of the pulled batch are (a sender keeps up to
  ``[delivery] in_flight`` envelopes on their way). Only after that transaction has committed
  is the signed answer published toward the sender (with its PubAck), and only then is the
  broker message acked: a daemon killed at any point gets the message again, and a message
  delivered twice is answered with the original receipt.
- An answer is checked (signed by the peer its subject names, naming the envelope its headers
  name) and handed to that peer's ``RelayCourier``; its broker message is acked when the
  delivery loop is done with it, or at once when it answers an envelope already finished.
- An envelope past the next one due from its sender (a gap, PROTOCOL.md §8.6) is left to the
  broker, unanswered the first times it comes (see ``GAP_ANSWERED_FROM``), and decided when it
  comes after the ones before it.
- Anything else (a subject, header or size the binding does not allow, a body that is not what
  its ``Nats-Msg-Id`` says, an envelope on another sender's subject, an answer that does not
  verify) is refused with a reason code, recorded as a refusal (source ``relay subject …``),
  and acked so that it does not come back; nothing of it is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bridge.core import answers as transport
from bridge.core.envelope import envelope_hash
from bridge.core.errors import PeerError
from bridge.core.printable import printable
from bridge.engine.chunk_ahead import Ahead
from bridge.engine.exchange import Exchange
from bridge.engine.inbound import Parsed, decode_envelope
from bridge.engine.limits import RateLimiter, claimed_sender
from bridge.engine.metrics import Metrics
from bridge.engine.outcomes import Answer, Outcome
from bridge.engine.ports import RunInDb
from bridge.home.config import Limits
from bridge.transports.ahead import AHEAD_BYTES, PrepareBeside, ahead_of_turn
from bridge.transports.relay import binding
from bridge.transports.relay.courier import RelayCourier
from bridge.transports.relay.link import RelayLink, RelayUnavailable

log = logging.getLogger("bridge.relay")

# How long one pull waits on the broker for a message before asking again.
FETCH_WAIT = 5.0
# The answer names the envelope's seq for these outcomes only (the others answer bytes that
# were not authenticated, or nothing was decided: PROTOCOL §8.3).
SEQ_NAMED = frozenset({Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.REFUSED,
                       Outcome.OUT_OF_SEQUENCE})
# Our store could not record the envelope: the broker keeps it and brings it again this much
# later (the sender's copy would be dropped as a duplicate: the broker's copy is the one).
UNAVAILABLE_RETRY = 5.0
# The answer could not be published: the envelope comes again this much later.
PUBLISH_RETRY = 1.0
# An envelope past the next one due (a gap: the one before it was left to the broker, or is
# brought again behind it) comes again this much later, doubling each time it is brought
# again, up to GAP_RETRY_MAX: it is decided once the ones before it are in, and is never
# acked undecided (its sender's resend, the same bytes, would be dropped as a duplicate).
GAP_RETRY = 0.5
GAP_RETRY_MAX = 60.0
# Its gap is answered only from this many times brought on (about a minute of waits, the
# broker's default ack wait: by then an envelope before it that the broker holds has come).
# Before, the sender is told nothing: a gap that only means the broker brings the envelopes of
# a window out of order would make it resend what the broker will not carry twice, and a gap
# said again after the envelope it names was decided reads as a peer restored from an older
# copy (PROTOCOL.md §8.7), which it is not. A peer that lost envelopes still hears of it.
GAP_ANSWERED_FROM = 8
# While an envelope is being taken in, the broker is told so this often (its ack wait would
# otherwise run out on a large one and bring it again).
PROGRESS_EVERY = 2.0
# How many large envelopes of a pulled batch are prepared beside the daemon at once, the one
# being taken in included: one per checking process (more would only queue there), and their
# payloads are all that is held for it.
PREPARED_AT_ONCE = 3

_Decoded = tuple[Parsed | PeerError, Ahead | None]


class RelayConsumer:
    """Pulls ``me``'s consumer for as long as the daemon runs."""

    def __init__(self, *, link: RelayLink, exchange: Exchange, run: RunInDb, metrics: Metrics,
                 couriers: Mapping[str, RelayCourier], limits: Limits, max_body: int,
                 batch: int, skip_acks: int = 0, beside: PrepareBeside | None = None
                 ) -> None:
        self.link = link
        self.exchange = exchange
        self.run = run
        self.metrics = metrics
        self.couriers = couriers  # the daemon's, by peer: it replaces one when a peer moves
        self.me = exchange.me.party
        self.max_body = max_body
        self.batch = batch
        self.rate = RateLimiter(rate=limits.requests_per_second, burst=limits.burst)
        # A test hook (``DaemonHooks``): the first N envelopes left unacked (as if each ack
        # were lost), so that a test sees the broker bring them again after its ack wait.
        self._skip_acks = skip_acks
        self.beside = beside
        # A pulled message's decoding (and a large chunk's preparation) started before its
        # turn, by ``id`` of the message while it is in the batch being handled.
        self._early: dict[int, asyncio.Task[_Decoded]] = {}

    async def run_forever(self) -> None:
        """One subscription per connection of the link: a link whose connection was closed
        for good (nats-py gives up on one after a protocol error from the server) makes a new
        one, and a subscription bound to the old one would pull from a closed client forever
        while health says "connected"."""
        while True:
            js = await self.link.wait_connected()
            sub = await js.pull_subscribe_bind(consumer=binding.consumer_name(self.me),
                                               stream=binding.stream_name(self.me))
            try:
                await self._consume(js, sub)
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _consume(self, js: JetStreamContext, sub: JetStreamContext.PullSubscription
                       ) -> None:
        """Pull and handle until the link is connected through another connection than
        ``js``'s. What was pulled and not handled when this ends (the link moved on, a
        failure, the daemon stopping) is given back to the broker at once (a nak), not left
        for the consumer's ack wait to bring again."""
        while True:
            batch = await self._pull(js, sub)
            if batch is None:
                return
            try:
                while batch:
                    self._look_ahead(batch)
                    await self._handle_safely(batch[0])
                    self._forget(batch.pop(0))
            finally:
                for msg in batch:
                    self._forget(msg)
                    await self._nak(msg, 0.0)

    def _look_ahead(self, batch: list[Msg]) -> None:
        """The large envelopes among the next ``PREPARED_AT_ONCE`` of ``batch`` decoded and
        prepared now, so that each is ready on its turn (a message that turns out not to be
        an envelope taken in, or an answer, only wastes that work: its turn decides)."""
        if self.beside is None:
            return
        for msg in batch[:PREPARED_AT_ONCE]:
            if len(msg.data) >= AHEAD_BYTES and id(msg) not in self._early:
                self._early[id(msg)] = asyncio.create_task(self._decoded(msg.data))

    def _forget(self, msg: Msg) -> None:
        early = self._early.pop(id(msg), None)
        if early is not None:
            early.cancel()

    async def _decoded(self, body: bytes) -> _Decoded:
        parsed = await asyncio.get_running_loop().run_in_executor(None, decode_envelope, body)
        return parsed, await ahead_of_turn(self.exchange, self.beside, body, parsed)

    async def _pull(self, js: JetStreamContext, sub: JetStreamContext.PullSubscription
                    ) -> list[Msg] | None:
        """The next messages (``[]`` after a quiet wait), or None once the link reaches the
        broker through another connection than the one ``sub`` is bound to."""
        if await self.link.wait_connected() is not js:
            log.info("relay: the connection to %s was made again; pulling through the new one",
                     self.link.settings.url)
            return None
        try:
            return list(await sub.fetch(self.batch, timeout=FETCH_WAIT))
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except (nats.js.errors.Error, nats.errors.Error, OSError) as exc:
            # Reconnecting, or the stream or consumer not there (a broker that lost its data,
            # before the mediator made them again): ask again shortly.
            log.info("relay: pulling from %s failed (%s: %s); trying again",
                     binding.stream_name(self.me), type(exc).__name__, exc)
            await asyncio.sleep(1.0)
            return []

    async def _handle_safely(self, msg: Msg) -> None:
        try:
            await self.handle(msg)
        except asyncio.CancelledError:
            raise
        except Exception:  # never the end of the consumer: the broker brings it again later
            log.exception("relay: a message on %s could not be handled; it will come again",
                          printable(msg.subject)[:200])
            await self._nak(msg, UNAVAILABLE_RETRY)

    async def handle(self, msg: Msg) -> None:
        try:
            checked = binding.parse_message(msg.subject, msg.headers, msg.data,
                                            recipient=self.me, max_body_bytes=self.max_body)
        except PeerError as exc:
            await self._refuse(msg, exc.reason, str(exc))
            return
        if checked.sender not in self.couriers:
            await self._refuse(msg, binding.REASON_SUBJECT,
                               f"{checked.sender} is not a peer pinned via the relay")
            return
        if checked.kind is binding.Kind.ENVELOPE:
            await self._envelope(msg, checked.sender)
        else:
            await self._answer(msg, checked)

    # ------------------------------------------------------------ an envelope for us

    async def _envelope(self, msg: Msg, sender: str) -> None:
        body = msg.data
        claimed = claimed_sender(body)
        if claimed is not None and claimed != sender:
            # Only the mediator can put a message on another party's subject; the answer would
            # go to the wrong party. Whatever it is, it is not taken.
            await self._refuse(msg, binding.REASON_SUBJECT,
                               f"an envelope from {printable(claimed)[:64]} on the subject of "
                               f"{sender}")
            return
        if not self.rate.allow(sender):
            # Pulled at our pace: the broker keeps it, and brings it again after the wait.
            self.metrics.inc("relay_rate_limited")
            await self._nak(msg, float(self.rate.retry_after()))
            return
        answer, seq = await self._take_in(msg, body)
        gap = answer.outcome is Outcome.OUT_OF_SEQUENCE and answer.reason == "gap"
        if gap:
            self.metrics.inc("relay_gaps_left")
            if _brought(msg) < GAP_ANSWERED_FROM:
                await self._nak(msg, _gap_retry(msg))
                return
        headers = binding.answer_headers(answer.body, seq=seq, envelope=envelope_hash(body))
        try:
            await self.link.publish(binding.subject(sender, self.me), answer.body, headers)
        except RelayUnavailable as exc:
            log.info("relay: answer to %s not published (%s); the envelope will come again",
                     sender, exc)
            await self._nak(msg, PUBLISH_RETRY)
            return
        if answer.outcome is Outcome.UNAVAILABLE or gap:
            await self._nak(msg, _gap_retry(msg) if gap else UNAVAILABLE_RETRY)
            return
        await self._ack_envelope(msg)

    async def _take_in(self, msg: Msg, body: bytes) -> tuple[Answer, int | None]:
        """The engine's answer to the envelope (its transaction committed when this returns)
        and the seq the answer names, while the broker is told it is in progress."""
        progress = asyncio.create_task(self._in_progress(msg))
        try:
            early = self._early.pop(id(msg), None)
            parsed, ahead = await (early if early is not None else self._decoded(body))
            answer: Answer = await self.run(self.exchange.receive_envelope, body, parsed,
                                            ahead)
        finally:
            progress.cancel()
        self.metrics.inc(f"envelopes_{answer.outcome.counted_as}")
        named = not isinstance(parsed, PeerError) and answer.outcome in SEQ_NAMED
        return answer, parsed[0].seq if named and not isinstance(parsed, PeerError) else None

    async def _in_progress(self, msg: Msg) -> None:
        while True:
            with contextlib.suppress(Exception):
                await msg.in_progress()
            await asyncio.sleep(PROGRESS_EVERY)

    async def _ack_envelope(self, msg: Msg) -> None:
        if self._skip_acks > 0:
            self._skip_acks -= 1
            log.warning("relay: left an envelope unacked (a test hook)")
            return
        await self._ack(msg)

    # ------------------------------------------------------------ an answer to us

    async def _answer(self, msg: Msg, checked: binding.RelayMessage) -> None:
        peer = checked.sender
        identity = self.exchange.peers.get(peer)
        assert checked.envelope is not None  # parse_message gives an answer its hints
        if identity is None:  # unpinned since its courier was made
            await self._refuse(msg, binding.REASON_SUBJECT, f"{peer} is not a pinned peer")
            return
        try:
            answer = await asyncio.get_running_loop().run_in_executor(
                None, transport.parse_answer, msg.data, identity)
            if answer.envelope != checked.envelope or answer.seq not in (checked.seq, None):
                raise PeerError("the answer's headers name another envelope than it does",
                                reason="receipt_mismatch")
        except PeerError as exc:
            await self._refuse(msg, exc.reason, f"an answer from {peer}: {exc}")
            return
        pending = await self.run(self.exchange.next_pending, peer)
        if pending is None or not _may_be_for(pending, answer):
            # The envelope it answers is finished (a redelivery, or a duplicate's answer):
            # nothing left to do with it.
            self.metrics.inc("relay_answers_late")
            log.info("relay: a late answer from %s to envelope %s; already settled", peer,
                     answer.seq)
            await self._ack(msg)
            return
        self.couriers[peer].offer(answer.seq, answer.envelope, msg.data, msg)

    # ------------------------------------------------------------ refusals and acks

    async def _refuse(self, msg: Msg, reason: str, detail: str) -> None:
        """Refused whole, recorded (at most as often as the refusal gate lets through), and
        acked: a message that can never be taken must not come back."""
        self.metrics.inc("relay_refused")
        source = f"relay subject {printable(msg.subject)[:200]}"
        admitted = self.exchange.refusal_gate.admit(("relay", source, reason))
        if admitted is not None:
            text = f"{detail}; {source}" + (f" ({admitted.note})" if admitted.note else "")
            log.warning("relay: refused a message: %s (%s)", reason, text)
            await self.run(self.exchange.record_limit_refusal, reason=reason, detail=text,
                           count=admitted.count, source=source)
        await self._ack(msg)

    async def _ack(self, msg: Msg) -> None:
        try:
            await msg.ack()
        except Exception as exc:  # a lost ack only means a redelivery
            log.info("relay: ack not sent (%s); the message will come again", exc)

    async def _nak(self, msg: Msg, delay: float) -> None:
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)


def _brought(msg: Msg) -> int:
    """How many times the broker has brought ``msg`` to us, this time included."""
    try:
        return max(1, int(msg.metadata.num_delivered or 1))
    except Exception:  # no JetStream reply subject to read it from: as the first time
        return 1


def _gap_retry(msg: Msg) -> float:
    """How long a gap waits in the broker: longer each time it comes back, so that one whose
    envelope before it never comes (the sender must resend that) costs little while it waits."""
    return min(GAP_RETRY_MAX, GAP_RETRY * 2.0 ** min(_brought(msg) - 1, 16))


def _may_be_for(pending: Any, answer: transport.TransportAnswer) -> bool:
    """Could ``answer`` be for the lowest pending envelope (an outbox row: its ``seq`` and
    ``digest``) or one after it (sent before a rewind)? Anything earlier is settled."""
    if answer.envelope == pending.digest:
        return True
    return answer.seq is not None and answer.seq > pending.seq


__all__ = ["RelayConsumer"]
