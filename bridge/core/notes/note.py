"""C2SP signed-note: text signed by one or more keys (https://c2sp.org/signed-note).

A signed note is UTF-8 text ending in a newline, a blank line, then one or more signature lines

    — <key name> base64(32-bit key ID || signature)\\n

(em dash U+2014, space, name, space, standard base64, newline). The text includes its final
newline but not the blank line; it may hold empty lines itself, and is separated from the
signatures by the *last* empty line. No ASCII control character but the newline may appear.
Key names are non-empty and hold no Unicode space and no ``+``. The key ID is
``SHA-256(name || 0x0A || signature type || public key)[:4]`` (§Signatures).

Verification follows §Signatures: signatures from unknown keys (name *and* ID not both known)
are ignored; a known key's signature that fails rejects the whole note; a note with no
verified known signature is rejected.

Pure. Everything from outside is refused with a :class:`DecodeError` or
:class:`VerificationError` carrying a reason code, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.core.crypto.hashes import sha256
from bridge.core.errors import DecodeError, InputError, VerificationError

EM_DASH = "\u2014"
SIG_PREFIX = (EM_DASH + " ").encode()
MAX_SIGNATURES = 16
"""signed-note: "verifiers ... MUST accept at least up to 16 signatures"; Bridge accepts no more."""
MAX_KEY_NAME_BYTES = 255
"""tlog-cosignature §ML-DSA-44 signed message: ``opaque cosigner_name<1..2^8-1>`` and
``opaque log_origin<1..2^8-1>``, so no key name or origin of the witness network is longer.
It bounds every name a peer or a witness puts in a note, and so every error and log line
that names one."""
MAX_NOTE_BYTES = 64 * 1024
"""A checkpoint with 16 Ed25519 signatures is under 2 KiB: this bounds what is parsed."""

# Every Unicode space separator (Zs), plus the ASCII white space, and "+".
_BAD_NAME = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000+]")
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}\Z")

__all__ = ["EM_DASH", "MAX_KEY_NAME_BYTES", "MAX_SIGNATURES", "Note", "NoteSignature",
           "NoteVerifier", "b64decode", "check_key_name", "check_text", "format_note", "key_id",
           "open_note", "parse_note", "verifier_key"]


def check_key_name(name: str) -> str:
    """A key name (or checkpoint origin) of signed-note §Format: non-empty, no Unicode space,
    no ``+``, no control character; and at most :data:`MAX_KEY_NAME_BYTES` bytes of UTF-8."""
    # The name refused is not quoted: it comes from a peer's or a witness's note, and what
    # is wrong with it is said by the rule it breaks.
    if not isinstance(name, str) or not name or _BAD_NAME.search(name) or _has_control(name):
        raise InputError("not a key name (non-empty, no spaces, no '+', no control "
                         "character)", field="name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_KEY_NAME_BYTES:
        raise InputError(f"a key name is at most {MAX_KEY_NAME_BYTES} bytes", field="name")
    return name


def key_id(name: str, sig_type: int, public: bytes) -> bytes:
    """``SHA-256(key name || 0x0A || signature type || public key)[:4]`` (§Signatures)."""
    return sha256(name.encode() + b"\n" + bytes([sig_type]) + public)[:4]


def verifier_key(name: str, sig_type: int, public: bytes) -> str:
    """The verifier key text ``<name>+<hex key ID>+<base64(type || public key)>`` that Go's
    golang.org/x/mod/sumdb/note and the witness network use to configure a key."""
    kid = key_id(check_key_name(name), sig_type, public)
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([sig_type]) + public).decode()}"


def b64decode(text: str, *, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4): the alphabet, the padding, nothing else."""
    if not _B64.match(text) or len(text) % 4:
        raise DecodeError(f"{what} is not standard base64", reason="malformed_note")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"{what} is not standard base64", reason="malformed_note") from exc


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 and c != "\n" for c in text)


def check_text(text: str) -> str:
    """A note text: non-empty, ending in a newline, no control character but the newline."""
    if not text.endswith("\n") or _has_control(text):
        raise InputError("a note text ends in a newline and holds no control character",
                         field="text")
    return text


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, and the signature bytes that follow it."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.key_id) != 4:
            raise InputError("a key ID is 4 bytes", field="key_id")

    def line(self) -> bytes:
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{EM_DASH} {self.name} {blob}\n".encode()


@dataclass(frozen=True)
class Note:
    """A note text with its signature lines, in the order they came."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        check_text(self.text)

    def to_bytes(self) -> bytes:
        return format_note(self.text, self.signatures)


def format_note(text: str, signatures: Sequence[NoteSignature]) -> bytes:
    """text, the blank line, and the signature lines (§Format)."""
    if not signatures:
        raise InputError("a signed note has at least one signature", field="signatures")
    return check_text(text).encode() + b"\n" + b"".join(s.line() for s in signatures)


def parse_note(data: bytes) -> Note:
    """Split a signed note into its text and signature lines; check the form, not the keys."""
    if len(data) > MAX_NOTE_BYTES:
        raise DecodeError(f"note is over {MAX_NOTE_BYTES} bytes", reason="malformed_note")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("note is not UTF-8", reason="malformed_note") from exc
    if _has_control(text) or not text.endswith("\n"):
        raise DecodeError("note holds a control character or does not end in a newline",
                          reason="malformed_note")
    # The text ends at the last empty line ("\n\n": the text's own newline, then the blank).
    split = text.rfind("\n\n")
    if split < 0:
        raise DecodeError("note has no blank line before its signatures",
                          reason="malformed_note")
    body, sig_block = text[:split + 1], text[split + 2:]
    lines = sig_block.split("\n")[:-1]
    if not lines:
        raise DecodeError("note has no signature lines", reason="malformed_note")
    if len(lines) > MAX_SIGNATURES:
        raise DecodeError(f"note has over {MAX_SIGNATURES} signatures", reason="malformed_note")
    return Note(text=body, signatures=tuple(_parse_line(line) for line in lines))


def _parse_line(line: str) -> NoteSignature:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != EM_DASH:
        raise DecodeError("a signature line is '— name base64'", reason="malformed_note")
    blob = b64decode(parts[2], what="a signature")
    if len(blob) < 5:
        raise DecodeError("a signature is a key ID and at least one byte",
                          reason="malformed_note")
    try:
        return NoteSignature(name=parts[1], key_id=blob[:4], signature=blob[4:])
    except InputError as exc:
        raise DecodeError(f"signature line: {exc.detail}", reason="malformed_note") from exc


@dataclass(frozen=True)
class NoteVerifier:
    """One trusted key: its name, key ID, and how to check its signature over a note text.

    ``verify(text bytes, signature bytes)`` is True when it holds. A cosignature verifier
    reads its timestamp from the signature bytes itself (:mod:`bridge.core.notes.cosignature`).
    """

    name: str
    key_id: bytes
    verify: Callable[[bytes, bytes], bool]


def open_note(data: bytes, verifiers: Sequence[NoteVerifier]) -> tuple[Note, list[NoteSignature]]:
    """The note and its signatures by trusted keys, verified (§Signatures); raises
    :class:`VerificationError` (``bad_signature``) when a known key's signature fails, or
    (``unknown_key``) when no known key signed."""
    note = parse_note(data)
    known = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode()
    good: list[NoteSignature] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue  # an unknown key, even one sharing a name or an ID: ignored
        if not v.verify(text, sig.signature):
            raise VerificationError(f"the signature of {sig.name} does not verify",
                                    reason="bad_signature")
        good.append(sig)
    if not good:
        raise VerificationError("no trusted key signed this note", reason="unknown_key")
    return note, good
