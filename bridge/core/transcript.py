"""Transcripts: the whole exchange between two parties, checkable offline by a mediator.

A transcript (PROTOCOL.md §11.4) is one canonical map of type ``bridge.core.transcript`` holding, in
order, every document and acknowledgement document exchanged between two parties (signed
headers, and normally all their entries), and for each direction every envelope's header, the
sender's signature over it and the ciphertext hash that signature covers (and the ciphertext
itself when the exporter has it), with the **recipient's signed transport receipt** for it, in
sequence order. Anyone holding the two parties' public identity files can check, with no daemon
and no store, that

- every document and acknowledgement is signed by its issuer, and its entries match its root;
- every acknowledgement answers a document earlier in the transcript, binding its entries
  (the checks of a whole-document receipt, PROTOCOL.md §7.4);
- each envelope header is signed by its sender, and where the ciphertext is included its
  envelope hash is recomputed, so that the recipient's receipt binds the header too;
- each direction's envelopes are numbered 1, 2, … with no gap, each naming the previous one's
  hash, and each has a receipt signed by the recipient naming its hash, sequence number and
  message id: proof of delivery;
- every chunk envelope says which document chunk it carried, or the result lists it as not
  accounted for.

``check_transcript`` returns a ``TranscriptResult`` and never raises for bad input;
``verify_transcript`` raises ``VerificationError`` naming the first failed step. Steps are
numbered as in PROTOCOL.md §11.5. Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bridge.core import answers as transport
from bridge.core import codec, documents, envelope, receipts
from bridge.core.crypto.identity import (
    PARTY_RE,
    TAG_ENVELOPE,
    TAG_TRANSPORT_RECEIPT,
    Keyring,
    PublicIdentity,
)
from bridge.core.documents import ACK, SignedDocument, SignedHeader
from bridge.core.envelope import EnvelopeHeader
from bridge.core.errors import BridgeError, DecodeError, PeerError, VerificationError
from bridge.core.printable import printable as _printable
from bridge.core.receipts import iso_time

__all__ = [
    "TRANSCRIPT", "TRANSCRIPT_LIMITS", "TranscriptDocument", "TranscriptEnvelope",
    "TranscriptResult", "accountable", "build_transcript", "check_transcript",
    "chunk_continues", "is_transcript", "verify_transcript",
]

TRANSCRIPT = "bridge.transcript"
# Version 2 carries what binds each envelope header (signature, ciphertext hash, ciphertext);
# version 1 carried the header alone, bound by nothing, and is refused.
TRANSCRIPT_VERSION = 2
ZERO_HASH = bytes(32)
KIND_CHUNK = "chunk"  # the one envelope kind that carries a document chunk (PROTOCOL.md §8.1)
# An envelope's ciphertext is at most what a receiver accepts as a payload (PROTOCOL.md §8.1).
MAX_CIPHERTEXT = 256 * 1024 * 1024
TRANSCRIPT_LIMITS = codec.Limits(
    # Headers, hashes, receipts, entries and the exporter's own ciphertexts: 256 MiB holds
    # some 400,000 envelopes without entries, or the exchange of a 100,000-item manifest and
    # its acknowledgements with them. The decoded objects take at most twice the file's size
    # (§2.4), so a bomb of tiny values is refused when its budget runs out.
    max_bytes=256 * 1024 * 1024,
    max_expansion=2,
    # transcript → links → link → envelopes → envelope → carries (depth 5)
    max_depth=6,
    max_items=1_000_000,
    max_str=1024,
    # Headers, entries and receipts are each decoded again with SMALL_LIMITS; ciphertexts
    # are only hashed.
    max_bin=MAX_CIPHERTEXT,
)
_KEYS = frozenset({"v", "type", "parties", "exported_at", "documents", "links"})
_LINK_KEYS = frozenset({"from", "to", "envelopes"})
_ENVELOPE_KEYS = frozenset({"header", "sig", "ct_hash", "ct", "hash", "receipt", "carries"})
_CARRIES_KEYS = frozenset({"doc", "first", "n"})


# ---------------------------------------------------------------- building


@dataclass(frozen=True, kw_only=True)
class TranscriptDocument:
    signed: SignedHeader
    entries: Sequence[bytes] | None = field(repr=False)  # None: not included


@dataclass(frozen=True, kw_only=True)
class TranscriptEnvelope:
    header: bytes = field(repr=False)  # the envelope header bytes (PROTOCOL.md §5.1)
    sig: bytes = field(repr=False)  # the sender's envelope signature (§5.3)
    ct_hash: bytes = field(repr=False)  # SHA-256 of the ciphertext, which ``sig`` covers
    hash: bytes  # the envelope hash (§5.4)
    receipt: bytes = field(repr=False)  # the recipient's signed transport receipt (§8.3)
    # The ciphertext, when the exporter has it (its own envelopes): with it the envelope hash
    # is recomputed, so the recipient's receipt binds the header as well.
    ct: bytes | None = field(default=None, repr=False)
    doc: bytes | None = None  # the document chunk it carries, when known
    first: int | None = None
    n: int | None = None

    @classmethod
    def from_wire(cls, data: bytes, *, receipt: bytes, doc: bytes | None = None,
                  first: int | None = None, n: int | None = None,
                  limits: codec.Limits = codec.DEFAULT_LIMITS) -> TranscriptEnvelope:
        """From an envelope's wire bytes (one the exporter sealed): everything, ciphertext
        included."""
        _, header, ct, sig = envelope.parse(data, limits=limits)
        return cls(header=header, sig=sig, ct_hash=hashlib.sha256(ct).digest(),
                   hash=envelope.envelope_hash(data), receipt=receipt, ct=ct, doc=doc,
                   first=first, n=n)


def build_transcript(*, parties: tuple[str, str], exported_at: int,
                     documents: Sequence[TranscriptDocument],
                     outbound: Sequence[TranscriptEnvelope],
                     inbound: Sequence[TranscriptEnvelope]) -> bytes:
    """``parties`` is (exporter, peer); ``outbound`` the exporter's envelopes to the peer with
    the peer's receipts, ``inbound`` the peer's envelopes with the exporter's receipts."""
    a, b = parties

    def env(e: TranscriptEnvelope) -> dict[str, Any]:
        carries = None if e.doc is None else {"doc": e.doc, "first": e.first, "n": e.n}
        return {"carries": carries, "ct": e.ct, "ct_hash": e.ct_hash, "hash": e.hash,
                "header": e.header, "receipt": e.receipt, "sig": e.sig}

    return codec.encode({
        "v": TRANSCRIPT_VERSION, "type": TRANSCRIPT, "parties": [a, b],
        "exported_at": exported_at,
        "documents": [{"doc": d.signed.to_map(),
                       "entries": None if d.entries is None else list(d.entries)}
                      for d in documents],
        "links": [{"from": a, "to": b, "envelopes": [env(e) for e in outbound]},
                  {"from": b, "to": a, "envelopes": [env(e) for e in inbound]}],
    })


def _str_next(data: bytes, at: int) -> bool:
    """Whether the value at ``at`` is a MessagePack str (fixstr, str 8/16/32)."""
    return at < len(data) and (0xA0 <= data[at] <= 0xBF or 0xD9 <= data[at] <= 0xDB)


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
            # Only a str is ever built (short: max_str); anything else is skipped, which
            # builds nothing, so a key or value of a million empty arrays costs no memory.
            if not _str_next(data, unpacker.tell()):
                return False
            key = unpacker.unpack()
            if key == "type":
                return _str_next(data, unpacker.tell()) and unpacker.unpack() == TRANSCRIPT
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
    without_entries_ids: tuple[str, ...] = ()  # … by id
    # Acknowledgements with entries not checked item by item against their document, because
    # the document's or an earlier acknowledgement's entries are not included (step 4).
    unchecked: tuple[str, ...] = ()
    envelopes: tuple[int, int] = (0, 0)  # parties[0] → parties[1], and back
    refused: int = 0  # envelopes whose receipt says the content was refused
    undelivered: tuple[str, ...] = ()  # documents not (yet) carried whole by accepted envelopes
    # Chunk envelopes whose content the transcript does not name ("envelope 4 beta→alpha").
    unaccounted: tuple[str, ...] = ()
    # Envelopes listed without their ciphertext: their headers are bound by the sender's
    # signature, but their hash (what the recipient's receipt names) is not recomputed.
    without_ciphertext: int = 0
    first_at: int | None = None
    last_at: int | None = None
    # Documents signed, before its since, by a key later revoked (PROTOCOL.md §4.5).
    caveats: tuple[str, ...] = ()

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
                         f"{_s(self.without_entries)} not included (headers only): "
                         f"{_some(self.without_entries_ids)}")
        if self.unchecked:
            notes.append("acknowledgements not checked item by item (entries of their document "
                         f"or of an earlier acknowledgement not included): "
                         f"{_some(self.unchecked)}")
        if self.undelivered:
            notes.append(f"not carried whole by accepted envelopes: {_some(self.undelivered)}")
        if self.unaccounted:
            # What the transcript leaves out must be said (PROTOCOL.md §11.5 step 6): an
            # envelope that carried a chunk of a document not listed, or not said which.
            notes.append(f"content not accounted for: {_some(self.unaccounted)}")
        if self.without_ciphertext:
            notes.append(f"{self.without_ciphertext} envelope{_s(self.without_ciphertext)} "
                         "without ciphertext (header bound by its sender's signature only)")
        notes += [f"CAUTION: {_printable(c)}" for c in self.caveats]
        return line + "".join(f"; {n}" for n in notes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "kind": "transcript", "reason": self.reason,
                               "diagnosis": self.diagnosis}
        if self.ok:
            assert self.parties is not None
            out.update({
                "parties": list(self.parties), "documents": self.documents, "acks": self.acks,
                "without_entries": self.without_entries,
                "without_entries_ids": list(self.without_entries_ids),
                "unchecked": list(self.unchecked),
                "envelopes": {f"{self.parties[0]}→{self.parties[1]}": self.envelopes[0],
                              f"{self.parties[1]}→{self.parties[0]}": self.envelopes[1]},
                "refused": self.refused, "undelivered": list(self.undelivered),
                "unaccounted": list(self.unaccounted),
                "without_ciphertext": self.without_ciphertext,
                "first_at": iso_time(self.first_at) if self.first_at is not None else None,
                "last_at": iso_time(self.last_at) if self.last_at is not None else None,
                "caveats": list(self.caveats)})
        return out


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(_printable(d) for d in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


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
    chunk: int = 0  # the chunk size C, from the first chunk carried (PROTOCOL.md §8.1)
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
        raise _fail(f"not a version {TRANSCRIPT_VERSION} Bridge transcript", "bad_transcript")
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
    unchecked = _check_entries(docs, keys)
    by_digest = {d.signed.digest: d for d in docs}
    seen = [_check_link(link["from"], link["to"], link["envelopes"], by_digest, keys, times)
            for link in links]
    # 6. What was delivered (reported, not required: a transcript may be taken mid-exchange).
    undelivered = tuple(d.signed.header.id for d in docs
                        if d.delivered != d.signed.header.count)
    return TranscriptResult(
        ok=True, parties=(a, b), documents=sum(d.signed.header.type != ACK for d in docs),
        acks=sum(d.signed.header.type == ACK for d in docs),
        without_entries=sum(d.entries is None for d in docs),
        without_entries_ids=tuple(d.signed.header.id for d in docs if d.entries is None),
        unchecked=unchecked,
        envelopes=(seen[0].count, seen[1].count), refused=seen[0].refused + seen[1].refused,
        undelivered=undelivered, unaccounted=seen[0].unaccounted + seen[1].unaccounted,
        without_ciphertext=seen[0].without_ciphertext + seen[1].without_ciphertext,
        first_at=times.first, last_at=times.last, caveats=_revocation_caveats(docs, keys))


def _revocation_caveats(docs: Sequence[_Doc], keys: Keyring) -> tuple[str, ...]:
    """Per key later revoked: how many documents it signed dated before ``since``, which only
    the other party's countersignatures dated before ``since`` can prove (PROTOCOL.md §4.5)."""
    counts: dict[bytes, int] = {}
    for d in docs:
        h = d.signed.header
        if keys.revoked_later(h.issuer_key, h.created) is not None:
            counts[h.issuer_key] = counts.get(h.issuer_key, 0) + 1
    out = []
    for key_id, n in counts.items():
        ident = keys.get(key_id)
        assert ident is not None  # every document's signature was checked against ``keys``
        out.append(f"{n} document{_s(n)} signed by {ident.party}'s key {ident.fingerprint}, "
                   f"revoked from {iso_time(keys.revoked[key_id])}, dated before that only by "
                   "that key's own claim: each proves something only as far as the other "
                   "party's acknowledgements and receipts dated before then countersign it")
    return tuple(out)


def _check_documents(raw: list[Any], parties: tuple[str, str], keys: Keyring,
                     times: _Times) -> list[_Doc]:
    # 3. Documents and acknowledgements, in order.
    docs: list[_Doc] = []
    by_digest: dict[bytes, _Doc] = {}
    for n, item in enumerate(raw):
        where = f"documents[{n}]"
        # 3.1 Shape: {doc: {header: bin, sig: bin}, entries: [bin] | nil}. A ``doc`` of
        #     another shape is the transcript's fault (bad_transcript); header bytes that do
        #     not decode as a document header are the header's (3.2, bad_header).
        if (not isinstance(item, dict) or set(item) != {"doc", "entries"}
                or not _is_signed_header_shape(item["doc"])
                or not (item["entries"] is None or (isinstance(item["entries"], list) and all(
                    isinstance(e, bytes) for e in item["entries"])))):
            raise _fail(f"{where} is not {{doc: {{header, sig}}, entries}}", "bad_transcript")
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


def _is_signed_header_shape(value: object) -> bool:
    return (isinstance(value, dict) and set(value) == {"header", "sig"}
            and isinstance(value["header"], bytes) and isinstance(value["sig"], bytes))


def _check_entries(docs: Sequence[_Doc], keys: Keyring) -> tuple[str, ...]:
    """4. For each roster or manifest whose entries are included: its declared entries, and
    its acknowledgements' entries up to the first one not included, checked exactly as a
    whole-document receipt (PROTOCOL.md §7.4 steps 4–12). Returns the acknowledgements with
    entries that could not be checked so (for the report: what the transcript leaves out)."""
    unchecked: list[str] = []
    for doc in docs:
        if doc.signed.header.type == ACK:
            continue
        if doc.entries is None:
            unchecked += [a.signed.header.id for a in doc.acks if a.entries is not None]
            continue
        shown: list[_Doc] = []
        for n, ack in enumerate(doc.acks):
            if ack.entries is None:
                unchecked += [a.signed.header.id for a in doc.acks[n:] if a.entries is not None]
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
    return tuple(unchecked)


@dataclass(frozen=True)
class _LinkSeen:
    """What one direction's envelopes showed."""

    count: int
    refused: int
    unaccounted: tuple[str, ...]
    without_ciphertext: int


def _check_link(sender: str, recipient: str, raw: list[Any], docs: Mapping[bytes, _Doc],
                keys: Keyring, times: _Times) -> _LinkSeen:
    """5. One direction's envelopes."""
    prev_hash = ZERO_HASH
    refused = 0
    unaccounted: list[str] = []
    without_ct = 0
    for k, item in enumerate(raw, start=1):
        where = f"envelope {k} {sender}→{recipient}"
        # 5.1 Shape.
        if (not isinstance(item, dict) or set(item) != _ENVELOPE_KEYS
                or not all(isinstance(item[x], bytes)
                           for x in ("header", "sig", "ct_hash", "hash", "receipt"))
                or not (item["ct"] is None or isinstance(item["ct"], bytes))
                or len(item["hash"]) != 32 or len(item["ct_hash"]) != 32):
            raise _fail(f"{where} is not {{header, sig, ct_hash, ct, hash, receipt, carries}}",
                        "bad_transcript")
        # 5.2 Header: this direction, keys of these parties (PROTOCOL.md §5.1).
        try:
            header = EnvelopeHeader.from_bytes(item["header"])
        except PeerError as exc:
            raise _fail(f"{where}: {exc.message}", "bad_header") from exc
        where = f"envelope {header.seq} {sender}→{recipient}"
        if (header.sender, header.recipient) != (sender, recipient):
            raise _fail(f"{where} is addressed {header.sender}→{header.recipient}",
                        "wrong_party")
        signer = _key_of(keys, header.sender_key, sender, where)
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
        # 5.5 The sender's signature over these exact header bytes (PROTOCOL.md §5.3): every
        #     field shown (kind, at, keys) is then the sender's word, not the exporter's.
        _check_envelope_signature(item, signer, keys, header, where)
        # 5.6 The ciphertext, when included, gives back the envelope hash: the recipient's
        #     receipt, which names that hash, then binds the header too.
        without_ct += _check_ciphertext(item, where)
        # 5.7 The recipient's receipt: signed by the recipient's key, under its own tag.
        answer = _check_receipt(item["receipt"], keys, recipient, where)
        # 5.8 It proves delivery into the chain (accepted, or refused content).
        if answer.result not in ("accepted", "refused"):
            raise _fail(f"{where}: the receipt is a rejection, not proof of delivery",
                        "not_delivered")
        # 5.9 It names this envelope: hash, sequence number, message id, parties.
        if (answer.envelope is None or not hmac.compare_digest(answer.envelope, item["hash"])
                or answer.seq != header.seq or answer.message_id != header.message_id
                or answer.sender != sender or answer.recipient != recipient):
            raise _fail(f"{where}: the receipt names another envelope (hash, sequence number "
                        "or message id differ)", "receipt_mismatch")
        refused += answer.result == "refused"
        # 5.10 What it carries: a chunk of a document from this sender, in order; a chunk
        #      envelope that names none (or names one not listed) is left out, and said.
        if not _check_carries(item["carries"], header.kind, answer.result, docs, sender,
                              where):
            unaccounted.append(where)
        times.see(header.sent_at)
        times.see(answer.at)
        prev_hash = item["hash"]
    return _LinkSeen(count=len(raw), refused=refused, unaccounted=tuple(unaccounted),
                     without_ciphertext=without_ct)


def _check_envelope_signature(item: Mapping[str, Any], signer: PublicIdentity, keys: Keyring,
                              header: EnvelopeHeader, where: str) -> None:
    if not signer.verify(TAG_ENVELOPE, envelope.signed_body(item["header"], item["ct_hash"]),
                         item["sig"]):
        raise _fail(f"{where}: the envelope signature by {header.sender} does not verify over "
                    "its header", "bad_signature")
    _not_revoked(keys, signer, header.sent_at, where)


def _check_ciphertext(item: Mapping[str, Any], where: str) -> int:
    """0 when the ciphertext is included and checks out, 1 when it is not included."""
    ct = item["ct"]
    if ct is None:
        return 1
    if not hmac.compare_digest(hashlib.sha256(ct).digest(), item["ct_hash"]):
        raise _fail(f"{where}: the ciphertext is not the one the signature covers",
                    "ciphertext_mismatch")
    wire = envelope.wire_bytes(item["header"], ct, item["sig"])
    if not hmac.compare_digest(envelope.envelope_hash(wire), item["hash"]):
        raise _fail(f"{where}: header, ciphertext and signature do not give the envelope "
                    "hash listed", "hash_mismatch")
    return 0


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
    """A revocation given with the keys voids the key's signatures dated from its ``since``,
    and a rotation those dated after it (PROTOCOL.md §4.5), as for receipts."""
    keys.check_in_force(signer, at, what)


def chunk_continues(*, carried: int, size: int, first: int, n: int, count: int) -> bool:
    """Whether a chunk of ``n`` entries from ``first`` continues a document of ``count``
    entries of which ``carried`` were carried before, in chunks of ``size`` (0 before the
    first). Chunks are aligned runs of one power-of-two size C, the last one shorter (§8.1):
    so a document's chunks cannot be recut to make room for an envelope whose content is
    hidden."""
    if first != carried or n < 1 or first + n > count:
        return False
    ends = first + n == count
    if not size:  # the first chunk sets C (a single chunk may be any length)
        return ends or n & (n - 1) == 0
    return n == size or (ends and n < size)


def accountable(envelopes: Sequence[TranscriptEnvelope],
                counts: Mapping[bytes, int]) -> list[TranscriptEnvelope]:
    """``envelopes`` with ``carries`` cleared where it does not continue its document (by
    document hash, in ``counts`` with its entry count) as §11.5 step 5.10 requires. A hostile
    peer can send such chunks (a chunk again, or of another size): the recipient refuses or
    takes each on its own, and its transcript then says that their content is not accounted
    for instead of failing to verify."""
    state: dict[bytes, tuple[int, int]] = {}
    out = []
    for e in envelopes:
        if e.doc is not None and e.doc in counts and e.first is not None and e.n is not None:
            carried, size = state.get(e.doc, (0, 0))
            if chunk_continues(carried=carried, size=size, first=e.first, n=e.n,
                               count=counts[e.doc]):
                state[e.doc] = (carried + e.n, size or e.n)
            else:
                e = dataclasses.replace(e, doc=None, first=None, n=None)
        out.append(e)
    return out


def _check_carries(carries: object, kind: str, result: str, docs: Mapping[bytes, _Doc],
                   sender: str, where: str) -> bool:
    """True when the envelope's content is accounted for: a chunk of a listed document, or an
    envelope of another kind (a key statement: its signed ``kind`` says what it held)."""
    if carries is None:
        return kind != KIND_CHUNK
    if kind != KIND_CHUNK:
        raise _fail(f"{where} is of kind {kind!r}, which carries no document chunk",
                    "bad_transcript")
    if (not isinstance(carries, dict) or set(carries) != _CARRIES_KEYS
            or not isinstance(carries["doc"], bytes) or type(carries["first"]) is not int
            or type(carries["n"]) is not int):
        raise _fail(f"{where}: carries is not {{doc, first, n}}", "bad_transcript")
    doc = docs.get(carries["doc"])
    if doc is None:
        if result == "refused":
            return False  # refused content need not have been kept by either side
        raise _fail(f"{where} carries a document that is not in the transcript",
                    "unknown_document")
    h = doc.signed.header
    if h.issuer != sender:
        raise _fail(f"{where} carries {doc.name}, issued by {h.issuer}", "wrong_party")
    first, n = carries["first"], carries["n"]
    # Refused envelopes count too: the sender cut the document into chunks once, and sent
    # them all in order whatever the recipient made of each (PROTOCOL.md §11.5 step 5.10).
    if not chunk_continues(carried=doc.carried, size=doc.chunk, first=first, n=n,
                           count=h.count):
        raise _fail(f"{where} carries entries {first}–{first + n - 1} of {doc.name}, but "
                    f"{doc.carried} of {h.count} were carried before it, in chunks of "
                    f"{doc.chunk or 'a power of two'} (PROTOCOL.md §8.1)", "bad_chunk")
    doc.chunk = doc.chunk or n
    doc.carried += n
    if result == "accepted":
        doc.delivered += n
    return True
