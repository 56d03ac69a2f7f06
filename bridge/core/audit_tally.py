"""The audit log against the store in memory that does not grow with either.

``audit.check_store`` compares what the log says the store holds with what it holds as sets:
every document hash, every outbox and inbox row, every receipt, held at once for both sides,
with every record of the log. A daemon of some years holds hundreds of thousands of each, and
the check beside its work would take as many hundreds of MB. So the check first walks the log a
record at a time (``audit.record_holds``: the chain's every step) and *tallies* both sides: for
each kind of row, how many and the sum, modulo 2^256, of the HMAC-SHA256 of each one's fields
under a key drawn for this check alone. Two tallies are equal when the two multisets are
(the additive multiset hash of Clarke et al., "Incremental Multiset Hash Functions",
ASIACRYPT 2003, keyed: whoever wrote the file did not know the key, so cannot choose rows
whose sums agree). Only a log that does not hold is then read whole, to name what is wrong
(``audit.check_chain`` and ``audit.check_store``, as before): a sound store is checked in
memory of one record and one row at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bridge.core import codec
from bridge.core.audit import (
    ACK,
    DOCUMENT,
    ENVELOPE_QUEUED,
    ENVELOPE_RECEIVED,
    RECEIPT_ISSUED,
    RECEIPT_RECEIVED,
    ROW_KINDS,
    ZERO_HASH,
    AuditRecord,
    AuditResult,
    cut_off,
    record_holds,
)
from bridge.core.crypto.hashes import keyed_sha256, sha256

_MODULUS = 1 << 256

# What a tally counts: the rows of the store the log accounts for, one for one.
DOCUMENTS, OUTBOX, INBOX, RECEIPTS, ISSUED, REFUSALS = (
    "documents", "outbox", "inbox", "receipts", "issued", "refusals")


class Tally:
    """For each kind of row: how many were added, and the sum of their keyed hashes."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._sums: dict[str, tuple[int, int]] = {}

    def add(self, what: str, *fields: Any) -> None:
        """One row of kind ``what`` with these fields (str, int, bytes)."""
        self.add_copies(1, what, *fields)

    def add_copies(self, n: int, what: str, *fields: Any) -> None:
        """``n`` rows of kind ``what``, all with these fields (a count: the refusals)."""
        if n == 0:
            return
        value = int.from_bytes(keyed_sha256(self._key, codec.pack_value([what, *fields])))
        count, total = self._sums.get(what, (0, 0))
        self._sums[what] = (count + n, (total + n * value) % _MODULUS)

    def same(self, other: Tally) -> bool:
        return self._sums == other._sums


def tally_record(tally: Tally, r: AuditRecord, b: Mapping[str, Any]) -> None:
    """The row a record of ``ROW_KINDS`` (its body decoded: ``b``) stands for, as
    ``audit.check_store`` reads it: ``KeyError`` or ``TypeError`` for a body without the
    fields of its kind."""
    peer = str(r.peer)
    if r.kind in (DOCUMENT, ACK):
        tally.add(DOCUMENTS, b["digest"])
    elif r.kind == ENVELOPE_QUEUED:
        tally.add(OUTBOX, peer, b["seq"], b["digest"])
    elif r.kind == ENVELOPE_RECEIVED:
        tally.add(INBOX, peer, b["seq"], b["digest"])
    elif r.kind == RECEIPT_RECEIVED:
        tally.add(RECEIPTS, peer, b["seq"])
    elif r.kind == RECEIPT_ISSUED:
        tally.add(ISSUED, peer, b["seq"], sha256(b["receipt"]))
    else:
        tally.add(REFUSALS)


def walk_chain(records: Iterable[AuditRecord],
               each: Callable[[AuditRecord, Mapping[str, Any]], bool] | None = None
               ) -> AuditResult | None:
    """``check_chain``'s result for ``records`` (in ``seq`` order, read as they come) when
    every one holds, else None (``check_chain`` of them, read whole, then says what is wrong).
    ``each`` is shown each record that holds, with its decoded body; False stops the walk."""
    prev: AuditRecord | None = None
    first_at: int | None = None
    kinds: Counter[str] = Counter()
    for r in records:
        body = record_holds(r, prev)
        if body is None or (each is not None and not each(r, body)):
            return None
        first_at = r.at if prev is None else first_at
        kinds[r.kind] += 1
        prev = r
    return AuditResult(ok=True, records=kinds.total(), first_at=first_at,
                       last_at=prev.at if prev else None,
                       head=prev.hash if prev else ZERO_HASH, kinds=dict(kinds))


def log_holds(records: Iterable[AuditRecord], stored: Callable[[bytes], Tally], key: bytes,
              *, leaves: int, checkpoint: int) -> AuditResult | None:
    """The log's summary when it holds (``records`` as ``walk_chain`` reads them) and
    accounts for the store one for one (``stored(key)``: the store's tally under ``key``):
    only when ``check_chain`` and ``check_store`` would find nothing. None says only that one
    of them will find something."""
    logged = Tally(key)

    def tallied(r: AuditRecord, body: Mapping[str, Any]) -> bool:
        if r.kind in ROW_KINDS:
            try:
                tally_record(logged, r, body)
            except (KeyError, TypeError):
                return False
        return True

    result = walk_chain(records, tallied)
    if result is None or cut_off(result.records, leaves=leaves, checkpoint=checkpoint) or \
            not logged.same(stored(key)):
        return None
    return result


__all__ = ["DOCUMENTS", "INBOX", "ISSUED", "OUTBOX", "RECEIPTS", "REFUSALS", "Tally",
           "log_holds", "tally_record", "walk_chain"]
