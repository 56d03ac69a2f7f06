"""Delivery: the outbox from the sender's side. Which envelope goes next, what the peer's
signed answer to it means, and the bookkeeping that follows (PROTOCOL.md §8.3, §8.4).

An answer that is not signed by the peer, is malformed, or names another envelope is a failure:
nothing changes. A gap rewinds the outbox to the envelope the peer expects; ``unavailable``
changes nothing (the peer could not decide). Accepted or refused, the peer decided: the row is
finished and its document moves on. What carries the envelopes (``bridge.engine.ports.Courier``)
and how the answer came (an HTTP status, a relay message) are not this module's business: it
gets the answer's bytes, and a note naming how it came for the log.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bridge.core import answers as transport
from bridge.core import audit, documents
from bridge.core.errors import PeerError
from bridge.engine.context import Engine
from bridge.engine.kinds import KIND_CHECKPOINT
from bridge.engine.outcomes import DeliveryOutcome, DeliveryState
from bridge.engine.ports import Arrival, Carried, Outgoing
from bridge.engine.states import (
    DocumentState,
    ItemTransport,
    OutboxState,
    finish_envelope,
    mark_items,
    move_document,
)
from bridge.home.config import Delivery as DeliveryPolicy
from bridge.store.sqlite.store import OutboxRow

LATE_GAP_SCAN = 64
"""Receipts a gap is weighed against, at most (``Delivery._undecided_since``): an answer is
late by at most the envelopes in flight (``delivery.in_flight`` is at most 64), and a peer
answering gaps never makes the sender verify its whole history, one signature a row."""

# The items of an envelope that is delivered: queued (its answer counted the attempt), sent,
# or delivered already (an envelope a gap rewound, delivered again).
_DELIVERABLE = frozenset({ItemTransport.QUEUED, ItemTransport.SENT, ItemTransport.DELIVERED})


class Delivery:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        # Per peer, the expected_seq of a gap declined as late (``_gap``): asked again, it
        # is not declined twice.
        self._declined: dict[str, int] = {}

    def next_pending(self, peer: str) -> OutboxRow | None:
        return self.e.store.next_pending(peer)

    def count_attempt(self, row: OutboxRow) -> None:
        with self.e.store.transaction():
            self.counted(row)

    def counted(self, row: OutboxRow) -> None:
        """One more attempt at ``row`` (its items read "sent" from the first), in the
        caller's transaction."""
        self.e.store.count_attempt(row.peer, row.seq)
        if row.attempts == 0 and row.doc is not None and row.first is not None \
                and row.n is not None:
            mark_items(self.e.store, row.doc, row.first, row.n, ItemTransport.SENT,
                       previous=frozenset({ItemTransport.QUEUED}))

    def answered(self, row: OutboxRow, body: bytes, note: str = "the answer", *,
                 count: bool = False, in_flight: frozenset[int] = frozenset()
                 ) -> DeliveryOutcome:
        """Act on the peer's answer ``body`` to ``row``. ``note`` says how it came (e.g.
        "HTTP 200"), for the detail of a failure only: it decides nothing. ``count``: this
        answer ends an attempt not counted yet, counted in the answer's own transaction (one
        commit per envelope, not two). ``in_flight``: the seqs of our other envelopes on
        their way (a gap naming one of them is no loss: PROTOCOL.md §8.7)."""
        try:
            answer = transport.parse_answer(body, self.e.trust.peers[row.peer])
            transport.check_receipt_matches(answer, digest=row.digest, seq=row.seq,
                                            message_id=row.msg_id)
        except PeerError as exc:
            if count:
                self.count_attempt(row)
            return DeliveryOutcome(state=DeliveryState.FAILED, detail=f"{note} without a valid "
                                   f"signed answer ({exc.reason}): {exc}")
        if answer.result == "rejected":
            if count:
                self.count_attempt(row)
            return self._rejected(row, answer, in_flight)
        self._decided(row, answer, body, count)
        return DeliveryOutcome(state=DeliveryState.DELIVERED if answer.result == "accepted"
                               else DeliveryState.REFUSED)

    def _decided(self, row: OutboxRow, answer: transport.TransportAnswer, body: bytes,
                 count: bool) -> None:
        """The peer took ``row`` into its chain, accepted or refused: the row is finished."""
        e = self.e
        now = e.now()
        accepted = answer.result == "accepted"
        with e.store.transaction():
            if not e.store.is_pending(row.peer, row.seq):
                # Finished meanwhile by another transport's answer (a carrier file's receipts
                # while the courier had it in flight): recorded once, not twice.
                if count:
                    self.counted(row)
                return
            if count and not accepted:
                self.counted(row)
            e.audit(audit.RECEIPT_RECEIVED, row.peer, audit.receipt_body(
                seq=row.seq, envelope=row.digest, result=answer.result, reason=answer.reason,
                receipt=body), now)
            # Accepted or refused, the envelope left the queue: how fast the link drains.
            e.drains.delivered(row.peer, now, len(row.envelope))
            if accepted:
                # The attempt is counted in the row's finishing write, and its items are not
                # marked "sent" first: they read "delivered" in this same transaction.
                finish_envelope(e.store, row.peer, row.seq, OutboxState.DELIVERED, body, now,
                                attempt=count)
                self._delivered(row, now)
            else:
                self._refused(row, answer.reason, body, now)
        e.notify()

    def _refused(self, row: OutboxRow, named: str | None, body: bytes, now: int) -> None:
        e = self.e
        reason = named or "refused"
        finish_envelope(e.store, row.peer, row.seq, OutboxState.REFUSED, body, now)
        doc = e.store.document_by_rowid(row.doc) if row.doc is not None else None
        if doc is not None:
            move_document(e.store, doc, DocumentState.REFUSED, now)
        detail = "the peer refused our document"
        # A peer that predates checkpoint envelopes (PROTOCOL.md §13.7) says so; that is no
        # attack, and it is not asked again for a day (bridge/engine/peer_checkpoints.py).
        old_peer = row.kind == KIND_CHECKPOINT and named == "unknown_kind"
        if old_peer:
            detail = "the peer does not know checkpoint envelopes (an older Bridge)"
        e.store.record_refusal(peer=row.peer, seq=row.seq, digest=row.digest, reason=reason,
                               detail=detail, alarm=not old_peer, now=now)
        e.audit(audit.REFUSAL, row.peer, audit.refusal_body(
            direction="out", seq=row.seq, digest=row.digest, reason=reason, detail=detail,
            alarm=not old_peer), now)
        if old_peer:
            e.store.add_event("peer_checkpoint_unsupported", {"peer": row.peer,
                                                              "detail": detail}, now)
            return
        e.store.add_event("security_alarm", {
            "peer": row.peer, "reason": named,
            "detail": f"peer refused envelope {row.seq}"}, now)

    def _rejected(self, row: OutboxRow, answer: transport.TransportAnswer,
                  in_flight: frozenset[int]) -> DeliveryOutcome:
        """A signed rejection of ``row`` (bound to it: ``check_receipt_matches``). A gap
        names an earlier envelope to resend from; nothing else changes the outbox."""
        if answer.reason == "gap" and answer.expected_seq in in_flight:
            # The envelope the peer expects is on its way: this one overtook it (several in
            # flight, PROTOCOL.md §8.7). Sent again after it; nothing to rewind.
            return DeliveryOutcome(state=DeliveryState.OVERTAKEN,
                                   detail=f"overtook envelope {answer.expected_seq}")
        if answer.reason == "gap" and answer.expected_seq is not None:
            return self._gap(row, answer, answer.expected_seq)
        if answer.reason == transport.UNAVAILABLE:
            return DeliveryOutcome(state=DeliveryState.UNAVAILABLE,
                                   detail="the peer cannot record envelopes now")
        # Signed by the peer: it answers and will not take this (it does not know our key,
        # say). Named "rejected", not "failed", for the operator.
        return DeliveryOutcome(state=DeliveryState.FAILED, detail=f"rejected: {answer.reason}",
                               trouble="rejected")

    def _gap(self, row: OutboxRow, answer: transport.TransportAnswer, expected: int
             ) -> DeliveryOutcome:
        """Rewind to what the peer has not decided (PROTOCOL.md §8.7, a gap that comes late).
        An answer to an envelope the peer has decided since is stale: nothing is rewound. A
        gap whose envelopes the peer decided by receipts signed after it is declined once;
        the same gap again (asked after that) rewinds them all: a peer restored from an older
        copy on a host whose clock is behind its old receipts would otherwise wait for its
        clock to pass them."""
        with self.e.store.transaction():
            if not self.e.store.is_pending(row.peer, row.seq):
                return DeliveryOutcome(state=DeliveryState.REWOUND, detail=(
                    f"peer expected {expected}, and has decided envelope {row.seq} since "
                    "(a late answer): nothing to resend"))
            start = self._undecided_since(row, answer)
            if start > expected and self._declined.get(row.peer) == expected:
                start = expected
            if start > expected:
                self._declined[row.peer] = expected
            else:
                self._declined.pop(row.peer, None)
            self.e.store.rewind_outbox(row.peer, start)
        if start == expected:
            return DeliveryOutcome(state=DeliveryState.REWOUND, detail=f"peer expects {expected}")
        return DeliveryOutcome(state=DeliveryState.REWOUND, detail=(
            f"peer expected {expected}, and has decided up to {start - 1} since (a late "
            "answer)"))

    def _undecided_since(self, row: OutboxRow, answer: transport.TransportAnswer) -> int:
        """The first envelope from the gap's ``expected_seq`` that the peer has not decided
        since it signed the gap. An answer can come late (several in flight, §8.7): by the
        time it is read the peer may have decided the envelope it asked for and more, each by
        a receipt signed after the gap; those are not sent again (they would come back as
        duplicates). A receipt signed before the gap, or in the same millisecond, is one the
        peer may no longer hold (its store restored from an older copy, SECURITY.md): resent
        from there, as the gap asks.
        A stored receipt that does not verify under the key pinned now (the peer rotated
        since) proves nothing either way: resent too."""
        assert answer.expected_seq is not None
        start = answer.expected_seq
        peer_key = self.e.trust.peers[row.peer]
        last = min(row.seq, start + LATE_GAP_SCAN - 1)
        for seq, receipt in self.e.store.finished_receipts(row.peer, start, last):
            if seq != start:
                break  # a pending one: the peer has not decided it
            try:
                decided_at = transport.parse_answer(receipt, peer_key).at
            except PeerError:
                break
            if decided_at <= answer.at:
                break  # not later than the gap: the peer may have lost it (in the same ms too)
            start += 1
        return start

    def _delivered(self, row: OutboxRow, now: int) -> None:
        if row.doc is None:
            return
        store = self.e.store
        doc = store.document_by_rowid(row.doc)
        assert doc is not None
        if doc.type != documents.ACK and row.first is not None and row.n is not None:
            mark_items(store, doc.rowid, row.first, row.n, ItemTransport.DELIVERED,
                       previous=_DELIVERABLE)
        if store.pending_for_doc(doc.rowid) == 0 and doc.state in (DocumentState.QUEUED,
                                                                    DocumentState.SENDING):
            move_document(store, doc, DocumentState.DELIVERED, now)
            store.add_event("document_delivered", {"id": doc.id, "type": doc.type,
                                                   "peer": doc.peer}, now)
        elif doc.state == DocumentState.QUEUED:
            move_document(store, doc, DocumentState.SENDING, now)

    def peer_event(self, kind: str, peer: str, detail: str, reason: str | None = None) -> None:
        data = {"peer": peer, "detail": detail}
        if reason is not None:  # security alarms name a reason code, as the others do
            data["reason"] = reason
        with self.e.store.transaction():
            self.e.store.add_event(kind, data, self.e.now())
        self.e.notify()


# ============================================================ the policy, sans I/O

def backoff_delay(attempt: int, policy: DeliveryPolicy, rng: random.Random) -> float:
    """Full jitter (uniform in [0, min(cap, base * 2**attempt)]), never below 10 ms."""
    ceiling = min(policy.max_backoff, policy.initial_backoff * (2 ** min(attempt, 30)))
    return max(0.01, rng.uniform(0, ceiling))


class Retry:
    """When to try again (PROTOCOL.md §8.4): at once after progress, else after a backoff
    that grows with the failures in a row."""

    def __init__(self, policy: DeliveryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.failures = 0
        self.delivered = 0  # the highest seq the peer decided on in this run

    def after(self, seq: int, progress: bool) -> float | None:
        """The seconds to wait after an attempt at envelope ``seq`` (None: go on at once).
        Every attempt that made no progress is followed by a backoff, whatever the answer
        said: a peer answering each delivery with a gap, or a replayed answer, costs one
        attempt per backoff, never a spin."""
        if progress:
            # Progress is new ground: re-delivering what a gap rewound is not, or a peer that
            # accepts seq 1 and answers seq 2 with "gap, expected 1" would reset the backoff
            # every round.
            if seq > self.delivered:
                self.delivered, self.failures = seq, 0
            return None
        self.failures += 1
        return backoff_delay(self.failures - 1, self.policy, self.rng)


class InFlight:
    """Our envelopes a courier carries and has not answered for yet, by (seq, hash): an answer
    is paired with the row it names, never with whichever was sent last. One that names
    nothing in flight (late, replayed, or for another envelope) is dropped."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, bytes], OutboxRow] = {}

    def add(self, row: OutboxRow) -> Outgoing:
        self._rows[(row.seq, row.digest)] = row
        return Outgoing.of(row)

    def match(self, arrival: Arrival) -> OutboxRow | None:
        return self._rows.pop((arrival.seq, arrival.digest), None)

    def discard(self, row: OutboxRow) -> None:
        """``row`` is no longer awaited (no answer came in time): a late one is dropped."""
        self._rows.pop((row.seq, row.digest), None)

    def holds(self, row: OutboxRow) -> bool:
        return (row.seq, row.digest) in self._rows

    def holds_arrival(self, arrival: Arrival) -> bool:
        return (arrival.seq, arrival.digest) in self._rows

    def row(self, seq: int) -> OutboxRow:
        """The row in flight with sequence number ``seq``."""
        return next(r for (s, _), r in self._rows.items() if s == seq)

    def seqs(self) -> frozenset[int]:
        return frozenset(s for s, _ in self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class Reachability:
    """Whether the peer takes our envelopes, and the event due when that changes: one when it
    stops, one when it is back (not one per attempt)."""

    def __init__(self) -> None:
        self.reachable: bool | None = None

    def mark(self, reachable: bool) -> str | None:
        """The event kind due (``peer_back``, ``peer_unreachable``), or None."""
        if self.reachable is reachable:
            return None
        was_known = self.reachable is not None
        self.reachable = reachable
        if reachable:
            return "peer_back" if was_known else None
        return "peer_unreachable"


@dataclass(frozen=True, kw_only=True)
class Reaction:
    """What the sender does after one try: decided here, sans I/O; the loop carries it out."""

    progress: bool  # the peer decided on the envelope: the next one goes at once
    reachable: bool  # the peer takes envelopes (one event when that changes)
    detail: str  # why, for that event and the log
    counter: str | None = None  # the metric counted, if any
    pin_mismatch: bool = False  # the endpoint is not the pinned one: the security alarm
    trouble: str | None = None  # the reason code when the try went wrong (link_status.py)
    paced: bool = False  # the courier holds the next send until the peer's Retry-After


NOT_PINNED = "TLS certificate does not match the pinned one"


def carriage_reaction(arrival: Arrival) -> Reaction | None:
    """The reaction to a try that brought no answer (None: there is an answer to decide on)."""
    if arrival.result is Carried.ANSWER_TOO_LARGE:
        return Reaction(progress=False, reachable=False, detail=arrival.detail,
                        counter="delivery_failed", trouble="answer_too_large")
    if arrival.result is Carried.NOT_PINNED:
        return Reaction(progress=False, reachable=False, detail=NOT_PINNED, pin_mismatch=True,
                        trouble="tls_pin_mismatch")
    if arrival.result is Carried.UNREACHABLE:
        return Reaction(progress=False, reachable=False, detail=arrival.detail,
                        trouble="unreachable")
    if arrival.result is Carried.BUSY:
        # The peer takes envelopes, at its rate, and said when to come back: the courier holds
        # every send to it until then (one pause for all, bridge/transports/http/courier.py),
        # so the envelope goes again at once, no backoff of ours on top, and the try is not
        # counted against the envelope (the courier counts each 429, delivery_busy).
        return Reaction(progress=False, reachable=True, detail=arrival.detail, paced=True,
                        trouble="busy")
    return None


def answer_reaction(arrival: Arrival, outcome: DeliveryOutcome) -> Reaction:
    """The reaction to the peer's answer. A peer that answers but cannot record (its disk is
    full) is not reachable for delivery."""
    progress = outcome.state.progress
    # A refusal is progress (the chain moves on) and still trouble: the peer refused us.
    fine = outcome.state in (DeliveryState.DELIVERED, DeliveryState.REWOUND)
    return Reaction(progress=progress,
                    reachable=outcome.state is not DeliveryState.UNAVAILABLE,
                    detail=f"{arrival.note}: {outcome.detail or outcome.state}",
                    counter=None if progress else f"delivery_{outcome.state}",
                    trouble=None if fine else outcome.trouble or str(outcome.state))
