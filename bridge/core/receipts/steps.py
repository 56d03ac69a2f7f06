"""The verification steps that both bundle forms share (PROTOCOL.md §7.3, §7.4): the record of
checks done, the headers (steps 2 and 6), their signatures (steps 3 and 7), an acknowledgement's
document and parties (steps 8 and 9), what an acknowledgement says of each item of a whole
document (step 11), the order of acknowledgements (step 12), and what a later revocation leaves
unproved. Each step raises ``VerificationError`` with its reason code.

Signatures are checked by the signer's ``PublicIdentity`` (``bridge.core.crypto``), which alone
knows the algorithm. Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Sequence

from bridge.core import merkle
from bridge.core.crypto.identity import TAG_DOCUMENT, Keyring, PublicIdentity, iso_time
from bridge.core.documents import ACK, DOCUMENT_TYPES, DocumentHeader, SignedHeader
from bridge.core.errors import VerificationError
from bridge.core.receipts.bundle import MAX_PROOF, UNDECLARED
from bridge.core.receipts.result import Check


class Checks:
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


def fail(message: str, reason: str) -> VerificationError:
    return VerificationError(message, reason=reason)


def is_proof(value: object) -> bool:
    return (isinstance(value, list) and len(value) <= MAX_PROOF
            and all(isinstance(h, bytes) and len(h) == merkle.HASH_SIZE for h in value))


def parse_header(value: object, want_ack: bool, what: str) -> SignedHeader:
    """Steps 2 and 6: the header decodes (PROTOCOL.md §6.2) and is of the expected type."""
    signed = SignedHeader.parse(value)
    header = signed.header
    if want_ack and header.type != ACK:
        raise fail(f"{what} is a {header.type}, not an acknowledgement", "wrong_type")
    if not want_ack and header.type not in DOCUMENT_TYPES:
        raise fail(f"{what} is an acknowledgement, not a roster or manifest", "wrong_type")
    return signed


@functools.lru_cache(maxsize=1024)
def _document_signature_holds(issuer: PublicIdentity, data: bytes, signature: bytes) -> bool:
    return issuer.verify(TAG_DOCUMENT, data, signature)


_CACHED_HEADER_MAX = 4096


def check_signature(signed: SignedHeader, keys: Keyring) -> PublicIdentity:
    """Steps 3 and 7: ``SignedHeader.check_signature``, remembering headers that verified.

    Verifying many per-item receipts of one document checks the same two or three headers
    every time; a signature verification is most of a receipt's cost. The cache key is the
    whole input of the verification (the identity with its key, header bytes, signature), so a
    hit can only repeat an answer already computed. Large headers are not cached, to bound
    memory.
    """
    issuer = keys.get(signed.header.issuer_key)
    if (issuer is not None and issuer.party == signed.header.issuer
            and len(signed.data) <= _CACHED_HEADER_MAX
            and _document_signature_holds(issuer, signed.data, signed.signature)):
        verified = issuer
    else:
        verified = signed.check_signature(keys)  # uncached, and raises with the precise reason
    # A revocation given to the verifier voids this key's signatures dated at or after its
    # ``since``, and a rotation those dated after it (PROTOCOL.md §4.5: what a revocation
    # cannot void is said there too, and in ``caveats``).
    keys.check_in_force(verified, signed.header.created,
                        f"{signed.header.type} {signed.header.id}")
    return verified


def caveats(doc: SignedHeader, declared_by: PublicIdentity,
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
    for ack, _ in acks:
        if ack.header.created < h.created:
            # Signed and valid, but impossible in one clock: an answer before its question
            # (the parties' clocks disagree, or one date is false). Said, never silent.
            out.append(f"ack {ack.header.id} is dated {iso_time(ack.header.created)}, before "
                       f"the {h.type} it answers ({iso_time(h.created)}): the parties' clocks "
                       "disagree, or a date is false (PROTOCOL.md §13.6)")
    for ack, signer in acks:
        since = keys.revoked_later(signer.key_id, ack.header.created)
        if since is not None:
            out.append(f"ack {ack.header.id} is signed by {signer.party}'s key "
                       f"{signer.fingerprint}, revoked from {iso_time(since)}; it is dated "
                       f"{iso_time(ack.header.created)} only by that key's own claim and "
                       "proves nothing without evidence that it existed before (PROTOCOL.md "
                       "§4.5)")
    return tuple(out)


def check_declaring_header(value: object, keys: Keyring, checks: Checks, *,
                            with_count: bool) -> tuple[SignedHeader, PublicIdentity]:
    """Steps 2 and 3 of both forms."""
    # Step 2: the document header decodes and is a roster or manifest.
    checks.begin("document header")
    doc = parse_header(value, False, "the declaring document")
    header = doc.header
    checks.passed(f"{header.type} {header.id} from {header.issuer} to {header.recipient}"
                  + (f", {header.count} entries" if with_count else ""))

    # Step 3: the header is signed, under tag bridge/v1/document, by a key in the keyring
    # whose identity names the header's issuer; checked once for all items. (An envelope or
    # transport-receipt signature over the same bytes is made under another tag, so it cannot
    # verify here: §3.)
    checks.begin("document signature")
    declared_by = check_signature(doc, keys)
    checks.passed(f"signed by {declared_by.party} [{declared_by.fingerprint}]")
    return doc, declared_by


def check_ack_header(value: object, doc: SignedHeader, keys: Keyring, checks: Checks,
                      what: str) -> tuple[SignedHeader, PublicIdentity]:
    """Steps 6 to 9 of both bundle forms, for one acknowledgement of ``doc``."""
    # Step 6: the acknowledgement header decodes and is of type "ack".
    checks.begin(f"{what}: header")
    ack = parse_header(value, True, what)
    ah = ack.header
    checks.passed(f"ack {ah.id}, {ah.count} entries")

    # Step 7: signed like any document (step 3), by a key in the keyring; checked once.
    checks.begin(f"{what}: signature")
    acknowledged_by = check_signature(ack, keys)
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


def check_ack_order(ah: DocumentHeader, previous: int | None, checks: Checks,
                     what: str) -> int:
    """Step 12 of both bundle forms: strictly later than the previous acknowledgement, so that
    "the last one" is well defined and a holder cannot reorder the history."""
    checks.begin(f"{what}: order")
    if previous is not None and ah.created <= previous:
        raise fail(f"{what} ({iso_time(ah.created)}) is not later than the one before it "
                    f"({iso_time(previous)})", "ack_order")
    checks.passed(iso_time(ah.created))
    return ah.created


def _check_answers(ack: DocumentHeader, doc: SignedHeader, what: str) -> None:
    """Step 8: the acknowledgement names this document by hash (and, for people, by id)."""
    if ack.answers is None or not hmac.compare_digest(ack.answers, doc.digest):
        raise fail(f"{what} answers another document (hash {(ack.answers or b'').hex()[:16]}…, "
                    f"not {doc.digest.hex()[:16]}… of {doc.header.id})", "wrong_document")
    if ack.answers_id != doc.header.id:
        raise fail(f"{what} names document {str(ack.answers_id)[:128]!r} but answers "
                    f"{doc.header.id!r} by hash", "wrong_document")


def _check_parties(ack: DocumentHeader, doc: DocumentHeader, what: str) -> None:
    """Step 9: only the recipient acknowledges, and it answers the issuer."""
    if ack.issuer != doc.recipient or ack.recipient != doc.issuer:
        raise fail(f"{what} is from {ack.issuer!r} to {ack.recipient!r}, but the document went "
                    f"from {doc.issuer!r} to {doc.recipient!r}", "wrong_party")


def check_acknowledged_item(what: str, item_id: str, status: str, leaf: bytes | None,
                            declared_leaf: bytes | None, undeclared: dict[str, str],
                            doc_id: str) -> bool:
    """Step 11 of a whole-document bundle, for one entry of acknowledgement ``what``: it binds
    the declared entry of its id by that entry's leaf hash (``declared_leaf``; None when the
    document declares no such id), or it is a RECEIVED_UNDECLARED of an id the document really
    does not declare (then ``undeclared``, each such id's latest status, is updated). True when
    it names a declared item (whose status is then ``status``)."""
    if leaf is None:
        if declared_leaf is not None:
            raise fail(f"{what} says item {item_id} was not declared, but it is", "wrong_item")
        # An undeclared item enters as RECEIVED_UNDECLARED, then may change status.
        if status != UNDECLARED and item_id not in undeclared:
            raise fail(f"{what}: item {item_id} has no declared entry and was never "
                       f"RECEIVED_UNDECLARED, but has status {status}", "bad_entry")
        undeclared[item_id] = status
        return False
    if status == UNDECLARED:
        raise fail(f"{what}: item {item_id} names a declared entry but says {UNDECLARED}",
                   "bad_entry")
    if declared_leaf is None:
        raise fail(f"{what} acknowledges item {item_id}, which {doc_id} does not declare",
                   "wrong_item")
    if leaf != declared_leaf:
        raise fail(f"{what} acknowledges another entry of item {item_id}", "wrong_leaf")
    return True


def meta_batch(header: DocumentHeader) -> str | None:
    batch = header.meta.get("batch")
    if isinstance(batch, bool) or not isinstance(batch, (int, str)):
        return None
    return str(batch)

