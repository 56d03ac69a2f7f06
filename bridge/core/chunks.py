"""Large documents travel in chunks, and every chunk is checked on arrival.

A chunk carries the signed document header, a run of consecutive entries, and a Merkle proof
that the run belongs under the header's root. Chunks are aligned on a power of two ``C``
(entries ``[k C, (k + 1) C)``), so each run is exactly one subtree of the RFC 9162 tree: the
level-log2(C) nodes of the tree are the chunk roots, and the tree built over those nodes has the
same root (RFC 9162 §2.1.1: the left-balanced split puts every aligned power-of-two run in one
subtree, and a shorter last run forms the rightmost subtree). The proof is then an ordinary
RFC 9162 §2.1.3 inclusion proof of chunk ``k`` in a tree of ``ceil(count / C)`` chunk roots.

Payload (canonical map): ``{"chunk": C, "doc": signed header, "entries": [bin], "first": kC,
"proof": [bin32]}``. A receiver can therefore refuse a bad chunk at once, with a signed reason,
instead of discovering a mismatch only after the last chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.core import codec, merkle
from bridge.core.documents import SignedDocument, SignedHeader
from bridge.core.errors import VerificationError

MAX_CHUNK = 1 << 20
# A chunk of declared entries needs about one byte of objects per byte (a bin and its slot
# per entry of 40 bytes or more): twice that refuses a hostile one at half the memory of
# the default (PROTOCOL.md §2.4). What a peer's envelope and its chunk are decoded with.
PAYLOAD_LIMITS = codec.Limits(max_bytes=256 * 1024 * 1024, max_items=1 << 20, max_expansion=2)


def chunk_size(requested: int) -> int:
    """The largest power of two not above ``requested`` (at least 1)."""
    size = 1
    while size * 2 <= min(requested, MAX_CHUNK):
        size *= 2
    return size


@dataclass(frozen=True, kw_only=True)
class Chunk:
    first: int
    entries: tuple[bytes, ...] = field(repr=False)
    payload: bytes = field(repr=False)


def split(doc: SignedDocument, size: int) -> list[Chunk]:
    """Encode ``doc`` as chunk payloads of ``size`` (a power of two) entries."""
    if size < 1 or size & (size - 1):
        raise ValueError("chunk size must be a power of two")
    count = len(doc.leaves)
    level = size.bit_length() - 1
    tree = doc.tree
    # Chunk roots are the level-``level`` nodes; a tree over them has the same upper levels.
    upper = merkle.MerkleTree(tree.levels[level:]) if level < len(tree.levels) else None
    chunks = []
    signed = doc.signed.to_map()
    for k, first in enumerate(range(0, count, size)):
        entries = doc.leaves[first : first + size]
        proof = upper.inclusion_proof(k) if upper is not None and count > size else []
        payload = codec.encode({"chunk": size, "doc": signed, "entries": list(entries),
                                "first": first, "proof": proof})
        chunks.append(Chunk(first=first, entries=tuple(entries), payload=payload))
    return chunks


@dataclass(frozen=True, kw_only=True)
class ReceivedChunk:
    signed: SignedHeader
    first: int
    entries: list[bytes] = field(repr=False)
    leaf_hashes: list[bytes] = field(repr=False)


def parse(payload: bytes, limits: codec.Limits = codec.DEFAULT_LIMITS) -> ReceivedChunk:
    """Decode a chunk and check its entries against the header's root (not the signature:
    the caller checks that against the keys it trusts)."""
    value = codec.decode(payload, limits)
    if (not isinstance(value, dict) or set(value) != {"chunk", "doc", "entries", "first", "proof"}
            or not isinstance(value["entries"], list) or not isinstance(value["proof"], list)):
        raise VerificationError("not a document chunk", reason="bad_chunk")
    signed = SignedHeader.parse(value["doc"])
    size, first, entries = value["chunk"], value["first"], value["entries"]
    count = signed.header.count
    # type() checks: msgpack true is not the integer 1 (PROTOCOL.md §2.1).
    if (type(size) is not int or size < 1 or size > MAX_CHUNK or size & (size - 1)
            or type(first) is not int or first < 0 or first % size or first >= count):
        raise VerificationError("chunk size or position invalid", reason="bad_chunk")
    if len(entries) != min(size, count - first) or not set(map(type, entries)) <= {bytes}:
        raise VerificationError("chunk holds the wrong number of entries", reason="bad_chunk")
    leaf_hashes = merkle.leaf_hashes(entries)
    chunk_root = merkle.root_from_leaf_hashes(leaf_hashes)
    n_chunks = -(-count // size)
    if n_chunks == 1:
        ok = not value["proof"] and chunk_root == signed.header.root
    else:
        ok = merkle.verify_inclusion(chunk_root, first // size, n_chunks, value["proof"],
                                     signed.header.root)
    if not ok:
        raise VerificationError("chunk entries do not match the signed root",
                                reason="root_mismatch")
    return ReceivedChunk(signed=signed, first=first, entries=entries, leaf_hashes=leaf_hashes)
