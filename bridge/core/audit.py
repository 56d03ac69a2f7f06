"""The audit log: a hash chain over everything a bridge did (PROTOCOL.md §11).

Every document and acknowledgement document sent or received, every envelope queued or
accepted, every transport receipt received or issued, every refusal and every key event is one
**record**, appended in the same store transaction as the change it records, so the log and the
store can never disagree. A record is

    (seq, at, kind, peer, body, prev_hash, hash)

where ``body`` is the canonical encoding (PROTOCOL.md §2) of a map with the hashes, ids and
bytes that matter, ``prev_hash`` is the previous record's ``hash`` (32 zero bytes for seq 1), and

    record bytes = canonical {"at": at, "body": bin(body), "kind": kind, "peer": peer | nil,
                              "seq": seq, "v": 1}
    hash         = SHA-256("bridge/v1/audit" || 0x00 || prev_hash || record bytes)

Changing any field of a record breaks its own hash; removing, inserting or reordering records
breaks either the sequence numbers or the ``prev_hash`` links. ``check_chain`` walks the records
in order and names the first bad one with a diagnosis. The chain is not keyed: whoever can
rewrite the whole store can rewrite the whole log consistently. What it gives is evidence of
*partial* tampering, and a head hash that can be written down (or handed to a mediator) and
later compared.

Pure: no I/O, no clock. Records are small: one per envelope, document or refusal, never one
per item. ``bridge.core.audit_tally`` checks a log against the store a record at a time.
"""

from __future__ import annotations

import contextlib
import hmac
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.core import codec
from bridge.core.crypto.hashes import sha256
from bridge.core.crypto.identity import PARTY_RE, PublicIdentity
from bridge.core.documents import SignedHeader
from bridge.core.envelope import EnvelopeHeader
from bridge.core.errors import DecodeError, VerificationError
from bridge.core.receipts import iso_time as iso

TAG_AUDIT = b"bridge/v1/audit"
ZERO_HASH = bytes(32)
RECORD_VERSION = 1

# Record kinds (PROTOCOL.md §11.2). The log accepts any kind of this shape, so that a later
# version can add kinds without making older logs unverifiable.
KEY = "key"
DOCUMENT = "document"
ACK = "ack"
ENVELOPE_QUEUED = "envelope_queued"
ENVELOPE_RECEIVED = "envelope_received"
RECEIPT_RECEIVED = "receipt_received"
RECEIPT_ISSUED = "receipt_issued"
REFUSAL = "refusal"
KINDS = (KEY, DOCUMENT, ACK, ENVELOPE_QUEUED, ENVELOPE_RECEIVED, RECEIPT_RECEIVED,
         RECEIPT_ISSUED, REFUSAL)
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")

BODY_LIMITS = codec.SMALL_LIMITS
"""Bodies hold headers, receipts and short texts: never entries."""

__all__ = [
    "ACK", "DOCUMENT", "ENVELOPE_QUEUED", "ENVELOPE_RECEIVED", "KEY", "KINDS", "RECEIPT_ISSUED",
    "RECEIPT_RECEIVED", "REFUSAL", "ROW_KINDS", "TAG_AUDIT", "ZERO_HASH", "AuditProblem",
    "AuditRecord", "AuditResult", "StoreFacts", "chain_hash", "check_chain", "check_store",
    "cut_off", "document_body", "envelope_body", "key_body", "next_record", "receipt_body",
    "record_bytes", "record_holds", "refusal_body", "verify_chain",
]


def record_bytes(*, seq: int, at: int, kind: str, peer: str | None, body: bytes) -> bytes:
    """The canonical bytes a record's hash covers (everything but the two hashes)."""
    # Keys in sorted order, values canonical: pack directly (codec.pack_canonical's contract).
    return codec.pack_canonical({"at": at, "body": body, "kind": kind, "peer": peer, "seq": seq,
                                 "v": RECORD_VERSION})


def chain_hash(prev_hash: bytes, record: bytes) -> bytes:
    """``SHA-256("bridge/v1/audit" || 0x00 || prev_hash || record bytes)``."""
    return sha256(TAG_AUDIT + b"\x00" + prev_hash + record)


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One record as stored. ``hash`` is what was stored, not necessarily what it should be."""

    seq: int
    at: int  # milliseconds since the Unix epoch, UTC
    kind: str
    peer: str | None
    body: bytes = field(repr=False)
    prev_hash: bytes = field(repr=False)
    hash: bytes = field(repr=False)

    def record_bytes(self) -> bytes:
        return record_bytes(seq=self.seq, at=self.at, kind=self.kind, peer=self.peer,
                            body=self.body)

    def computed_hash(self) -> bytes:
        return chain_hash(self.prev_hash, self.record_bytes())

    def decoded_body(self) -> dict[str, Any]:
        """The body as a map; raises ``DecodeError`` if it is not a canonical map."""
        value = codec.decode(self.body, BODY_LIMITS)
        if not isinstance(value, dict):
            raise DecodeError("an audit record body is a map", reason="malformed")
        return value


def next_record(*, last_seq: int, last_hash: bytes, last_at: int, now: int, kind: str,
                peer: str | None, body: Mapping[str, Any]) -> AuditRecord:
    """The record that follows ``(last_seq, last_hash, last_at)``; ``last_seq`` 0 for an empty
    log. Times never go backwards in the log (a clock step back keeps the previous time)."""
    if not KIND_RE.match(kind):
        raise ValueError(f"invalid audit record kind {kind!r}")
    data = codec.encode(dict(body))
    seq, at = last_seq + 1, max(now, last_at)
    digest = chain_hash(last_hash, record_bytes(seq=seq, at=at, kind=kind, peer=peer, body=data))
    return AuditRecord(seq=seq, at=at, kind=kind, peer=peer, body=data, prev_hash=last_hash,
                       hash=digest)


# ---------------------------------------------------------------- record bodies
#
# What each kind of record holds (PROTOCOL.md §11.2). Hashes and ids identify; the signed bytes
# (document headers, envelope headers, transport receipts, identity statements) let the log
# stand on its own. Entries never go in: one record per document, never one per item.


def document_body(direction: str, signed: SignedHeader) -> tuple[str, dict[str, Any]]:
    """(kind, body) for a roster, manifest (``document``) or acknowledgement (``ack``) sent
    (``dir`` "out", when queued) or received (``dir`` "in", when its first chunk is accepted)."""
    h = signed.header
    body: dict[str, Any] = {"dir": direction, "id": h.id, "type": h.type, "digest": signed.digest,
                            "count": h.count, "header": signed.data, "sig": signed.signature}
    if h.type == ACK:
        body.update(answers=h.answers, answers_id=h.answers_id)
        return ACK, body
    return DOCUMENT, body


def envelope_body(header: EnvelopeHeader, header_bytes: bytes, digest: bytes, *,
                  doc: bytes | None, first: int | None, n: int | None,
                  result: str | None = None, sig: bytes | None = None,
                  ct_hash: bytes | None = None) -> dict[str, Any]:
    """An envelope queued (outbound) or taken into the chain (inbound, with its ``result``,
    and the sender's signature and the ciphertext hash it covers: what binds the header in a
    transcript, PROTOCOL.md §11.4, since the inbox keeps only the header): its header bytes
    and hash, and the document chunk it carries (document hash, first entry, number of
    entries; nil when the payload could not be read)."""
    body: dict[str, Any] = {"seq": header.seq, "id": header.message_id, "prev": header.prev,
                            "digest": digest, "header": header_bytes, "doc": doc,
                            "first": first, "n": n}
    if result is not None:
        body["result"] = result
    if sig is not None and ct_hash is not None:
        body.update(sig=sig, ct_hash=ct_hash)
    return body


def receipt_body(*, seq: int, envelope: bytes, result: str, reason: str | None,
                 receipt: bytes) -> dict[str, Any]:
    """A signed transport receipt, received from the peer for our envelope or issued by us."""
    return {"seq": seq, "envelope": envelope, "result": result, "reason": reason,
            "receipt": receipt}


def refusal_body(*, direction: str, seq: int | None, digest: bytes | None, reason: str,
                 detail: str, alarm: bool) -> dict[str, Any]:
    """A refusal: ``dir`` "in" when we refused what came in, "out" when the peer refused ours."""
    return {"dir": direction, "seq": seq, "digest": digest, "reason": reason,
            "detail": detail, "alarm": alarm}


def key_body(event: str, role: str, identity: PublicIdentity) -> dict[str, Any]:
    """A key event: ``role`` "self" or "peer"; ``event`` "added", "changed", "revoked" or
    "removed" (PROTOCOL.md §11.2)."""
    return {"event": event, "role": role, "party": identity.party, "key_id": identity.key_id,
            "fingerprint": identity.fingerprint, "statement": identity.statement}


# ---------------------------------------------------------------- verification


@dataclass(frozen=True, kw_only=True)
class AuditProblem:
    """The first bad record: where it stands (1-based position in the order given), its stored
    ``seq``, a stable reason code and a diagnosis for people."""

    position: int
    seq: int | None
    reason: str  # changed | removed | inserted | reordered | chain_broken | bad_record | time_order
    diagnosis: str

    def __str__(self) -> str:
        return f"record {self.seq if self.seq is not None else '?'}: {self.diagnosis}"


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    ok: bool
    records: int  # records that hold (all of them when ok)
    first_at: int | None
    last_at: int | None
    head: bytes  # hash of the last record that holds (ZERO_HASH for an empty log)
    kinds: Mapping[str, int] = field(default_factory=dict)
    problem: AuditProblem | None = None

    def summary(self) -> str:
        if self.problem is not None:
            return f"{self.problem} [{self.problem.reason}]"
        if not self.records:
            return "the audit log is empty"
        assert self.first_at is not None and self.last_at is not None
        return (f"{self.records} records from {iso(self.first_at)} to {iso(self.last_at)}, "
                f"head {self.head.hex()}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok, "records": self.records, "head": self.head.hex(),
            "first_at": iso(self.first_at) if self.first_at is not None else None,
            "last_at": iso(self.last_at) if self.last_at is not None else None,
            "kinds": dict(self.kinds)}
        if self.problem is not None:
            out.update(seq=self.problem.seq, position=self.problem.position,
                       reason=self.problem.reason, diagnosis=self.problem.diagnosis)
        return out


def _shape_error(r: object) -> str | None:
    if not isinstance(r, AuditRecord):
        return "is not an audit record"
    if type(r.seq) is not int or r.seq < 1:
        return "has a sequence number that is not a positive integer"
    if type(r.at) is not int or r.at < 0:
        return "has a time that is not a non-negative integer"
    if not isinstance(r.kind, str) or not KIND_RE.match(r.kind):
        return f"has an invalid kind {r.kind!r}"
    if r.peer is not None and (not isinstance(r.peer, str) or not PARTY_RE.match(r.peer)):
        return f"names an invalid peer {r.peer!r}"
    if not isinstance(r.body, bytes):
        return "has a body that is not bytes"
    for name in ("prev_hash", "hash"):
        value = getattr(r, name)
        if not isinstance(value, bytes) or len(value) != 32:
            return f"has a {name} that is not 32 bytes"
    return None


def _missing(first: int, last: int) -> str:
    return f"record {first} is missing" if first == last else f"records {first}–{last} are missing"


def check_chain(records: Sequence[AuditRecord], *, after: AuditRecord | None = None
                ) -> AuditResult:
    """Walk ``records`` in the order given (by ``seq``, as stored) and return the first bad one.
    ``after``: the record they follow, already found sound (the daemon's check at start reads
    only the records after the one its last complete check saw); None: they begin the log.

    Steps for the record at position ``i`` (PROTOCOL.md §11.3), stopping at the first failure:

    1. its fields have the right types (``bad_record``);
    2. its ``seq`` is the previous record's plus one, 1 for the first: a jump means records were
       removed (``removed``), a step back that they are out of order (``reordered``);
    3. its ``prev_hash`` is the previous record's ``hash`` (32 zero bytes for the first). If not,
       what it names tells what happened: a record further on (``reordered``), one further
       back (the records in between were ``inserted``), or no record at all (``changed`` when
       the record's own hash no longer holds either — e.g. records before it were removed and
       the rest renumbered — else ``chain_broken``: the previous record was rewritten with a
       recomputed hash, or this one forged);
    4. its ``hash`` is ``chain_hash(prev_hash, record bytes)`` (``changed``);
    5. its time is not before the previous record's (``time_order``);
    6. its body is a canonical map (``bad_record``).
    """
    kinds: Counter[str] = Counter()
    prev: AuditRecord | None = after
    positions: dict[bytes, int] = {}  # hash -> position, built only when a link fails
    for i, r in enumerate(records):
        failure = _check_record(records, i, prev, positions)
        if failure is not None:
            seq = r.seq if isinstance(r, AuditRecord) and type(r.seq) is int else None
            return _result(records[:i], kinds, AuditProblem(
                position=i + 1, seq=seq, reason=failure[0], diagnosis=failure[1]))
        kinds[r.kind] += 1
        prev = r
    return _result(records, kinds, None)


def _result(good: Sequence[AuditRecord], kinds: Mapping[str, int],
            problem: AuditProblem | None) -> AuditResult:
    return AuditResult(ok=problem is None, records=len(good),
                       first_at=good[0].at if good else None,
                       last_at=good[-1].at if good else None,
                       head=good[-1].hash if good else ZERO_HASH, kinds=dict(kinds),
                       problem=problem)


def _check_record(records: Sequence[AuditRecord], i: int, prev: AuditRecord | None,
                  positions: dict[bytes, int], body: bool = True) -> tuple[str, str] | None:
    """(reason, diagnosis) for the record at position ``i``, or None if it holds."""
    r = records[i]
    # 1. Shape.
    why = _shape_error(r)
    if why is not None:
        return "bad_record", f"the record at position {i + 1} {why}"
    expected_seq = prev.seq + 1 if prev else 1
    expected_prev = prev.hash if prev else ZERO_HASH
    after = f"record {prev.seq}" if prev else "the start of the log"
    # 2. Sequence numbers: contiguous from 1.
    if r.seq > expected_seq:
        return "removed", (f"{_missing(expected_seq, r.seq - 1)}: after {after} comes "
                           f"record {r.seq}")
    if r.seq < expected_seq:
        return "reordered", f"out of order: record {r.seq} stands after {after}"
    self_ok = hmac.compare_digest(r.computed_hash(), r.hash)
    # 3. The link to the previous record.
    if not hmac.compare_digest(r.prev_hash, expected_prev):
        if not positions:
            positions.update((x.hash, k) for k, x in enumerate(records)
                             if isinstance(x, AuditRecord) and isinstance(x.hash, bytes))
        j = positions.get(r.prev_hash)
        if j is not None and j > i:
            return "reordered", (f"out of order: record {r.seq} was written after the record "
                                 f"now numbered {records[j].seq}, but stands after {after}")
        if j is not None and j < i - 1:
            first, last = records[j + 1].seq, records[i - 1].seq
            what = f"record {first} was" if first == last else f"records {first}–{last} were"
            return "inserted", (f"{what} inserted: record {r.seq} was written directly after "
                                f"record {records[j].seq}")
        if not self_ok:
            return "changed", (f"record {r.seq} no longer matches its hash and is not chained "
                               f"to {after} (changed, or records before it removed and the "
                               "rest renumbered)")
        return "chain_broken", (f"record {r.seq} is not chained to {after}: it names a "
                                f"previous record that is not in the log ({after} was "
                                "rewritten with a recomputed hash, or a record was removed or "
                                "forged here)")
    # 4. The record's own hash.
    if not self_ok:
        return "changed", (f"record {r.seq} ({r.kind}) was changed: its time, kind, peer, body "
                           "or sequence number no longer match its hash")
    # 5. Time never goes backwards.
    if prev is not None and r.at < prev.at:
        return "time_order", (f"record {r.seq} is dated {iso(r.at)}, before record {prev.seq} "
                              f"({iso(prev.at)})")
    # 6. The body is a canonical map (unless the caller decodes it: ``record_holds``).
    try:
        if body:
            r.decoded_body()
    except DecodeError as exc:
        return "bad_record", f"record {r.seq} has a body that is not a canonical map ({exc})"
    return None


def record_holds(r: AuditRecord, prev: AuditRecord | None) -> dict[str, Any] | None:
    """``r``'s body if it holds after ``prev`` (None: the log's first) as ``check_chain`` checks
    it, without the diagnosis of a broken link (that reads the whole log); else None."""
    if _check_record([r], 0, prev, {}, body=False) is None:
        with contextlib.suppress(DecodeError):
            return r.decoded_body()
    return None


def verify_chain(records: Sequence[AuditRecord]) -> AuditResult:
    """Like ``check_chain``, but raises ``VerificationError`` naming the first bad record."""
    out = check_chain(records)
    if out.problem is not None:
        raise VerificationError(str(out.problem), reason=out.problem.reason)
    return out


# ---------------------------------------------------------------- the store against the log


@dataclass(frozen=True, kw_only=True)
class StoreFacts:
    """What the store holds that the log must account for, one for one."""

    documents: set[bytes]  # document hashes (rosters, manifests, acknowledgements)
    outbox: set[tuple[str, int, bytes]]  # (peer, seq, envelope hash)
    inbox: set[tuple[str, int, bytes]]
    receipts: set[tuple[str, int]]  # outbound envelopes with the peer's receipt
    refusals: int
    issued: dict[tuple[str, int], bytes]
    """(peer, seq) -> SHA-256 of the receipt bytes we issued for that inbound envelope: one per
    inbox row, which keeps the receipt to answer the envelope again if it comes again."""
    leaves: int
    """Leaves of the log's Merkle tree (PROTOCOL.md §13.1): one per record, of whatever kind,
    written in the record's own transaction."""
    checkpoint: int
    """The largest log size the party signed a checkpoint of (§13.2); 0 before the first."""


ROW_KINDS = (DOCUMENT, ACK, ENVELOPE_QUEUED, ENVELOPE_RECEIVED, RECEIPT_RECEIVED,
             RECEIPT_ISSUED, REFUSAL)


@dataclass
class _Logged:
    """What the log says the store holds: ``StoreFacts``'s fields, read from the records."""

    docs: set[bytes] = field(default_factory=set)
    out: set[tuple[str, int, bytes]] = field(default_factory=set)
    inb: set[tuple[str, int, bytes]] = field(default_factory=set)
    got: set[tuple[str, int]] = field(default_factory=set)
    issued: dict[tuple[str, int], bytes] = field(default_factory=dict)
    refusals: int = 0

    def add(self, r: AuditRecord) -> None:
        b = r.decoded_body()
        if r.kind in (DOCUMENT, ACK):
            self.docs.add(b["digest"])
        elif r.kind == ENVELOPE_QUEUED:
            self.out.add((str(r.peer), b["seq"], b["digest"]))
        elif r.kind == ENVELOPE_RECEIVED:
            self.inb.add((str(r.peer), b["seq"], b["digest"]))
        elif r.kind == RECEIPT_RECEIVED:
            self.got.add((str(r.peer), b["seq"]))
        elif r.kind == RECEIPT_ISSUED:
            self.issued[(str(r.peer), b["seq"])] = sha256(b["receipt"])
        else:
            self.refusals += 1


def check_store(records: Sequence[AuditRecord], facts: StoreFacts) -> str | None:
    """Run after ``check_chain`` holds: a diagnosis if the store and the log disagree (a store
    row without its record, a record without its row: e.g. the log's tail cut off, or rows
    added or removed behind the daemon's back), else None.

    A tail cut off is caught whatever its last record was: by the log's tree, which has a leaf
    for every record, whatever its kind (a key event has no row of its own), by the checkpoints
    the party signed, and by the row each record of the kinds in ``ROW_KINDS`` stands for (a
    receipt we issued: its inbox row keeps the receipt), when the tree was cut too."""
    logged = _Logged()
    for r in records:
        if r.kind not in ROW_KINDS:
            continue
        try:
            logged.add(r)
        except (DecodeError, KeyError, TypeError):
            return f"record {r.seq} ({r.kind}) does not have the fields of its kind"
    return cut_off(len(records), leaves=facts.leaves, checkpoint=facts.checkpoint) or \
        _rows_against(logged, facts)


def cut_off(n: int, *, leaves: int, checkpoint: int) -> str | None:
    """The log's length ``n`` against its tree's ``leaves`` and the largest ``checkpoint``
    the party signed of it: a diagnosis if its tail was cut off (or added to), else None."""
    if leaves > n:
        return (f"the log's tree has {leaves} leaves but the audit log {n} records: "
                f"{_missing(n + 1, leaves)} (its tail cut off)")
    if leaves < n:
        return (f"the audit log has {n} records but its tree {leaves} leaves: "
                "records were appended behind the daemon's back")
    if checkpoint > n:
        return (f"the party signed a checkpoint of {checkpoint} records but the audit "
                f"log has {n}: {_missing(n + 1, checkpoint)} (its tail cut off)")
    return None


def _rows_against(logged: _Logged, facts: StoreFacts) -> str | None:
    for digest in sorted(facts.documents - logged.docs):
        return f"document {digest.hex()[:16]}… is in the store but not in the audit log"
    for digest in sorted(logged.docs - facts.documents):
        return f"document {digest.hex()[:16]}… is in the audit log but not in the store"
    for what, store_set, log_set in (("outbound envelope", facts.outbox, logged.out),
                                     ("inbound envelope", facts.inbox, logged.inb)):
        for peer, seq, digest in sorted(store_set - log_set):
            return (f"{what} {seq} ({peer}, hash {digest.hex()[:16]}…) is in the store but "
                    "not in the audit log")
        for peer, seq, digest in sorted(log_set - store_set):
            return (f"{what} {seq} ({peer}, hash {digest.hex()[:16]}…) is in the audit log "
                    "but not in the store")
    for peer, seq in sorted(facts.receipts - logged.got):
        return (f"the receipt for outbound envelope {seq} ({peer}) is in the store but not in "
                "the audit log")
    for peer, seq in sorted(logged.got - facts.receipts):
        return (f"the receipt for outbound envelope {seq} ({peer}) is in the audit log but not "
                "in the store")
    return _issued_against(logged.issued, facts.issued) or (
        None if facts.refusals == logged.refusals
        else f"the store holds {facts.refusals} refusals, the audit log {logged.refusals}")


def _issued_against(logged: dict[tuple[str, int], bytes],
                    stored: dict[tuple[str, int], bytes]) -> str | None:
    for peer, seq in sorted(stored.keys() | logged.keys()):
        where = f"the receipt we issued for inbound envelope {seq} ({peer})"
        if (peer, seq) not in logged:
            return f"{where} is in the store but not in the audit log"
        if (peer, seq) not in stored:
            return f"{where} is in the audit log but not in the store"
        if not hmac.compare_digest(logged[(peer, seq)], stored[(peer, seq)]):
            return f"{where} in the store is not the one the audit log records"
    return None
