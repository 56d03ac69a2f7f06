"""Step 1 of both forms (PROTOCOL.md §7.2) read a piece at a time (``bridge.core.pieces``),
never the file whole: the bundle's maps are walked key by key, each value decoded canonically
on its own from the bytes it spans (within the RECEIPT limits, less the depth it is at), except
a document's ``entries``, which are only skipped past here (each length checked against the
bytes left) and read again, a pass at a time, when their steps come.

What a whole decoding of the file would refuse, this refuses with the same reason: each piece
is decoded by the one decoder, every walked length is checked in its shortest form and within
the limits, and nothing may follow the bundle. What it holds is the small values and where the
entries are; a count that only a hostile file would carry is never made into objects: more
acknowledgements than either form may list (``MAX_ACK_DOCUMENTS``) are skipped past, and a map
with more keys than any of the bundle's is decoded as one value, which its limits bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bridge.core.pieces import NIL, SMALL_PIECE, Cursor, Opener, Run
from bridge.core.receipts.bundle import MAX_ACK_DOCUMENTS, RECEIPT_LIMITS

MOST_KEYS = 8  # the bundle's own map has at most 7 (a per-item one with its witnessed times)


@dataclass(frozen=True, kw_only=True)
class Entries:
    """A document's entries in the file: how many, where they begin, whether each is a bin.
    ``leaves`` reads them, a new pass each time, each decoded canonically on its own."""

    open_file: Opener
    run: Run
    depth: int

    @property
    def count(self) -> int:
        return self.run.count

    def leaves(self) -> Iterator[bytes]:
        with contextlib.closing(self.open_file()) as f:
            c = Cursor(f, RECEIPT_LIMITS, self.run.at)
            for leaf in c.bins(self.run.count, self.depth):
                assert isinstance(leaf, bytes)  # each was a bin when the bundle was walked
                yield leaf


@dataclass(frozen=True, kw_only=True)
class TooMany:
    """An array of more acknowledgements than any receipt holds (only skipped past)."""

    count: int


def read_bundle(open_file: Opener) -> Any:
    """The bundle's value, its documents' entries as ``Entries``; raises ``DecodeError`` (with
    the byte of the file where the piece at fault begins) for what the decoder refuses."""
    with contextlib.closing(open_file()) as f:
        c = Cursor(f, RECEIPT_LIMITS)
        value = _walked_map(c, open_file, 0, top=True)
        if not c.at_end():
            raise c.fail("trailing", "trailing bytes after the value")
    return value


def _walked_map(c: Cursor, open_file: Opener, depth: int, *, top: bool = False) -> Any:
    at = c.pos
    n = c.container("map")
    if n is None or n > MOST_KEYS:  # no map of the bundle's: for the check to refuse
        c.pos = at
        return c.value(depth=depth)
    out: dict[str, Any] = {}
    for key in c.keys(n):
        if key == "entries" and not top:
            out[key] = _entries(c, open_file, depth + 1)
        elif key == "document" and top:
            out[key] = _walked_map(c, open_file, depth + 1)
        elif key == "acks" and top:
            out[key] = _acks(c, open_file, depth + 1)
        else:
            out[key] = c.value(depth=depth + 1)
    return out


def _acks(c: Cursor, open_file: Opener, depth: int) -> Any:
    at = c.pos
    n = c.container("array")
    if n is None:
        c.pos = at
        return c.value(depth=depth)
    if n > MAX_ACK_DOCUMENTS:
        for _ in range(n):
            c.skip()
        return TooMany(count=n)
    return [_walked_map(c, open_file, depth + 1) for _ in range(n)]


def _entries(c: Cursor, open_file: Opener, depth: int) -> Any:
    """Where an array of bins is, skipped past; any other value (or an array with an element
    that is not a bin) decoded whole, for the check to refuse."""
    at = c.pos
    n = None if c.peek() == NIL else c.container("array")
    if n is not None:
        run = Run(at=c.pos, count=n)
        if c.skip_bins(n) == n:
            return Entries(open_file=open_file, run=run, depth=depth + 1)
    c.pos = at
    return c.value(SMALL_PIECE, depth=depth)


__all__ = ["Entries", "TooMany", "read_bundle"]
