"""One stored document by its id, as the queries and the acknowledgements find it: the only
one of that id (in a direction), and never one the store check found damaged. Its own module so
that ``outbound`` and ``queries`` both use it without importing each other."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.core.errors import InputError
from bridge.core.printable import quoted
from bridge.engine.context import Engine
from bridge.store.sqlite.store import DocumentRow


def find_document(engine: Engine, doc_id: str, direction: str | None) -> DocumentRow:
    """The one stored document ``doc_id`` (in ``direction``), unless the store check found it
    damaged."""
    return only_document(engine, doc_id, engine.store.documents_by_id(doc_id, direction))


def only_document(engine: Engine, doc_id: str, rows: Sequence[DocumentRow]) -> DocumentRow:
    """``find_document`` of the documents ``doc_id`` the caller has read already."""
    if not rows:
        raise InputError(f"no document {quoted(doc_id)}", field="id", code="not_found")
    if len(rows) > 1:
        raise InputError(f"{quoted(doc_id)} exists in both directions; give direction=in|out",
                         field="direction", code="ambiguous")
    engine.guard.damaged(rows[0])
    return rows[0]


__all__ = ["find_document", "only_document"]
