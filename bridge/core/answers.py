"""Transport receipts and rejections: the receiving bridge's signed answer to each envelope.

AS2's MDN, done strictly: the receipt names the envelope's hash and sequence number, and the
sender treats any mismatch as a failure, never a warning. Wire form (PROTOCOL.md §8.3): the
canonical map ``{"r": statement, "s": signature}`` where the signature is Ed25519 over
``"bridge/v1/transport-receipt" || 0x00 || statement``.

Statement fields: ``v`` (1), ``type`` ("bridge.transport-receipt" or "bridge.rejection"),
``from`` / ``to`` (the envelope's sender and recipient), ``by_key`` (the signer's key id),
``envelope`` (the hash of the bytes answered: every answer names it, so no answer can be
replayed against another envelope), ``id``, ``seq`` (nil when the envelope was not
authenticated), ``at`` (ms), ``result`` ("accepted", "refused" — authenticated but its content
refused — or "rejected"), ``reason`` (a code, nil when accepted), ``expected_seq`` (for a gap
or an equivocation, else nil).

Every field is checked for its type and range where it is parsed (``TransportAnswer``): an
answer from a peer, however well signed, is data from outside, and a malformed one is a
``PeerError`` with a reason code, never a ``TypeError`` in the delivery loop.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from bridge.core import codec, times
from bridge.core.beside import Beside, Pending, Then, inline
from bridge.core.crypto.identity import (
    PARTY_RE,
    TAG_TRANSPORT_RECEIPT,
    PrivateIdentity,
    PublicIdentity,
)
from bridge.core.errors import PeerError

RESULTS = ("accepted", "refused", "rejected")
_KEYS = frozenset({"v", "type", "from", "to", "by_key", "envelope", "id", "seq", "at",
                   "result", "reason", "expected_seq"})
# Reason codes are short snake_case words (PROTOCOL §7.5, §8.3): never free text.
REASON_RE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
# Fixed budgets of decoded objects (PROTOCOL.md §2.4, §8.3), as for an envelope: the outer
# map of two bins needs 290 bytes, the largest statement 2,047, so a hostile answer is
# refused after at most some 2,000 values are read, not after 64 KiB of them. The
# statement's 16 KiB lets msgpack's C decoder take one of up to 227 bytes, as before.
_OUTER_LIMITS = codec.SMALL_LIMITS.fixed_budget(2 * 1024)
_STATEMENT_LIMITS = codec.SMALL_LIMITS.fixed_budget(16 * 1024)
# Sequence numbers and times are stored as SQLite integers: both fit in 63 bits (§8.2).
MAX_INT = (1 << 63) - 1
# Rejections that carry ``expected_seq`` (§8.2 steps 2-4); no other answer does.
EXPECTS_SEQ = frozenset({"gap", "equivocation"})
# The receiver could not decide (its store is full or failing): nothing was recorded, and the
# sender retries the same bytes later, with backoff (§8.3).
UNAVAILABLE = "unavailable"


def _bad(what: str) -> PeerError:
    return PeerError(f"transport answer: {what}", reason="bad_receipt")


def _want_bin(value: object, size: int, name: str, *, nil: bool = False) -> None:
    if value is None and nil:
        return
    if type(value) is not bytes or len(value) != size:
        raise _bad(f"{name} must be {size} bytes" + (" or nil" if nil else ""))


def _want_int(value: object, name: str, *, minimum: int, nil: bool = False) -> None:
    if value is None and nil:
        return
    # type() is int: msgpack true is not the integer 1 (PROTOCOL §2.1).
    if type(value) is not int or not minimum <= value <= MAX_INT:
        raise _bad(f"{name} must be an integer in [{minimum}, 2^63-1]"
                   + (" or nil" if nil else ""))


def _want_party(value: object, name: str, *, nil: bool = False) -> None:
    if value is None and nil:
        return
    if type(value) is not str or not PARTY_RE.match(value):
        raise _bad(f"{name} must be a party name" + (" or nil" if nil else ""))


@dataclass(frozen=True, kw_only=True)
class TransportAnswer:
    sender: str | None
    recipient: str
    by_key: bytes
    envelope: bytes
    message_id: bytes | None
    seq: int | None
    at: int
    result: str
    reason: str | None = None
    expected_seq: int | None = None
    data: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        _want_party(self.sender, "from", nil=True)
        _want_party(self.recipient, "to")
        _want_bin(self.by_key, 32, "by_key")
        _want_bin(self.envelope, 32, "envelope")
        _want_bin(self.message_id, 16, "id", nil=True)
        _want_int(self.seq, "seq", minimum=1, nil=True)
        _want_int(self.at, "at", minimum=0)
        _want_int(self.expected_seq, "expected_seq", minimum=1, nil=True)
        if type(self.result) is not str or self.result not in RESULTS:
            raise _bad("unknown result")  # peer text: not quoted
        if self.reason is not None and (type(self.reason) is not str
                                        or not REASON_RE.match(self.reason)):
            raise _bad("reason must be a reason code")
        if (self.result == "accepted") != (self.reason is None):
            raise _bad("an accepted receipt has no reason; others must")
        if self.result != "rejected" and None in (self.sender, self.message_id, self.seq):
            raise _bad("a receipt names the envelope's sender, id and seq")
        if (self.expected_seq is not None) != (self.reason in EXPECTS_SEQ):
            raise _bad("expected_seq is given exactly for a gap or an equivocation")
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
    return start_answer(signer, answer, inline).result()


def start_answer(signer: PrivateIdentity, answer: TransportAnswer, beside: Beside
                 ) -> Pending[bytes]:
    """``sign_answer``, the slow half of its signature made ``beside``: the same bytes."""
    statement = codec.encode(answer.to_map())
    return Then(signer.start_sign(TAG_TRANSPORT_RECEIPT, statement, beside),
                lambda signature: codec.encode({"r": statement, "s": signature}))


def parse_answer(data: bytes, signer: PublicIdentity) -> TransportAnswer:
    """Check the signature (over the bytes received) and decode, every field checked for its
    type and range (``TransportAnswer``). Raises ``PeerError`` (``bad_receipt``) and nothing
    else, whatever the bytes."""
    try:
        outer = codec.decode(data, _OUTER_LIMITS)
    except PeerError as exc:
        raise _bad(f"not a transport answer ({exc})") from exc
    if (not isinstance(outer, dict) or set(outer) != {"r", "s"}
            or type(outer["r"]) is not bytes or type(outer["s"]) is not bytes):
        raise _bad("a transport answer is {r: bin, s: bin}")
    if not signer.verify(TAG_TRANSPORT_RECEIPT, outer["r"], outer["s"]):
        raise PeerError("transport answer signature does not verify", reason="bad_receipt")
    try:
        v = codec.decode(outer["r"], _STATEMENT_LIMITS)
    except PeerError as exc:
        raise _bad(f"statement not canonical ({exc})") from exc
    if not isinstance(v, dict) or set(v) != _KEYS or type(v["v"]) is not int or v["v"] != 1:
        raise _bad("wrong fields or version")
    answer = TransportAnswer(sender=v["from"], recipient=v["to"], by_key=v["by_key"],
                             envelope=v["envelope"], message_id=v["id"], seq=v["seq"],
                             at=v["at"], result=v["result"], reason=v["reason"],
                             expected_seq=v["expected_seq"], data=data)
    if not hmac.compare_digest(answer.by_key, signer.key_id):
        raise _bad("names another signing key")
    if v["type"] != answer.kind:
        raise _bad("type does not match its result")
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
    """Every answer, a rejection too, names the hash of the envelope it answers: an answer
    captured for one envelope is not taken for another's (PROTOCOL §8.3). A receipt names its
    seq and id as well; a rejection may leave them nil (an unauthenticated envelope), and any
    it names must be ours. A gap asks for an earlier envelope: one that names this envelope's
    own seq or a later one is a contradiction, not a request to resend."""
    if not hmac.compare_digest(answer.envelope, digest):
        raise PeerError("transport answer names another envelope", reason="receipt_mismatch")
    if (answer.seq, answer.message_id) not in ((seq, message_id), (None, None)):
        raise PeerError("transport answer names another sequence number or message id",
                        reason="receipt_mismatch")
    if answer.reason == "gap" and (answer.expected_seq is None or answer.expected_seq >= seq):
        raise PeerError(f"a gap answer to envelope {seq} expects {answer.expected_seq}, not an "
                        "earlier one", reason="bad_receipt")
