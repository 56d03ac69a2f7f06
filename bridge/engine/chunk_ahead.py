"""A received chunk's pure work, done ahead of its turn on the database thread.

Taking a chunk in is two kinds of work. Most of it needs nothing but the payload's bytes: the
payload decoded, its entries' leaf hashes and the Merkle proof checked against the signed
root (``chunks.parse``), and each entry decoded and checked (``declared_columns`` for a
document's entries, ``ack_columns`` for an acknowledgement's). The rest needs the store, in
sequence order: the inbox row, the items, the statuses. ``prepare_chunk`` is the first kind,
a pure function of the payload, so that it can run in a process beside the daemon while the
database thread stores the chunk before it (``bridge.daemon.checkers``), and the database
thread does only the second kind.

Nothing here decides anything. The database thread opens the envelope itself, as it always
does, and takes a ``PreparedChunk`` only for the very payload it opened (``Ahead.for_payload``,
a byte comparison): what was prepared is what ``prepare_chunk`` of that payload gives, so the
store gets the same rows as without it. Anything the preparation refuses gives None, and the
database thread's own steps find and name the fault exactly as before.

Kept lean (no asyncio, no store, no HTTP) so that a process beside the daemon imports little.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core import chunks, documents
from bridge.core.ack_runs import AckColumns, ack_columns
from bridge.core.entry_runs import declared_columns
from bridge.core.errors import BridgeError
from bridge.store.entry_fields import records_fields

DeclaredColumns = tuple[list[str], list[str | None], list[str | None]]
"""A chunk of a document's declared entries as the item rows' columns of its own: (item ids,
categories, roster records), in entry order (the latter two None for all but a manifest)."""


@dataclass(frozen=True, kw_only=True)
class PreparedChunk:
    """A chunk parsed and checked against its root, and its entries' columns when they were
    made beside the database thread (else None: ``Intake`` makes them)."""

    chunk: chunks.ReceivedChunk
    declared: DeclaredColumns | None = None
    acked: AckColumns | None = None


def parse_chunk(payload: bytes) -> PreparedChunk:
    """The database thread's own parse of a chunk payload (``PeerError`` if it is bad): its
    entries' columns are made when it is stored."""
    return PreparedChunk(chunk=chunks.parse(payload, chunks.PAYLOAD_LIMITS))


def declared_of(chunk: chunks.ReceivedChunk) -> DeclaredColumns:
    """The item rows' own columns of a chunk of declared entries, each entry checked (its
    canonical form and its record JSON data, PROTOCOL.md §6.4); else ``VerificationError``
    naming the first bad entry."""
    ids, records = declared_columns(chunk.entries, chunk.first)
    if chunk.signed.header.type == "manifest":
        categories, roster_records = records_fields(records)
    else:
        categories, roster_records = [None] * len(ids), [None] * len(ids)
    return ids, categories, roster_records


def prepare_chunk(payload: bytes) -> PreparedChunk | None:
    """All of a chunk's pure work: parsed, checked against its root, and its entries' columns
    made and checked; None if any of it refuses the chunk (the database thread's own steps
    then name the fault). Run beside the daemon, on bytes alone."""
    try:
        prepared = parse_chunk(payload)
        chunk = prepared.chunk
        if chunk.signed.header.type == documents.ACK:
            return PreparedChunk(chunk=chunk, acked=ack_columns(chunk.entries, chunk.first))
        return PreparedChunk(chunk=chunk, declared=declared_of(chunk))
    except BridgeError:
        return None


@dataclass(frozen=True, kw_only=True)
class Ahead:
    """What was prepared ahead of an envelope's turn, and the payload it was prepared from."""

    payload: bytes
    prepared: PreparedChunk

    def for_payload(self, payload: bytes) -> PreparedChunk | None:
        """The prepared chunk if it was made from exactly ``payload`` (what the database thread
        opened), else None: work on any other bytes is never taken for this envelope's."""
        return self.prepared if payload == self.payload else None


__all__ = ["Ahead", "DeclaredColumns", "PreparedChunk", "declared_of", "parse_chunk",
           "prepare_chunk"]
