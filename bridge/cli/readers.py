"""A file to check, opened once and read by position: what the receipt and transcript checks
read a piece at a time in several passes (``bridge.core.pieces``) is then one file throughout,
even if its name is given to another file while the check runs."""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from bridge.core.transcript import Opener


class _Positional:
    """One reader of an open file descriptor with a position of its own (``os.pread``):
    several may read the same descriptor at once. Closing it leaves the descriptor open."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pos = 0

    def close(self) -> None:
        pass

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos,
                io.SEEK_END: os.fstat(self._fd).st_size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            size = os.fstat(self._fd).st_size - self._pos
        pieces = []
        while size > 0:  # a read of a regular file is short only at its end
            got = os.pread(self._fd, size, self._pos)
            if not got:
                break
            pieces.append(got)
            self._pos += len(got)
            size -= len(got)
        return b"".join(pieces)


@contextlib.contextmanager
def regular_file(path: Path) -> Iterator[tuple[Opener, int]]:
    """``path`` opened for reading: a way to read it from the start (as often as asked) and
    its size. Only a regular file: a FIFO or a device such as /dev/zero has no size to check
    and may never end. ``OSError`` when it cannot be opened or is not a regular file."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore the flag).
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")

        yield (lambda: _Positional(fd)), info.st_size
    finally:
        os.close(fd)


__all__ = ["regular_file"]
