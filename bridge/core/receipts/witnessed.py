"""Witnessed time in a receipt (PROTOCOL.md §13.5): the optional ``witnessed`` field.

A receipt bundle of either form may carry ``witnessed``, a list of 1 to ``MAX_WITNESSED``
maps, one per audit record of the exporting party — or of its peer, carried to it with the
peer's witnessed checkpoints (PROTOCOL.md §13.7) — that logged the declaring document or one
of its acknowledgements:

    {"checkpoint": bin,   the party's signed checkpoint (a C2SP signed note) with the
                          witnesses' cosignature lines
     "index": int,        the record's leaf index (its seq - 1)
     "proof": [bin32],    its inclusion proof in the checkpoint's tree (RFC 9162 §2.1.3)
     "record": bin}       the record bytes (audit.record_bytes)

The receipt's own checks (§7.3, §7.4) ignore the field, so a receipt that carries it is
exactly as valid without it; :func:`check_witnessed` checks it on top, for each entry:

W1. the record decodes, is a ``document`` or ``ack`` record, and its body's digest is the
    digest of the bundle's document or of one of its acknowledgements (it is about *this*
    receipt);
W2. the checkpoint is signed by the party whose origin it names, that party's key being in
    the keyring (``bad_checkpoint``);
W3. the record is included in the checkpoint's tree at its index (``bad_proof``);
W4. with witness keys given: a cosignature of each verifies (``bad_cosignature``; none
    from that witness: ``not_witnessed``) and gives the time T: the record was logged no
    later than T, by the witness's clock.

Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.core import audit, audit_tree, codec
from bridge.core.crypto.identity import Keyring, PublicIdentity, iso_time
from bridge.core.documents import ACK, SignedHeader
from bridge.core.errors import BridgeError, DecodeError, VerificationError
from bridge.core.notes import checkpoint as cp_mod
from bridge.core.notes.cosignature import cosignature_verifier, read_cosignature
from bridge.core.notes.note import open_note, parse_note
from bridge.core.printable import printable
from bridge.core.receipts.bundle import RECEIPT_LIMITS
from bridge.core.transcript.model import TRANSCRIPT

WITNESSED = "witnessed"
MAX_WITNESSED = 2 * 4097
"""Each party's record (its own, and the peer's carried to it, PROTOCOL.md §13.7) of the
document and of up to MAX_ACK_DOCUMENTS acknowledgements."""
ENTRY_KEYS = frozenset({"checkpoint", "index", "proof", "record"})

__all__ = ["ENTRY_KEYS", "MAX_WITNESSED", "WITNESSED", "WitnessReport", "WitnessedRecord",
           "check_witnessed", "check_witnessed_in", "with_witnessed"]


@dataclass(frozen=True, kw_only=True)
class WitnessedRecord:
    what: str  # "document M-1" / "acknowledgement A-1"
    logged_by: str
    claimed_at: int  # ms: the party's own time in the record
    bounds: tuple[tuple[str, int], ...]  # (witness, POSIX seconds) per witness checked

    def line(self) -> str:
        if not self.bounds:
            return (f"{self.what}: logged by {self.logged_by} at {iso_time(self.claimed_at)} "
                    "(the party's own claim)")
        # A cosignature's time is whole seconds (tlog-cosignature): the witness cosigned within
        # second T, so the record was logged before T + 1 s, said to the second.
        out = "; ".join(f"{self.what}: logged by {self.logged_by} no later than "
                        f"{_to_the_second(t)} (witnessed by {w})" for w, t in self.bounds)
        earliest = min(t for _, t in self.bounds)
        if self.claimed_at >= (earliest + 1) * 1000:
            # The party dated the record after the second in which a witness had already
            # cosigned it: the party's clock is ahead (PROTOCOL.md §13.6).
            out += (f" — but {self.logged_by} dated it {iso_time(self.claimed_at)}, later: "
                    "its clock is ahead of the witness's")
        return out


def _to_the_second(seconds: int) -> str:
    """``2026-12-01T17:33:33Z``: a witness's time, which has no fraction of a second."""
    text = iso_time(seconds * 1000)
    return text[:-5] + "Z" if text.endswith(".000Z") else text


@dataclass(frozen=True, kw_only=True)
class WitnessReport:
    ok: bool
    records: tuple[WitnessedRecord, ...] = ()
    reason: str | None = None
    diagnosis: str | None = None
    witnesses_checked: bool = False

    def lines(self) -> list[str]:
        if not self.ok:
            return [f"{self.diagnosis} [{self.reason}]"]
        out = [r.line() for r in self.records]
        if not self.witnesses_checked:
            out.append("the times in this receipt are the parties' own claims (no --witness "
                       "given)")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "diagnosis": self.diagnosis,
                "witnessed": [{"what": r.what, "logged_by": r.logged_by,
                               "claimed_at": iso_time(r.claimed_at),
                               "no_later_than": {w: iso_time(t * 1000) for w, t in r.bounds}}
                              for r in self.records]}


def _fail(why: str, reason: str) -> VerificationError:
    return VerificationError(why, reason=reason)


def _named(signed: SignedHeader) -> str:
    kind = "acknowledgement" if signed.header.type == ACK else "document"
    return f"{kind} {printable(signed.header.id)}"


def _digests(bundle: dict[str, Any]) -> dict[bytes, str]:
    """The digest of the bundle's document and acknowledgements, each with what it is."""
    if bundle.get("type") == TRANSCRIPT:
        docs = [SignedHeader.parse(d.get("doc") if isinstance(d, dict) else d)
                for d in bundle.get("documents") or []]
        return {s.digest: _named(s) for s in docs}
    doc = bundle["document"]
    doc_map = doc.get("doc", doc) if isinstance(doc, dict) else doc
    out = {}
    signed = SignedHeader.parse(doc_map)
    out[signed.digest] = f"document {printable(signed.header.id)}"
    for a in bundle.get("acks") or []:
        ack = SignedHeader.parse(a.get("ack", a.get("doc")) if isinstance(a, dict) else a)
        out[ack.digest] = f"acknowledgement {printable(ack.header.id)}"
    return out


def _origins(keys: Keyring) -> dict[str, PublicIdentity]:
    return {audit_tree.identity_origin(i): i for i in keys.by_id.values()}


def check_witnessed(data: bytes, keys: Keyring, witnesses: Sequence[PublicIdentity] = (),
                    limits: codec.Limits = RECEIPT_LIMITS) -> WitnessReport | None:
    """The witnessed times of a receipt (or, with its limits, a transcript) whose own checks
    passed; None when it carries none."""
    try:
        bundle = codec.decode(bytes(data), limits)
    except BridgeError as err:
        return WitnessReport(ok=False, reason=err.code, diagnosis=err.message,
                             witnesses_checked=bool(witnesses))
    return check_witnessed_in(bundle, keys, witnesses)


def check_witnessed_in(bundle: object, keys: Keyring,
                       witnesses: Sequence[PublicIdentity] = ()) -> WitnessReport | None:
    """``check_witnessed`` of a bundle already decoded, or of what a transcript read a piece
    at a time holds of it (its type, documents' signed headers and witnessed records)."""
    try:
        if not isinstance(bundle, dict) or WITNESSED not in bundle:
            return None
        entries = bundle[WITNESSED]
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_WITNESSED:
            raise _fail(f"witnessed must list 1 to {MAX_WITNESSED} records", "bad_bundle")
        digests, origins = _digests(bundle), _origins(keys)
        records = tuple(_check_entry(e, digests, origins, witnesses) for e in entries)
    except BridgeError as err:
        return WitnessReport(ok=False, reason=err.code, diagnosis=err.message,
                             witnesses_checked=bool(witnesses))
    return WitnessReport(ok=True, records=records, witnesses_checked=bool(witnesses))


def _check_entry(entry: object, digests: dict[bytes, str], origins: dict[str, PublicIdentity],
                 witnesses: Sequence[PublicIdentity]) -> WitnessedRecord:
    if (not isinstance(entry, dict) or set(entry) != ENTRY_KEYS
            or not isinstance(entry["checkpoint"], bytes) or type(entry["index"]) is not int
            or not isinstance(entry["record"], bytes) or not isinstance(entry["proof"], list)
            or not all(isinstance(p, bytes) for p in entry["proof"])):
        raise _fail("a witnessed record is {checkpoint, index, proof, record}", "bad_bundle")
    logged = audit_tree.LoggedRecord(record=entry["record"], index=entry["index"],
                                     proof=tuple(entry["proof"]))
    # W1: the record is about this receipt.
    fields = logged.fields()
    if fields.get("kind") not in (audit.DOCUMENT, audit.ACK):
        raise _fail(f"witnessed record {entry['index'] + 1} is not a document record",
                    "wrong_record")
    body = codec.decode(fields["body"], audit.BODY_LIMITS)
    digest = body.get("digest") if isinstance(body, dict) else None
    what = digests.get(digest) if isinstance(digest, bytes) else None
    if what is None:
        raise _fail(f"witnessed record {entry['index'] + 1} is about another document",
                    "wrong_record")
    # W2: the checkpoint is signed by the party whose log it is.
    note = parse_note(entry["checkpoint"])
    cp = cp_mod.parse_checkpoint_text(note.text)
    owner = origins.get(cp.origin)
    if owner is None:
        raise _fail(f"the checkpoint of {what} is of a log whose key was not given "
                    f"({printable(cp.origin)})", "bad_checkpoint")
    try:
        open_note(entry["checkpoint"], [audit_tree.log_verifier(owner)])
    except VerificationError as exc:
        raise _fail(f"the checkpoint of {what} is not signed by {owner.party}: {exc}",
                    "bad_checkpoint") from exc
    # W3: the record is in that tree.
    audit_tree.verify_logged(logged, cp)
    # W4: the witnesses' cosignatures, and their times.
    bounds = tuple((w.party, _cosigned_at(entry["checkpoint"], w, what)) for w in witnesses)
    return WitnessedRecord(what=what, logged_by=owner.party, claimed_at=int(fields["at"]),
                           bounds=bounds)


def _cosigned_at(note_bytes: bytes, witness: PublicIdentity, what: str) -> int:
    name = cp_mod.witness_key_name(witness.party, witness.fingerprint)
    try:
        _, good = open_note(note_bytes, [cosignature_verifier(name, witness.note_key)])
    except VerificationError as exc:
        if exc.code == "unknown_key":
            raise _fail(f"the checkpoint of {what} has no cosignature of witness "
                        f"{witness.party}", "not_witnessed") from exc
        raise _fail(f"the cosignature of witness {witness.party} on the checkpoint of {what} "
                    "does not verify", "bad_cosignature") from exc
    read = read_cosignature(good[0])
    if read is None:  # the verifier accepted it, so it has the shape; kept as a refusal
        raise _fail("a cosignature without a time", "bad_cosignature")
    return read[0]


def with_witnessed(bundle_bytes: bytes, entries: list[dict[str, Any]],
                   limits: codec.Limits = RECEIPT_LIMITS) -> bytes:
    """The bundle (or transcript) with ``witnessed`` added (re-encoded canonically)."""
    bundle = codec.decode(bundle_bytes, limits)
    if not isinstance(bundle, dict):
        raise DecodeError("a receipt bundle is a map")
    return codec.encode({**bundle, WITNESSED: entries})
