"""``bridge verify --json``: the list of results written as each file is checked, and a
whole-document receipt's item statuses kept on disk, not in memory, until they are written.

The check finds the final statuses a part of the items at a time (some 2^18 ids,
``receipts.items.PART_ITEMS``); each part is written at once to an unnamed temporary file and
copied out after the receipt's record, so the command holds one part's statuses, never all
of a million-item receipt's. The output is what ``json_text`` of the whole list would print
(two spaces an indent), but for the order of a record's keys: ``statuses`` comes last.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterable
from typing import IO, Any

from bridge.core.printable import json_text

_MEMBER_INDENT = 6  # a status inside a record inside the list
_COPY_BLOCK = 1 << 20  # characters copied out of the spool at once
_WRITE_BATCH = 8192  # statuses made into JSON at once


class StatusSpool:
    """Item statuses as the members of one JSON object, in an unnamed temporary file
    (``tempfile.TemporaryFile``: created mode 0600 and unlinked at once, so nothing is left
    behind, whatever ends the command), opened at the first status: a transcript or an item
    receipt opens none."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None  # closed by close()

    def add(self, statuses: Iterable[tuple[str, str]]) -> None:
        """Append (item id, status) pairs, each id once: ids and statuses are the signer's
        text, escaped as ``json_text`` escapes them."""
        pairs = iter(statuses)
        while batch := dict(itertools.islice(pairs, _WRITE_BATCH)):
            members = json_text(batch, indent=_MEMBER_INDENT)[2:-2]  # less "{\n" and "\n}"
            if self._file is None:
                self._file = tempfile.TemporaryFile("w+", encoding="utf-8")
            else:
                members = ",\n" + members
            self._file.write(members)

    def copy_to(self, write: Callable[[str], Any]) -> None:
        """The object, written out a block at a time."""
        if self._file is None:
            write("{}")
            return
        write("{\n")
        self._file.seek(0)
        while block := self._file.read(_COPY_BLOCK):
            write(block)
        write("\n" + " " * (_MEMBER_INDENT - 2) + "}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class JsonResults:
    """The JSON list of results, written a record at a time."""

    def __init__(self, write: Callable[[str], Any]) -> None:
        self._write = write
        self._count = 0

    def add(self, record: dict[str, Any], statuses: StatusSpool | None = None) -> None:
        """One file's record; with ``statuses``, its ``statuses`` are those of the spool."""
        write = self._write
        write("[\n" if not self._count else ",\n")
        self._count += 1
        if statuses is not None:
            record = {k: v for k, v in record.items() if k != "statuses"}
        text = "  " + json_text(record).replace("\n", "\n  ")
        if statuses is None:
            write(text)
            return
        write(text[:-len("\n  }")] + ',\n    "statuses": ')
        statuses.copy_to(write)
        write("\n  }")

    def end(self) -> None:
        self._write("\n]\n" if self._count else "[]\n")


__all__ = ["JsonResults", "StatusSpool"]
