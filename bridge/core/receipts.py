"""Receipt bundles: build them, check them (a result), verify them (raises).

A receipt proves, offline and to anyone holding the two parties' public identity files, that
"A declared item X in document M, and B acknowledged it with status S at time T" (PROTOCOL.md §7).
Two forms, both canonical encodings (PROTOCOL.md §2):

- the **per-item bundle** (``bridge.receipt.item``) carries the sender's signed header, the one
  declared entry and its RFC 9162 inclusion proof, and for each acknowledgement of that item (in
  chronological order) the receiver's signed acknowledgement header, the ack entry and its proof.
  It discloses nothing about the other items: their leaves are salted (PROTOCOL.md §6.4), and the
  proof only holds sibling hashes.
- the **whole-document bundle** (``bridge.receipt.document``) carries the signed document with
  all its entries and every acknowledgement document in full. Each header signature is checked
  once and each Merkle root is recomputed from all entries, which is both faster per item and
  stronger (it also proves which items were *not* declared).

Every step of verification is numbered below exactly as in PROTOCOL.md §7.3 and §7.4, so that
an implementer can read the two side by side. ``check_receipt`` returns a ``ReceiptResult``
listing the checks done; ``verify_receipt`` raises ``VerificationError`` with the reason code of
the first failed check. After a failure nothing more is looked at.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bridge.core import codec, merkle
from bridge.core.crypto.identity import (
    TAG_DOCUMENT,
    Keyring,
    PublicIdentity,
    iso_time,
    verify_signature,
)
from bridge.core.documents import (
    ACK,
    ACK_STATUSES,
    DOCUMENT_TYPES,
    ITEM_ID_RE,
    MAX_TEXT,
    SALT_SIZE,
    DocumentHeader,
    SignedDocument,
    SignedHeader,
    decode_ack_entry,
    decode_declared_entry,
)
from bridge.core.errors import BridgeError, DecodeError, InputError, VerificationError
from bridge.core.printable import printable as _printable

__all__ = [
    "DOCUMENT_RECEIPT",
    "ITEM_RECEIPT",
    "MAX_ACKS_PER_ITEM",
    "MAX_PROOF",
    "RECEIPT_LIMITS",
    "Check",
    "ReceiptResult",
    "Signer",
    "StatusChange",
    "build_document_receipt",
    "build_item_receipt",
    "build_item_receipts",
    "check_receipt",
    "iso_time",
    "verify_receipt",
]

RECEIPT_VERSION = 1
ITEM_RECEIPT = "bridge.receipt.item"
DOCUMENT_RECEIPT = "bridge.receipt.document"
UNDECLARED = "RECEIVED_UNDECLARED"

MAX_PROOF = 64
"""An audit path has at most one hash per tree level, and a tree of 2**64 leaves has 64 levels."""
MAX_ACKS_PER_ITEM = 256
"""Acknowledgement history carried by a per-item bundle (a handful in practice)."""
MAX_ACK_DOCUMENTS = 4096
"""Acknowledgement documents carried by a whole-document bundle."""

RECEIPT_LIMITS = codec.Limits(
    # A whole-document bundle of a 1,000,000-item manifest with its acknowledgements needs
    # this much; the decoded objects take at most twice the file's size (PROTOCOL.md §2.4).
    max_bytes=256 * 1024 * 1024,
    max_expansion=2,
    # Deepest container in either form: bundle → acks → ack → signed header (depth 3).
    max_depth=4,
    max_items=1_000_000,
    max_str=1024,
    # A header or an entry is decoded with SMALL_LIMITS, so none can be longer than this.
    max_bin=codec.SMALL_LIMITS.max_bytes,
)
"""Decoding limits of a receipt bundle (PROTOCOL.md §7.2). Headers and entries inside are
decoded again with ``codec.SMALL_LIMITS``."""

_ITEM_KEYS = frozenset({"v", "type", "document", "entry", "proof", "acks"})
_ITEM_ACK_KEYS = frozenset({"ack", "entry", "proof"})
_DOCUMENT_KEYS = frozenset({"v", "type", "document", "acks"})


# ---------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class Check:
    """One verification step that was carried out, numbered in the order it ran."""

    number: int
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class Signer:
    """Who signed: the party named in the header, whose key the keyring holds."""

    party: str
    fingerprint: str
    key_id: bytes = field(repr=False)

    @classmethod
    def of(cls, identity: PublicIdentity) -> Signer:
        return cls(party=identity.party, fingerprint=identity.fingerprint,
                   key_id=identity.key_id)

    def __str__(self) -> str:
        return f"{self.party} [{self.fingerprint}]"


@dataclass(frozen=True, kw_only=True)
class StatusChange:
    """One acknowledgement of the item, as signed by the receiver."""

    status: str
    reason: str | None
    evidence: str | None
    created: int  # milliseconds since the Unix epoch, UTC, from the ack header
    ack_id: str

    @property
    def time(self) -> str:
        return iso_time(self.created)


@dataclass(frozen=True, kw_only=True)
class ReceiptResult:
    """What a receipt proves, or why it proves nothing.

    ``reason`` is the stable code of the failed check (``None`` when ``ok``) and ``diagnosis``
    says it for people. ``status_reason`` and ``evidence`` are the receiver's words about the
    item. For a per-item bundle the item fields are set; for a whole-document bundle the counts
    and ``statuses`` (every declared item's final status; an unacknowledged item has none).
    """

    ok: bool
    kind: str  # "item", "document", or "unknown" when the bundle did not decode
    checks: tuple[Check, ...]
    reason: str | None = None
    diagnosis: str | None = None
    doc_type: str | None = None
    doc_id: str | None = None
    batch: str | None = None
    declared_by: Signer | None = None
    acknowledged_by: Signer | None = None
    time: str | None = None  # ISO 8601 UTC of the last acknowledgement
    # per-item bundle
    item_id: str | None = None
    status: str | None = None
    status_reason: str | None = None
    evidence: str | None = None
    history: tuple[StatusChange, ...] = ()
    # whole-document bundle
    item_count: int | None = None
    ack_count: int | None = None
    unacknowledged: int | None = None
    undeclared: int | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict, repr=False)
    # What the signatures cannot prove by themselves: a signature by a key later revoked,
    # dated before the revocation's ``since`` (PROTOCOL.md §4.5). The receipt holds; these say
    # how far.
    caveats: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line a person can read. Every text that came from the bundle is escaped, so a
        signer cannot forge extra output lines (or terminal controls) through a reason."""
        if not self.ok:
            return f"{_printable(self.diagnosis or 'receipt does not verify')} [{self.reason}]"
        where = f"{self.doc_type} {self.doc_id}"
        if self.batch is not None:
            where += f" (batch {_printable(self.batch)})"
        if self.kind == "item":
            status = str(self.status)
            if self.status_reason:
                status += f" (reason: {_printable(self.status_reason)})"
            if self.evidence:
                status += f" (evidence: {_printable(self.evidence)})"
            line = (f"item {self.item_id} declared by {self.declared_by} in {where}; "
                    f"acknowledged by {self.acknowledged_by} as {status} at {self.time}")
            if len(self.history) > 1:
                line += "; history: " + " → ".join(c.status for c in self.history)
            return line + self._caveat_text()
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items(),
                                                         key=lambda kv: (-kv[1], kv[0])))
        return (f"{where}: {self.item_count} items declared by {self.declared_by}; "
                f"{self.ack_count} acknowledgement(s) by {self.acknowledged_by}, last at "
                f"{self.time}: {counts}; {self.unacknowledged} unacknowledged"
                + self._caveat_text())

    def _caveat_text(self) -> str:
        return "".join(f"; CAUTION: {_printable(c)}" for c in self.caveats)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``bridge verify --json``)."""
        out: dict[str, Any] = {
            "ok": self.ok, "kind": self.kind, "reason": self.reason,
            "diagnosis": self.diagnosis,
            "checks": [{"number": c.number, "name": c.name, "passed": c.passed,
                        "detail": c.detail} for c in self.checks],
        }
        if not self.ok:
            return out

        def signer(s: Signer | None) -> dict[str, str] | None:
            return None if s is None else {"party": s.party, "fingerprint": s.fingerprint,
                                           "key_id": s.key_id.hex()}

        out.update({"doc_type": self.doc_type, "doc_id": self.doc_id, "batch": self.batch,
                    "declared_by": signer(self.declared_by),
                    "acknowledged_by": signer(self.acknowledged_by), "time": self.time,
                    "caveats": list(self.caveats)})
        if self.kind == "item":
            out.update({
                "item_id": self.item_id, "status": self.status,
                "status_reason": self.status_reason, "evidence": self.evidence,
                "history": [{"status": c.status, "reason": c.reason, "evidence": c.evidence,
                             "time": c.time, "created": c.created, "ack_id": c.ack_id}
                            for c in self.history],
            })
        else:
            out.update({"item_count": self.item_count, "ack_count": self.ack_count,
                        "unacknowledged": self.unacknowledged, "undeclared": self.undeclared,
                        "counts": dict(self.counts), "statuses": dict(self.statuses)})
        return out




class _Checks:
    """The checks done so far. ``begin`` names the step that is about to run; ``passed``
    records it; a step that raises is recorded as failed by ``check_receipt``."""

    def __init__(self) -> None:
        self.done: list[Check] = []
        self.step = "decode the bundle"
        self.kind = "unknown"

    def begin(self, name: str) -> None:
        self.step = name

    def passed(self, detail: str) -> None:
        self.done.append(Check(number=len(self.done) + 1, name=self.step, passed=True,
                               detail=detail))

    def failed(self, detail: str) -> tuple[Check, ...]:
        self.done.append(Check(number=len(self.done) + 1, name=self.step, passed=False,
                               detail=detail))
        return tuple(self.done)


def _fail(message: str, reason: str) -> VerificationError:
    return VerificationError(message, reason=reason)


# ---------------------------------------------------------------- check / verify


def check_receipt(data: bytes, keys: Keyring) -> ReceiptResult:
    """Check a receipt bundle of either form. Never raises for bad input: the result says."""
    checks = _Checks()
    try:
        return _check(data, keys, checks)
    except BridgeError as err:
        # PeerError (VerificationError, DecodeError) carries the reason as its code; anything
        # else here would be a bug, but it still must not pass as a valid receipt.
        return ReceiptResult(ok=False, kind=checks.kind, checks=checks.failed(err.message),
                             reason=err.code, diagnosis=err.message)


def verify_receipt(data: bytes, keys: Keyring) -> ReceiptResult:
    """Like ``check_receipt``, but raises ``VerificationError`` unless the receipt holds."""
    result = check_receipt(data, keys)
    if not result.ok:
        raise VerificationError(result.diagnosis or "receipt does not verify",
                                reason=result.reason or "invalid")
    return result


def _check(data: bytes, keys: Keyring, checks: _Checks) -> ReceiptResult:
    # Step 1: decode the bytes as one canonical value within RECEIPT_LIMITS (PROTOCOL.md §2),
    # then dispatch on its type. Nothing inside is trusted until its signature is checked.
    checks.begin("decode the bundle")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail("a receipt is bytes", "bad_bundle")
    try:
        bundle = codec.decode(bytes(data), RECEIPT_LIMITS)
    except DecodeError as exc:
        raise _fail(f"not a canonical Bridge encoding: {exc.message}", exc.reason) from exc
    if (not isinstance(bundle, dict) or type(bundle.get("v")) is not int
            or bundle["v"] != RECEIPT_VERSION):  # msgpack true is not 1, though True == 1
        raise _fail("not a version 1 Bridge receipt bundle", "bad_bundle")
    kind = bundle.get("type")
    if kind == ITEM_RECEIPT:
        checks.kind = "item"
        return _check_item(bundle, keys, checks)
    if kind == DOCUMENT_RECEIPT:
        checks.kind = "document"
        return _check_document(bundle, keys, checks)
    raise _fail(f"unknown receipt type {str(kind)[:64]!r}", "bad_bundle")


# ---------------------------------------------------------------- shared steps


def _is_signed_header_map(value: object) -> bool:
    return (isinstance(value, dict) and set(value) == {"header", "sig"}
            and isinstance(value["header"], bytes) and isinstance(value["sig"], bytes))


def _is_proof(value: object) -> bool:
    return (isinstance(value, list) and len(value) <= MAX_PROOF
            and all(isinstance(h, bytes) and len(h) == merkle.HASH_SIZE for h in value))


def _parse_header(value: object, want_ack: bool, what: str) -> SignedHeader:
    """Steps 2 and 6: the header decodes (PROTOCOL.md §6.2) and is of the expected type."""
    signed = SignedHeader.parse(value)
    header = signed.header
    if want_ack and header.type != ACK:
        raise _fail(f"{what} is a {header.type}, not an acknowledgement", "wrong_type")
    if not want_ack and header.type not in DOCUMENT_TYPES:
        raise _fail(f"{what} is an acknowledgement, not a roster or manifest", "wrong_type")
    return signed


@functools.lru_cache(maxsize=1024)
def _document_signature_holds(sign_key: bytes, data: bytes, signature: bytes) -> bool:
    return verify_signature(sign_key, TAG_DOCUMENT, data, signature)


_CACHED_HEADER_MAX = 4096


def _check_signature(signed: SignedHeader, keys: Keyring) -> PublicIdentity:
    """Steps 3 and 7: ``SignedHeader.check_signature``, remembering headers that verified.

    Verifying many per-item receipts of one document checks the same two or three headers
    every time; an Ed25519 verification is most of a receipt's cost. The cache key is the
    whole input of the verification (key, header bytes, signature), so a hit can only repeat
    an answer already computed. Large headers are not cached, to bound memory.
    """
    issuer = keys.get(signed.header.issuer_key)
    if (issuer is not None and issuer.party == signed.header.issuer
            and len(signed.data) <= _CACHED_HEADER_MAX
            and _document_signature_holds(issuer.sign_key, signed.data, signed.signature)):
        verified = issuer
    else:
        verified = signed.check_signature(keys)  # uncached, and raises with the precise reason
    # A revocation given to the verifier voids this key's signatures dated at or after its
    # ``since``, and a rotation those dated after it (PROTOCOL.md §4.5: what a revocation
    # cannot void is said there too, and in ``_caveats``).
    keys.check_in_force(verified, signed.header.created,
                        f"{signed.header.type} {signed.header.id}")
    return verified


def _caveats(doc: SignedHeader, declared_by: PublicIdentity,
             acks: Sequence[tuple[SignedHeader, PublicIdentity]], keys: Keyring
             ) -> tuple[str, ...]:
    """What a revocation leaves unproved (PROTOCOL.md §4.5): a signature dated before
    ``since`` of a key later revoked is only its holder's claim (a thief can backdate), so it
    proves something only with evidence that it existed before ``since``. For the document,
    that evidence is an acknowledgement by the other party dated before ``since``."""
    out: list[str] = []
    h = doc.header
    since = keys.revoked_later(declared_by.key_id, h.created)
    if since is not None:
        what = (f"{h.type} {h.id} is signed by {declared_by.party}'s key "
                f"{declared_by.fingerprint}, revoked from {iso_time(since)}")
        first = min((a for a, _ in acks), key=lambda a: a.header.created, default=None)
        if first is not None and first.header.created < since:
            out.append(f"{what}; {first.header.issuer} acknowledged it at "
                       f"{iso_time(first.header.created)}, before that: the evidence that it "
                       "was signed before the compromise")
        else:
            out.append(f"{what}, and was not acknowledged before that: it proves nothing of "
                       f"{declared_by.party} (PROTOCOL.md §4.5)")
    for ack, signer in acks:
        since = keys.revoked_later(signer.key_id, ack.header.created)
        if since is not None:
            out.append(f"ack {ack.header.id} is signed by {signer.party}'s key "
                       f"{signer.fingerprint}, revoked from {iso_time(since)}; it is dated "
                       f"{iso_time(ack.header.created)} only by that key's own claim and "
                       "proves nothing without evidence that it existed before (PROTOCOL.md "
                       "§4.5)")
    return tuple(out)


def _check_ack_header(value: object, doc: SignedHeader, keys: Keyring, checks: _Checks,
                      what: str) -> tuple[SignedHeader, PublicIdentity]:
    """Steps 6 to 9 of both bundle forms, for one acknowledgement of ``doc``."""
    # Step 6: the acknowledgement header decodes and is of type "ack".
    checks.begin(f"{what}: header")
    ack = _parse_header(value, True, what)
    ah = ack.header
    checks.passed(f"ack {ah.id}, {ah.count} entries")

    # Step 7: signed like any document (step 3), by a key in the keyring; checked once.
    checks.begin(f"{what}: signature")
    acknowledged_by = _check_signature(ack, keys)
    checks.passed(f"signed by {acknowledged_by.party} [{acknowledged_by.fingerprint}]")

    # Step 8: it answers this document: "answers" is SHA-256 of the header bytes (§6.5).
    checks.begin(f"{what}: answers the document")
    _check_answers(ah, doc, what)
    checks.passed(f"answers {doc.header.id} ({doc.digest.hex()[:16]}…)")

    # Step 9: from the document's recipient, to its issuer.
    checks.begin(f"{what}: parties")
    _check_parties(ah, doc.header, what)
    checks.passed(f"from {ah.issuer} to {ah.recipient}")
    return ack, acknowledged_by


def _check_ack_order(ah: DocumentHeader, previous: int | None, checks: _Checks,
                     what: str) -> int:
    """Step 12 of both bundle forms: strictly later than the previous acknowledgement, so that
    "the last one" is well defined and a holder cannot reorder the history."""
    checks.begin(f"{what}: order")
    if previous is not None and ah.created <= previous:
        raise _fail(f"{what} ({iso_time(ah.created)}) is not later than the one before it "
                    f"({iso_time(previous)})", "ack_order")
    checks.passed(iso_time(ah.created))
    return ah.created


def _check_answers(ack: DocumentHeader, doc: SignedHeader, what: str) -> None:
    """Step 8: the acknowledgement names this document by hash (and, for people, by id)."""
    if ack.answers is None or not hmac.compare_digest(ack.answers, doc.digest):
        raise _fail(f"{what} answers another document (hash {(ack.answers or b'').hex()[:16]}…, "
                    f"not {doc.digest.hex()[:16]}… of {doc.header.id})", "wrong_document")
    if ack.answers_id != doc.header.id:
        raise _fail(f"{what} names document {str(ack.answers_id)[:128]!r} but answers "
                    f"{doc.header.id!r} by hash", "wrong_document")


def _check_parties(ack: DocumentHeader, doc: DocumentHeader, what: str) -> None:
    """Step 9: only the recipient acknowledges, and it answers the issuer."""
    if ack.issuer != doc.recipient or ack.recipient != doc.issuer:
        raise _fail(f"{what} is from {ack.issuer!r} to {ack.recipient!r}, but the document went "
                    f"from {doc.issuer!r} to {doc.recipient!r}", "wrong_party")


def _meta_batch(header: DocumentHeader) -> str | None:
    batch = header.meta.get("batch")
    if isinstance(batch, bool) or not isinstance(batch, (int, str)):
        return None
    return str(batch)


def _own_index(leaf: bytes, what: str) -> int:
    """The ``i`` an entry gives itself; the entry is decoded again, fully, against it."""
    try:
        value = codec.decode(leaf, codec.SMALL_LIMITS)
    except BridgeError as exc:
        raise _fail(f"{what} is not canonical: {exc}", "bad_entry") from exc
    index = value.get("i") if isinstance(value, dict) else None
    if type(index) is not int or index < 0:
        raise _fail(f"{what} has no entry index", "bad_entry")
    return index


# ---------------------------------------------------------------- per-item bundle (§7.3)


@dataclass(frozen=True, kw_only=True)
class _ItemAck:
    signed: SignedHeader
    leaf: bytes
    proof: list[bytes]


def _parse_item_bundle(bundle: dict[str, Any]) -> tuple[list[bytes], list[_ItemAck]]:
    if set(bundle) != _ITEM_KEYS:
        raise _fail("a per-item receipt has exactly the fields acks, document, entry, proof, "
                    "type, v", "bad_bundle")
    if not _is_signed_header_map(bundle["document"]) or not isinstance(bundle["entry"], bytes):
        raise _fail("document must be {header: bin, sig: bin} and entry bin", "bad_bundle")
    if not _is_proof(bundle["proof"]):
        raise _fail(f"proof must be at most {MAX_PROOF} hashes of 32 bytes", "bad_bundle")
    raw_acks = bundle["acks"]
    if not isinstance(raw_acks, list) or not 1 <= len(raw_acks) <= MAX_ACKS_PER_ITEM:
        raise _fail(f"acks must list 1 to {MAX_ACKS_PER_ITEM} acknowledgements", "bad_bundle")
    acks = []
    for k, a in enumerate(raw_acks, 1):
        if (not isinstance(a, dict) or set(a) != _ITEM_ACK_KEYS
                or not _is_signed_header_map(a["ack"]) or not isinstance(a["entry"], bytes)
                or not _is_proof(a["proof"])):
            raise _fail(f"acknowledgement {k} must be {{ack: signed header, entry: bin, "
                        f"proof: [bin32]}}", "bad_bundle")
        acks.append(_ItemAck(signed=a["ack"], leaf=a["entry"], proof=a["proof"]))
    return bundle["proof"], acks


def _check_item(bundle: dict[str, Any], keys: Keyring, checks: _Checks) -> ReceiptResult:
    # Step 1 (continued): the shape of a per-item bundle.
    proof, raw_acks = _parse_item_bundle(bundle)
    checks.passed(f"per-item receipt with {len(raw_acks)} acknowledgement(s)")

    # Step 2: the document header decodes and is a roster or manifest.
    checks.begin("document header")
    doc = _parse_header(bundle["document"], False, "the declaring document")
    header = doc.header
    checks.passed(f"{header.type} {header.id} from {header.issuer} to {header.recipient}, "
                  f"{header.count} entries")

    # Step 3: the header is signed, under tag bridge/v1/document, by a key in the keyring
    # whose identity names the header's issuer. (An envelope or transport-receipt signature
    # over the same bytes is made under another tag, so it cannot verify here: §3.)
    checks.begin("document signature")
    declared_by = _check_signature(doc, keys)
    checks.passed(f"signed by {declared_by.party} [{declared_by.fingerprint}]")

    # Step 4: the entry decodes as a declared entry (§6.4), at the index it names.
    checks.begin("declared entry")
    entry_bytes: bytes = bundle["entry"]
    entry = decode_declared_entry(entry_bytes, _own_index(entry_bytes, "the declared entry"))
    checks.passed(f"item {entry.item_id} at index {entry.index}")

    # Step 5: its leaf hash is included under the signed root at that index, in a tree of
    # the signed count (RFC 9162 §2.1.3.2; the size comes from the signed header, since a
    # proof alone does not bind it: §10).
    checks.begin("declared entry inclusion")
    declared_leaf = merkle.leaf_hash(entry_bytes)
    if not merkle.verify_inclusion(declared_leaf, entry.index, header.count, proof, header.root):
        raise _fail(f"the proof does not place item {entry.item_id} at index {entry.index} "
                    f"under the signed root of {header.id}", "bad_proof")
    checks.passed(f"leaf {entry.index} of {header.count} under root {header.root.hex()[:16]}…")

    history: list[StatusChange] = []
    signed_acks: list[tuple[SignedHeader, PublicIdentity]] = []
    acknowledged_by: PublicIdentity | None = None
    previous: int | None = None
    for k, raw in enumerate(raw_acks, 1):
        what = f"acknowledgement {k}"
        ack, acknowledged_by = _check_ack_header(raw.signed, doc, keys, checks, what)
        signed_acks.append((ack, acknowledged_by))
        ah = ack.header

        # Step 10: the ack entry decodes, names this item, and binds the declared entry by its
        # leaf hash. An undeclared item's ack (leaf nil) has no place here: a per-item bundle
        # always proves a declared entry (§7.3, decided in §7.1).
        checks.begin(f"{what}: entry")
        ae = decode_ack_entry(raw.leaf, _own_index(raw.leaf, f"the entry of {what}"))
        if ae.item_id != entry.item_id:
            raise _fail(f"{what} is about item {ae.item_id}, not {entry.item_id}", "wrong_item")
        if ae.leaf is None:
            raise _fail(f"{what} says item {ae.item_id} was not declared; a per-item receipt "
                        "proves a declared item", "undeclared")
        if ae.status == UNDECLARED:
            raise _fail(f"{what} names a declared entry but says {UNDECLARED}", "bad_entry")
        if not hmac.compare_digest(ae.leaf, declared_leaf):
            raise _fail(f"{what} acknowledges another entry of item {ae.item_id} (leaf "
                        f"{ae.leaf.hex()[:16]}…, not {declared_leaf.hex()[:16]}…)", "wrong_leaf")
        checks.passed(f"{ae.status} for item {ae.item_id}")

        # Step 11: the ack entry is included under the ack's signed root.
        checks.begin(f"{what}: inclusion")
        if not merkle.verify_inclusion(merkle.leaf_hash(raw.leaf), ae.index, ah.count,
                                       raw.proof, ah.root):
            raise _fail(f"the proof does not place the entry of {what} at index {ae.index} "
                        f"under the signed root of ack {ah.id}", "bad_proof")
        checks.passed(f"leaf {ae.index} of {ah.count} under root {ah.root.hex()[:16]}…")

        previous = _check_ack_order(ah, previous, checks, what)
        history.append(StatusChange(status=ae.status, reason=ae.reason, evidence=ae.evidence,
                                    created=ah.created, ack_id=ah.id))

    assert acknowledged_by is not None  # at least one ack: step 1
    last = history[-1]
    return ReceiptResult(
        ok=True, kind="item", checks=tuple(checks.done), doc_type=header.type, doc_id=header.id,
        batch=_meta_batch(header), declared_by=Signer.of(declared_by),
        acknowledged_by=Signer.of(acknowledged_by), time=last.time, item_id=entry.item_id,
        status=last.status, status_reason=last.reason, evidence=last.evidence,
        history=tuple(history), caveats=_caveats(doc, declared_by, signed_acks, keys))


# ---------------------------------------------------------------- whole-document bundle (§7.4)

# Entry decoding in bulk. The fast path below accepts an entry only when it is certainly what
# documents.decode_*_entry would accept (same fields, types and canonical bytes); anything else
# goes to that slower function, which is authoritative and gives the precise error.

_SMALL = codec.SMALL_LIMITS
_UNPACK: dict[str, Any] = {
    "raw": False, "use_list": True, "strict_map_key": True, "max_str_len": _SMALL.max_str,
    "max_bin_len": _SMALL.max_bin, "max_array_len": _SMALL.max_items,
    "max_map_len": _SMALL.max_items, "max_ext_len": 0,
}
_DECLARED_ORDER = ["data", "i", "id", "salt"]
_ACK_ORDER = ["evidence", "i", "id", "leaf", "reason", "salt", "status"]
_STATUS_SET = frozenset(ACK_STATUSES)
_SCALAR_TYPES = frozenset({str, bytes, int, bool, type(None)})
_STR_TYPE = frozenset({str})


def _plain(value: Any, depth: int) -> bool:
    """True if ``value`` is certainly canonical apart from integer/length forms (which the
    byte comparison with a re-pack checks): sorted str keys, no floats, shallow enough."""
    if depth > _SMALL.max_depth:
        return False
    kind = type(value)
    if kind is dict:
        keys = list(value)
        if not set(map(type, keys)) <= _STR_TYPE or keys != sorted(keys):
            return False
        values: Any = value.values()
    elif kind is list:
        values = value
    else:
        return kind in _SCALAR_TYPES
    scalars = _SCALAR_TYPES
    for v in values:
        if type(v) not in scalars and not _plain(v, depth + 1):
            return False
    return True


def _declared_ids(leaves: Sequence[bytes]) -> list[str]:
    """Item ids of all declared entries, each checked as by ``decode_declared_entry``."""
    unpack, pack, match = msgpack.unpackb, msgpack.packb, ITEM_ID_RE.fullmatch
    limit = _SMALL.max_bytes
    ids: list[str] = []
    append = ids.append
    for i, leaf in enumerate(leaves):
        try:
            v = unpack(leaf, **_UNPACK) if len(leaf) <= limit else None
        except Exception:  # any malformation: the authoritative decoder below says which
            v = None
        if (type(v) is dict and list(v) == _DECLARED_ORDER and type(v["i"]) is int
                and v["i"] == i and type(v["id"]) is str and match(v["id"])
                and type(v["salt"]) is bytes and len(v["salt"]) == SALT_SIZE
                and type(v["data"]) is dict and _plain(v["data"], 1)
                and pack(v, use_bin_type=True) == leaf):
            append(v["id"])
        else:
            append(decode_declared_entry(leaf, i).item_id)
    return ids


def _ack_fields(leaves: Sequence[bytes]) -> tuple[list[str], list[str], list[bytes | None]]:
    """(ids, statuses, leaf hashes) of all ack entries, each checked as by
    ``decode_ack_entry``."""
    unpack, pack, match = msgpack.unpackb, msgpack.packb, ITEM_ID_RE.fullmatch
    limit = _SMALL.max_bytes
    statuses_ok = _STATUS_SET
    ids: list[str] = []
    statuses: list[str] = []
    hashes: list[bytes | None] = []
    for i, leaf in enumerate(leaves):
        try:
            v = unpack(leaf, **_UNPACK) if len(leaf) <= limit else None
        except Exception:  # see _declared_ids
            v = None
        if (type(v) is dict and list(v) == _ACK_ORDER and type(v["i"]) is int and v["i"] == i
                and type(v["id"]) is str and match(v["id"])
                and type(v["salt"]) is bytes and len(v["salt"]) == SALT_SIZE
                and type(v["status"]) is str and v["status"] in statuses_ok
                and (v["reason"] is None
                     or (type(v["reason"]) is str and len(v["reason"]) <= MAX_TEXT))
                and (v["evidence"] is None
                     or (type(v["evidence"]) is str and len(v["evidence"]) <= MAX_TEXT))
                and (v["leaf"] is None
                     or (type(v["leaf"]) is bytes and len(v["leaf"]) == merkle.HASH_SIZE))
                and pack(v, use_bin_type=True) == leaf):
            ids.append(v["id"])
            statuses.append(v["status"])
            hashes.append(v["leaf"])
        else:
            e = decode_ack_entry(leaf, i)
            ids.append(e.item_id)
            statuses.append(e.status)
            hashes.append(e.leaf)
    return ids, statuses, hashes


def _leaf_hashes(leaves: Sequence[bytes]) -> list[bytes]:
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + leaf).digest() for leaf in leaves]  # RFC 9162 §2.1.1 leaf hash


def _parse_document_map(value: object, what: str) -> tuple[object, list[bytes]]:
    if (not isinstance(value, dict) or set(value) != {"doc", "entries"}
            or not _is_signed_header_map(value["doc"]) or not isinstance(value["entries"], list)
            or not all(isinstance(e, bytes) for e in value["entries"])):
        raise _fail(f"{what} must be {{doc: signed header, entries: [bin]}}", "bad_bundle")
    return value["doc"], value["entries"]


def _check_tree(header: DocumentHeader, leaves: Sequence[bytes], what: str) -> list[bytes]:
    """Steps 4 and 10: the signed count and root are those of the entries present."""
    if len(leaves) != header.count:
        raise _fail(f"{what} {header.id} declares {header.count} entries but {len(leaves)} are "
                    "present", "count_mismatch")
    hashes = _leaf_hashes(leaves)
    root = merkle.root_from_leaf_hashes(hashes)
    if not hmac.compare_digest(root, header.root):
        raise _fail(f"the entries of {what} {header.id} do not hash to its signed root",
                    "root_mismatch")
    return hashes


def _first_duplicate(ids: Sequence[str]) -> str | None:
    if len(set(ids)) == len(ids):
        return None
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            return item_id
        seen.add(item_id)
    return None  # pragma: no cover - unreachable


def _check_document(bundle: dict[str, Any], keys: Keyring, checks: _Checks) -> ReceiptResult:
    # Step 1 (continued): the shape of a whole-document bundle.
    if set(bundle) != _DOCUMENT_KEYS:
        raise _fail("a document receipt has exactly the fields acks, document, type, v",
                    "bad_bundle")
    doc_map, leaves = _parse_document_map(bundle["document"], "document")
    raw_acks = bundle["acks"]
    if not isinstance(raw_acks, list) or not 1 <= len(raw_acks) <= MAX_ACK_DOCUMENTS:
        raise _fail(f"acks must list 1 to {MAX_ACK_DOCUMENTS} acknowledgement documents",
                    "bad_bundle")
    ack_maps = [_parse_document_map(a, f"acknowledgement {k}") for k, a in enumerate(raw_acks, 1)]
    checks.passed(f"document receipt with {len(leaves)} entries and {len(ack_maps)} "
                  "acknowledgement document(s)")

    # Step 2: the document header decodes and is a roster or manifest.
    checks.begin("document header")
    doc = _parse_header(doc_map, False, "the declaring document")
    header = doc.header
    checks.passed(f"{header.type} {header.id} from {header.issuer} to {header.recipient}")

    # Step 3: its signature, checked once for all items.
    checks.begin("document signature")
    declared_by = _check_signature(doc, keys)
    checks.passed(f"signed by {declared_by.party} [{declared_by.fingerprint}]")

    # Step 4: the count and the root are recomputed from all the entries.
    checks.begin("document entries")
    declared_hashes = _check_tree(header, leaves, header.type)
    checks.passed(f"{header.count} entries hash to the signed root")

    # Step 5: every entry decodes as a declared entry at its position; item ids are unique.
    checks.begin("declared items")
    declared_ids = _declared_ids(leaves)
    dup = _first_duplicate(declared_ids)
    if dup is not None:
        raise _fail(f"item {dup} is declared twice", "duplicate_item")
    position = {item_id: n for n, item_id in enumerate(declared_ids)}
    checks.passed(f"{len(declared_ids)} distinct items")

    final: list[str | None] = [None] * len(declared_ids)
    undeclared: dict[str, str] = {}
    signed_acks: list[tuple[SignedHeader, PublicIdentity]] = []
    acknowledged_by: PublicIdentity | None = None
    previous: int | None = None
    for k, (ack_doc, ack_leaves) in enumerate(ack_maps, 1):
        what = f"acknowledgement {k}"
        ack, acknowledged_by = _check_ack_header(ack_doc, doc, keys, checks, what)
        signed_acks.append((ack, acknowledged_by))
        ah = ack.header

        # Step 10: its count and root, recomputed from its entries.
        checks.begin(f"{what}: entries")
        _check_tree(ah, ack_leaves, "ack")
        checks.passed(f"{ah.count} entries hash to the signed root")

        # Step 11: every ack entry decodes at its position, names each item once, and binds
        # the declared entry of that id by its leaf hash; an entry without a leaf is a
        # RECEIVED_UNDECLARED of an id the document really does not declare.
        checks.begin(f"{what}: acknowledged items")
        ids, statuses, hashes = _ack_fields(ack_leaves)
        dup = _first_duplicate(ids)
        if dup is not None:
            raise _fail(f"{what} acknowledges item {dup} twice", "duplicate_item")
        for item_id, status, leaf in zip(ids, statuses, hashes, strict=True):
            n = position.get(item_id)
            if leaf is None:
                if n is not None:
                    raise _fail(f"{what} says item {item_id} was not declared, but it is",
                                "wrong_item")
                # An undeclared item enters as RECEIVED_UNDECLARED, then may change status.
                if status != UNDECLARED and item_id not in undeclared:
                    raise _fail(f"{what}: item {item_id} has no declared entry and was never "
                                f"RECEIVED_UNDECLARED, but has status {status}", "bad_entry")
                undeclared[item_id] = status
                continue
            if status == UNDECLARED:
                raise _fail(f"{what}: item {item_id} names a declared entry but says "
                            f"{UNDECLARED}", "bad_entry")
            if n is None:
                raise _fail(f"{what} acknowledges item {item_id}, which {header.id} does not "
                            "declare", "wrong_item")
            if leaf != declared_hashes[n]:
                raise _fail(f"{what} acknowledges another entry of item {item_id}",
                            "wrong_leaf")
            final[n] = status
        checks.passed(f"{len(ids)} items")

        previous = _check_ack_order(ah, previous, checks, what)

    assert acknowledged_by is not None and previous is not None  # at least one ack: step 1
    counts = Counter(s for s in final if s is not None)
    counts.update(undeclared.values())
    statuses_by_id = {item_id: s for item_id, s in zip(declared_ids, final, strict=True)
                      if s is not None}
    statuses_by_id.update(undeclared)
    return ReceiptResult(
        ok=True, kind="document", checks=tuple(checks.done), doc_type=header.type,
        doc_id=header.id, batch=_meta_batch(header), declared_by=Signer.of(declared_by),
        acknowledged_by=Signer.of(acknowledged_by), time=iso_time(previous),
        item_count=len(declared_ids), ack_count=len(ack_maps),
        unacknowledged=final.count(None), undeclared=len(undeclared), counts=dict(counts),
        statuses=statuses_by_id, caveats=_caveats(doc, declared_by, signed_acks, keys))


# ---------------------------------------------------------------- builders


def _acks_in_order(document: SignedDocument,
                   acks: Sequence[SignedDocument]) -> list[SignedDocument]:
    """The acknowledgements of ``document``, oldest first."""
    for n, ack in enumerate(acks):
        if ack.header.type != ACK or ack.header.answers != document.digest:
            raise InputError(f"does not acknowledge {document.header.id}", field=f"acks[{n}]")
    return sorted(acks, key=lambda a: a.header.created)


def _require_strict_order(acks: Sequence[SignedDocument]) -> None:
    """Refuse what a verifier would (step 12): two acks of one bundle at the same time. Only
    the acks that go into a bundle matter: two acks about different items may share a time
    and still give per-item receipts."""
    for a, b in itertools.pairwise(acks):
        if a.header.created == b.header.created:
            raise InputError(f"acks {a.header.id} and {b.header.id} have the same creation "
                             "time; a receipt needs a strict order", field="acks")


def _signed_map(signed: SignedHeader) -> dict[str, bytes]:
    return {"header": signed.data, "sig": signed.signature}


def _item_bundle(document: SignedDocument, index: int,
                 acks: Sequence[tuple[SignedDocument, int]]) -> bytes:
    # Keys in canonical (sorted) order and every value bytes or a list of them: already
    # canonical, so pack_canonical is exact (codec rule 3).
    return codec.pack_canonical({
        "acks": [{"ack": _signed_map(ack.signed), "entry": ack.leaves[i], "proof": ack.proof(i)}
                 for ack, i in acks],
        "document": _signed_map(document.signed),
        "entry": document.leaves[index],
        "proof": document.proof(index),
        "type": ITEM_RECEIPT,
        "v": RECEIPT_VERSION,
    })


def _ack_positions(ack: SignedDocument) -> dict[str, tuple[int, bool]]:
    """Item id → (index in the ack, whether it names a declared entry)."""
    ids, _, hashes = _ack_fields(ack.leaves)
    return {item_id: (n, h is not None) for n, (item_id, h) in enumerate(zip(ids, hashes,
                                                                              strict=True))}


def _peek_id(leaf: bytes) -> object:
    try:
        value = msgpack.unpackb(leaf, **_UNPACK)
    except Exception:  # a malformed entry cannot be the one asked for
        return None
    return value.get("id") if isinstance(value, dict) else None


def build_item_receipt(document: SignedDocument, item_id: str,
                       acks: Sequence[SignedDocument]) -> bytes:
    """The per-item receipt of ``item_id``: its declared entry and every acknowledgement of it
    among ``acks`` (which may acknowledge other items too), oldest first."""
    index: int | None = None
    for n, leaf in enumerate(document.leaves):
        # A cheap peek at the id; the entry found is then decoded strictly.
        if _peek_id(leaf) == item_id:
            index = decode_declared_entry(leaf, n).index
            break
    if index is None:
        raise InputError(f"item {item_id!r} is not in {document.header.id}", field="item_id")
    chosen: list[tuple[SignedDocument, int]] = []
    for ack in _acks_in_order(document, acks):
        found = _ack_positions(ack).get(item_id)
        if found is not None and found[1]:
            chosen.append((ack, found[0]))
    if not chosen:
        raise InputError(f"item {item_id!r} has no acknowledgement of its declared entry",
                         field="item_id")
    _require_strict_order([ack for ack, _ in chosen])
    return _item_bundle(document, index, chosen)


def build_item_receipts(document: SignedDocument,
                        acks: Sequence[SignedDocument]) -> dict[str, bytes]:
    """Per-item receipts of every acknowledged declared item, in one pass (for export)."""
    ordered = _acks_in_order(document, acks)
    positions = [_ack_positions(a) for a in ordered]
    out: dict[str, bytes] = {}
    for index, item_id in enumerate(_declared_ids(document.leaves)):
        chosen = [(ack, pos[item_id][0]) for ack, pos in zip(ordered, positions, strict=True)
                  if item_id in pos and pos[item_id][1]]
        if chosen:
            _require_strict_order([ack for ack, _ in chosen])
            out[item_id] = _item_bundle(document, index, chosen)
    return out


def build_document_receipt(document: SignedDocument, acks: Sequence[SignedDocument]) -> bytes:
    """The whole-document receipt: the document and all its acknowledgements, oldest first."""
    if not acks:
        raise InputError("a receipt needs at least one acknowledgement", field="acks")
    ordered = _acks_in_order(document, acks)
    _require_strict_order(ordered)
    return codec.encode({"v": RECEIPT_VERSION, "type": DOCUMENT_RECEIPT,
                         "document": document.to_map(), "acks": [a.to_map() for a in ordered]})
