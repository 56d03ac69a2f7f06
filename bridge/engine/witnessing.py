"""The party's side of witnessing (PROTOCOL.md §13.4), sans I/O: the checkpoint to submit, what
a witness's answer means, the cosignatures kept, and the alarm when a witness refuses the log.

The loop that carries the requests (``bridge/witness/submitter.py``) runs these on the
database thread; it never holds up an exchange: the log is appended in the exchange's own
transactions, and witnessing reads it afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bridge.core import audit, audit_tree
from bridge.core.crypto.identity import PublicIdentity, iso_time
from bridge.core.errors import DecodeError, VerificationError
from bridge.core.notes import witness_wire
from bridge.core.notes.checkpoint import witness_key_name
from bridge.core.notes.cosignature import cosignature_verifier, read_cosignature
from bridge.core.notes.note import open_note
from bridge.engine.context import Engine
from bridge.engine.peer_checkpoints import PeerCheckpoints

log = logging.getLogger("bridge.witness")

REFRESH_MS = 86_400_000
"""A log that has not grown is submitted again, the same size, once its last cosignature is
a day old: the witness cosigns it anew with its time now, and the clock reading that judges
deadlines (``witnessed_time.MAX_AGE_MS``, 7 days) never goes stale on a quiet log."""

# What the party makes of an answer (tlog-witness §add-checkpoint).
COSIGNED, RESYNC, ALARM, REFUSED, RETRY = "cosigned", "resync", "alarm", "refused", "retry"


@dataclass(frozen=True, kw_only=True)
class Submission:
    """One add-checkpoint request, ready to send."""

    size: int
    old: int
    body: bytes
    note: bytes  # our signed checkpoint
    signed_at: int | None = None  # our clock when we signed it (ms): one end of the skew


@dataclass(frozen=True, kw_only=True)
class Reading:
    kind: str
    reason: str
    detail: str
    size: int | None = None
    timestamp: int | None = None
    line: bytes | None = None
    signed_at: int | None = None  # the submission's, for the clock reading (§13.9)


def read_answer(sub: Submission, status: int, content_type: str, body: bytes,
                witness: PublicIdentity) -> Reading:
    """What the witness's answer to ``sub`` says about our log."""
    if status == 200:
        return _read_cosignature(sub, body, witness)
    if status == 409:
        size = witness_wire.parse_size(body) if content_type == witness_wire.SIZE_MEDIA_TYPE \
            else None
        if size is None:
            return Reading(kind=RETRY, reason="bad_answer", detail="a 409 without a size")
        if size > sub.size:
            return Reading(kind=ALARM, reason="witness_refused_rollback", size=size, detail=(
                f"the witness has cosigned this log up to size {size}, but it holds only "
                f"{sub.size} records: the audit log was rolled back (a store restored from "
                "an older copy?) or rewritten"))
        if size == sub.old:
            return Reading(kind=ALARM, reason="witness_refused_fork", size=size, detail=(
                f"the witness cosigned size {size} with another root: the audit log was "
                "rewritten"))
        return Reading(kind=RESYNC, reason="stale_old_size", size=size,
                       detail=f"the witness has size {size}")
    if status == 422:
        return Reading(kind=ALARM, reason="witness_refused_fork", detail=(
            f"the witness found our log of size {sub.size} inconsistent with what it cosigned "
            f"at size {sub.old}: the audit log was rewritten or forked"))
    if status in (400, 403, 404):
        why = {400: "witness_bad_request", 403: "witness_unknown_key",
               404: "witness_unknown_origin"}[status]
        return Reading(kind=REFUSED, reason=why, detail=f"the witness answered {status}")
    return Reading(kind=RETRY, reason="unavailable", detail=f"the witness answered {status}")


def _read_cosignature(sub: Submission, body: bytes, witness: PublicIdentity) -> Reading:
    name = witness_key_name(witness.party, witness.fingerprint)
    try:
        _, good = open_note(sub.note + body, [cosignature_verifier(name, witness.note_key)])
    except (DecodeError, VerificationError) as exc:
        return Reading(kind=ALARM, reason="witness_bad_cosignature",
                       detail=f"the witness's answer does not verify: {exc}")
    read = read_cosignature(good[0])
    assert read is not None  # the verifier accepted it, so it has the shape
    return Reading(kind=COSIGNED, reason="cosigned", detail=f"cosigned size {sub.size}",
                   size=sub.size, timestamp=read[0], line=good[0].line(),
                   signed_at=sub.signed_at)


class Witnessing:
    """The store's side; every method runs on the database thread."""

    def __init__(self, e: Engine) -> None:
        self.e = e
        self.peer_checkpoints = PeerCheckpoints(e)

    def status(self, witnesses: list[str]) -> dict[str, Any]:
        """Per witness: the log's size, the largest size cosigned, when, and our clock's skew
        against the witness's (our time at signing that checkpoint minus the witness's time
        in its cosignature: the request's delay is in it, so it is a bound to within a few
        seconds, not a measurement to the millisecond)."""
        store = self.e.store
        size = store.audit_tree_size()
        out: dict[str, Any] = {}
        for name in witnesses:
            rows = store.cosignatures(name)
            last = rows[-1] if rows else None
            clock = store.latest_clock_reading(name)
            out[name] = {"log_size": size, "cosigned_size": last.size if last else None,
                         "cosigned_at": iso_time(clock[1] * 1000) if clock else None,
                         "skew_seconds": round(clock[0] / 1000 - clock[1], 1)
                         if clock else None}
        return out

    def evidence(self, digests: set[bytes]) -> list[dict[str, Any]]:
        """The ``witnessed`` entries of a receipt of these documents (PROTOCOL.md §13.5): our
        own records, then the peer's that came with its checkpoints (§13.7)."""
        return [*self.e.store.witnessed_evidence(digests),
                *self.peer_checkpoints.evidence(digests)]

    def last_cosigned(self, witness: str) -> int:
        rows = self.e.store.cosignatures(witness)
        return max((r.size for r in rows), default=0)

    def prepare(self, old: int, done: int, *, force: bool = False) -> Submission | None:
        """A checkpoint of the whole log, signed and kept, with the proof from ``old``; None
        when the log has not grown past ``done`` (what this witness already cosigned), unless
        ``force``: the first submission after a start is made whatever the size, so that a
        store restored from an older copy is told by the witness at once."""
        store = self.e.store
        size = store.audit_tree_size()
        if size == 0 or (size == done == old and not force):
            return None
        old = min(old, size)  # a witness ahead of us answers 409 with its size: the alarm
        root = store.audit_root(size)
        note = audit_tree.sign_log_checkpoint(self.e.trust.me, size, root)
        now = self.e.now()
        with store.transaction():
            store.add_checkpoint(size=size, root=root, note=note, now=now)
        proof = store.audit_consistency(old, size)
        return Submission(size=size, old=old, note=note, signed_at=now,
                          body=witness_wire.format_request(old, proof, note))

    def keep(self, witness: str, reading: Reading) -> None:
        assert reading.size is not None and reading.timestamp is not None and reading.line
        with self.e.store.transaction():
            self.e.store.add_cosignature(witness=witness, size=reading.size,
                                         timestamp=reading.timestamp, line=reading.line)
            if reading.signed_at is not None:
                # Every verified cosignature, the same size's again too, is a fresh reading
                # of our clock against the witness's (§13.9); the size's first cosignature
                # stays the receipts' evidence.
                self.e.store.set_clock_reading(witness=witness, ours=reading.signed_at,
                                               timestamp=reading.timestamp)
        for reason in ("witness_refused_rollback", "witness_refused_fork",
                       "witness_bad_cosignature"):
            self.e.metrics.clear_fault(reason)
        self.e.metrics.inc("witness_cosignatures", witness=witness)
        # Each peer is sent what is now witnessed of our records about it (§13.7).
        self.peer_checkpoints.offer_all()

    def alarm(self, witness: str, reading: Reading) -> None:
        """A witness refused our log: a security alarm (event, refusal row, audit record)."""
        e, now = self.e, self.e.now()
        detail = f"witness {witness}: {reading.detail}"
        with e.store.transaction():
            e.store.record_refusal(peer=None, seq=None, digest=None, reason=reading.reason,
                                   detail=detail, alarm=True, now=now)
            e.audit(audit.REFUSAL, None, audit.refusal_body(
                direction="out", seq=None, digest=None, reason=reading.reason, detail=detail,
                alarm=True), now)
            e.store.add_event("security_alarm", {"witness": witness, "reason": reading.reason,
                                                 "detail": detail}, now)
        log.error("security alarm: %s", detail)
        e.metrics.inc("witness_refusals", witness=witness, reason=reading.reason)
        # A fault until the witness cosigns again: health says degraded, /metrics has it.
        e.metrics.set_fault(reading.reason, detail)
        e.notify()

    def refused(self, witness: str, reading: Reading) -> None:
        self.e.metrics.inc("witness_refusals", witness=witness, reason=reading.reason)
        with self.e.store.transaction():
            self.e.store.add_event("witness_refused", {"witness": witness,
                                                       "reason": reading.reason,
                                                       "detail": reading.detail}, self.e.now())
        self.e.notify()


__all__ = ["ALARM", "COSIGNED", "REFRESH_MS", "REFUSED", "RESYNC", "RETRY", "Reading", "Submission",
           "Witnessing", "read_answer"]
