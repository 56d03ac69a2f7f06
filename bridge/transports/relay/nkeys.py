"""NATS user nkeys (the NATS nkeys specification): an Ed25519 key pair written as base32 of a
prefix byte, the 32 key bytes and a CRC-16/XMODEM of both, little-endian; a user's public key
starts with ``U``, its seed with ``SU``. Made here with no network and no NATS tooling: the
mediator's ``relay init`` writes one per party, and the server's configuration lists only the
public keys (the server checks a signature of its nonce; it never holds a seed).

A party's credential file is the standard seed block::

    -----BEGIN USER NKEY SEED-----
    SUA...
    ------END USER NKEY SEED------

which the NATS tools read as it is; nats-py's ``nkeys_seed=`` expects a bare seed, so a client
reads the block with :func:`read_seed` and passes ``nkeys_seed_str=``.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bridge.core.errors import UsageError

PREFIX_SEED = 18 << 3  # base32 'S'
PREFIX_USER = 20 << 3  # base32 'U'
KEY_BYTES = 32
SEED_BEGIN = "-----BEGIN USER NKEY SEED-----"
SEED_END = "------END USER NKEY SEED------"
# A user seed is 58 base32 characters, a user public key 56 (no padding).
_SEED_RE = re.compile(r"^SU[A-Z2-7]{56}\Z")
_PUBLIC_RE = re.compile(r"^U[A-Z2-7]{55}\Z")


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial value 0), the nkeys checksum."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _encode(head: bytes, key: bytes) -> str:
    raw = head + key
    return base64.b32encode(raw + crc16(raw).to_bytes(2, "little")).decode("ascii").rstrip("=")


def _decode(text: str, head_len: int) -> tuple[bytes, bytes]:
    """(prefix bytes, key bytes) of an encoded key; ``UsageError`` for a bad checksum."""
    raw = base64.b32decode(text + "=" * (-len(text) % 8))
    body, check = raw[:-2], raw[-2:]
    if crc16(body).to_bytes(2, "little") != check or len(body) != head_len + KEY_BYTES:
        raise UsageError("not a NATS nkey: its checksum does not match")
    return body[:head_len], body[head_len:]


def encode_public(public_key: bytes) -> str:
    if len(public_key) != KEY_BYTES:
        raise UsageError("an Ed25519 public key is 32 bytes")
    return _encode(bytes([PREFIX_USER]), public_key)


def encode_seed(seed: bytes) -> str:
    # The first 5 bits say "seed", the next 5 the role (user): they straddle two bytes.
    if len(seed) != KEY_BYTES:
        raise UsageError("an Ed25519 seed is 32 bytes")
    head = bytes([PREFIX_SEED | PREFIX_USER >> 5, (PREFIX_USER & 31) << 3])
    return _encode(head, seed)


def decode_seed(text: str) -> bytes:
    """The 32 seed bytes of a user seed ``SU…``; ``UsageError`` for anything else."""
    if not _SEED_RE.match(text):
        raise UsageError("not a NATS user nkey seed (SU followed by 56 base32 characters)")
    head, seed = _decode(text, 2)
    if head != bytes([PREFIX_SEED | PREFIX_USER >> 5, (PREFIX_USER & 31) << 3]):
        raise UsageError("not a NATS user nkey seed: wrong prefix")
    return seed


def check_public(text: str) -> str:
    """``text`` if it is a user public nkey ``U…`` with a good checksum."""
    if not _PUBLIC_RE.match(text):
        raise UsageError("not a NATS user public nkey (U followed by 55 base32 characters)")
    head, _ = _decode(text, 1)
    if head != bytes([PREFIX_USER]):
        raise UsageError("not a NATS user public nkey: wrong prefix")
    return text


def _public_of(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, kw_only=True, repr=False)
class UserKey:
    """A user nkey: its seed ``SU…`` (secret: what the credential file holds) and its public
    key ``U…`` (what the server's configuration lists). ``repr`` never shows the seed."""

    seed: str
    public: str

    def __post_init__(self) -> None:
        if encode_public(_public_of(decode_seed(self.seed))) != check_public(self.public):
            raise UsageError("the nkey seed and public key do not belong together")

    def __repr__(self) -> str:
        return f"UserKey(public={self.public!r})"

    @classmethod
    def generate(cls, random_bytes: Callable[[int], bytes] = os.urandom) -> UserKey:
        seed = random_bytes(KEY_BYTES)
        return cls(seed=encode_seed(seed), public=encode_public(_public_of(seed)))

    @classmethod
    def of_seed(cls, seed: str) -> UserKey:
        return cls(seed=seed, public=encode_public(_public_of(decode_seed(seed))))

    def seed_block(self) -> str:
        """The credential file's text: the standard user nkey seed block."""
        return f"{SEED_BEGIN}\n{self.seed}\n{SEED_END}\n"


def parse_seed_file(text: str) -> UserKey:
    """The key in a credential file: a seed block, or a bare seed on a line of its own."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if SEED_BEGIN in lines:
        start = lines.index(SEED_BEGIN) + 1
        if start + 1 >= len(lines) or lines[start + 1] != SEED_END:
            raise UsageError("the credential file's seed block is not closed")
        return UserKey.of_seed(lines[start])
    seeds = [line for line in lines if _SEED_RE.match(line)]
    if len(seeds) != 1:
        raise UsageError("no user nkey seed in the credential file (a block "
                         f"{SEED_BEGIN} … {SEED_END} is expected)")
    return UserKey.of_seed(seeds[0])


def read_seed(path: str | os.PathLike[str]) -> str:
    """The seed in the credential file at ``path``, for ``nkeys_seed_str=``; a ``UsageError``
    naming the file when it holds none (its text is never quoted: it is a secret)."""
    target = Path(path)
    try:
        text = target.read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the credential file {target}: {exc}") from exc
    try:
        return parse_seed_file(text).seed
    except UsageError as exc:
        raise UsageError(f"{target}: {exc}") from None


__all__ = ["SEED_BEGIN", "SEED_END", "UserKey", "check_public", "crc16", "decode_seed",
           "encode_public", "encode_seed", "parse_seed_file", "read_seed"]
