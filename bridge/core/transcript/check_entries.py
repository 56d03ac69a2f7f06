"""Step 4 of a transcript check (PROTOCOL.md §11.5): what each acknowledgement says about each
declared item, checked exactly as a whole-document receipt is (§7.4 steps 4–12), with the
entries read from the file as they come instead of held.

Steps 5 and 11 compare items by id across a document and its acknowledgements: an id declared
twice, an acknowledgement naming an id twice or binding another entry of it. Each id is judged
only against entries of the same id, so the ids are split by a hash into parts of at most
``PART_ITEMS`` and each part is checked in its own pass over the entries: what one pass holds
is bounded, whatever the document's size (a document of up to ``PART_ITEMS`` items takes one
pass). Every entry is decoded, by its one decoder, in every pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from bridge.core import merkle
from bridge.core.crypto.identity import Keyring
from bridge.core.documents import ACK
from bridge.core.entries import decode_ack_entry, decode_declared_entry
from bridge.core.errors import VerificationError
from bridge.core.pieces import Opener
from bridge.core.receipts.steps import (
    Checks,
    check_ack_header,
    check_ack_order,
    check_acknowledged_item,
    check_signature,
    first_duplicate,
)
from bridge.core.transcript import layout
from bridge.core.transcript.check_state import CheckedDocument, fail

# Items whose state one pass holds: their ids and declared leaf hashes, some 250 bytes each.
PART_ITEMS = 1 << 18


def check_entries(docs: Sequence[CheckedDocument], keys: Keyring,
                  open_file: Opener) -> tuple[str, ...]:
    """4. For each roster or manifest whose entries are included: its declared entries, and
    its acknowledgements' entries up to the first one not included, checked as a
    whole-document receipt. Returns the acknowledgements with entries that could not be
    checked so (for the report: what the transcript leaves out)."""
    unchecked: list[str] = []
    for doc in docs:
        if doc.signed.header.type == ACK:
            continue
        if doc.entries is None:
            unchecked += [a.signed.header.id for a in doc.acks if a.entries is not None]
            continue
        shown: list[CheckedDocument] = []
        for n, ack in enumerate(doc.acks):
            if ack.entries is None:
                unchecked += [a.signed.header.id for a in doc.acks[n:] if a.entries is not None]
                break
            shown.append(ack)
        if not shown:
            for part, parts in _parts(doc, shown):
                if _declared(doc, open_file, part, parts)[1] is not None:
                    raise fail(f"{doc.name} declares an item twice", "duplicate_item")
            continue
        try:
            _check_as_receipt(doc, shown, keys, open_file)
        except VerificationError as exc:
            raise fail(f"{doc.name} and its acknowledgements: {exc.message}",
                       exc.reason) from exc
    return tuple(unchecked)


def _check_as_receipt(doc: CheckedDocument, shown: Sequence[CheckedDocument], keys: Keyring,
                      open_file: Opener) -> None:
    # Steps 3, 6–9 and 12: the headers, checked once (each a few hundred bytes).
    check_signature(doc.signed, keys)
    previous: int | None = None
    for k, ack in enumerate(shown, 1):
        check_ack_header(ack.signed.to_map(), doc.signed, keys, Checks(), f"acknowledgement {k}")
        previous = check_ack_order(ack.signed.header, previous, Checks(), f"acknowledgement {k}")
    # Steps 4 and 10 (count and root) were step 3.6 of the transcript, on the same bytes.
    for part, parts in _parts(doc, shown):
        declared, twice = _declared(doc, open_file, part, parts)
        if twice is not None:
            raise fail(f"item {twice} is declared twice", "duplicate_item")
        undeclared: dict[str, str] = {}  # each undeclared item's latest status
        for k, ack in enumerate(shown, 1):
            what = f"acknowledgement {k}"
            # Step 11 reads the acknowledgement twice: its ids, each once, then each entry
            # against the declared ones (so held are this part's ids, not its entries).
            dup = first_duplicate(item_id for item_id, _, _ in _acknowledged(ack, open_file,
                                                                          part, parts))
            if dup is not None:
                raise fail(f"{what} acknowledges item {dup} twice", "duplicate_item")
            for item_id, status, leaf in _acknowledged(ack, open_file, part, parts):
                check_acknowledged_item(what, item_id, status, leaf, declared.get(item_id),
                                        undeclared, doc.signed.header.id)


def _parts(doc: CheckedDocument, shown: Sequence[CheckedDocument]) -> Iterator[tuple[int, int]]:
    """(part, parts) for each pass: enough parts that none holds more than PART_ITEMS ids
    (in expectation: the split is by the hash of the id)."""
    most = max([doc.signed.header.count, *(a.signed.header.count for a in shown)])
    parts = max(1, -(-most // PART_ITEMS))
    return ((part, parts) for part in range(parts))


def _declared(doc: CheckedDocument, open_file: Opener, part: int, parts: int
              ) -> tuple[dict[str, bytes], str | None]:
    """Steps 4–5: each declared entry decoded at its position (all of them, before a
    duplicate is named); this part's ids, each with its entry's leaf hash, and the first id
    declared twice."""
    assert doc.entries is not None
    by_id: dict[str, bytes] = {}
    twice = None
    for n, leaf in enumerate(layout.entries(open_file, doc.entries)):
        item_id = decode_declared_entry(leaf, n).item_id
        if parts == 1 or hash(item_id) % parts == part:
            if item_id in by_id and twice is None:
                twice = item_id
            by_id[item_id] = merkle.leaf_hash(leaf)
    return by_id, twice


def _acknowledged(ack: CheckedDocument, open_file: Opener, part: int, parts: int
                  ) -> Iterator[tuple[str, str, bytes | None]]:
    """Step 11's reading: each acknowledgement entry decoded at its position; those of this
    part."""
    assert ack.entries is not None
    for n, leaf in enumerate(layout.entries(open_file, ack.entries)):
        entry = decode_ack_entry(leaf, n)
        if parts == 1 or hash(entry.item_id) % parts == part:
            yield entry.item_id, entry.status, entry.leaf


__all__ = ["PART_ITEMS", "check_entries"]
