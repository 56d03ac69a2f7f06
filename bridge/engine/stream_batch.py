"""One batch of a streamed roster or manifest, checked and made into entries: pure work.

A batch's checks (the document schema, the record schemas of its category) and its entries
(the signed bytes of each item and their leaf hashes) depend only on the stream's header, the
batch's place in the stream and its salts: nothing of the store, nothing of the batches
before it. So they are made by ``check_batch`` wherever there is a core to spare (the daemon
hands large streams to processes beside it: ``bridge.daemon.checkers``), and only the rest
-- the Merkle frontier, the stage, the duplicate ids across batches -- is done in order on the
database thread (``Streaming.stage``). Either way a batch makes the very same entries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.core.errors import InputError
from bridge.core.streaming import declared_batch
from bridge.records.categories import validate_submission
from bridge.records.schema import validate
from bridge.store.entry_fields import records_fields

_ITEM_FIELD = re.compile(r"^items\[(\d+)\]")


@dataclass(frozen=True, kw_only=True)
class BatchRules:
    """What every batch of one stream is checked against: its header's type, recipient,
    meta, and how many items it announced."""

    doc_type: str
    peer: str
    meta: Mapping[str, Any]
    count: int


@dataclass(frozen=True, kw_only=True)
class CheckedBatch:
    """Entries ``first``, ``first + 1``, ... of a stream, as the stage keeps them: one value
    an entry in each column (categories and roster records None for a roster's)."""

    first: int
    ids: Sequence[str]
    leaves: Sequence[bytes]
    hashes: Sequence[bytes]
    categories: Sequence[str | None]
    roster_records: Sequence[str | None]

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not n or {len(self.leaves), len(self.hashes), len(self.categories),
                     len(self.roster_records)} != {n}:
            raise ValueError("a checked batch has one value an entry in every column")


def shifted(err: InputError, first: int) -> InputError:
    """``err`` of a batch, its ``items[j]`` renamed ``items[first + j]`` (the stream's index)."""
    def shift(field: str | None) -> str | None:
        if field is None:
            return None
        return _ITEM_FIELD.sub(lambda m: f"items[{first + int(m.group(1))}]", field, count=1)
    return InputError(err.detail, field=shift(err.field), code=err.code,
                      problems=tuple((shift(f), m) for f, m in err.problems))


def check_batch(rules: BatchRules, first: int, salts: bytes, raw_items: list[Any]
                ) -> CheckedBatch:
    """Items ``first``, ``first + 1``, ... of the stream (``raw_items``, consumed), checked as
    a JSON submission's items are and made into their entries with ``salts`` (SALT_SIZE
    bytes an entry); an ``InputError`` names the first bad item by its index in the stream."""
    try:
        validate("document", {"type": rules.doc_type, "to": rules.peer, "items": raw_items})
        validate_submission(rules.doc_type, rules.meta, raw_items)
    except InputError as err:
        raise shifted(err, first) from None
    records = [(raw.pop("id"), raw) for raw in raw_items]
    leaves, hashes = declared_batch(first, rules.count, salts, records)
    n = len(records)
    # A manifest's record fields read by C loops over the batch (``records_fields``).
    categories, roster_records = records_fields(raw_items) if \
        rules.doc_type == "manifest" else ([None] * n, [None] * n)
    raw_items.clear()
    return CheckedBatch(first=first, ids=[r[0] for r in records], leaves=leaves,
                        hashes=hashes, categories=categories, roster_records=roster_records)


__all__ = ["BatchRules", "CheckedBatch", "check_batch", "shifted"]
