"""A party's witnessed checkpoints, sent to its peer (PROTOCOL.md §13.7): the ``checkpoint``
envelope's payload, what the peer checks in it, and whether it extends what the peer saw.

The payload is the canonical map

    {"note":    bin,      the party's signed checkpoint (C2SP signed note) with the witnesses'
                          cosignature lines, as the party keeps it
     "old":     int,      the size of the last checkpoint of this log the peer accepted (0: none)
     "proof":   [bin32],  the RFC 9162 §2.1.4 consistency proof from ``old`` to the note's size
     "records": [{"index": int, "proof": [bin32], "record": bin}, ...]}
                          the party's document and ack records about the peer, each with its
                          inclusion proof in the note's tree (at most ``MAX_RECORDS``)

A split view — the party showing its peer a log that is not an extension of one it showed it
before (a smaller size, the same size with another root, or a proof that does not hold) — is
``peer_log_split_view``: the peer keeps both checkpoints, both signed by the party, as
evidence anyone can check offline.

Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.core import audit, audit_tree, codec, logtree
from bridge.core.crypto.identity import PublicIdentity
from bridge.core.errors import DecodeError, InputError, VerificationError
from bridge.core.merkle import HASH_SIZE
from bridge.core.notes.checkpoint import Checkpoint, parse_checkpoint_text, witness_key_name
from bridge.core.notes.cosignature import cosignature_verifier, read_cosignature
from bridge.core.notes.note import MAX_KEY_NAME_BYTES, MAX_NOTE_BYTES, open_note, parse_note
from bridge.core.printable import quoted

MAX_RECORDS = 64
"""Records carried in one envelope: one per document or acknowledgement, never one per item,
so a 100,000-item exchange needs a few; more wait for the next envelope."""
LIMITS = codec.Limits(max_bytes=8 * 1024 * 1024, max_items=4096, max_str=16 * 1024,
                      max_bin=2 * audit.BODY_LIMITS.max_bytes)
KEYS = frozenset({"note", "old", "proof", "records"})
RECORD_KEYS = frozenset({"index", "proof", "record"})

BAD = "bad_peer_checkpoint"
SPLIT_VIEW = "peer_log_split_view"
UNVERIFIABLE = "peer_checkpoint_unverifiable"

__all__ = ["BAD", "LIMITS", "MAX_RECORDS", "SPLIT_VIEW", "UNVERIFIABLE", "PeerCheckpoint",
           "VerifiedCheckpoint", "decode", "encode", "judge", "verify"]


def _bad(why: str) -> DecodeError:
    return DecodeError(f"checkpoint envelope: {why}", reason=BAD)


def _hashes(value: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > logtree.MAX_PROOF_HASHES or not all(
            isinstance(h, bytes) and len(h) == HASH_SIZE for h in value):
        raise _bad(f"{what} is a list of at most {logtree.MAX_PROOF_HASHES} 32-byte hashes")
    return tuple(value)


@dataclass(frozen=True, kw_only=True)
class PeerCheckpoint:
    """A decoded ``checkpoint`` payload; its shape is checked on construction, its signatures
    and proofs by :func:`verify` and :func:`judge`."""

    note: bytes
    checkpoint: Checkpoint
    old: int
    proof: tuple[bytes, ...]
    records: tuple[audit_tree.LoggedRecord, ...]

    def __post_init__(self) -> None:
        if len(self.note) > MAX_NOTE_BYTES:
            raise _bad(f"the note is over {MAX_NOTE_BYTES} bytes")
        if type(self.old) is not int or not 0 <= self.old <= self.checkpoint.size:
            raise _bad("old is a size from 0 to the checkpoint's")
        _hashes(list(self.proof), "the consistency proof")
        if len(self.records) > MAX_RECORDS:
            raise _bad(f"more than {MAX_RECORDS} records")
        indexes = [r.index for r in self.records]
        if indexes != sorted(set(indexes)) or any(
                not 0 <= i < self.checkpoint.size for i in indexes):
            raise _bad("record indexes increase and lie in the checkpoint's tree")

    def to_payload(self) -> bytes:
        return encode(self.note, self.old, self.proof, self.records)


def encode(note: bytes, old: int, proof: tuple[bytes, ...] | list[bytes],
           records: tuple[audit_tree.LoggedRecord, ...] | list[audit_tree.LoggedRecord]
           ) -> bytes:
    return codec.encode({"note": note, "old": old, "proof": list(proof), "records": [
        {"index": r.index, "proof": list(r.proof), "record": r.record} for r in records]})


def decode(payload: bytes) -> PeerCheckpoint:
    """The payload's message, or :class:`DecodeError` (``bad_peer_checkpoint``)."""
    value = codec.decode(payload, LIMITS)
    if not isinstance(value, dict) or set(value) != KEYS:
        raise _bad("the payload is {note, old, proof, records}")
    note, records = value["note"], value["records"]
    if not isinstance(note, bytes) or not isinstance(records, list):
        raise _bad("note is bin and records a list")
    if len(records) > MAX_RECORDS:
        raise _bad(f"more than {MAX_RECORDS} records")
    try:
        checkpoint = parse_checkpoint_text(parse_note(note).text)
    except DecodeError as exc:
        raise _bad(exc.message) from exc
    return PeerCheckpoint(note=note, checkpoint=checkpoint, old=value["old"],
                          proof=_hashes(value["proof"], "the consistency proof"),
                          records=tuple(_record(r) for r in records))


def _record(value: object) -> audit_tree.LoggedRecord:
    if not isinstance(value, dict) or set(value) != RECORD_KEYS or \
            type(value["index"]) is not int or not isinstance(value["record"], bytes):
        raise _bad("a record is {index, proof, record}")
    if len(value["record"]) > audit.BODY_LIMITS.max_bytes * 2:
        raise _bad("a record is over its bound")
    return audit_tree.LoggedRecord(record=value["record"], index=value["index"],
                                   proof=_hashes(value["proof"], "an inclusion proof"))


@dataclass(frozen=True, kw_only=True)
class VerifiedCheckpoint:
    """A message whose signatures and record proofs hold: which pinned witnesses cosigned it
    (name, POSIX seconds), and each record with the digest of the document it logs."""

    message: PeerCheckpoint
    witnessed: tuple[tuple[str, int], ...]
    digests: tuple[bytes, ...]


def verify(msg: PeerCheckpoint, *, party: PublicIdentity, me: str,
           witnesses: Mapping[str, PublicIdentity]) -> VerifiedCheckpoint:
    """Check ``msg`` from ``party`` to ``me``: the checkpoint is of the party's log, signed by
    its pinned key; each cosignature of a witness pinned here verifies (other witnesses'
    lines are kept, not trusted); each record is a document or ack record about ``me``,
    included in the checkpoint's tree. :class:`VerificationError` with the reason otherwise."""
    cp = msg.checkpoint
    origin = audit_tree.identity_origin(party)
    if cp.origin != origin:
        # A peer's origin (at most MAX_KEY_NAME_BYTES), escaped: the alarm is logged and shown.
        raise VerificationError(f"the checkpoint is of log {quoted(cp.origin, MAX_KEY_NAME_BYTES)}"
                                f", not {party.party}'s "
                                f"({origin})", reason="wrong_origin")
    try:
        open_note(msg.note, [audit_tree.log_verifier(party)])
    except VerificationError as exc:
        raise VerificationError(f"the checkpoint is not signed by {party.party}'s pinned key: "
                                f"{exc.message}", reason="bad_checkpoint") from exc
    witnessed = tuple((name, t) for name, w in sorted(witnesses.items())
                      if (t := _cosigned_at(msg.note, w)) is not None)
    return VerifiedCheckpoint(message=msg, witnessed=witnessed,
                              digests=tuple(_about(r, cp, me) for r in msg.records))


def _cosigned_at(note: bytes, witness: PublicIdentity) -> int | None:
    """The time of ``witness``'s cosignature on the note; None when it has none."""
    name = witness_key_name(witness.party, witness.fingerprint)
    try:
        _, good = open_note(note, [cosignature_verifier(name, witness.note_key)])
    except VerificationError as exc:
        if exc.code == "unknown_key":
            return None
        raise VerificationError(f"the cosignature of witness {witness.party} does not verify",
                                reason="bad_cosignature") from exc
    read = read_cosignature(good[0])
    return read[0] if read is not None else None


def _about(logged: audit_tree.LoggedRecord, cp: Checkpoint, me: str) -> bytes:
    fields = audit_tree.verify_logged(logged, cp)
    body: Any = None
    if fields.get("kind") in (audit.DOCUMENT, audit.ACK) and isinstance(fields.get("body"),
                                                                         bytes):
        body = codec.decode(fields["body"], audit.BODY_LIMITS)
    digest = body.get("digest") if isinstance(body, dict) else None
    if fields.get("peer") != me or not isinstance(digest, bytes):
        raise VerificationError(f"record {logged.index + 1} is not a document or "
                                f"acknowledgement record about {me}", reason="wrong_record")
    return digest


def judge(stored: Checkpoint | None, msg: PeerCheckpoint) -> str:
    """Whether ``msg`` extends ``stored``, the last checkpoint of this log kept from the peer:
    ``"first"`` (nothing kept yet: taken on first use), ``"same"`` or ``"extends"``. A split
    view raises ``peer_log_split_view``; a proof from another size than the one kept (our
    store restored from an older copy) raises ``peer_checkpoint_unverifiable``."""
    new = msg.checkpoint
    if stored is None:
        if msg.old == 0 and msg.proof:
            raise _bad("a proof from size 0 is empty")
        return "first"
    if new.size < stored.size:
        raise VerificationError(f"the peer's log is of size {new.size}, smaller than the "
                                f"{stored.size} it showed before", reason=SPLIT_VIEW)
    if new.size == stored.size:
        if new.root != stored.root:
            raise VerificationError(f"the peer's log of size {new.size} has another root "
                                    "than it showed before", reason=SPLIT_VIEW)
        return "same"
    if msg.old != stored.size:
        raise VerificationError(f"the proof is from size {msg.old}, but the last checkpoint "
                                f"kept is of size {stored.size}", reason=UNVERIFIABLE)
    _consistent(stored.size, stored.root, msg)
    return "extends"


def _consistent(old: int, old_root: bytes, msg: PeerCheckpoint) -> None:
    new = msg.checkpoint
    try:
        logtree.verify_consistency(old, new.size, msg.proof, old_root, new.root)
    except (VerificationError, InputError) as exc:
        raise VerificationError(
            f"the peer's log of size {new.size} is not an extension of the one of size {old} "
            f"it showed before: {exc}",
            reason=SPLIT_VIEW) from exc
