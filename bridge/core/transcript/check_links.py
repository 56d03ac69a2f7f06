"""Step 5 of a transcript check (PROTOCOL.md §11.5): one direction's envelopes, each signed by
its sender, numbered 1, 2, … in one chain, with the recipient's signed receipt naming it, and
carrying the chunks of its documents in order."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.core import answers as transport
from bridge.core import codec, envelope
from bridge.core.crypto.hashes import sha256
from bridge.core.crypto.identity import TAG_ENVELOPE, TAG_TRANSPORT_RECEIPT, Keyring, PublicIdentity
from bridge.core.envelope import EnvelopeHeader
from bridge.core.errors import DecodeError, PeerError
from bridge.core.printable import quoted
from bridge.core.transcript.check_state import CheckedDocument, Times, fail, not_revoked
from bridge.core.transcript.model import (
    CARRIES_KEYS,
    ENVELOPE_KEYS,
    KIND_CHUNK,
    ZERO_HASH,
    chunk_continues,
)


@dataclass(frozen=True)
class LinkSeen:
    """What one direction's envelopes showed."""

    count: int
    refused: int
    unaccounted: tuple[str, ...]
    without_ciphertext: int


def check_link(sender: str, recipient: str, raw: Callable[[], Iterator[Any]], count: int,
               docs: Mapping[bytes, CheckedDocument], keys: Keyring, times: Times) -> LinkSeen:
    """5. One direction's ``count`` envelopes, each read on its own (``raw`` reads them in
    order, again from the first each time it is called)."""
    prev_hash = ZERO_HASH
    refused = 0
    unaccounted: list[str] = []
    without_ct = 0
    for k, item in enumerate(raw(), start=1):
        # 5.1 Shape.
        _check_shape(item, f"envelope {k} {sender}→{recipient}")
        # 5.2 Header: this direction, keys of these parties (PROTOCOL.md §5.1).
        header, signer, where = _check_header(item, k, sender, recipient, keys)
        # 5.3 Sequence numbers 1, 2, … with no gap (PROTOCOL.md §8.2).
        _check_seq(header.seq, k, raw, sender, recipient)
        # 5.4 The chain: prev names the previous envelope's hash (zero for the first).
        if not hmac.compare_digest(header.prev, prev_hash):
            raise fail(f"{where} does not name the hash of envelope {k - 1} as its previous "
                       "(the chain is broken)" if k > 1 else
                       f"{where} is the first but names a previous envelope", "chain_broken")
        # 5.5 The sender's signature over these exact header bytes (PROTOCOL.md §5.3): every
        #     field shown (kind, at, keys) is then the sender's word, not the exporter's.
        _check_envelope_signature(item, signer, keys, header, where)
        # 5.6 The ciphertext, when included, gives back the envelope hash: the recipient's
        #     receipt, which names that hash, then binds the header too.
        without_ct += _check_ciphertext(item, where)
        # 5.7–5.9 The recipient's receipt, proof of delivery of this very envelope.
        answer = _check_delivery(item, header, keys, sender, recipient, where)
        refused += answer.result == "refused"
        # 5.10 What it carries: a chunk of a document from this sender, in order; a chunk
        #      envelope that names none (or names one not listed) is left out, and said.
        if not _check_carries(item["carries"], header.kind, answer.result, docs, sender,
                              where):
            unaccounted.append(where)
        times.see(header.sent_at)
        times.see(answer.at)
        prev_hash = item["hash"]
    return LinkSeen(count=count, refused=refused, unaccounted=tuple(unaccounted),
                    without_ciphertext=without_ct)


def _check_shape(item: object, where: str) -> None:
    if (not isinstance(item, dict) or set(item) != ENVELOPE_KEYS
            or not all(isinstance(item[x], bytes)
                       for x in ("header", "sig", "ct_hash", "hash", "receipt"))
            or not (item["ct"] is None or isinstance(item["ct"], bytes))
            or len(item["hash"]) != 32 or len(item["ct_hash"]) != 32):
        raise fail(f"{where} is not {{header, sig, ct_hash, ct, hash, receipt, carries}}",
                   "bad_transcript")


def _check_header(item: Mapping[str, Any], k: int, sender: str, recipient: str,
                  keys: Keyring) -> tuple[EnvelopeHeader, PublicIdentity, str]:
    """The envelope header, the sender's identity, and the envelope's name for messages (by
    the sequence number it says it has)."""
    try:
        header = EnvelopeHeader.from_bytes(item["header"])
    except PeerError as exc:
        raise fail(f"envelope {k} {sender}→{recipient}: {exc.message}", "bad_header") from exc
    where = f"envelope {header.seq} {sender}→{recipient}"
    if (header.sender, header.recipient) != (sender, recipient):
        raise fail(f"{where} is addressed {header.sender}→{header.recipient}", "wrong_party")
    signer = _key_of(keys, header.sender_key, sender, where)
    _key_of(keys, header.recipient_key, recipient, where)
    return header, signer, where


def _check_seq(seq: int, k: int, raw: Callable[[], Iterator[Any]], sender: str,
               recipient: str) -> None:
    """Envelope ``k`` of the list says it is envelope ``seq``: out of order, or some missing."""
    if seq == k:
        return
    if seq < k or k in _listed_seqs(raw()):
        raise fail(f"envelopes {sender}→{recipient} are out of order: envelope "
                   f"{seq} stands where envelope {k} should", "envelope_order")
    missing = f"envelope {k} is" if seq == k + 1 else f"envelopes {k}–{seq - 1} are"
    raise fail(f"{missing} missing from {sender}→{recipient}: after "
               f"{k - 1 or 'the start'} comes {seq}", "missing_envelope")


def _check_delivery(item: Mapping[str, Any], header: EnvelopeHeader, keys: Keyring,
                    sender: str, recipient: str, where: str) -> transport.TransportAnswer:
    # 5.7 The recipient's receipt: signed by the recipient's key, under its own tag.
    answer = _check_receipt(item["receipt"], keys, recipient, where)
    # 5.8 It proves delivery into the chain (accepted, or refused content).
    if answer.result not in ("accepted", "refused"):
        raise fail(f"{where}: the receipt is a rejection, not proof of delivery",
                   "not_delivered")
    # 5.9 It names this envelope: hash, sequence number, message id, parties.
    if (answer.envelope is None or not hmac.compare_digest(answer.envelope, item["hash"])
            or answer.seq != header.seq or answer.message_id != header.message_id
            or answer.sender != sender or answer.recipient != recipient):
        raise fail(f"{where}: the receipt names another envelope (hash, sequence number "
                   "or message id differ)", "receipt_mismatch")
    return answer


def _check_envelope_signature(item: Mapping[str, Any], signer: PublicIdentity, keys: Keyring,
                              header: EnvelopeHeader, where: str) -> None:
    if not signer.verify(TAG_ENVELOPE, envelope.signed_body(item["header"], item["ct_hash"]),
                         item["sig"]):
        raise fail(f"{where}: the envelope signature by {header.sender} does not verify over "
                   "its header", "bad_signature")
    not_revoked(keys, signer, header.sent_at, where)


def _check_ciphertext(item: Mapping[str, Any], where: str) -> int:
    """0 when the ciphertext is included and checks out, 1 when it is not included."""
    ct = item["ct"]
    if ct is None:
        return 1
    if not hmac.compare_digest(sha256(ct), item["ct_hash"]):
        raise fail(f"{where}: the ciphertext is not the one the signature covers",
                   "ciphertext_mismatch")
    wire = envelope.wire_bytes(item["header"], ct, item["sig"])
    if not hmac.compare_digest(envelope.envelope_hash(wire), item["hash"]):
        raise fail(f"{where}: header, ciphertext and signature do not give the envelope "
                   "hash listed", "hash_mismatch")
    return 0


def _listed_seqs(raw: Iterator[Any]) -> set[int]:
    """Sequence numbers of the envelopes listed (for a diagnosis only: unreadable ones are
    skipped, the main loop names them when it gets there; so is what follows an envelope that
    cannot be read at all)."""
    seqs = set()
    try:
        for item in raw:
            try:
                seqs.add(EnvelopeHeader.from_bytes(item["header"]).seq)
            except (PeerError, KeyError, TypeError):
                continue
    except DecodeError:
        pass
    return seqs


def _key_of(keys: Keyring, key_id: bytes, party: str, where: str) -> PublicIdentity:
    ident = keys.get(key_id)
    if ident is None:
        raise fail(f"{where} names a key of {party} that is not among the given keys",
                   "unknown_key")
    if ident.party != party:
        raise fail(f"{where}: the key named for {party} belongs to {ident.party}",
                   "wrong_issuer")
    return ident


def _check_receipt(data: bytes, keys: Keyring, recipient: str,
                   where: str) -> transport.TransportAnswer:
    try:
        outer = codec.decode(data, codec.SMALL_LIMITS)
        if (not isinstance(outer, dict) or set(outer) != {"r", "s"}
                or not isinstance(outer["r"], bytes) or not isinstance(outer["s"], bytes)):
            raise fail(f"{where}: the receipt is not {{r, s}}", "bad_receipt")
        statement = codec.decode(outer["r"], codec.SMALL_LIMITS)
    except DecodeError as exc:
        raise fail(f"{where}: the receipt is not canonical ({exc.message})",
                   "bad_receipt") from exc
    by_key = statement.get("by_key") if isinstance(statement, dict) else None
    if not isinstance(by_key, bytes):
        raise fail(f"{where}: the receipt names no signing key", "bad_receipt")
    signer = _key_of(keys, by_key, recipient, f"{where}: the receipt")
    if not signer.verify(TAG_TRANSPORT_RECEIPT, outer["r"], outer["s"]):
        raise fail(f"{where}: the receipt's signature by {recipient} does not verify",
                   "bad_signature")
    try:
        answer = transport.parse_answer(data, signer)
    except PeerError as exc:
        raise fail(f"{where}: {exc.message}", "bad_receipt") from exc
    not_revoked(keys, signer, answer.at, f"{where}: the receipt")
    return answer


def _check_carries(carries: object, kind: str, result: str, docs: Mapping[bytes, CheckedDocument],
                   sender: str, where: str) -> bool:
    """True when the envelope's content is accounted for: a chunk of a listed document, or an
    envelope of another kind (a key statement: its signed ``kind`` says what it held)."""
    if carries is None:
        return kind != KIND_CHUNK
    if kind != KIND_CHUNK:
        raise fail(f"{where} is of kind {quoted(kind)}, which carries no document chunk",
                   "bad_transcript")
    if (not isinstance(carries, dict) or set(carries) != CARRIES_KEYS
            or not isinstance(carries["doc"], bytes) or type(carries["first"]) is not int
            or type(carries["n"]) is not int):
        raise fail(f"{where}: carries is not {{doc, first, n}}", "bad_transcript")
    doc = docs.get(carries["doc"])
    if doc is None:
        if result == "refused":
            return False  # refused content need not have been kept by either side
        raise fail(f"{where} carries a document that is not in the transcript",
                   "unknown_document")
    h = doc.signed.header
    if h.issuer != sender:
        raise fail(f"{where} carries {doc.name}, issued by {h.issuer}", "wrong_party")
    first, n = carries["first"], carries["n"]
    # Refused envelopes count too: the sender cut the document into chunks once, and sent
    # them all in order whatever the recipient made of each (PROTOCOL.md §11.5 step 5.10).
    if not chunk_continues(carried=doc.carried, size=doc.chunk, first=first, n=n,
                           count=h.count):
        raise fail(f"{where} carries entries {first}–{first + n - 1} of {doc.name}, but "
                   f"{doc.carried} of {h.count} were carried before it, in chunks of "
                   f"{doc.chunk or 'a power of two'} (PROTOCOL.md §8.1)", "bad_chunk")
    doc.chunk = doc.chunk or n
    doc.carried += n
    if result == "accepted":
        doc.delivered += n
    return True

__all__ = ["LinkSeen", "check_link"]
