"""Reading a canonical encoding from a file in bounded pieces, never whole: a transcript
(PROTOCOL.md §11.4) or a whole-document receipt (§7.2).

A transcript of a million-item exchange is hundreds of megabytes, and so is the receipt of a
million-item document, nearly all of it in long arrays: a document's entries, and a link's
envelopes. The checks walk the file's own maps and those arrays here, an element at a time, and
hand every other value (a signed header, an envelope, an entry, a party name) to the one
canonical decoder (``codec.decode``, PROTOCOL.md §2.4) as the bytes it spans, within the limits
the ``Cursor`` is given (the file's, with the depth it is at taken off): what a whole-file
decoding would accept, each piece accepts, with the same reasons. The walked headers are
checked the same way (their shortest form, by re-encoding; their length within the limits and
the bytes left).

Memory is bounded by the largest single value decoded (at most the span the caller allows:
an envelope, its ciphertext included, for a transcript), never by the file: a length that
declares more than the file holds is refused as ``truncated`` before anything is read for it.
Errors name the byte offset in the file where the piece that fails begins.

Pure: the bytes come through the ``Opener`` the caller gives (a file it opened, or bytes
in memory); nothing here opens, names or writes a file.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from bridge.core import codec
from bridge.core.errors import DecodeError


class Readable(Protocol):
    """What the check reads a transcript through: a file opened for reading, or bytes."""

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[], Readable]
"""A new reader of the transcript's bytes (seekable); each pass opens its own and closes it."""

BLOCK = 1 << 20  # bytes read from the file at once
RUN = 4096  # bins decoded at once (a run of a document's entries)
# Headers walked in Python before a value is handed to msgpack's C decoder to pass: a value
# of more is long, and most of it tiny elements (each costs the walk a microsecond or two).
WALK_STEPS = 2048
# Elements of a long container the walk hands to the C decoder at once, at least, when it looks
# for the fault in a value that decoder could not pass (doubled while it passes them).
RUN_IN_C = 64
# The longest string or bin the C decoder passes (it holds one whole while it passes it); a
# longer one is stepped over by the walk without being read.
HOLD_IN_C = 4 * BLOCK
# The most one decoded piece may span, unless the caller says more. Signed headers, receipts
# and names are small; an entry is at most what a document body may hold.
SMALL_PIECE = codec.DEFAULT_LIMITS.max_bytes

# The first byte of each MessagePack value that is not a fixint, fixmap, fixarray, fixstr,
# nil or bool, with (bytes of its length field, what the length counts): "b" bytes that follow,
# "v" values that follow, "m" key-value pairs; a fixed size has no length field ((size, "f")).
_LAYOUT: dict[int, tuple[int, str]] = {
    0xC4: (1, "b"), 0xC5: (2, "b"), 0xC6: (4, "b"),
    0xC7: (1, "x"), 0xC8: (2, "x"), 0xC9: (4, "x"),
    0xCA: (4, "f"), 0xCB: (8, "f"),
    0xCC: (1, "f"), 0xCD: (2, "f"), 0xCE: (4, "f"), 0xCF: (8, "f"),
    0xD0: (1, "f"), 0xD1: (2, "f"), 0xD2: (4, "f"), 0xD3: (8, "f"),
    0xD4: (2, "f"), 0xD5: (3, "f"), 0xD6: (5, "f"), 0xD7: (9, "f"), 0xD8: (17, "f"),
    0xD9: (1, "b"), 0xDA: (2, "b"), 0xDB: (4, "b"),
    0xDC: (2, "v"), 0xDD: (4, "v"), 0xDE: (2, "m"), 0xDF: (4, "m"),
}
_ARRAY_HEADS = frozenset({*range(0x90, 0xA0), 0xDC, 0xDD})
_MAP_HEADS = frozenset({*range(0x80, 0x90), 0xDE, 0xDF})
NIL = 0xC0
_AT_BYTE = re.compile(r" \(at byte (\d+)\)$")


@dataclass(frozen=True, kw_only=True)
class Run:
    """An array of ``count`` elements whose first element begins at byte ``at``."""
    at: int
    count: int


def of_bytes(data: bytes) -> Opener:
    """An ``Opener`` of bytes already in memory (the buffer is shared, not copied)."""
    return lambda: io.BytesIO(data)


@functools.cache
def limits_for(limits: codec.Limits, span: int, depth: int = 0) -> codec.Limits:
    """The file's ``limits``, for one piece of at most ``span`` bytes that begins ``depth``
    containers down in the file (its own containers may nest only as deep as the rest)."""
    # At least 1: the decoder takes no less, and a piece as deep as the limit is a bin (a
    # document's entry), which nests nothing.
    return dataclasses.replace(limits, max_bytes=span,
                               max_depth=max(1, limits.max_depth - depth))


class _Prefixed:
    """A file read as ``head`` then its bytes from where it is: what the C decoder reads to
    pass a run of values as the elements of one array (``Cursor._passed_in_c``)."""

    def __init__(self, head: bytes, file: Readable) -> None:
        self._head, self._file = head, file

    def read(self, size: int) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._file.read(size)


class Cursor:
    """One pass over the file, front to back from ``pos``, a block at a time, within the
    file's decoding ``limits``."""

    def __init__(self, file: Readable, limits: codec.Limits, pos: int = 0) -> None:
        self.file = file
        self.limits = limits
        self.size = file.seek(0, io.SEEK_END)
        self.pos = pos
        self._buf = b""
        self._buf_at = 0

    def fail(self, reason: str, message: str, at: int | None = None) -> DecodeError:
        return DecodeError(f"{message} (at byte {self.pos if at is None else at})",
                           reason=reason)

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes, which must all be in the file."""
        off = self._held(n)
        self.pos += n
        return self._buf[off:off + n]

    def _held(self, n: int) -> int:
        """Where the next ``n`` bytes, which must all be in the file, are in the block held
        (read from the file when they are not all there)."""
        if n > self.size - self.pos:
            raise self.fail("truncated", "input ends before the value does")
        off = self.pos - self._buf_at
        if off < 0 or off + n > len(self._buf):
            self.file.seek(self.pos)
            self._buf, self._buf_at, off = self.file.read(max(n, BLOCK)), self.pos, 0
            if len(self._buf) < n:  # the file shrank under the check
                raise self.fail("truncated", "input ends before the value does")
        return off

    def advance(self, n: int) -> None:
        if n > self.size - self.pos:
            raise self.fail("truncated", "input ends before the value does")
        self.pos += n

    def peek(self) -> int:
        byte = self.read(1)[0]
        self.pos -= 1
        return byte

    def at_end(self) -> bool:
        return self.pos >= self.size

    def skip(self, limit: int | None = None, depth: int = 0) -> None:
        """Past one value of any type, reading only its headers; more than ``limit`` bytes
        is ``too_large``. What it holds is checked when it is decoded, not here: the headers
        walked are checked for nesting (``depth``: the containers above it in the file, which
        its own nesting adds to), but a long value the C decoder passes is not (msgpack has
        no depth limit to give it); every value skipped is decoded later within the limit.
        A value the C decoder cannot pass is walked to name the fault, as the walk alone
        names it."""
        start = self.pos
        if not self._walk(limit, depth, WALK_STEPS):
            self.pos = start
            if not self._skipped_in_c(limit):
                self.pos = start
                self._walk(limit, depth)
        if limit is not None and self.pos - start > limit:
            raise self.fail("too_large", f"a value of more than {limit} bytes", start)

    def _skipped_in_c(self, limit: int | None) -> bool:
        """msgpack's C decoder past the value, where it can: a value of tiny elements (a
        bomb of a million empty arrays) costs it nanoseconds an element, not the
        microseconds of ``_walk``. False (the cursor anywhere) for any value it cannot pass
        whole within the file and ``max_items``, for ``_walk`` to name the reason and byte."""
        passed = self._passed_in_c(1, self._room(self.pos, limit))
        if passed is None:
            return False
        self.pos += passed
        return True

    def _room(self, start: int, limit: int | None) -> int:
        """The bytes from ``pos`` a value begun at ``start`` may still span, one more than
        ``limit`` allows (to see it is over), and at most the bytes left."""
        left = self.size - self.pos
        return left if limit is None else max(0, min(limit + 1 - (self.pos - start), left))

    def _passed_in_c(self, values: int, room: int) -> int | None:
        """The bytes the next ``values`` values span, as msgpack's C decoder passes them (as
        the elements of one array), or None where it cannot pass them all: malformed, cut
        short, a string or container over its limit (``room`` bytes, ``max_items``), or the
        file grew. More than ``room`` in all is the caller's to refuse.

        It holds a string or bin whole in its buffer, and nothing else: it keeps no object,
        and resumes where it was as the blocks come in. So a string or bin longer than
        ``HOLD_IN_C`` is not passed here but by the walk, which steps over it unread: memory
        stays that of the values decoded, not of the ones passed."""
        hold = max(min(room, HOLD_IN_C), BLOCK)
        self.file.seek(self.pos)
        head = b"\xdd" + values.to_bytes(4, "big")  # an array of them (array 32)
        reader = msgpack.Unpacker(_Prefixed(head, self.file), read_size=BLOCK,
                                  max_buffer_size=hold + len(head), max_str_len=hold,
                                  max_bin_len=hold, max_ext_len=hold,
                                  max_array_len=max(values, self.limits.max_items),
                                  max_map_len=self.limits.max_items)
        try:
            reader.skip()
        except (ValueError, msgpack.UnpackException):
            # The length limits are ValueErrors; OutOfData, FormatError, StackError and
            # BufferFull (a string or bin over ``hold``: not a ValueError) UnpackExceptions.
            return None
        finally:
            self._buf, self._buf_at = b"", 0  # the file was read from elsewhere
        passed = reader.tell() - len(head)
        return passed if passed <= self.size - self.pos else None  # else the file grew

    def _walk(self, limit: int | None, depth: int, steps: int | None = None) -> bool:
        """``skip`` a header at a time, ``steps`` headers at most (False: not past the value
        yet, the cursor anywhere); refuses at the first byte where the value is more
        than ``limit`` bytes, nests deeper than the decoder would take it (PROTOCOL.md
        §2.4), declares more than ``max_items`` or the bytes left, or is no MessagePack.

        With no ``steps`` (the walk that names why the C decoder could not pass a value),
        the elements of a long container are passed by it a run at a time, the run halved
        where it fails, down to the one element the fault is in, which is walked: naming a
        fault at the end of a file of hundreds of megabytes costs seconds, not minutes."""
        start = self.pos
        deepest = max(1, self.limits.max_depth - depth)
        left = [1]  # the values still to pass at each level of nesting, innermost last
        run = RUN_IN_C
        while left:
            if steps is not None:
                if not steps:
                    return False
                steps -= 1
            if not left[-1]:
                left.pop()
                continue
            if limit is not None and self.pos - start > limit:
                raise self.fail("too_large", f"a value of more than {limit} bytes", start)
            if steps is None and run and left[-1] >= RUN_IN_C:
                k = min(run, left[-1])
                passed = self._passed_in_c(k, self._room(start, limit))
                if passed is None:
                    run = k // 2  # none: the next element is walked
                else:
                    self.pos, left[-1], run = self.pos + passed, left[-1] - k, 2 * k
                continue
            run = RUN_IN_C
            left[-1] -= 1
            values = self._walk_header()
            if values is None:
                continue
            if len(left) - 1 > deepest:  # this container is at depth len(left) - 1
                # At the byte after its header, as the decoder names it.
                raise self.fail("too_deep", f"nesting deeper than {deepest}")
            left.append(values)
        return True

    def _walk_header(self) -> int | None:
        """Past the next value's header (and its bytes, for a scalar): None for a value with
        nothing in it to walk, else the values its container holds."""
        size = self.bin_size()  # the common value of a long part: an entry
        if size is not None:
            self.advance(size)
            return None
        at = self.pos
        b = self.read(1)[0]
        if b <= 0x7F or b >= 0xE0 or b in (NIL, 0xC2, 0xC3):
            return None
        if 0xA0 <= b <= 0xBF:
            self.advance(b & 0x1F)
            return None
        if b <= 0x9F:
            return b & 0x0F if b >= 0x90 else 2 * (b & 0x0F)
        if b in _LAYOUT:
            values = self._skip_tagged(b)
            return values if _LAYOUT[b][1] in "vm" else None
        raise self.fail("malformed", f"byte {b:#04x} begins no MessagePack value", at)

    def _skip_tagged(self, b: int) -> int:
        """Past the length field (and bytes) of a tagged value; the values it holds."""
        width, counts = _LAYOUT[b]
        if counts == "f":
            self.advance(width)
            return 0
        at = self.pos - 1
        n = int.from_bytes(self.read(width), "big")
        if counts in "bx":
            self.advance(n + (counts == "x"))
            return 0
        # As the decoder would, at the header: over the limit, or more than the bytes left.
        kind, values = ("map", 2 * n) if counts == "m" else ("array", n)
        if n > self.limits.max_items:
            raise self.fail("too_large", f"{kind} of {n} exceeds the limit of "
                            f"{self.limits.max_items}", at)
        if values > self.size - self.pos:
            raise self.fail("truncated", f"{kind} of {n} cannot fit in the bytes left", at)
        return values

    def value(self, span_limit: int = SMALL_PIECE, depth: int = 0) -> Any:
        """The next value, decoded by the canonical decoder from the bytes it spans (``depth``
        containers down in the file)."""
        start = self.pos
        self.skip(span_limit, depth)
        end, self.pos = self.pos, start
        raw = self.read(end - start)
        try:
            return codec.decode(raw, limits_for(self.limits, span_limit, depth))
        except DecodeError as exc:
            raise self._in_file(exc, start) from exc

    def _in_file(self, exc: DecodeError, start: int) -> DecodeError:
        """The decoder's error for a piece that begins at ``start``, naming the byte of the
        file (the decoder names the byte of the piece)."""
        found = _AT_BYTE.search(exc.message)
        if found is None:
            return self.fail(exc.code, exc.message, start)
        return self.fail(exc.code, exc.message[:found.start()], start + int(found[1]))

    def bins(self, count: int, depth: int = 0) -> Iterator[Any]:
        """The next ``count`` values, a document's entries (bins, each at most SMALL_PIECE),
        decoded by the canonical decoder a run at a time: a run of bins is the elements of
        an array whose header is made here (in its shortest form). A run that does not
        decode is decoded again value by value, which names the one at fault and its byte;
        a value that is not a bin is decoded on its own (the caller judges it; ``depth``: the
        array's elements are that many containers down in the file)."""
        left = count
        while left:
            start = self.pos
            k = self.skip_bins(min(left, RUN), BLOCK)
            if not k:
                left -= 1
                yield self.value(depth=depth)
                continue
            end, self.pos = self.pos, start
            head = msgpack.Packer().pack_array_header(k)
            try:
                run = codec.decode(head + self.read(end - start),
                                   limits_for(self.limits, SMALL_PIECE + 8))
            except DecodeError:
                self.pos = start
                run = [self.value(depth=depth) for _ in range(k)]
            left -= k
            yield from run

    def skip_bins(self, most: int, span: int | None = None) -> int:
        """Past the next bins of at most SMALL_PIECE each, ``most`` of them at most and (with
        ``span``) no further once ``span`` bytes are passed; how many. What ``bin_size`` and
        ``advance`` do one by one, with the block's bytes at hand: a long part of a file is
        nearly all such bins (a document's entries)."""
        k, start, size = 0, self.pos, self.size
        limit = size if span is None else start + span
        while k < most and self.pos < limit:
            off = self.pos - self._buf_at
            buf = self._buf
            if 0 <= off and off + 3 <= len(buf) and buf[off] == 0xC4:  # a bin 8: an entry
                end = self.pos + 2 + buf[off + 1]
                if end > size:
                    raise self.fail("truncated", "input ends before the value does")
                self.pos = end
                k += 1
                continue
            n = self.bin_size()
            if n is None:
                break
            self.advance(n)
            k += 1
        return k

    def bin_size(self) -> int | None:
        """The bytes a bin of at most SMALL_PIECE that begins here spans (None: another
        value, or a bin larger than that, for ``value`` to decode or refuse)."""
        off = self._held(min(5, self.size - self.pos) or 1)
        buf = self._buf
        b = buf[off]
        if not 0xC4 <= b <= 0xC6:
            return None
        width = 1 << (b - 0xC4)
        if off + 1 + width > len(buf):
            raise self.fail("truncated", "input ends before the value does")
        n = int.from_bytes(buf[off + 1:off + 1 + width], "big")
        return 1 + width + n if n <= SMALL_PIECE else None

    def container(self, kind: str) -> int | None:
        """The element count of the array (``kind`` "array") or map ("map") that begins
        here, its header in its shortest form; None (and nothing read) when it is another
        value."""
        at, b = self.pos, self.peek()
        if b not in (_ARRAY_HEADS if kind == "array" else _MAP_HEADS):
            return None
        self.pos += 1
        n = (b & 0x0F) if b < 0xA0 else int.from_bytes(self.read(_LAYOUT[b][0]), "big")
        if n > self.limits.max_items:
            raise self.fail("too_large", f"{kind} of {n} exceeds the limit of "
                            f"{self.limits.max_items}", at)
        pack = msgpack.Packer()
        shortest = pack.pack_array_header(n) if kind == "array" else pack.pack_map_header(n)
        if len(shortest) != self.pos - at:
            raise self.fail("not_canonical", f"{kind} length {n} not in its shortest form", at)
        if n * (1 if kind == "array" else 2) > self.size - self.pos:
            raise self.fail("truncated", f"{kind} of {n} cannot fit in the bytes left", at)
        return n

    def keys(self, n: int) -> Iterator[str]:
        """The keys of a map of ``n`` pairs whose header was just read, one at a time (the
        caller reads or skips each value before asking for the next key). Each key is checked
        by the canonical decoder as the key of a map of one pair (str, shortest header, within
        the limits), then against the key before it: unique and in canonical order (§2.3: by
        UTF-8 bytes, a prefix first). Linear in the keys: the map of all the keys so far,
        decoded again at each key, made a file of one map of many keys cost their square."""
        previous: bytes | None = None
        for _ in range(n):
            at = self.pos
            self.skip(self.limits.max_str + 5)
            end, self.pos = self.pos, at
            raw = self.read(end - at)
            try:
                key = next(iter(codec.decode(b"\x81" + raw + b"\xc0", self.limits)))
            except DecodeError as exc:
                raise self.fail(exc.code, f"a map key: {_AT_BYTE.sub('', exc.message)}",
                                at) from exc
            utf8 = key.encode()
            if previous is not None and utf8 <= previous:
                raise self.fail("not_canonical", "a map key: map keys are not unique and in "
                                "canonical order", at)
            previous = utf8
            yield key


__all__ = ["BLOCK", "NIL", "SMALL_PIECE", "Cursor", "Opener", "Readable",
           "Run", "limits_for", "of_bytes"]
