"""Step 4 of a transcript check (PROTOCOL.md §11.5): what each acknowledgement says about each
declared item, checked exactly as a whole-document receipt is (§7.4 steps 4–12), by the
receipt check's own steps over the entries read from the file as they come
(``bridge.core.receipts.items``: in passes of bounded memory, whatever the document's size).
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.core.crypto.identity import Keyring
from bridge.core.documents import ACK
from bridge.core.errors import VerificationError
from bridge.core.pieces import Opener
from bridge.core.receipts.items import AckSteps, Leaves, check_items
from bridge.core.receipts.steps import Checks, check_ack_header, check_ack_order, check_signature
from bridge.core.transcript import layout
from bridge.core.transcript.check_state import CheckedDocument, fail


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
            try:
                _check_as_receipt(doc, shown, open_file)
            except VerificationError as exc:
                if exc.reason != "duplicate_item":
                    raise
                raise fail(f"{doc.name} declares an item twice", "duplicate_item") from exc
            continue
        try:
            _check_headers(doc, shown, keys)
            _check_as_receipt(doc, shown, open_file)
        except VerificationError as exc:
            raise fail(f"{doc.name} and its acknowledgements: {exc.message}",
                       exc.reason) from exc
    return tuple(unchecked)


def _check_headers(doc: CheckedDocument, shown: Sequence[CheckedDocument],
                   keys: Keyring) -> None:
    """Steps 3, 6–9 and 12: the headers, checked once (each a few hundred bytes)."""
    check_signature(doc.signed, keys)
    previous: int | None = None
    for k, ack in enumerate(shown, 1):
        check_ack_header(ack.signed.to_map(), doc.signed, keys, Checks(), f"acknowledgement {k}")
        previous = check_ack_order(ack.signed.header, previous, Checks(), f"acknowledgement {k}")


def _check_as_receipt(doc: CheckedDocument, shown: Sequence[CheckedDocument],
                      open_file: Opener) -> None:
    """Steps 4 to 11 but the headers'. Steps 4 and 10 (count and root) were step 3.6 of the
    transcript, but each pass here reads the file anew: they are checked again on the bytes
    it reads, so that what is judged is what was signed even if the file changed meanwhile."""
    check_items(doc.signed.header, _leaves(doc, open_file), [_leaves(a, open_file) for a in shown],
                AckSteps(header=lambda k: shown[k - 1].signed.header), Checks(),
                most=max([doc.signed.header.count, *(a.signed.header.count for a in shown)]))


def _leaves(doc: CheckedDocument, open_file: Opener) -> Leaves:
    run = doc.entries
    assert run is not None
    return lambda: layout.entries(open_file, run)


__all__ = ["check_entries"]
