"""Transcripts: the whole exchange between two parties, checkable offline by a mediator.

A transcript (PROTOCOL.md §11.4) is one canonical map of type ``bridge.transcript`` holding, in
order, every document and acknowledgement document exchanged between two parties (signed
headers, and normally all their entries), and for each direction every envelope's header and
hash with the **recipient's signed transport receipt** for it, in sequence order. Anyone holding
the two parties' public identity files can check, with no daemon and no store, that

- every document and acknowledgement is signed by its issuer, and its entries match its root;
- every acknowledgement answers a document earlier in the transcript, binding its entries
  (the checks of a whole-document receipt, PROTOCOL.md §7.4);
- each direction's envelopes are numbered 1, 2, … with no gap, each naming the previous one's
  hash, and each has a receipt signed by the recipient naming its hash, sequence number and
  message id: proof of delivery.

``check_transcript`` returns a ``TranscriptResult`` and never raises for bad input;
``verify_transcript`` raises ``VerificationError`` naming the first failed step. Steps are
numbered as in PROTOCOL.md §11.5. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bridge import codec, documents, receipts, transport
from bridge.documents import ACK, SignedDocument, SignedHeader
from bridge.envelope import EnvelopeHeader
from bridge.errors import BridgeError, DecodeError, PeerError, VerificationError
from bridge.identity import PARTY_RE, TAG_TRANSPORT_RECEIPT, Keyring, PublicIdentity
from bridge.printable import printable as _printable
from bridge.receipts import iso_time

__all__ = [
    "TRANSCRIPT", "TRANSCRIPT_LIMITS", "TranscriptDocument", "TranscriptEnvelope",
    "TranscriptResult", "build_transcript", "check_transcript", "is_transcript",
    "verify_transcript",
]

TRANSCRIPT = "bridge.transcript"
TRANSCRIPT_VERSION = 1
ZERO_HASH = bytes(32)
TRANSCRIPT_LIMITS = codec.Limits(
    max_bytes=1024 * 1024 * 1024,
    # transcript → links → link → envelopes → envelope → carries (depth 5)
    max_depth=6,
    max_items=1_000_000,
    max_str=1024,
    # Headers, entries and receipts are each decoded again with SMALL_LIMITS.
    max_bin=codec.SMALL_LIMITS.max_bytes,
)
_KEYS = frozenset({"v", "type", "parties", "exported_at", "documents", "links"})
_LINK_KEYS = frozenset({"from", "to", "envelopes"})
_ENVELOPE_KEYS = frozenset({"header", "hash", "receipt", "carries"})
_CARRIES_KEYS = frozenset({"doc", "first", "n"})


# ---------------------------------------------------------------- building


@dataclass(frozen=True, kw_only=True)
class TranscriptDocument:
    signed: SignedHeader
    entries: Sequence[bytes] | None = field(repr=False)  # None: not included


@dataclass(frozen=True, kw_only=True)
class TranscriptEnvelope:
    header: bytes = field(repr=False)  # the envelope header bytes (PROTOCOL.md §5.1)
    hash: bytes  # the envelope hash (§5.4)
    receipt: bytes = field(repr=False)  # the recipient's signed transport receipt (§8.3)
    doc: bytes | None = None  # the document chunk it carries, when known
    first: int | None = None
    n: int | None = None


def build_transcript(*, parties: tuple[str, str], exported_at: int,
                     documents: Sequence[TranscriptDocument],
                     outbound: Sequence[TranscriptEnvelope],
                     inbound: Sequence[TranscriptEnvelope]) -> bytes:
    """``parties`` is (exporter, peer); ``outbound`` the exporter's envelopes to the peer with
    the peer's receipts, ``inbound`` the peer's envelopes with the exporter's receipts."""
    a, b = parties

    def env(e: TranscriptEnvelope) -> dict[str, Any]:
        carries = None if e.doc is None else {"doc": e.doc, "first": e.first, "n": e.n}
        return {"carries": carries, "hash": e.hash, "header": e.header, "receipt": e.receipt}

    return codec.encode({
        "v": TRANSCRIPT_VERSION, "type": TRANSCRIPT, "parties": [a, b],
        "exported_at": exported_at,
        "documents": [{"doc": d.signed.to_map(),
                       "entries": None if d.entries is None else list(d.entries)}
                      for d in documents],
        "links": [{"from": a, "to": b, "envelopes": [env(e) for e in outbound]},
                  {"from": b, "to": a, "envelopes": [env(e) for e in inbound]}],
    })


def is_transcript(data: bytes) -> bool:
    """A cheap look at the ``type`` of a top-level map, without building the rest (so that
    ``bridge verify`` can tell a transcript from a receipt before decoding either)."""
    try:
        # Read through a file object: the unpacker buffers a little at a time instead of
        # copying a transcript of hundreds of megabytes.
        unpacker = msgpack.Unpacker(io.BytesIO(data), raw=False,
                                    max_str_len=TRANSCRIPT_LIMITS.max_str,
                                    max_bin_len=TRANSCRIPT_LIMITS.max_bin,
                                    max_array_len=TRANSCRIPT_LIMITS.max_items,
                                    max_map_len=TRANSCRIPT_LIMITS.max_items)
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key == "type":
                return bool(unpacker.unpack() == TRANSCRIPT)
            unpacker.skip()
    except Exception:  # anything malformed is for the full decoder to name
        return False
    return False


# ---------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class TranscriptResult:
    """What a transcript shows, or the first reason it does not hold."""

    ok: bool
    reason: str | None = None
    diagnosis: str | None = None
    parties: tuple[str, str] | None = None
    documents: int = 0  # rosters and manifests
    acks: int = 0  # acknowledgement documents
    without_entries: int = 0  # documents whose entries were not included
    envelopes: tuple[int, int] = (0, 0)  # parties[0] → parties[1], and back
    refused: int = 0  # envelopes whose receipt says the content was refused
    undelivered: tuple[str, ...] = ()  # documents not (yet) carried whole by accepted envelopes
    first_at: int | None = None
    last_at: int | None = None

    def summary(self) -> str:
        if not self.ok:
            return f"{_printable(self.diagnosis or 'transcript does not verify')} [{self.reason}]"
        assert self.parties is not None
        a, b = self.parties
        k1, k2 = self.envelopes
        envs = (f"{k1} envelope{_s(k1)} each way" if k1 == k2 else
                f"{k1} envelope{_s(k1)} {a}→{b} and {k2} {b}→{a}")
        line = (f"transcript {a}↔{b}: {self.documents} document{_s(self.documents)}, "
                f"{self.acks} acknowledgement{_s(self.acks)}, {envs} with signed receipts")
        if self.first_at is not None and self.last_at is not None:
            line += f", from {iso_time(self.first_at)} to {iso_time(self.last_at)}"
        notes = []
        if self.refused:
            notes.append(f"{self.refused} envelope{_s(self.refused)} refused by the recipient")
        if self.without_entries:
            notes.append(f"entries of {self.without_entries} document"
                         f"{_s(self.without_entries)} not included (headers only)")
        if self.undelivered:
            notes.append(f"not carried whole by accepted envelopes: "
                         f"{', '.join(_printable(d) for d in self.undelivered[:5])}"
                         + (" …" if len(self.undelivered) > 5 else ""))
        return line + "".join(f"; {n}" for n in notes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "kind": "transcript", "reason": self.reason,
                               "diagnosis": self.diagnosis}
        if self.ok:
            assert self.parties is not None
            out.update({
                "parties": list(self.parties), "documents": self.documents, "acks": self.acks,
                "without_entries": self.without_entries,
                "envelopes": {f"{self.parties[0]}→{self.parties[1]}": self.envelopes[0],
                              f"{self.parties[1]}→{self.parties[0]}": self.envelopes[1]},
                "refused": self.refused, "undelivered": list(self.undelivered),
                "first_at": iso_time(self.first_at) if self.first_at is not None else None,
                "last_at": iso_time(self.last_at) if self.last_at is not None else None})
        return out


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _fail(message: str, reason: str) -> VerificationError:
    return VerificationError(message, reason=reason)


# ---------------------------------------------------------------- checking


def check_transcript(data: bytes, keys: Keyring) -> TranscriptResult:
    """Check a transcript against ``keys`` (the two parties' identities). Never raises for bad
    input: the result names the first step that failed."""
    try:
        return _check(data, keys)
    except BridgeError as err:
        return TranscriptResult(ok=False, reason=err.code, diagnosis=err.message)


def verify_transcript(data: bytes, keys: Keyring) -> TranscriptResult:
    """Like ``check_transcript``, but raises ``VerificationError`` unless it holds."""
    result = check_transcript(data, keys)
    if not result.ok:
        raise VerificationError(result.diagnosis or "transcript does not verify",
                                reason=result.reason or "invalid")
    return result


@dataclass
class _Doc:
    """A document of the transcript, as the checks go along."""

    position: int
    signed: SignedHeader
    entries: tuple[bytes, ...] | None
    acks: list[_Doc] = field(default_factory=list)
    carried: int = 0  # entries carried so far, in envelope order (any result)
    delivered: int = 0  # entries carried by accepted envelopes

    @property
    def name(self) -> str:
        h = self.signed.header
        return f"{'acknowledgement' if h.type == ACK else h.type} {h.id}"


class _Times:
    def __init__(self) -> None:
        self.first: int | None = None
        self.last: int | None = None

    def see(self, ms: int) -> None:
        self.first = ms if self.first is None else min(self.first, ms)
        self.last = ms if self.last is None else max(self.last, ms)


def _check(data: bytes, keys: Keyring) -> TranscriptResult:
    # 1. Decode strictly (PROTOCOL.md §2.4) within TRANSCRIPT_LIMITS; the shape of §11.4.
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail("a transcript is bytes", "bad_transcript")
    try:
        value = codec.decode(bytes(data), TRANSCRIPT_LIMITS)
    except DecodeError as exc:
        raise _fail(f"not a canonical Bridge encoding: {exc.message}", exc.reason) from exc
    if (not isinstance(value, dict) or set(value) != _KEYS or type(value["v"]) is not int
            or value["v"] != TRANSCRIPT_VERSION or value["type"] != TRANSCRIPT):
        raise _fail("not a version 1 Bridge transcript", "bad_transcript")
    # 2. Parties and links: two parties, one link each way.
    parties = value["parties"]
    if (not isinstance(parties, list) or len(parties) != 2
            or not all(isinstance(p, str) and PARTY_RE.match(p) for p in parties)
            or parties[0] == parties[1]):
        raise _fail("parties must be two different party names", "bad_transcript")
    a, b = parties
    if type(value["exported_at"]) is not int or not isinstance(value["documents"], list):
        raise _fail("exported_at must be an integer and documents a list", "bad_transcript")
    links = value["links"]
    if (not isinstance(links, list) or len(links) != 2
            or not all(isinstance(x, dict) and set(x) == _LINK_KEYS
                       and isinstance(x["envelopes"], list) for x in links)
            or (links[0]["from"], links[0]["to"]) != (a, b)
            or (links[1]["from"], links[1]["to"]) != (b, a)):
        raise _fail(f"links must be {a}→{b} then {b}→{a}", "bad_transcript")
    times = _Times()
    docs = _check_documents(value["documents"], (a, b), keys, times)
    # 4. Entries: what each acknowledgement says about each declared item.
    _check_entries(docs, keys)
    by_digest = {d.signed.digest: d for d in docs}
    counts = []
    refused = 0
    for link in links:
        k, r = _check_link(link["from"], link["to"], link["envelopes"], by_digest, keys, times)
        counts.append(k)
        refused += r
    # 6. What was delivered (reported, not required: a transcript may be taken mid-exchange).
    undelivered = tuple(d.signed.header.id for d in docs
                        if d.delivered != d.signed.header.count)
    return TranscriptResult(
        ok=True, parties=(a, b), documents=sum(d.signed.header.type != ACK for d in docs),
        acks=sum(d.signed.header.type == ACK for d in docs),
        without_entries=sum(d.entries is None for d in docs),
        envelopes=(counts[0], counts[1]), refused=refused, undelivered=undelivered,
        first_at=times.first, last_at=times.last)


def _check_documents(raw: list[Any], parties: tuple[str, str], keys: Keyring,
                     times: _Times) -> list[_Doc]:
    # 3. Documents and acknowledgements, in order.
    docs: list[_Doc] = []
    by_digest: dict[bytes, _Doc] = {}
    for n, item in enumerate(raw):
        where = f"documents[{n}]"
        # 3.1 Shape: {doc: signed header, entries: [bin] | nil}.
        if (not isinstance(item, dict) or set(item) != {"doc", "entries"}
                or not (item["entries"] is None or (isinstance(item["entries"], list) and all(
                    isinstance(e, bytes) for e in item["entries"])))):
            raise _fail(f"{where} is not {{doc, entries}}", "bad_transcript")
        # 3.2 Header and signature (PROTOCOL.md §6.2).
        try:
            signed = SignedHeader.parse(item["doc"])
        except VerificationError as exc:
            raise _fail(f"{where}: {exc.message}", exc.reason) from exc
        issuer = signed.check_signature(keys)
        h = signed.header
        _not_revoked(keys, issuer, h.created, f"{h.type} {h.id}")
        doc = _Doc(position=n, signed=signed,
                   entries=None if item["entries"] is None else tuple(item["entries"]))
        # 3.3 Between the two parties.
        if {h.issuer, h.recipient} != set(parties):
            raise _fail(f"{doc.name} is from {h.issuer} to {h.recipient}, not between "
                        f"{parties[0]} and {parties[1]}", "wrong_party")
        # 3.4 Listed once.
        if signed.digest in by_digest:
            raise _fail(f"{doc.name} is listed twice", "duplicate_document")
        # 3.5 An acknowledgement answers a document listed before it, from the other side,
        #     strictly later than the previous acknowledgement of that document.
        if h.type == ACK:
            assert h.answers is not None
            target = by_digest.get(h.answers)
            if target is None:
                raise _fail(f"{doc.name} answers {h.answers_id}, which is not listed before "
                            "it in the transcript", "unknown_document")
            th = target.signed.header
            if th.type == ACK:
                raise _fail(f"{doc.name} answers an acknowledgement", "wrong_type")
            if h.answers_id != th.id:
                raise _fail(f"{doc.name} names {h.answers_id} but answers {th.id} by hash",
                            "wrong_document")
            if h.issuer != th.recipient:
                raise _fail(f"{doc.name} is issued by {h.issuer}, but {th.id} was sent to "
                            f"{th.recipient}", "wrong_party")
            if target.acks and h.created <= target.acks[-1].signed.header.created:
                raise _fail(f"{doc.name} is not later than the previous acknowledgement of "
                            f"{th.id}", "ack_order")
            target.acks.append(doc)
        # 3.6 Entries, when included: count and root (PROTOCOL.md §6.3).
        if doc.entries is not None:
            SignedDocument(signed=signed, leaves=doc.entries).check(keys)
        times.see(h.created)
        docs.append(doc)
        by_digest[signed.digest] = doc
    return docs


def _check_entries(docs: Sequence[_Doc], keys: Keyring) -> None:
    """4. For each roster or manifest whose entries are included: its declared entries, and
    its acknowledgements' entries up to the first one not included, checked exactly as a
    whole-document receipt (PROTOCOL.md §7.4 steps 4–12)."""
    for doc in docs:
        if doc.signed.header.type == ACK or doc.entries is None:
            continue
        shown: list[_Doc] = []
        for ack in doc.acks:
            if ack.entries is None:
                break
            shown.append(ack)
        whole = SignedDocument(signed=doc.signed, leaves=doc.entries)
        if not shown:
            ids = [documents.decode_declared_entry(e, i).item_id
                   for i, e in enumerate(doc.entries)]
            if len(set(ids)) != len(ids):
                raise _fail(f"{doc.name} declares an item twice", "duplicate_item")
            continue
        bundle = receipts.build_document_receipt(
            whole, [SignedDocument(signed=a.signed, leaves=a.entries or ()) for a in shown])
        result = receipts.check_receipt(bundle, keys)
        if not result.ok:
            raise _fail(f"{doc.name} and its acknowledgements: {result.diagnosis}",
                        result.reason or "bad_entry")


def _check_link(sender: str, recipient: str, raw: list[Any], docs: Mapping[bytes, _Doc],
                keys: Keyring, times: _Times) -> tuple[int, int]:
    """5. One direction's envelopes: (how many, how many refused)."""
    prev_hash = ZERO_HASH
    refused = 0
    for k, item in enumerate(raw, start=1):
        where = f"envelope {k} {sender}→{recipient}"
        # 5.1 Shape.
        if (not isinstance(item, dict) or set(item) != _ENVELOPE_KEYS
                or not all(isinstance(item[x], bytes) for x in ("header", "hash", "receipt"))
                or len(item["hash"]) != 32):
            raise _fail(f"{where} is not {{header, hash, receipt, carries}}", "bad_transcript")
        # 5.2 Header: this direction, keys of these parties (PROTOCOL.md §5.1).
        try:
            header = EnvelopeHeader.from_bytes(item["header"])
        except PeerError as exc:
            raise _fail(f"{where}: {exc.message}", "bad_header") from exc
        where = f"envelope {header.seq} {sender}→{recipient}"
        if (header.sender, header.recipient) != (sender, recipient):
            raise _fail(f"{where} is addressed {header.sender}→{header.recipient}",
                        "wrong_party")
        _key_of(keys, header.sender_key, sender, where)
        _key_of(keys, header.recipient_key, recipient, where)
        # 5.3 Sequence numbers 1, 2, … with no gap (PROTOCOL.md §8.2).
        if header.seq != k:
            if header.seq < k or k in _listed_seqs(raw):
                raise _fail(f"envelopes {sender}→{recipient} are out of order: envelope "
                            f"{header.seq} stands where envelope {k} should",
                            "envelope_order")
            missing = (f"envelope {k} is" if header.seq == k + 1
                       else f"envelopes {k}–{header.seq - 1} are")
            raise _fail(f"{missing} missing from {sender}→{recipient}: after "
                        f"{k - 1 or 'the start'} comes {header.seq}", "missing_envelope")
        # 5.4 The chain: prev names the previous envelope's hash (zero for the first).
        if not hmac.compare_digest(header.prev, prev_hash):
            raise _fail(f"{where} does not name the hash of envelope {k - 1} as its previous "
                        "(the chain is broken)" if k > 1 else
                        f"{where} is the first but names a previous envelope", "chain_broken")
        # 5.5 The recipient's receipt: signed by the recipient's key, under its own tag.
        answer = _check_receipt(item["receipt"], keys, recipient, where)
        # 5.6 It proves delivery into the chain (accepted, or refused content).
        if answer.result not in ("accepted", "refused"):
            raise _fail(f"{where}: the receipt is a rejection, not proof of delivery",
                        "not_delivered")
        # 5.7 It names this envelope: hash, sequence number, message id, parties.
        if (answer.envelope is None or not hmac.compare_digest(answer.envelope, item["hash"])
                or answer.seq != header.seq or answer.message_id != header.message_id
                or answer.sender != sender or answer.recipient != recipient):
            raise _fail(f"{where}: the receipt names another envelope (hash, sequence number "
                        "or message id differ)", "receipt_mismatch")
        refused += answer.result == "refused"
        # 5.8 What it carries, when given: a chunk of a document from this sender, in order.
        _check_carries(item["carries"], answer.result, docs, sender, where)
        times.see(header.sent_at)
        times.see(answer.at)
        prev_hash = item["hash"]
    return len(raw), refused


def _listed_seqs(raw: list[Any]) -> set[int]:
    """Sequence numbers of the envelopes listed (for a diagnosis only: unreadable ones are
    skipped, the main loop names them when it gets there)."""
    seqs = set()
    for item in raw:
        try:
            seqs.add(EnvelopeHeader.from_bytes(item["header"]).seq)
        except (PeerError, KeyError, TypeError):
            continue
    return seqs


def _key_of(keys: Keyring, key_id: bytes, party: str, where: str) -> PublicIdentity:
    ident = keys.get(key_id)
    if ident is None:
        raise _fail(f"{where} names a key of {party} that is not among the given keys",
                    "unknown_key")
    if ident.party != party:
        raise _fail(f"{where}: the key named for {party} belongs to {ident.party}",
                    "wrong_issuer")
    return ident


def _check_receipt(data: bytes, keys: Keyring, recipient: str,
                   where: str) -> transport.TransportAnswer:
    try:
        outer = codec.decode(data, codec.SMALL_LIMITS)
        if (not isinstance(outer, dict) or set(outer) != {"r", "s"}
                or not isinstance(outer["r"], bytes) or not isinstance(outer["s"], bytes)):
            raise _fail(f"{where}: the receipt is not {{r, s}}", "bad_receipt")
        statement = codec.decode(outer["r"], codec.SMALL_LIMITS)
    except DecodeError as exc:
        raise _fail(f"{where}: the receipt is not canonical ({exc.message})",
                    "bad_receipt") from exc
    by_key = statement.get("by_key") if isinstance(statement, dict) else None
    if not isinstance(by_key, bytes):
        raise _fail(f"{where}: the receipt names no signing key", "bad_receipt")
    signer = _key_of(keys, by_key, recipient, f"{where}: the receipt")
    if not signer.verify(TAG_TRANSPORT_RECEIPT, outer["r"], outer["s"]):
        raise _fail(f"{where}: the receipt's signature by {recipient} does not verify",
                    "bad_signature")
    try:
        answer = transport.parse_answer(data, signer)
    except PeerError as exc:
        raise _fail(f"{where}: {exc.message}", "bad_receipt") from exc
    _not_revoked(keys, signer, answer.at, f"{where}: the receipt")
    return answer


def _not_revoked(keys: Keyring, signer: PublicIdentity, at: int, what: str) -> None:
    """A revocation given with the keys voids the key's signatures dated from its ``since``
    (PROTOCOL.md §4.5), as for receipts."""
    if keys.revoked_at(signer.key_id, at):
        raise _fail(f"{what} is signed by {signer.party}'s key {signer.fingerprint}, revoked "
                    f"from {iso_time(keys.revoked[signer.key_id])}, at {iso_time(at)}",
                    "revoked_key")


def _check_carries(carries: object, result: str, docs: Mapping[bytes, _Doc], sender: str,
                   where: str) -> None:
    if carries is None:
        return
    if (not isinstance(carries, dict) or set(carries) != _CARRIES_KEYS
            or not isinstance(carries["doc"], bytes) or type(carries["first"]) is not int
            or type(carries["n"]) is not int):
        raise _fail(f"{where}: carries is not {{doc, first, n}}", "bad_transcript")
    doc = docs.get(carries["doc"])
    if doc is None:
        if result == "refused":
            return  # refused content need not have been kept by either side
        raise _fail(f"{where} carries a document that is not in the transcript",
                    "unknown_document")
    h = doc.signed.header
    if h.issuer != sender:
        raise _fail(f"{where} carries {doc.name}, issued by {h.issuer}", "wrong_party")
    first, n = carries["first"], carries["n"]
    if first != doc.carried or n < 1 or first + n > h.count:
        raise _fail(f"{where} carries entries {first}–{first + n - 1} of {doc.name}, but "
                    f"{doc.carried} of {h.count} were carried before it", "bad_chunk")
    doc.carried += n
    if result == "accepted":
        doc.delivered += n
