"""Steps 4, 5, 10 and 11 of a whole-document receipt (PROTOCOL.md §7.4) over entries read a
pass at a time, never held: the receipt check, and the transcript's step 4 (§11.5), which
checks a document and its acknowledgements as such a receipt, are this one implementation.

Steps 4 and 10 need only a frontier of the tree (RFC 9162 §2.1.1): each entry's leaf hash is
added as it is read. Steps 5 and 11 compare items by id across the document and its
acknowledgements: an id declared twice, an acknowledgement naming an id twice or binding
another entry of it. Each id is judged only against entries of the same id, so the ids are
split by a hash into parts of at most ``PART_ITEMS`` (in expectation) and each part is checked
in its own pass over the entries: what one pass holds is bounded, whatever the document's
size. An array holds at most 1,000,000 entries (the RECEIPT and TRANSCRIPT limits, §2.4), so
that is at most four passes: the time stays linear in the entries.

The steps keep their order: the first pass runs them in the order of §7.4, the headers' steps
(6 to 9, and 12) between them through ``ack_steps``; a later pass runs steps 5 and 11 again for
its part, and 4 and 10 again too: each pass reads the file anew, and what it judges must be
the signed bytes even if the file was written to since the pass before (the hashing costs
little beside the decoding). Within a pass a step's faults are found in the order a whole
decoding finds them: an entry that does not decode is named only after its tree is judged
(step 4 before step 5).
"""

from __future__ import annotations

import hmac
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bridge.core import merkle
from bridge.core.documents import DocumentHeader
from bridge.core.entries import acknowledged_items, declared_item_ids
from bridge.core.errors import VerificationError
from bridge.core.receipts.steps import Checks, check_acknowledged_item, fail

PART_ITEMS = 1 << 18
"""Items whose state one pass holds: their ids, declared leaf hashes and statuses."""
BATCH = 4096  # entries decoded and hashed at once

T = TypeVar("T")
Leaves = Callable[[], Iterable[bytes]]
"""A new pass over a document's entries, in order."""


@dataclass(frozen=True, kw_only=True)
class AckSteps:
    """The steps of each acknowledgement that are not about its entries: ``header(k)`` runs
    steps 6 to 9 of acknowledgement ``k`` (from 1) and gives its header, ``order(k)`` step 12.
    Each runs once, in the first pass."""

    header: Callable[[int], DocumentHeader]
    order: Callable[[int], None] = lambda k: None


StatusSink = Callable[[Iterable[tuple[str, str]]], None]
"""Where each item's final status goes (item id, status), a part's items at a time, when the
caller keeps them elsewhere than in memory (``bridge verify --json`` of a million items)."""


@dataclass(kw_only=True)
class Found:
    """What the acknowledgements say of the items, over all parts: the counts of final
    statuses, the declared items with none, the undeclared items, and (when kept) each item's
    final status."""

    counts: Counter[str] = field(default_factory=Counter)
    items: int = 0
    unacknowledged: int = 0
    undeclared: int = 0
    statuses: dict[str, str] | None = None


@dataclass(kw_only=True)
class _Part:
    """One part's items: declared id → [its entry's leaf hash, its latest status], and each
    undeclared id's latest status."""

    declared: dict[str, list[bytes | str | None]]
    undeclared: dict[str, str] = field(default_factory=dict)


def check_items(document: DocumentHeader, declared: Leaves, acks: Sequence[Leaves],
                steps: AckSteps, checks: Checks, *, most: int, trees: bool = True,
                keep_statuses: bool | StatusSink = False) -> Found:
    """Steps 4 and 5 of ``document`` (its entries ``declared``), then 6 to 12 of each of its
    ``acks`` in order; ``most``: the largest number of entries among them (it sets the
    parts). ``trees`` False: the caller has its own way to know the entries each pass reads
    are the signed ones (steps 4 and 10 are then left out). ``keep_statuses``: True keeps
    each item's final status in ``Found.statuses``; a ``StatusSink`` is handed them instead,
    a part at a time, so that none are held beyond the part's."""
    parts = max(1, -(-most // PART_ITEMS))
    found = Found(statuses={} if keep_statuses is True else None)
    # Where each part's final statuses go: the dict kept, the caller's sink, or nowhere.
    sink: StatusSink | None = found.statuses.update if found.statuses is not None else (
        None if isinstance(keep_statuses, bool) else keep_statuses)
    headers: list[DocumentHeader] = []
    for part in range(parts):
        first = part == 0
        state = _declared(document, declared, part, parts, checks, tree=trees, record=first)
        for k, leaves in enumerate(acks, 1):
            if first:
                headers.append(steps.header(k))
            _acknowledged(headers[k - 1], f"acknowledgement {k}", leaves, document, state,
                          (part, parts), checks, tree=trees, record=first)
            if first:
                steps.order(k)
        _count(state, found, sink)
    return found


def _in_part(item_id: str, part: int, parts: int) -> bool:
    return parts == 1 or hash(item_id) % parts == part


@dataclass(kw_only=True)
class _Read:
    """One pass over a document's entries: their tree's frontier (when ``tree``), and the
    first entry that its decoder refused (the rest are still hashed, for step 4 or 10 to be
    judged first)."""

    tree: bool
    hashed: bool = True  # the leaf hashes wanted even without the tree
    builder: merkle.RootBuilder = field(default_factory=merkle.RootBuilder)
    error: VerificationError | None = None

    def decoded(self, leaves: Iterable[bytes], decode: Callable[[list[bytes], int], list[T]]
                ) -> Iterator[tuple[list[bytes], list[T]]]:
        """The leaf hashes of each batch of entries with what ``decode`` makes of it (given
        its first index), until a batch fails."""
        it = iter(leaves)
        at = 0
        while batch := list(itertools.islice(it, BATCH)):
            hashes = ([merkle.leaf_hash(leaf) for leaf in batch] if self.tree or self.hashed
                      else [])
            if self.tree:
                self.builder.extend(hashes)
            if self.error is None:
                try:
                    out = decode(batch, at)
                except VerificationError as exc:
                    self.error = exc
                else:
                    yield hashes, out
            at += len(batch)


def _declared(h: DocumentHeader, leaves: Leaves, part: int, parts: int, checks: Checks, *,
              tree: bool, record: bool) -> _Part:
    """Steps 4 and 5, this part's ids kept."""
    read = _Read(tree=tree)
    state = _Part(declared={})
    twice: str | None = None
    for hashes, ids in read.decoded(leaves(), declared_item_ids):
        for item_id, leaf_hash in zip(ids, hashes, strict=True):
            if _in_part(item_id, part, parts):
                if twice is None and item_id in state.declared:
                    twice = item_id
                state.declared[item_id] = [leaf_hash, None]
    if tree:
        # Step 4: the count and the root are recomputed from all the entries.
        checks.begin("document entries")
        tree_holds(h, read.builder, h.type)
        if record:
            checks.passed(f"{h.count} entries hash to the signed root")
    # Step 5: every entry decodes as a declared entry at its position; item ids are unique.
    checks.begin("declared items")
    if read.error is not None:
        raise read.error
    if twice is not None:
        raise fail(f"item {twice} is declared twice", "duplicate_item")
    if record:
        checks.passed(f"{h.count} distinct items")
    return state


def _acknowledged(ah: DocumentHeader, what: str, leaves: Leaves, document: DocumentHeader,
                  state: _Part, part: tuple[int, int], checks: Checks, *, tree: bool,
                  record: bool) -> None:
    """Steps 10 and 11 of one acknowledgement, for this part's items."""
    read = _Read(tree=tree, hashed=False)
    # Step 11's faults in its order: an entry that does not decode, then an id named twice,
    # then the first entry that binds wrongly. Each entry is judged as it is read (against
    # the statuses of the entries before it), so that only the ids are held, not the entries.
    seen: set[str] = set()
    twice: str | None = None
    wrong: VerificationError | None = None
    for _, items in read.decoded(leaves(), acknowledged_items):
        for item_id, status, leaf in items:
            if not _in_part(item_id, *part):
                continue
            if twice is None and item_id in seen:
                twice = item_id
            seen.add(item_id)
            if wrong is None and twice is None:
                try:
                    _judge(what, item_id, status, leaf, state, document)
                except VerificationError as exc:
                    wrong = exc
    if tree:
        # Step 10: its count and root, recomputed from its entries.
        checks.begin(f"{what}: entries")
        tree_holds(ah, read.builder, "ack")
        if record:
            checks.passed(f"{ah.count} entries hash to the signed root")
    # Step 11: every ack entry decodes at its position, names each item once, and binds the
    # declared entry of that id by its leaf hash; an entry without a leaf is a
    # RECEIVED_UNDECLARED of an id the document really does not declare.
    checks.begin(f"{what}: acknowledged items")
    if read.error is not None:
        raise read.error
    if twice is not None:
        raise fail(f"{what} acknowledges item {twice} twice", "duplicate_item")
    if wrong is not None:
        raise wrong
    if record:
        checks.passed(f"{ah.count} items")


def _judge(what: str, item_id: str, status: str, leaf: bytes | None, state: _Part,
           document: DocumentHeader) -> None:
    slot = state.declared.get(item_id)
    declared_leaf = None if slot is None else slot[0]
    assert declared_leaf is None or isinstance(declared_leaf, bytes)
    if check_acknowledged_item(what, item_id, status, leaf, declared_leaf, state.undeclared,
                               document.id):
        assert slot is not None
        slot[1] = status


def _count(state: _Part, found: Found, sink: StatusSink | None) -> None:
    finals = [slot[1] for slot in state.declared.values()]
    found.items += len(finals)
    found.unacknowledged += finals.count(None)
    found.counts.update(s for s in finals if isinstance(s, str))
    found.counts.update(state.undeclared.values())
    found.undeclared += len(state.undeclared)
    if sink is not None:  # each id is in one part only: none is handed over twice
        sink((i, s[1]) for i, s in state.declared.items() if isinstance(s[1], str))
        sink(state.undeclared.items())


def tree_holds(h: DocumentHeader, builder: merkle.RootBuilder, what: str) -> None:
    """Steps 4 and 10: the signed count and root are those of the entries present."""
    if builder.size != h.count:
        raise fail(f"{what} {h.id} declares {h.count} entries but {builder.size} are "
                   "present", "count_mismatch")
    if not hmac.compare_digest(builder.root(), h.root):
        raise fail(f"the entries of {what} {h.id} do not hash to its signed root",
                   "root_mismatch")


__all__ = ["PART_ITEMS", "AckSteps", "Found", "Leaves", "StatusSink", "check_items", "tree_holds"]
