"""What a hostile peer signs: transport answers with any fields, documents an honest engine
would never build. Built from the core's own encoding and signing (bytes and values, no
engine), with the peer's real key: the worst case is a compromised or buggy peer, or someone
replaying what the peer once signed.

Everything here is synthetic: invented parties and records.
"""

from __future__ import annotations

from typing import Any

from bridge.core import chunks, codec, documents, envelope
from bridge.core.crypto.identity import TAG_DOCUMENT, TAG_TRANSPORT_RECEIPT, PrivateIdentity

from .wire import Answer, Pending


def statement(key: PrivateIdentity, pending: Pending, **fields: Any) -> dict[str, Any]:
    """The statement an honest receiver signs to accept ``pending``, with ``fields`` replaced
    (not checked, so that it can say anything). Dated when the envelope was sent."""
    header = envelope.parse(pending.data)[0]
    base: dict[str, Any] = {
        "v": 1, "type": "bridge.transport-receipt", "from": header.sender,
        "to": header.recipient, "by_key": key.key_id, "envelope": pending.digest,
        "id": header.message_id, "seq": header.seq, "at": header.sent_at, "result": "accepted",
        "reason": None, "expected_seq": None}
    return base | fields


def signed(key: PrivateIdentity, value: dict[str, Any], *, status: int = 200) -> Answer:
    """Any statement, signed as ``key``'s transport answer."""
    body = codec.encode(value)
    return Answer(body=codec.encode({"r": body, "s": key.sign(TAG_TRANSPORT_RECEIPT, body)}),
                  outcome="hostile", status=status)


def resigned_header(issuer: PrivateIdentity, doc: documents.SignedDocument,
                    **fields: Any) -> documents.SignedDocument:
    """``doc`` with header fields replaced and signed again by ``issuer``: the same entries
    and root, a header no honest signer would write (a time out of range, say)."""
    header = codec.decode(doc.signed.data, codec.SMALL_LIMITS) | fields
    data = codec.encode(header)
    signed_header = documents.SignedHeader(header=doc.header, data=data,
                                           signature=issuer.sign(TAG_DOCUMENT, data))
    return documents.SignedDocument(signed=signed_header, leaves=doc.leaves)


def chunk_payloads(doc: documents.SignedDocument, size: int) -> list[bytes]:
    return [c.payload for c in chunks.split(doc, size)]


def acknowledgement(issuer: PrivateIdentity, answers: documents.SignedHeader,
                    leaf_hashes: dict[str, bytes], statuses: dict[str, str], *, ack_id: str,
                    created: int) -> documents.SignedDocument:
    """An acknowledgement signed with no lifecycle check (the engine checks; this does not)."""
    return documents.sign_ack(
        issuer, answers=answers, ack_id=ack_id, created=created,
        items=[documents.AckItem(id=i, status=s) for i, s in statuses.items()],
        declared_leaf_hashes=leaf_hashes, salt_key=bytes(32))
