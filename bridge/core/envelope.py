"""Sealed envelopes: what crosses between two bridges.

Wire form (PROTOCOL.md §5): the canonical map ``{"c": ciphertext, "h": header, "s": signature}``.

- ``h`` is the canonical encoding of the header (sender, recipient, their key ids, message id,
  per-direction sequence number, hash of the previous envelope, time, kind, HPKE suite).
- ``c`` is HPKE base mode single-shot output ``enc || ct`` (RFC 9180 §5.1, §6.1) with
  DHKEM(X25519, HKDF-SHA256) or X-Wing, HKDF-SHA256, ChaCha20-Poly1305 and
  ``info = "bridge/v1/hpke-info" || 0x00 || h``: the header is bound into the key schedule
  (RFC 9180 §5.1), so a ciphertext cannot be re-addressed or re-sequenced.
- ``s`` is the sender's signature, in the sender's suite (Ed25519; in suite 2 Ed25519 and
  ML-DSA-65), over ``"bridge/v1/envelope" || 0x00 || u32be(len(h)) || h || SHA-256(c)``.
- The suite of ``c`` is the recipient's pinned identity's, and the header says it (§5.2).

Opening checks the signature over the bytes received before decrypting (encrypt-then-sign with
the header in both: RFC 9180 §9.1 notes that base mode alone does not authenticate the sender).
Every authentication failure says the same opaque thing; the detail is for the local log.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.core import codec, times
from bridge.core.beside import Beside, Pending, Then, inline
from bridge.core.crypto import suites
from bridge.core.crypto.identity import (
    SUITE_X25519_CHACHA,
    TAG_ENVELOPE,
    TAG_HPKE_INFO,
    Keyring,
    PrivateIdentity,
    PublicIdentity,
    check_party,
    format_fingerprint,
    signed_message,
)
from bridge.core.errors import DecodeError, OpaqueCryptoError, PeerError

ZERO_HASH = bytes(32)
MESSAGE_ID_SIZE = 16
_HEADER_KEYS = frozenset({"v", "suite", "from", "from_key", "to", "to_key", "id", "seq", "prev",
                          "at", "kind"})
_KIND_MAX = 32
# Fixed budgets of decoded objects (PROTOCOL.md §2.4, §5.1), whatever the body's size. The
# strict reader spends at least 8 bytes of budget on every value it reads (its slot), so a
# budget bounds the values read, and so the Python work, before a hostile body is refused:
# with 64 KiB the outer map alone could walk some 8,000 one-byte values (a few ms beside the
# event loop), and the header, with the SMALL budget, up to 64 KiB of them.
# Each leaves room for §2.4's reasons of a too deep value (17 nested arrays, or maps in a
# header) to come before the budget's. The header's is larger than it needs: a budget of
# 16 KiB lets msgpack's C decoder take any header of up to 227 bytes (one with short party
# names), as it did before the budget was fixed; 8 KiB cost every such envelope 30 us more.
OUTER_BUDGET = 2 * 1024  # the map, three one-letter keys and three bins: 363 bytes
HEADER_BUDGET = 16 * 1024  # the largest header (63-letter parties, a 32-letter kind): 1,856
HEADER_LIMITS = codec.SMALL_LIMITS.fixed_budget(HEADER_BUDGET)


@dataclass(frozen=True, kw_only=True)
class EnvelopeHeader:
    sender: str
    sender_key: bytes
    recipient: str
    recipient_key: bytes
    message_id: bytes
    seq: int
    prev: bytes
    sent_at: int  # milliseconds since the Unix epoch, UTC
    kind: str
    suite: tuple[int, int, int] = SUITE_X25519_CHACHA

    def __post_init__(self) -> None:
        check_party(self.sender, field_name="from")
        check_party(self.recipient, field_name="to")
        _want_bytes(self.sender_key, 32, "from_key")
        _want_bytes(self.recipient_key, 32, "to_key")
        _want_bytes(self.message_id, MESSAGE_ID_SIZE, "id")
        _want_bytes(self.prev, 32, "prev")
        # Ranges where they are parsed (PROTOCOL.md §3 "Ranges", §5.1): a seq past SQLite's
        # INTEGER overflowed in the duplicate lookup, before any signature was checked.
        _want_int(self.seq, "seq", times.check_int(self.seq, minimum=1, maximum=times.MAX_SEQ))
        _want_int(self.sent_at, "at", times.check_time(self.sent_at))
        if not isinstance(self.kind, str) or not 0 < len(self.kind) <= _KIND_MAX:
            raise PeerError("envelope kind must be a short string", reason="bad_header")
        if suites.get(self.suite) is None:
            raise PeerError(f"HPKE suite {self.suite} not supported", reason="suite")

    def to_map(self) -> dict[str, Any]:
        return {"v": 1, "suite": list(self.suite), "from": self.sender,
                "from_key": self.sender_key, "to": self.recipient, "to_key": self.recipient_key,
                "id": self.message_id, "seq": self.seq, "prev": self.prev, "at": self.sent_at,
                "kind": self.kind}

    @classmethod
    def from_bytes(cls, data: bytes) -> EnvelopeHeader:
        value = codec.decode(data, HEADER_LIMITS)
        # type() checks: True == 1 in Python, but msgpack true is not the integer 1.
        if (not isinstance(value, dict) or set(value) != _HEADER_KEYS
                or type(value["v"]) is not int or value["v"] != 1):
            raise PeerError("envelope header has the wrong fields or version",
                            reason="bad_header")
        suite = value["suite"]
        if not isinstance(suite, list) or len(suite) != 3 or any(type(x) is not int
                                                                 for x in suite):
            raise PeerError("envelope suite must be three integers", reason="bad_header")
        try:
            return cls(sender=value["from"], sender_key=value["from_key"],
                       recipient=value["to"], recipient_key=value["to_key"],
                       message_id=value["id"], seq=value["seq"], prev=value["prev"],
                       sent_at=value["at"], kind=value["kind"],
                       suite=(suite[0], suite[1], suite[2]))
        except PeerError:
            raise
        except Exception as exc:  # InputError from check_party: still the peer's fault
            raise PeerError(f"envelope header invalid: {exc}", reason="bad_header") from exc


def _want_bytes(value: object, size: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise PeerError(f"envelope {name} must be {size} bytes", reason="bad_header")


def _want_int(value: object, name: str, problem: str | None) -> None:
    if problem is not None:
        raise PeerError(f"envelope {name} {problem}", reason="bad_header")


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """A sealed envelope as bytes, with its hash (the chain link) and parsed header."""

    data: bytes = field(repr=False)
    header: EnvelopeHeader
    digest: bytes


@dataclass(frozen=True, kw_only=True)
class OpenedEnvelope:
    header: EnvelopeHeader
    payload: bytes = field(repr=False)
    digest: bytes
    sender: PublicIdentity
    # What binds the header (PROTOCOL.md §5.3), kept so that a transcript can carry it (§11.4).
    signature: bytes = field(default=b"", repr=False)
    ciphertext_hash: bytes = field(default=b"", repr=False)


def envelope_hash(data: bytes) -> bytes:
    """The chain link: SHA-256 over the envelope's wire bytes."""
    return suites.sha256(data)


def signed_body(header_bytes: bytes, ciphertext_hash: bytes) -> bytes:
    """What the envelope signature covers after its tag (PROTOCOL.md §5.3): the header and the
    ciphertext's SHA-256, so that a verifier holding the hash alone can check it."""
    return struct.pack(">I", len(header_bytes)) + header_bytes + ciphertext_hash


def wire_bytes(header_bytes: bytes, ciphertext: bytes, signature: bytes) -> bytes:
    """The envelope's wire form (PROTOCOL.md §5.1), whose SHA-256 is the envelope hash."""
    return codec.encode({"c": ciphertext, "h": header_bytes, "s": signature})


def _signed_body(header_bytes: bytes, ciphertext: bytes) -> bytes:
    return signed_body(header_bytes, suites.sha256(ciphertext))


def seal(sender: PrivateIdentity, recipient: PublicIdentity, *, message_id: bytes, seq: int,
         prev: bytes, sent_at: int, kind: str, payload: bytes) -> Envelope:
    """Encrypt ``payload`` to ``recipient`` and sign it as ``sender``."""
    return start_seal(sender, recipient, message_id=message_id, seq=seq, prev=prev,
                      sent_at=sent_at, kind=kind, payload=payload, beside=inline).result()


def start_seal(sender: PrivateIdentity, recipient: PublicIdentity, *, message_id: bytes,
               seq: int, prev: bytes, sent_at: int, kind: str, payload: bytes,
               beside: Beside) -> Pending[Envelope]:
    """``seal``, the slow half of the signature made ``beside``: the same envelope."""
    header = EnvelopeHeader(sender=sender.party, sender_key=sender.key_id,
                            recipient=recipient.party, recipient_key=recipient.key_id,
                            message_id=message_id, seq=seq, prev=prev, sent_at=sent_at,
                            kind=kind, suite=recipient.suite)
    header_bytes = codec.encode(header.to_map())
    info = signed_message(TAG_HPKE_INFO, header_bytes)
    # The recipient's pinned identity decides the suite (a PublicIdentity's is in the table).
    ciphertext = suites.SUITES[header.suite].seal(recipient.enc_key, payload, info)

    def wire(signature: bytes) -> Envelope:
        data = wire_bytes(header_bytes, ciphertext, signature)
        return Envelope(data=data, header=header, digest=envelope_hash(data))

    return Then(sender.start_sign(TAG_ENVELOPE, _signed_body(header_bytes, ciphertext), beside),
                wire)


def parse(data: bytes, *, limits: codec.Limits = codec.DEFAULT_LIMITS
          ) -> tuple[EnvelopeHeader, bytes, bytes, bytes]:
    """Split wire bytes into (header, header bytes, ciphertext, signature).

    Authenticates nothing: callers must not act on the header before ``open_envelope``.

    The outer value and the header are each decoded with a budget fixed by their shape, not
    by the body's size (PROTOCOL.md §5.1): three bins and their keys need a few hundred
    bytes of objects, a header under 2 KiB, so anything that needs more than
    ``OUTER_BUDGET`` (or ``HEADER_BUDGET``) is refused as ``too_large`` after at most some
    250 (2,000) values are read, whatever the body's size."""
    outer = codec.decode(data, limits.fixed_budget(OUTER_BUDGET))
    if not isinstance(outer, dict) or set(outer) != {"c", "h", "s"}:
        raise DecodeError("an envelope is a map with exactly the keys c, h, s",
                          reason="not_envelope")
    header_bytes, ciphertext, signature = outer["h"], outer["c"], outer["s"]
    if not all(isinstance(x, bytes) for x in (header_bytes, ciphertext, signature)):
        raise DecodeError("envelope fields must be bin", reason="not_envelope")
    return EnvelopeHeader.from_bytes(header_bytes), header_bytes, ciphertext, signature


def _check_signature_suite(sender: PublicIdentity, signature: bytes) -> None:
    """A signature of a lower suite than the sender's pinned key (an Ed25519 signature alone
    for a suite-2 sender: what a forger of Ed25519 alone can make) is a downgrade attempt,
    refused by name (``suite_downgrade``) before the signature is looked at. Its size says so
    and is no secret: the pinned key decides the suite, never the envelope (PROTOCOL.md §5.3)."""
    pinned = suites.SUITES[sender.suite]
    if len(signature) != pinned.signature_size and any(
            s.number < pinned.number and s.signature_size == len(signature)
            for s in suites.SUITES.values()):
        raise PeerError(f"envelope signature of {len(signature)} bytes, a lower suite's, for "
                        f"{sender.party}'s key {sender.fingerprint} of suite {pinned.number}",
                        reason="suite_downgrade")


def open_envelope(recipient: PrivateIdentity | Sequence[PrivateIdentity], senders: Keyring,
                  data: bytes, *, limits: codec.Limits = codec.DEFAULT_LIMITS) -> OpenedEnvelope:
    """Authenticate and decrypt. Raises ``PeerError`` (``OpaqueCryptoError`` for auth failures).

    Steps (PROTOCOL.md §5.3):
    1. decode the outer map and the header strictly (limits apply before anything else);
    2. the header must name us, by party and key id, as recipient;
    3. the sender key id must be a pinned key whose identity names the header's sender;
    4. the signature must verify over the received header bytes and ciphertext hash;
    5. HPKE open with the received header bytes in ``info``.
    """
    return open_parsed(recipient, senders, data, parse(data, limits=limits))


def open_parsed(recipient: PrivateIdentity | Sequence[PrivateIdentity], senders: Keyring,
                data: bytes, parts: tuple[EnvelopeHeader, bytes, bytes, bytes], *,
                digest: bytes | None = None) -> OpenedEnvelope:
    """``open_envelope`` of an envelope already split by ``parse`` (decoding done elsewhere,
    e.g. off the database thread): steps 2 to 5. ``digest``: ``envelope_hash(data)``, when
    the caller has hashed these very bytes already (a chunk's envelope is a megabyte)."""
    header, header_bytes, ciphertext, signature = parts
    # Our own keys, current first: after a rotation, envelopes sealed to the retired key
    # before the peer learnt of the new one still open.
    own = [recipient] if isinstance(recipient, PrivateIdentity) else list(recipient)
    for candidate in own:
        if header.recipient_key == candidate.key_id and header.recipient == candidate.party:
            recipient = candidate
            break
    else:
        raise PeerError("envelope is addressed to another party or key", reason="wrong_recipient")
    if header.suite != recipient.public.suite:  # sealed in another suite than our key's
        raise PeerError(f"envelope suite {header.suite} is not the suite of the recipient's key",
                        reason="suite")
    sender = senders.get(header.sender_key)
    if sender is None:
        # Said by fingerprint, the form operators read to each other and compare (PROTOCOL §4.2).
        raise OpaqueCryptoError(f"sender {header.sender} with key fingerprint "
                                f"{format_fingerprint(header.sender_key)} is not pinned")
    if sender.party != header.sender:
        raise OpaqueCryptoError(f"key {sender.fingerprint} belongs to {sender.party}, "
                                f"not {header.sender}")
    _check_signature_suite(sender, signature)
    ciphertext_hash = suites.sha256(ciphertext)
    if not sender.verify(TAG_ENVELOPE, signed_body(header_bytes, ciphertext_hash), signature):
        raise OpaqueCryptoError(f"envelope signature from {header.sender} does not verify")
    info = signed_message(TAG_HPKE_INFO, header_bytes)
    try:
        payload = recipient.decrypt(ciphertext, info)
    except Exception as exc:  # cryptography raises InvalidTag/ValueError; all mean the same
        raise OpaqueCryptoError(f"HPKE open failed: {type(exc).__name__}") from exc
    return OpenedEnvelope(header=header, payload=payload,
                          digest=envelope_hash(data) if digest is None else digest,
                          sender=sender, signature=signature,
                          ciphertext_hash=ciphertext_hash)
