"""Transport receipts and rejections: the receiving bridge's signed answer to each envelope.

AS2's MDN, done strictly: the receipt names the envelope's hash and sequence number, and the
sender treats any mismatch as a failure, never a warning. Wire form (PROTOCOL.md §8): the
canonical map ``{"r": statement, "s": signature}`` where the signature is Ed25519 over
``"bridge/v1/transport-receipt" || 0x00 || statement``.

Statement fields: ``v`` (1), ``type`` ("bridge.transport-receipt" or "bridge.rejection"),
``from`` / ``to`` (the envelope's sender and recipient), ``by_key`` (the signer's key id),
``envelope`` (hash, or nil when the envelope could not be parsed), ``id``, ``seq`` (nil likewise),
``at`` (ms), ``result`` ("accepted", "refused" — authenticated but its content refused — or
"rejected"), ``reason`` (a code, nil when accepted), ``expected_seq`` (for a gap, else nil).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from bridge import codec, times
from bridge.errors import PeerError
from bridge.identity import TAG_TRANSPORT_RECEIPT, PrivateIdentity, PublicIdentity

RESULTS = ("accepted", "refused", "rejected")
_KEYS = frozenset({"v", "type", "from", "to", "by_key", "envelope", "id", "seq", "at",
                   "result", "reason", "expected_seq"})


@dataclass(frozen=True, kw_only=True)
class TransportAnswer:
    sender: str | None
    recipient: str
    by_key: bytes
    envelope: bytes | None
    message_id: bytes | None
    seq: int | None
    at: int
    result: str
    reason: str | None = None
    expected_seq: int | None = None
    data: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise PeerError(f"unknown transport result {self.result!r}", reason="bad_receipt")
        if (self.result == "accepted") != (self.reason is None):
            raise PeerError("an accepted receipt has no reason; others must",
                            reason="bad_receipt")
        # Ranges where they are parsed (PROTOCOL.md §3 "Ranges"): a sequence number goes back
        # into the store (a rewind to expected_seq), so it must fit SQLite's INTEGER.
        for name in ("seq", "expected_seq"):
            value = getattr(self, name)
            problem = None if value is None else times.check_int(value, minimum=1,
                                                                 maximum=times.MAX_SEQ)
            if problem is not None:
                raise PeerError(f"transport answer {name} {problem}", reason="bad_receipt")
        problem = times.check_time(self.at)
        if problem is not None:
            raise PeerError(f"transport answer at {problem}", reason="bad_receipt")

    @property
    def kind(self) -> str:
        return "bridge.transport-receipt" if self.result != "rejected" else "bridge.rejection"

    def to_map(self) -> dict[str, Any]:
        return {"v": 1, "type": self.kind, "from": self.sender, "to": self.recipient,
                "by_key": self.by_key, "envelope": self.envelope, "id": self.message_id,
                "seq": self.seq, "at": self.at, "result": self.result, "reason": self.reason,
                "expected_seq": self.expected_seq}


def sign_answer(signer: PrivateIdentity, answer: TransportAnswer) -> bytes:
    statement = codec.encode(answer.to_map())
    return codec.encode({"r": statement, "s": signer.sign(TAG_TRANSPORT_RECEIPT, statement)})


def parse_answer(data: bytes, signer: PublicIdentity) -> TransportAnswer:
    """Check the signature (over the bytes received) and decode. Raises ``PeerError``."""
    outer = codec.decode(data, codec.SMALL_LIMITS)
    if (not isinstance(outer, dict) or set(outer) != {"r", "s"}
            or not isinstance(outer["r"], bytes) or not isinstance(outer["s"], bytes)):
        raise PeerError("a transport answer is {r: bin, s: bin}", reason="bad_receipt")
    if not signer.verify(TAG_TRANSPORT_RECEIPT, outer["r"], outer["s"]):
        raise PeerError("transport answer signature does not verify", reason="bad_receipt")
    v = codec.decode(outer["r"], codec.SMALL_LIMITS)
    if not isinstance(v, dict) or set(v) != _KEYS or v["v"] != 1:
        raise PeerError("transport answer has the wrong fields", reason="bad_receipt")
    if v["by_key"] != signer.key_id:
        raise PeerError("transport answer names another signing key", reason="bad_receipt")
    try:
        answer = TransportAnswer(sender=v["from"], recipient=v["to"], by_key=v["by_key"],
                                 envelope=v["envelope"], message_id=v["id"], seq=v["seq"],
                                 at=v["at"], result=v["result"], reason=v["reason"],
                                 expected_seq=v["expected_seq"], data=data)
    except TypeError as exc:
        raise PeerError(f"transport answer malformed: {exc}", reason="bad_receipt") from exc
    if v["type"] != answer.kind:
        raise PeerError("transport answer type does not match its result", reason="bad_receipt")
    return answer


def resign(data: bytes, signer: PrivateIdentity) -> bytes:
    """The same statement, re-signed by ``signer``'s current key (``by_key`` updated).

    A duplicate is answered with the receipt issued the first time; if the receiver has
    rotated its key since, the sender only trusts the new key, so the same statement is given
    again under it. Only our own stored receipts are passed here, never a peer's bytes."""
    outer = codec.decode(data, codec.SMALL_LIMITS)
    statement = codec.decode(outer["r"], codec.SMALL_LIMITS)
    if statement["by_key"] == signer.key_id:
        return data
    statement["by_key"] = signer.key_id
    body = codec.encode(statement)
    return codec.encode({"r": body, "s": signer.sign(TAG_TRANSPORT_RECEIPT, body)})


def check_receipt_matches(answer: TransportAnswer, *, digest: bytes, seq: int,
                          message_id: bytes) -> None:
    """A receipt for another envelope is a failure, not a warning."""
    if answer.envelope is None or not hmac.compare_digest(answer.envelope, digest):
        raise PeerError("transport receipt names another envelope", reason="receipt_mismatch")
    if answer.seq != seq or answer.message_id != message_id:
        raise PeerError("transport receipt names another sequence number or message id",
                        reason="receipt_mismatch")
