"""The store check as the daemon runs it (SECURITY.md, "A damaged store"): at start, only what
changed since the last complete check (its signed mark, ``check_mark.py``); then the whole
check beside the daemon's work, a slice at a time, on a read-only connection of its own. What
either finds raises the alarm and makes the store read-only the moment it is found.

What changed since a mark: every document stored after it (and the inbound ones then still
arriving), checked whole (steps 2 and 3 of ``store_check.py``); the status of every item that
an acknowledgement stored after it names (step 3); the audit records after the one it saw
last, each chained to that one, and the log's length against its tree and the checkpoints
signed of it (a tail cut off). What is left for the pass beside the work: the file's pages
(step 1), the rows the mark vouched for and the records before it, which nothing this daemon
does changes (a document's entries are never rewritten; a status changes only with an
acknowledgement, stored after the mark; a record is only ever appended) but a hand on the
file could, and the store's rows against the whole log (the daemon writes each row and its
record in one transaction: only a hand parts them). So a daemon's start reads what it wrote
since its last complete check, not its whole history.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from bridge.core.errors import StoreError
from bridge.engine.check_mark import MAX_OPEN, CheckMark
from bridge.engine.store_check import (
    MAX_FAULTS,
    StoredRows,
    StoreFault,
    audit_faults,
    audit_faults_since,
    collect,
    document_faults,
    document_pages,
    document_where,
    quick_check,
)
from bridge.store.sqlite.check import StoredDocument

_END = object()


def check_since(rows: StoredRows, mark: CheckMark) -> list[StoreFault] | None:
    """The check at start, given a verified mark; None when the mark does not fit this store
    (its document row or audit record is not the one it names): then the whole check runs."""
    at_mark = rows.document(mark.documents) if mark.documents else None
    if mark.documents and (at_mark is None or at_mark.digest != mark.digest):
        return None
    if mark.audit_seq and rows.audit_hash(mark.audit_seq) != mark.audit_head:
        return None
    if rows.alarm_since(mark.events):  # damage found since: what it vouched for is in doubt
        return None
    again = set(mark.open)
    # Read by row: the documents the mark vouched for are not read at all (a start's reads
    # follow what changed, not how many documents the store holds).
    still = [rows.document(rowid) for rowid in sorted(again) if rowid <= mark.documents]
    changed = [d for d in still if d is not None] + rows.documents(after=mark.documents)
    faults = collect(itertools.chain(document_faults(rows, changed),
                                     _statuses_since(rows, mark, again)))
    return faults + audit_faults_since(rows, mark.audit_seq, mark.audit_head)


def _statuses_since(rows: StoredRows, mark: CheckMark, whole: set[int]
                    ) -> Iterator[StoreFault]:
    """Step 3 for the items of documents the mark vouched for that later acknowledgements
    name, or ones then still arriving (the documents checked whole are not read twice)."""
    arriving = sorted(whole)
    for doc in rows.answered_since(mark.documents, arriving):
        if doc > mark.documents or doc in whole:
            continue
        d = rows.document(doc)
        if d is None:
            continue
        what = rows.status_mismatch_since(doc, mark.documents, arriving)
        if what is not None:
            yield StoreFault(where=document_where(d), what=what, doc=d.rowid)


def _arriving(d: StoredDocument) -> bool:
    """An inbound document whose chunks are still coming."""
    return d.direction == "in" and d.stored < d.entry_count


def _mark(last: StoredDocument | None, still: list[int], audit: tuple[int, bytes], at: int,
          events: int) -> CheckMark | None:
    if len(still) > MAX_OPEN:
        return None
    return CheckMark(documents=last.rowid if last else 0, digest=last.digest if last else b"",
                     open=tuple(still), audit_seq=audit[0], audit_head=audit[1], at=at,
                     events=events)


class CheckPass:
    """The whole check (``store_check.check_all``) in slices, over ``rows``: steps 1 to 3 for
    the documents stored when the pass begins (what is stored after is the next check's),
    read a page of rows at a time, then the audit log against the store."""

    def __init__(self, rows: StoredRows) -> None:
        self.rows = rows
        self.audit = rows.audit_head()
        self.events = rows.last_event()
        self.upto = rows.last_document()  # the last document row when the pass begins
        self.documents = 0  # document rows read so far
        self.faults: list[StoreFault] = []
        self._last: StoredDocument | None = None
        self._still: list[int] = []  # read still arriving (at most MAX_OPEN + 1 kept)
        self._page: dict[int, StoredDocument] = {}  # the page of rows being checked
        self._work = itertools.chain(quick_check(rows), document_faults(rows, self._docs()),
                                     self._audit())

    def _docs(self) -> Iterator[StoredDocument]:
        """The document rows up to ``upto``, a page at a time, noting what the mark needs."""
        for page in document_pages(self.rows, self.upto):
            self._page = {d.rowid: d for d in page}
            for d in page:
                self.documents += 1
                self._last = d
                if _arriving(d) and len(self._still) <= MAX_OPEN:
                    self._still.append(d.rowid)
                yield d

    def run(self) -> list[StoreFault]:
        """The whole pass at once (the check at start, when there is no mark to go by): its
        first ``MAX_FAULTS`` faults."""
        done = False
        while not done:
            _, done = self.step(1 << 20)
        return self.faults
    def _audit(self) -> Iterator[StoreFault]:
        """The audit log, whole, against the store: its records and the rows they stand for
        read at one instant (this connection's reads are otherwise not one snapshot, and the
        daemon writes beside them), a record and a row at a time (``audit_tally``). One
        step."""
        with self.rows.snapshot():
            faults = audit_faults(self.rows)
        yield from faults

    def step(self, pages: int) -> tuple[list[StoreFault], bool]:
        """At most ``pages`` pages of entries further: the faults found there, and whether
        the pass is over."""
        found: list[StoreFault] = []
        done = False
        try:
            for _ in range(pages):
                fault = next(self._work, _END)
                if fault is _END:
                    done = True
                    break
                if isinstance(fault, StoreFault) and self._still_so(fault):
                    found.append(fault)
        except StoreError as exc:
            found.append(StoreFault(where="the file", what=f"cannot be read: {exc}"))
            done = True
        self.faults = (self.faults + found)[:MAX_FAULTS]  # the first ones name the damage
        return found, done

    def _still_so(self, fault: StoreFault) -> bool:
        """A fault of a document whose row changed while the pass read it (more entries came,
        it went) is not one: the next check reads it as it is then."""
        before = self._page.get(fault.doc) if fault.doc is not None else None
        if before is None:
            return True
        now = self.rows.document(before.rowid)
        return now is not None and (now.digest, now.stored) == (before.digest, before.stored)

    def mark(self, at: int) -> CheckMark | None:
        """The mark this pass leaves when it found nothing."""
        return None if self.faults else _mark(self._last, self._still, self.audit, at,
                                              self.events)


__all__ = ["CheckPass", "check_since"]
