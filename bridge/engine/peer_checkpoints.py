"""Witnessed checkpoints between the parties (PROTOCOL.md §13.7): each party sends its peer its
largest cosigned checkpoint with its records about that peer, and the peer checks that every
checkpoint extends the one before; a log shown two ways is caught (``peer_log_split_view``).

Sending: after a witness cosigns, for each peer with document or ack records about it that a
cosigned checkpoint covers and no checkpoint envelope has carried yet, one ``checkpoint``
envelope is queued — at most one outstanding per peer. Only those records start one: the
checkpoint envelope's own records (queued, receipt) do not, so two parties never send each
other checkpoints about checkpoints for ever.

Receiving: the envelope kind's ``parse``, ``apply`` and ``refused`` (``bridge.engine.inbound``).
"""

from __future__ import annotations

import logging

from bridge.core import audit_tree, peer_log
from bridge.core.audit_tree import LoggedRecord
from bridge.core.crypto.identity import iso_time
from bridge.core.errors import BridgeError, VerificationError
from bridge.core.notes.checkpoint import Checkpoint, parse_checkpoint_text
from bridge.core.notes.note import parse_note
from bridge.engine import outbound  # a module: outbound -> queries -> witnessing -> here
from bridge.engine.context import Engine
from bridge.engine.kinds import KIND_CHECKPOINT
from bridge.store.sqlite.peer_log import PeerRecord, SentCheckpoint

log = logging.getLogger("bridge.witness")

OLD_PEER_RETRY_MS = 24 * 3600 * 1000
"""A peer that answered ``unknown_kind`` (it predates the kind) is offered one again only a
day later: it has taken the refused envelope into its chain, and is not asked again and
again."""


class PeerCheckpoints:
    """Both sides; every method runs on the database thread."""

    def __init__(self, e: Engine) -> None:
        self.e = e

    # ------------------------------------------------------------ sending

    def offer_all(self) -> int:
        """Queue a checkpoint envelope to each peer that has one due; how many were queued."""
        e = self.e
        if e.guard.faults:
            return 0
        queued = 0
        now = e.now()
        with e.store.transaction():
            for peer in sorted(e.trust.peers):
                if not e.trust.peer_key_revoked(peer) and self.offer(peer, now):
                    queued += 1
        if queued:
            e.notify()
        return queued

    def _accepted(self, peer: str, row: SentCheckpoint | None, now: int
                  ) -> tuple[int, int] | None:
        """(size, records_to) the peer last accepted; None while the last one is out."""
        if row is None:
            return 0, 0
        result = self.e.store.outbox_result(peer, row.envelope_seq)
        state, reason = result if result else ("refused", None)
        if state == "pending":
            return None
        if state == "delivered":
            return row.size, row.records_to
        if reason == "unknown_kind" and now < row.at + OLD_PEER_RETRY_MS:
            return None
        return row.accepted_size, row.accepted_records_to

    def offer(self, peer: str, now: int) -> bool:
        """Queue one checkpoint envelope to ``peer`` if one is due (in the caller's
        transaction)."""
        store = self.e.store
        row = store.checkpoint_sent(peer)
        accepted = self._accepted(peer, row, now)
        best = store.largest_cosigned()
        if accepted is None or best is None:
            return False
        (old, carried_to), (size, note) = accepted, best
        if old > size or not store.records_about(peer, row.records_to if row else 0, size, 1):
            return False  # nothing new about this peer is witnessed yet
        if not self._signed_by_current_key(note):
            # Cosigned before our key was rotated: the peer now pins the new key, so it
            # waits until a witness cosigns the new key's log (PROTOCOL.md §13.2).
            return False
        records = [LoggedRecord(record=data, index=seq - 1,
                                proof=tuple(store.audit_inclusion(seq, size)))
                   for seq, data in store.records_about(peer, carried_to, size,
                                                        peer_log.MAX_RECORDS)]
        payload = peer_log.encode(note, old, store.audit_consistency(old, size), records)
        state = outbound.queue_envelope(self.e, peer, store.outbound_state(peer),
                                        kind=KIND_CHECKPOINT, payload=payload,
                                        sender=self.e.trust.me, now=now)
        store.set_checkpoint_sent(SentCheckpoint(
            peer=peer, envelope_seq=state.last_seq, size=size,
            records_to=records[-1].index + 1 if records else carried_to, accepted_size=old,
            accepted_records_to=carried_to, at=now))
        log.info("queued checkpoint of size %d for %s with %d records", size, peer,
                 len(records))
        return True

    def _signed_by_current_key(self, note: bytes) -> bool:
        cp = parse_checkpoint_text(parse_note(note).text)
        return cp.origin == audit_tree.identity_origin(self.e.trust.me.public)

    # ------------------------------------------------------------ receiving

    def apply(self, peer: str, msg: peer_log.PeerCheckpoint, now: int) -> None:
        """A checkpoint envelope from ``peer``, in the inbound transaction: verified, judged
        against the last one kept, and kept with its records. Raises a ``PeerError`` (the
        envelope is refused in the chain) when it does not hold."""
        e = self.e
        verified = peer_log.verify(msg, party=e.trust.peers[peer], me=e.trust.me.party,
                                   witnesses=e.witnesses)
        cp = msg.checkpoint
        kept = e.store.last_peer_checkpoint(peer, cp.origin)
        peer_log.judge(
            Checkpoint(origin=cp.origin, size=kept.size, root=kept.root) if kept else None, msg)
        # The same checkpoint again (its records did not all fit in one envelope) keeps the
        # note first kept; its records are kept all the same.
        e.store.add_peer_checkpoint(peer=peer, origin=cp.origin, size=cp.size, root=cp.root,
                                    note=msg.note, witnessed_by=[w for w, _ in verified.witnessed],
                                    now=now)
        e.store.add_peer_records(peer, cp.origin, [
            PeerRecord(index=r.index, size=cp.size, digest=d, record=r.record, proof=r.proof)
            for r, d in zip(msg.records, verified.digests, strict=True)])
        e.metrics.inc("peer_checkpoints", peer=peer)

    def refused(self, peer: str, exc: BridgeError, msg: object, now: int) -> None:
        """A refused checkpoint envelope, in the refusal's transaction: a split view is a
        security alarm, with both checkpoints kept as evidence."""
        if not isinstance(exc, VerificationError) or exc.code != peer_log.SPLIT_VIEW or \
                not isinstance(msg, peer_log.PeerCheckpoint):
            return
        e = self.e
        origin = msg.checkpoint.origin
        kept = e.store.last_peer_checkpoint(peer, origin)
        detail = f"{peer} showed us two logs: {exc.message}"
        e.store.add_peer_log_conflict(peer=peer, origin=origin, reason=exc.code, detail=detail,
                                      stored_note=kept.note if kept else None,
                                      offered_note=msg.note, now=now)
        e.store.add_event("security_alarm", {"peer": peer, "reason": exc.code,
                                             "detail": detail}, now)
        log.error("security alarm: %s", detail)
        # Not cleared: a split view is for the operator to look into (health says degraded).
        e.metrics.set_fault(exc.code, detail)

    def status(self) -> dict[str, dict[str, object]]:
        """Per peer: the last checkpoint of its log kept, who cosigned it, when, and the
        split views caught (health's ``peer_logs``)."""
        out = {}
        for peer in sorted(self.e.trust.peers):
            summary = self.e.store.peer_log_summary(peer)
            at = summary["at"]
            out[peer] = {**summary, "at": iso_time(at) if isinstance(at, int) else None}
        return out

    def evidence(self, digests: set[bytes]) -> list[dict[str, object]]:
        """The peer's witnessed records of these documents, for a receipt (§13.5, §13.7)."""
        return self.e.store.peer_witnessed_evidence(digests)


__all__ = ["PeerCheckpoints"]
