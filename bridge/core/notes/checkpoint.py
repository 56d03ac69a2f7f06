"""C2SP tlog-checkpoint: a log's signed tree head (https://c2sp.org/tlog-checkpoint).

The note text is at least three non-empty lines: the **origin** (the log's identity), the
**tree size** in decimal with no leading zero, and the **root hash** in standard base64 (the
RFC 6962 / RFC 9162 §2.1.1 tree root); further non-empty lines are **extensions**. It is
signed as a C2SP signed note; the log's key name SHOULD be its origin, and in Bridge it is.

Bridge's choices where the specification leaves them open (PROTOCOL.md §13.2): a party's
origin is ``bridge.example/<party>/<the first 16 characters of its fingerprint, lower
case>`` — one log per key, so that a new key starts a new log the witness is told about — its
checkpoints carry no extension lines, and they are signed with the party's Ed25519 key under
the key name equal to the origin (signature type 0x01).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

from bridge.core.crypto import suites
from bridge.core.errors import DecodeError, InputError
from bridge.core.merkle import HASH_SIZE
from bridge.core.notes.note import (
    NoteSignature,
    NoteVerifier,
    b64decode,
    check_key_name,
    format_note,
    key_id,
)

ORIGIN_PREFIX = "bridge.example/"
MAX_SIZE = 2**63 - 1
_SIZE_RE = re.compile(r"^(0|[1-9][0-9]{0,18})\Z")

__all__ = [
    "ORIGIN_PREFIX",
    "Checkpoint",
    "ed25519_note_verifier",
    "parse_checkpoint_text",
    "party_origin",
]


def _fingerprint_prefix(fingerprint: str) -> str:
    return fingerprint.replace(" ", "").replace("-", "")[:16].lower()


def party_origin(party: str, fingerprint: str) -> str:
    """The origin (and key name) of a party's audit log (PROTOCOL.md §13.2)."""
    return check_key_name(f"{ORIGIN_PREFIX}{party}/{_fingerprint_prefix(fingerprint)}")


def witness_key_name(party: str, fingerprint: str) -> str:
    """The key name of a witness's cosignatures (PROTOCOL.md §13.2): a name of its own, since
    the Ed25519 cosignature message does not commit to it (tlog-cosignature)."""
    return check_key_name(f"{ORIGIN_PREFIX}witness/{party}/{_fingerprint_prefix(fingerprint)}")


@dataclass(frozen=True)
class Checkpoint:
    """origin, tree size, root hash, extension lines (tlog-checkpoint §Note text)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_key_name(self.origin)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or \
                not 0 <= self.size <= MAX_SIZE:
            raise InputError("a tree size is an integer from 0 to 2**63 - 1", field="size")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise InputError(f"a root hash is {HASH_SIZE} bytes", field="root")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise InputError("an extension line is non-empty", field="extensions")

    def text(self) -> str:
        """The note text: every line ends in a newline, the last one included."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(),
                 *self.extensions]
        return "".join(line + "\n" for line in lines)

    def body(self) -> bytes:
        return self.text().encode()


def parse_checkpoint_text(text: str) -> Checkpoint:
    """The checkpoint a note text states; :class:`DecodeError` (``malformed_checkpoint``)
    when it does not have the form of tlog-checkpoint §Note text."""
    if not text.endswith("\n"):
        raise _malformed("a checkpoint text ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise _malformed("a checkpoint is at least three non-empty lines")
    origin, size, root = lines[0], lines[1], lines[2]
    if not _SIZE_RE.match(size) or int(size) > MAX_SIZE:
        raise _malformed("the tree size is a decimal with no leading zero")
    raw = b64decode(root, what="the root hash")
    if len(raw) != HASH_SIZE:
        raise _malformed(f"the root hash is {HASH_SIZE} bytes")
    try:
        return Checkpoint(origin=origin, size=int(size), root=raw,
                          extensions=tuple(lines[3:]))
    except InputError as exc:
        raise _malformed(exc.detail) from exc


def _malformed(why: str) -> DecodeError:
    return DecodeError(f"checkpoint: {why}", reason="malformed_checkpoint")


def ed25519_note_verifier(name: str, public: bytes) -> NoteVerifier:
    """A verifier for plain Ed25519 note signatures (signature type 0x01, signed-note
    §Ed25519 signatures): the signature is over the note text itself."""
    return NoteVerifier(name=name, key_id=key_id(name, suites.NOTE_ED25519, public),
                        verify=lambda text, sig: suites.ed25519_verify(public, text, sig))


def ed25519_signature(name: str, public: bytes, signature: bytes) -> NoteSignature:
    """The signature line of an Ed25519 note signature made with ``public``'s key."""
    return NoteSignature(name=name, key_id=key_id(name, suites.NOTE_ED25519, public),
                         signature=signature)


def signed_checkpoint(cp: Checkpoint, *, public: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    """The checkpoint as a signed note, signed under the key name equal to its origin
    (tlog-checkpoint §Signatures) with ``sign``, the log's one Ed25519 signing function."""
    return format_note(cp.text(), [ed25519_signature(cp.origin, public, sign(cp.body()))])
