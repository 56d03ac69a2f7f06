"""C2SP tlog-cosignature, the Ed25519 ``cosignature/v1`` type (https://c2sp.org/tlog-cosignature).

A cosignature is a note signature line whose key ID is
``SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]`` and whose signature is a
``timestamped_signature``: a big-endian u64 POSIX time in seconds (at most 2**63 - 1), then
the 64-byte Ed25519 signature over the message

    cosignature/v1\\n
    time <timestamp in decimal, no leading zero>\\n
    <the whole checkpoint note text, its final newline included, no signature lines>

Semantically: as of that time, the consistent tree head with the largest size the cosigner has
observed for the origin has that root hash (§Ed25519 signed message).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from bridge.core.crypto import suites
from bridge.core.errors import InputError
from bridge.core.notes.note import NoteSignature, NoteVerifier, check_text, key_id

HEADER = b"cosignature/v1\n"
MAX_TIME = 2**63 - 1
SIGNATURE_SIZE = 8 + 64

__all__ = ["HEADER", "Cosignature", "cosign", "cosignature_verifier", "cosigned_message",
           "read_cosignature"]


def cosigned_message(timestamp: int, note_text: str) -> bytes:
    """The exact bytes an Ed25519 cosignature covers (§Ed25519 signed message)."""
    _check_time(timestamp)
    return HEADER + f"time {timestamp}\n".encode() + check_text(note_text).encode()


def _check_time(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or \
            not 0 <= timestamp <= MAX_TIME:
        raise InputError("a cosignature time is an integer from 0 to 2**63 - 1",
                         field="timestamp")


@dataclass(frozen=True)
class Cosignature:
    """One verified or made cosignature: who, when, and its signature line."""

    name: str
    timestamp: int
    line: NoteSignature


def cosign(note_text: str, *, name: str, public: bytes, timestamp: int,
           sign: Callable[[bytes], bytes]) -> Cosignature:
    """Cosign a checkpoint text at ``timestamp``; ``sign`` is the cosigner's one Ed25519
    signing function (raw message in, 64-byte signature out)."""
    signature = sign(cosigned_message(timestamp, note_text))
    line = NoteSignature(name=name, key_id=key_id(name, suites.NOTE_COSIGNATURE_V1, public),
                         signature=struct.pack(">Q", timestamp) + signature)
    return Cosignature(name=name, timestamp=timestamp, line=line)


def read_cosignature(line: NoteSignature) -> tuple[int, bytes] | None:
    """(timestamp, Ed25519 signature) of a cosignature line, None when it is not one."""
    if len(line.signature) != SIGNATURE_SIZE:
        return None
    (timestamp,) = struct.unpack(">Q", line.signature[:8])
    if timestamp > MAX_TIME:
        return None
    return timestamp, line.signature[8:]


def cosignature_verifier(name: str, public: bytes) -> NoteVerifier:
    """A note verifier for ``name``'s cosignatures (type 0x04): it reads the timestamp from
    the signature and checks the Ed25519 signature over the cosigned message."""

    def verify(text: bytes, signature: bytes) -> bool:
        read = read_cosignature(NoteSignature(name=name, key_id=bytes(4), signature=signature))
        if read is None:
            return False
        timestamp, sig = read
        try:
            message = cosigned_message(timestamp, text.decode("utf-8"))
        except (InputError, UnicodeDecodeError):
            return False
        return suites.ed25519_verify(public, message, sig)

    return NoteVerifier(name=name, key_id=key_id(name, suites.NOTE_COSIGNATURE_V1, public),
                        verify=verify)
