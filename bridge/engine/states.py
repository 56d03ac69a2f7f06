"""Document and outbox states, and which state each may move to: one table each, in one place
(as ``bridge.core.lifecycle`` is for items). A change the table does not allow is refused with
``TransitionRefused``: the stored state is not one this code could have left, so the store is
not what we wrote (a ``StoreCorrupt``), and nothing is changed.

The stored strings are the enums' values (the store's schema is unchanged).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from bridge.core.errors import StoreCorrupt
from bridge.engine.ports import Store
from bridge.store.sqlite.store import DocumentRow


class DocumentState(enum.StrEnum):
    # Ours (direction out): documents and our acknowledgements of the peer's.
    QUEUED = "queued"  # committed to the outbox, nothing answered yet
    SENDING = "sending"  # some of its envelopes delivered
    DELIVERED = "delivered"  # every envelope delivered
    REFUSED = "refused"  # the peer refused one of its envelopes' content
    # The peer's (direction in).
    RECEIVING = "receiving"  # some of its chunks received
    RECEIVED = "received"  # every chunk received
    # Either: every item has a status (ours: the peer acknowledged them; theirs: we did).
    ACKNOWLEDGED = "acknowledged"


class OutboxState(enum.StrEnum):
    PENDING = "pending"  # to be sent (again, after a gap rewound it)
    DELIVERED = "delivered"  # the peer accepted it
    REFUSED = "refused"  # the peer took its place in the chain and refused its content


class ItemTransport(enum.StrEnum):
    """Where an item's envelope is, until the item has an acknowledgement status."""
    QUEUED = "queued"  # ours: its envelope not tried yet
    SENT = "sent"  # ours: its envelope tried at least once
    DELIVERED = "delivered"  # ours: its envelope delivered
    UNACKNOWLEDGED = "unacknowledged"  # theirs: received (it travels no further)


class TransitionRefused(StoreCorrupt):
    """A state change its table does not allow."""


_D = DocumentState

# direction -> state -> the states it may change to. ``None``: the state a new row is born in.
# Ours: a refusal can come for any envelope, a resent one too (after a gap rewound the outbox),
# so REFUSED is reachable from every state; the peer's acknowledgement of every item may
# arrive before the answer to our last envelope, so ACKNOWLEDGED from every state too.
DOCUMENT_TRANSITIONS: Mapping[str, Mapping[DocumentState | None, frozenset[DocumentState]]] = {
    "out": {
        None: frozenset({_D.QUEUED}),
        _D.QUEUED: frozenset({_D.SENDING, _D.DELIVERED, _D.REFUSED, _D.ACKNOWLEDGED}),
        _D.SENDING: frozenset({_D.DELIVERED, _D.REFUSED, _D.ACKNOWLEDGED}),
        _D.DELIVERED: frozenset({_D.REFUSED, _D.ACKNOWLEDGED}),
        _D.REFUSED: frozenset({_D.REFUSED, _D.ACKNOWLEDGED}),
        _D.ACKNOWLEDGED: frozenset({_D.REFUSED}),
    },
    # Theirs: an acknowledgement of ours that changes statuses again keeps it acknowledged.
    "in": {
        None: frozenset({_D.RECEIVING}),
        _D.RECEIVING: frozenset({_D.RECEIVED}),
        _D.RECEIVED: frozenset({_D.ACKNOWLEDGED}),
        _D.ACKNOWLEDGED: frozenset({_D.ACKNOWLEDGED}),
    },
}

# A pending envelope is finished by the peer's decision; a gap rewinds finished ones (the
# store's ``rewind_outbox``) to be sent again.
OUTBOX_TRANSITIONS: Mapping[OutboxState | None, frozenset[OutboxState]] = {
    None: frozenset({OutboxState.PENDING}),
    OutboxState.PENDING: frozenset({OutboxState.DELIVERED, OutboxState.REFUSED}),
    OutboxState.DELIVERED: frozenset({OutboxState.PENDING}),
    OutboxState.REFUSED: frozenset({OutboxState.PENDING}),
}


# Ours are born queued, read sent from their envelope's first attempt and delivered from its
# delivery; a gap rewinds delivered envelopes (PROTOCOL.md §8.7), and one resent and
# delivered again reads delivered again. An answer counted in its own transaction delivers
# items still queued. Theirs are born received and stay so.
_T = ItemTransport
ITEM_TRANSPORT_TRANSITIONS: Mapping[ItemTransport | None, frozenset[ItemTransport]] = {
    None: frozenset({_T.QUEUED, _T.UNACKNOWLEDGED}),
    _T.QUEUED: frozenset({_T.SENT, _T.DELIVERED}),
    _T.SENT: frozenset({_T.DELIVERED}),
    _T.DELIVERED: frozenset({_T.DELIVERED}),
    _T.UNACKNOWLEDGED: frozenset(),
}


def check_document(direction: str, previous: str | None, new: DocumentState) -> None:
    """Raise ``TransitionRefused`` unless a document of ``direction`` may go from
    ``previous`` (a stored string, None for a new row) to ``new``."""
    table = DOCUMENT_TRANSITIONS.get(direction, {})
    try:
        known = None if previous is None else DocumentState(previous)
    except ValueError:
        raise TransitionRefused(f"a stored document state {previous!r} that no code writes"
                                ) from None
    if new not in table.get(known, frozenset()):
        raise TransitionRefused(f"a document ({direction}) in state {previous or 'none'} may "
                                f"not change to {new}")


def check_outbox(previous: OutboxState | None, new: OutboxState) -> None:
    if new not in OUTBOX_TRANSITIONS.get(previous, frozenset()):
        raise TransitionRefused(f"an outbox envelope in state {previous or 'none'} may not "
                                f"change to {new}")


def check_items(previous: frozenset[ItemTransport], new: ItemTransport) -> None:
    """Raise ``TransitionRefused`` unless items in any of ``previous`` may change to ``new``."""
    for state in previous:
        if new not in ITEM_TRANSPORT_TRANSITIONS.get(state, frozenset()):
            raise TransitionRefused(f"an item whose envelope is {state} may not "
                                    f"change to {new}")


def mark_items(store: Store, doc: int, first: int, n: int, new: ItemTransport, *,
               previous: frozenset[ItemTransport]) -> None:
    """Items ``first`` to ``first + n`` of ``doc``, which are in one of ``previous``, now
    ``new`` (a range's states are known from its envelope: nothing is read first)."""
    check_items(previous, new)
    store.set_transport(doc, first, n, new.value)


def new_state(direction: str) -> DocumentState:
    """The state a new document of ``direction`` is stored in (the table's ``None`` row)."""
    (born,) = DOCUMENT_TRANSITIONS[direction][None]
    return born


def move_document(store: Store, row: DocumentRow, new: DocumentState, now: int) -> None:
    """Change the stored state of ``row`` to ``new``, if its table allows it."""
    check_document(row.direction, row.state, new)
    store.set_document_state(row.rowid, new.value, now)


def finish_envelope(store: Store, peer: str, seq: int, new: OutboxState, receipt: bytes,
                    now: int, *, attempt: bool = False) -> None:
    """A pending envelope (``next_pending`` hands out no other) finished by the peer
    (``attempt``: the attempt that brought the receipt counted with it)."""
    check_outbox(OutboxState.PENDING, new)
    store.finish_outbox(peer, seq, new.value, receipt, now, attempt=attempt)


assert all(t <= set(ItemTransport) for t in ITEM_TRANSPORT_TRANSITIONS.values())
for _direction, _table in DOCUMENT_TRANSITIONS.items():
    assert all(t <= set(DocumentState) for t in _table.values())
