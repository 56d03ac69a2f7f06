"""A roster or manifest built from a stream of items, in memory that does not grow with it.

The whole-document path (``documents.sign_document`` then ``chunks.split``) holds every entry
and the whole Merkle tree. A streamed document keeps only what the signature and the chunks
need: the salt stream (16 bytes an item, derived as ``documents.leaf_salts`` derives it), the
open chunk's leaf hashes and one root per closed chunk. Chunks are aligned subtrees of the RFC
9162 tree (``chunks``), so the document's root is the root of the tree over the chunk roots,
and each chunk's proof is an inclusion proof in that tree: the bytes of every entry, the
signed header and every chunk payload are the very bytes the whole-document path makes from
the same salt key, time and items (``tests/test_streaming_core.py``).

The caller stores each entry as it is made and hands the entries back, a chunk at a time, to
``chunk_payload`` once ``finish`` has signed the header.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bridge.core import codec, merkle
from bridge.core.ack_runs import encode_ack_entries
from bridge.core.beside import Beside, Pending, Then, inline
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.declared_leaves import declared_records
from bridge.core.documents import (
    ACK,
    DOCUMENT_TYPES,
    SALT_SIZE,
    AckItem,
    DocumentHeader,
    Item,
    SignedHeader,
    check_meta_encodable,
    declared_record_leaf,
    encode_ack_entry,
    salt_stream,
    start_sign_header,
)
from bridge.core.entries import (
    AckStatement,
    check_record_size,
    encode_ack_statements,
)
from bridge.core.errors import InputError

MAX_STREAMED_ITEMS = 1_000_000  # as many as a JSON submission may hold (document.schema.json)


def declared_batch(first: int, count: int, salts: bytes,
                   records: Sequence[tuple[str, Mapping[str, Any]]]
                   ) -> tuple[list[bytes], list[bytes]]:
    """Entries ``first``, ``first + 1``, ... of a document of ``count`` items, made from (item
    id, record) pairs and their ``salts`` (SALT_SIZE bytes an entry, from the document's
    salt stream), with their leaf hashes; the first item past ``count`` is refused. Needs
    nothing of the stream it goes into (``DocumentStream.add_record_columns`` takes it in;
    ``bridge.engine.stream_batch`` makes it beside)."""
    announced = records[:max(0, count - first)]
    leaves = declared_records(first, [salts[at:at + SALT_SIZE] for at in range(
        0, SALT_SIZE * len(announced), SALT_SIZE)], announced)
    if len(leaves) < len(records):  # the items before it were good
        raise InputError(f"more than the {count} items announced", field=f"items[{count}]")
    return leaves, merkle.leaf_hashes(leaves)


class EntryStream:
    """Entries taken one at a time, in order, into chunks of ``chunk`` (a power of two);
    ``sign`` signs a header over the root of them all."""

    def __init__(self, *, count: int, salt_key: bytes, chunk: int) -> None:
        if chunk < 1 or chunk & (chunk - 1):
            raise ValueError("chunk size must be a power of two")
        self.count, self.chunk = count, chunk
        # One XOF call for the document, as documents.leaf_salts: the same salts, kept as one
        # bytes object (16 bytes an item) rather than a list of a million objects.
        self._salts = salt_stream(salt_key, SALT_SIZE * count)
        self.added = 0
        self._open: list[bytes] = []  # leaf hashes of the chunk being filled
        self.chunk_roots: list[bytes] = []
        self._upper: merkle.MerkleTree | None = None  # the tree over chunk roots, once signed
        self._signed_map: dict[str, Any] = {}

    def _salt(self, n: int) -> bytes:
        return self._salts[SALT_SIZE * n:SALT_SIZE * (n + 1)]

    def _salts_of(self, first: int, n: int) -> list[bytes]:
        """The salts of entries ``first`` to ``first + n - 1`` (slices, no call an entry)."""
        salts = self._salts
        return [salts[at:at + SALT_SIZE]
                for at in range(SALT_SIZE * first, SALT_SIZE * (first + n), SALT_SIZE)]

    def _take(self, leaf: bytes) -> bytes:
        """Entry number ``added``: its leaf hash, into the open chunk."""
        lh = merkle.leaf_hash(leaf)
        self._open.append(lh)
        if len(self._open) == self.chunk:
            self._close_chunk()
        self.added += 1
        return lh

    def _close_chunk(self) -> None:
        self.chunk_roots.append(merkle.root_from_leaf_hashes(self._open))
        self._open = []

    def _root(self) -> bytes:
        if self.added != self.count:
            raise InputError(f"{self.added} items, {self.count} announced", field="count")
        if self._open:
            self._close_chunk()
        self._upper = merkle.MerkleTree.from_leaf_hashes(self.chunk_roots)
        return self._upper.root

    def _signed(self, issuer: PrivateIdentity, header: DocumentHeader) -> SignedHeader:
        return self._start_signed(issuer, header, inline).result()

    def _start_signed(self, issuer: PrivateIdentity, header: DocumentHeader, beside: Beside
                      ) -> Pending[SignedHeader]:
        def kept(signed: SignedHeader) -> SignedHeader:
            self._signed_map = signed.to_map()
            return signed

        return Then(start_sign_header(issuer, header, beside), kept)

    def chunk_payload(self, k: int, entries: Sequence[bytes]) -> bytes:
        """Chunk ``k`` (entries ``[k C, k C + len)``) as ``chunks.split`` encodes it."""
        if self._upper is None:
            raise ValueError("the header is signed before any chunk is made")
        proof = self._upper.inclusion_proof(k) if self.count > self.chunk else []
        return codec.encode({"chunk": self.chunk, "doc": self._signed_map,
                             "entries": list(entries), "first": k * self.chunk,
                             "proof": proof})

    @property
    def chunks(self) -> int:
        return -(-self.count // self.chunk)

    def salt_bytes(self, first: int, n: int) -> bytes:
        """The salts of entries ``first`` to ``first + n - 1``, as one bytes value (what a
        batch's entries are made with elsewhere: ``declared_leaves.declared_records``)."""
        return self._salts[SALT_SIZE * first:SALT_SIZE * (first + n)]

    def _take_all(self, leaves: Sequence[bytes]) -> list[bytes]:
        """``_take`` of each of ``leaves``: their leaf hashes, a chunk closed as it fills."""
        hashes = merkle.leaf_hashes(leaves)
        self.take_leaf_hashes(hashes)
        return hashes

    def take_leaf_hashes(self, hashes: Sequence[bytes]) -> None:
        """The next entries, made elsewhere, by their leaf hashes (in order): into the open
        chunk, a chunk closed as it fills."""
        at = 0
        while at < len(hashes):
            room = self.chunk - len(self._open)
            self._open.extend(hashes[at:at + room])
            at += room
            if len(self._open) == self.chunk:
                self._close_chunk()
        self.added += len(hashes)


class DocumentStream(EntryStream):
    """A roster or manifest, a batch of items at a time; ``finish`` signs its header."""

    def __init__(self, *, doc_type: str, doc_id: str, recipient: str, created: int,
                 meta: Mapping[str, Any], count: int, salt_key: bytes, chunk: int) -> None:
        if doc_type not in DOCUMENT_TYPES:
            raise InputError(f"must be one of {', '.join(DOCUMENT_TYPES)}", field="type")
        if type(count) is not int or not 0 < count <= MAX_STREAMED_ITEMS:
            raise InputError(f"must be the number of items that follow, 1 to "
                             f"{MAX_STREAMED_ITEMS}", field="count")
        check_meta_encodable(meta)
        super().__init__(count=count, salt_key=salt_key, chunk=chunk)
        self.doc_type, self.doc_id, self.recipient = doc_type, doc_id, recipient
        self.created, self.meta = created, meta

    def add(self, items: Iterable[Item]) -> list[tuple[bytes, bytes]]:
        """(entry bytes, leaf hash) of each item, numbered from ``added`` on."""
        return [self._next(item.id, item.data) for item in items]

    def add_records(self, records: Sequence[tuple[str, Mapping[str, Any]]]
                    ) -> list[tuple[bytes, bytes]]:
        """``add`` of (item id, record) pairs, each checked as an ``Item`` is, without making
        one (an object per item is a tenth of a submission's time), each record walked once
        (``declared_leaves``)."""
        return list(zip(*self.add_record_columns(records), strict=True))

    def add_record_columns(self, records: Sequence[tuple[str, Mapping[str, Any]]]
                           ) -> tuple[list[bytes], list[bytes]]:
        """``add_records`` as two lists: the entries' bytes, their leaf hashes."""
        first = self.added
        leaves, hashes = declared_batch(first, self.count, self.salt_bytes(first, len(records)),
                                        records)
        self.take_leaf_hashes(hashes)
        return leaves, hashes

    def _next(self, item_id: str, data: Mapping[str, Any]) -> tuple[bytes, bytes]:
        n = self.added
        if n >= self.count:
            raise InputError(f"more than the {self.count} items announced",
                             field=f"items[{n}]")
        leaf = declared_record_leaf(n, self._salt(n), item_id, data)
        check_record_size(data, leaf, f"items[{n}].data")
        return leaf, self._take(leaf)

    def finish(self, issuer: PrivateIdentity) -> SignedHeader:
        root = self._root()
        return self._signed(issuer, DocumentHeader(
            type=self.doc_type, id=self.doc_id, issuer=issuer.party, issuer_key=issuer.key_id,
            recipient=self.recipient, created=self.created, count=self.count, root=root,
            meta=self.meta))


class AckStream(EntryStream):
    """An acknowledgement of ``answers`` (as ``documents.sign_ack`` makes one, without meta),
    its entries made a batch at a time: each item with the leaf hash of the declared entry it
    acknowledges (None for an item never declared; the caller has checked it, and each
    item's lifecycle).

    ``count`` None: as many entries as are added before ``finish`` (a streamed listed
    acknowledgement, whose length is known only at its end). An entry's bytes never name the
    count (PROTOCOL.md §6.6: index, salt, id, leaf, status, reason, evidence), its salt is
    entry n of one SHAKE256 output, whose first bytes do not depend on how many are asked
    for (FIPS 202 §6.2: an XOF), and its chunk's subtree is aligned (``chunks``): each entry
    and leaf hash is made as its statement arrives, the very bytes a counted stream makes.
    Only the header, signed at the end, says how many."""

    def __init__(self, *, answers: SignedHeader, ack_id: str | None, created: int | None,
                 count: int | None, salt_key: bytes, chunk: int) -> None:
        if count is not None and count < 1:
            raise InputError("an acknowledgement needs at least one item", field="items")
        super().__init__(count=count or 0, salt_key=salt_key, chunk=chunk)
        self.counted = count is not None
        self._salt_key = salt_key
        self.answers, self.ack_id, self.created = answers, ack_id, created

    def _room(self, n: int) -> None:
        """Room for ``n`` more entries: past the count, a ``ValueError``; uncounted, salts
        for them (SALT_SIZE bytes an entry, as ``EntryStream`` keeps them), grown by doubling
        so that the whole costs at most twice one XOF call."""
        if self.counted:
            if self.added + n > self.count:
                raise ValueError("more acknowledged items than counted")
            return
        need = SALT_SIZE * (self.added + n)
        if need > len(self._salts):
            self._salts = salt_stream(self._salt_key,
                                      max(need, 2 * len(self._salts), SALT_SIZE * self.chunk))

    def add(self, items: Iterable[tuple[AckItem, bytes | None]]) -> list[bytes]:
        out = []
        for item, declared in items:
            self._room(1)
            leaf = encode_ack_entry(self.added, self._salt(self.added), item, declared)
            self._take(leaf)
            out.append(leaf)
        return out

    def add_uniform(self, items: Sequence[tuple[str, bytes]], status: str,
                    reason: str | None) -> list[bytes]:
        """``add`` of (item id, declared leaf hash) pairs that all take one status and reason
        (an acknowledgement of all items): the same entries, made in one pass."""
        first = self.added
        self._room(len(items))
        salts = self._salts_of(first, len(items))
        leaves = encode_ack_entries(first, salts, items, status, reason)
        self._take_all(leaves)
        return leaves

    def add_statements(self, rows: Sequence[AckStatement]) -> list[bytes]:
        """``add`` of (item id, declared leaf hash, status, reason, evidence) rows, each
        checked as an ``AckItem`` is, without making one: the same entries."""
        first = self.added
        self._room(len(rows))
        salts = self._salts_of(first, len(rows))
        leaves = encode_ack_statements(first, salts, rows)
        self._take_all(leaves)
        return leaves

    def finish(self, issuer: PrivateIdentity, *, created: int | None = None,
               ack_id: str | None = None) -> SignedHeader:
        """The header over every entry added, with the time ``created`` and the id ``ack_id``
        if the stream was begun without them (no entry names either: they can come last)."""
        return self.start_finish(issuer, inline, created=created, ack_id=ack_id).result()

    def start_finish(self, issuer: PrivateIdentity, beside: Beside, *,
                     created: int | None = None, ack_id: str | None = None
                     ) -> Pending[SignedHeader]:
        """``finish``, the slow half of the signature made ``beside``; no chunk is made
        before its result is taken."""
        if not self.counted:
            if self.added < 1:
                raise InputError("an acknowledgement needs at least one item", field="items")
            self.count, self.counted, self._salts = self.added, True, b""
        self.created = created if created is not None else self.created
        self.ack_id = ack_id if ack_id is not None else self.ack_id
        if self.created is None or self.ack_id is None:
            raise ValueError("an acknowledgement's time and id are given when it is begun or "
                             "finished")
        root = self._root()
        return self._start_signed(issuer, DocumentHeader(
            type=ACK, id=self.ack_id, issuer=issuer.party, issuer_key=issuer.key_id,
            recipient=self.answers.header.issuer, created=self.created, count=self.count,
            root=root, meta={}, answers=self.answers.digest,
            answers_id=self.answers.header.id), beside)


def _path_ranges(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots are PATH(m, D[lo:hi]) (RFC 9162 §2.1.3.1), leaf upwards."""
    if hi - lo <= 1:
        return []
    k = 1 << ((hi - lo - 1).bit_length() - 1)  # the largest power of two below hi - lo
    if m - lo < k:
        return [*_path_ranges(m, lo, lo + k), (lo + k, hi)]
    return [*_path_ranges(m, lo + k, hi), (lo, lo + k)]


PROOF_BLOCK = 1024  # leaf hashes read and hashed at once by ``inclusion_proof``


def inclusion_proof(index: int, size: int, leaf_hashes: Iterable[bytes]) -> list[bytes]:
    """PATH(index, D[size]) from the leaf hashes given in order, in O(log size) memory: each
    sibling is the root of a run of leaves, and the runs do not overlap, so one pass feeds
    each leaf to the one run (if any) it belongs to, a block of ``PROOF_BLOCK`` at a time.
    The same list as ``merkle.MerkleTree.inclusion_proof`` without holding the tree."""
    if not 0 <= index < size:
        raise ValueError("index outside the tree")
    ranges = _path_ranges(index, 0, size)
    builders = [merkle.RootBuilder() for _ in ranges]
    stream, seen = iter(leaf_hashes), 0
    while block := list(itertools.islice(stream, PROOF_BLOCK)):
        end = seen + len(block)
        for (lo, hi), builder in zip(ranges, builders, strict=True):
            if lo < end and seen < hi:  # the part of the run in this block
                builder.extend(block[max(lo, seen) - seen:min(hi, end) - seen])
        seen = end
    if seen != size:
        raise ValueError(f"{seen} leaf hashes for a tree of {size}")
    return [b.root() for b in builders]


__all__ = ["MAX_STREAMED_ITEMS", "AckStream", "DocumentStream", "EntryStream", "declared_batch",
           "inclusion_proof"]
