"""C2SP tlog-witness: the ``add-checkpoint`` request and its answers, and the witness's decision
(https://c2sp.org/tlog-witness, §add-checkpoint).

Request body: ``old <size>\\n``, zero to 63 consistency proof lines (one base64 hash each),
an empty line, then the signed checkpoint note. The witness answers

- 200 with one or more cosignature lines (``text/plain; charset=utf-8``);
- 400 when the body is malformed or the old size is above the checkpoint's;
- 403 when no signature from a key it trusts for the origin verifies;
- 404 when it does not know the origin;
- 409 when the old size is not the size it last cosigned (body: that size and a newline,
  ``Content-Type: text/x.tlog.size``), or the sizes match and the roots do not;
- 422 when the consistency proof does not hold.

:func:`decide` is that check, pure: the service runs it and stores its outcome in one
transaction (the spec's "checking the old size ... and persisting the new checkpoint must be
performed atomically").
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.core import logtree
from bridge.core.errors import DecodeError, InputError, VerificationError
from bridge.core.notes.checkpoint import Checkpoint, parse_checkpoint_text
from bridge.core.notes.cosignature import Cosignature
from bridge.core.notes.note import (
    MAX_KEY_NAME_BYTES,
    MAX_NOTE_BYTES,
    NoteVerifier,
    b64decode,
    open_note,
    parse_note,
)
from bridge.core.printable import quoted

SIZE_MEDIA_TYPE = "text/x.tlog.size"
MAX_BODY = MAX_NOTE_BYTES + 64 * (logtree.MAX_PROOF_HASHES + 1) + 32
_OLD_RE = re.compile(r"^old (0|[1-9][0-9]{0,18})\Z")

__all__ = ["MAX_BODY", "SIZE_MEDIA_TYPE", "AddCheckpoint", "Decision", "Witnessed", "decide",
           "format_request", "parse_request", "parse_size"]


@dataclass(frozen=True)
class AddCheckpoint:
    old: int
    proof: tuple[bytes, ...]
    note: bytes  # the signed checkpoint note, as sent


def format_request(old: int, proof: Sequence[bytes], note: bytes) -> bytes:
    lines = [f"old {old}\n".encode()]
    lines += [base64.b64encode(h).decode().encode() + b"\n" for h in proof]
    return b"".join(lines) + b"\n" + note


def parse_request(data: bytes) -> AddCheckpoint:
    """The request, or :class:`DecodeError` (``malformed``: a 400)."""
    if len(data) > MAX_BODY:
        raise DecodeError("request body is too large", reason="malformed")
    head, sep, note = data.partition(b"\n\n")
    if not sep:
        raise DecodeError("request has no empty line before the checkpoint", reason="malformed")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise DecodeError("old size and proof lines are ASCII", reason="malformed") from exc
    m = _OLD_RE.match(lines[0])
    if m is None:
        raise DecodeError("the first line is 'old SIZE'", reason="malformed")
    if len(lines) - 1 > logtree.MAX_PROOF_HASHES:
        raise DecodeError("more than 63 consistency proof lines", reason="malformed")
    proof = []
    for line in lines[1:]:
        h = b64decode(line, what="a proof line")
        if len(h) != 32:
            raise DecodeError("a proof line is one 32-byte hash", reason="malformed")
        proof.append(h)
    return AddCheckpoint(old=int(m.group(1)), proof=tuple(proof), note=note)


def parse_size(body: bytes) -> int | None:
    """The size of a 409 answer's ``text/x.tlog.size`` body, None if it is not one."""
    m = re.fullmatch(rb"(0|[1-9][0-9]{0,18})\n", body)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Witnessed:
    """What the witness keeps per origin: the latest checkpoint it cosigned."""

    size: int
    root: bytes


@dataclass(frozen=True)
class Decision:
    """HTTP status, a reason code, the checkpoint read (when it was), and for a 200 the new
    state and the cosignatures to answer with; for a 409 the size to answer with."""

    status: int
    reason: str
    detail: str
    checkpoint: Checkpoint | None = None
    cosignatures: tuple[Cosignature, ...] = ()
    size: int | None = None


def decide(request: AddCheckpoint, *, trusted: Callable[[str], Sequence[NoteVerifier] | None],
           state: Callable[[str], Witnessed | None],
           cosign: Callable[[str], Sequence[Cosignature]]) -> Decision:
    """Run the checks of §add-checkpoint in its order. ``trusted(origin)`` gives the keys
    trusted for an origin (None: unknown origin); ``state(origin)`` the latest cosigned;
    ``cosign(text)`` the witness's cosignatures, called only when every check passed."""
    try:
        note = parse_note(request.note)
        cp = parse_checkpoint_text(note.text)
    except DecodeError as exc:
        return Decision(400, "malformed", str(exc))
    verifiers = trusted(cp.origin)
    if verifiers is None:
        # The origin is bounded (MAX_KEY_NAME_BYTES) and escaped: the detail is answered,
        # logged and stored by the witness.
        return Decision(404, "unknown_origin",
                        f"unknown origin {quoted(cp.origin, MAX_KEY_NAME_BYTES)}", cp)
    try:
        open_note(request.note, verifiers)
    except VerificationError as exc:
        return Decision(403, exc.reason, str(exc), cp)
    if request.old > cp.size:
        return Decision(400, "old_above_size",
                        f"old size {request.old} is above the checkpoint's {cp.size}", cp)
    seen = state(cp.origin)
    have = seen.size if seen else 0
    if request.old != have:
        return Decision(409, "stale_old_size",
                        f"old size {request.old}, but the last cosigned size is {have}", cp,
                        size=have)
    try:
        if seen is None:
            logtree.verify_consistency(0, cp.size, request.proof, b"", cp.root)
        else:
            if seen.size == cp.size and seen.root != cp.root:
                return Decision(409, "fork", f"size {cp.size} with another root", cp,
                                size=have)
            logtree.verify_consistency(seen.size, cp.size, request.proof, seen.root, cp.root)
    except (VerificationError, InputError) as exc:
        return Decision(422, "bad_proof", str(exc), cp)
    return Decision(200, "cosigned", f"cosigned size {cp.size}", cp,
                    cosignatures=tuple(cosign(note.text)), size=cp.size)
