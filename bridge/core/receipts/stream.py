"""The whole-document receipt (PROTOCOL.md §7.2) made a piece at a time, in bounded memory:
the very bytes ``build_document_receipt`` (and ``with_witnessed``) make from the documents
held whole, from entries read as they are sent. Each document is checked as it streams, by
the steps of the verifier (§7.4) that need no more than a frontier: its header's signature
(and an acknowledgement's answer and parties) before anything is sent, then each entry at its
position, and at the end of its entries their count and Merkle root against the signed ones
(RFC 9162 §2.1); an acknowledgement's entries name the declared entry the store files them
under. A receipt whose check fails stops there with ``VerificationError``: its reader never
gets a whole file that does not verify.

What it does not hold, and so does not check here, is every item id of a million at once: an
item declared twice, or acknowledged twice by one acknowledgement (steps 5 and 11), or a status
change the rules forbid. Intake refused all of these, the store's ids are unique by index, and
the store check ties each id to its signed bytes; ``bridge verify`` checks them all.

How the bytes are made: the bundle is encoded canonically with a placeholder in place of each
entries array (a map's key order does not depend on its values), and at each placeholder the
array's header and its entries are sent instead; an array's encoding is its header and its
elements' encodings, one after the other.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgpack

from bridge.core import codec, merkle
from bridge.core.crypto.hashes import sha256
from bridge.core.crypto.identity import Keyring
from bridge.core.documents import ACK, SignedHeader
from bridge.core.errors import InputError, VerificationError
from bridge.core.receipts.bundle import DOCUMENT_RECEIPT, RECEIPT_VERSION
from bridge.core.receipts.steps import Checks, check_ack_header, check_signature, fail

AckEntries = Iterable[tuple[bytes, bytes | None]]
"""An acknowledgement's entries, each with the leaf hash of the declared entry the store files
it under (None: an undeclared item)."""


def stream_document_receipt(document: SignedHeader, entries: Iterable[bytes],
                            acks: Sequence[tuple[SignedHeader, AckEntries]], keys: Keyring, *,
                            witnessed: list[dict[str, Any]] | None = None) -> Iterator[bytes]:
    """The whole-document receipt of ``document`` (its ``entries`` in index order) and its
    ``acks`` (oldest first), in pieces; raises ``InputError`` before the first piece for what
    the builder refuses, ``VerificationError`` (before or between pieces) for what would not
    verify."""
    ordered = _in_order(document, [a for a, _ in acks])
    by_id = {id(a): e for a, e in acks}
    check_signature(document, keys)
    for k, ack in enumerate(ordered, 1):
        check_ack_header(ack.to_map(), document, keys, Checks(), f"acknowledgement {k}")
    parts: list[Iterator[bytes]] = [_declared(document, entries)]
    parts += [_acknowledged(ack, by_id[id(ack)]) for ack in ordered]
    tokens = [_token(document, n) for n in range(len(parts))]
    skeleton: dict[str, Any] = {
        "v": RECEIPT_VERSION, "type": DOCUMENT_RECEIPT,
        "document": {"doc": document.to_map(), "entries": tokens[0]},
        "acks": [{"doc": a.to_map(), "entries": t} for a, t in zip(ordered, tokens[1:],
                                                                   strict=True)]}
    if witnessed:
        skeleton["witnessed"] = witnessed
    yield from spliced(codec.encode(skeleton), tokens, parts)


def _in_order(document: SignedHeader, acks: Sequence[SignedHeader]) -> list[SignedHeader]:
    """What ``build_document_receipt`` refuses, refused alike: no acknowledgement, one of
    another document, two at the same time (a verifier needs a strict order)."""
    if not acks:
        raise InputError("a receipt needs at least one acknowledgement", field="acks")
    for n, ack in enumerate(acks):
        if ack.header.type != ACK or ack.header.answers != document.digest:
            raise InputError(f"does not acknowledge {document.header.id}", field=f"acks[{n}]")
    ordered = sorted(acks, key=lambda a: a.header.created)
    for a, b in itertools.pairwise(ordered):
        if a.header.created == b.header.created:
            raise InputError(f"acks {a.header.id} and {b.header.id} have the same creation "
                             "time; a receipt needs a strict order", field="acks")
    return ordered


def spliced(skeleton: bytes, tokens: list[bytes], parts: list[Iterator[bytes]]
             ) -> Iterator[bytes]:
    """``skeleton`` with each token's encoding replaced by its part, in the order they are
    found in it."""
    found = []
    for token, part in zip(tokens, parts, strict=True):
        marker = codec.encode(token)
        at = skeleton.find(marker)
        if at < 0 or skeleton.find(marker, at + 1) >= 0:  # cannot happen: 32 hashed bytes
            raise VerificationError("a receipt placeholder is not where it must be",
                                    reason="bad_bundle")
        found.append((at, len(marker), part))
    start = 0
    for at, size, part in sorted(found, key=lambda f: f[0]):
        yield skeleton[start:at]
        yield from part
        start = at + size
    yield skeleton[start:]


def _token(document: SignedHeader, n: int) -> bytes:
    return sha256(b"bridge receipt placeholder\x00" + document.data + n.to_bytes(4, "big"))


def _declared(doc: SignedHeader, entries: Iterable[bytes]) -> Iterator[bytes]:
    """Steps 4 and 5 as the entries stream: each decodes at its position; their count and
    root are the signed ones."""
    builder = merkle.RootBuilder()
    pack = msgpack.Packer(use_bin_type=True)
    yield pack.pack_array_header(doc.header.count)
    for n, leaf in enumerate(entries):
        _within(doc, n)
        _entry(leaf, n, doc)
        builder.add(merkle.leaf_hash(leaf))
        yield pack.pack(leaf)
    _tree_holds(doc, builder, doc.header.type)


def _acknowledged(ack: SignedHeader, entries: AckEntries) -> Iterator[bytes]:
    """Steps 10 and 11 as the entries stream (an entry naming a declared entry names the
    one the store files it under)."""
    builder = merkle.RootBuilder()
    pack = msgpack.Packer(use_bin_type=True)
    yield pack.pack_array_header(ack.header.count)
    for n, (leaf, declared) in enumerate(entries):
        _within(ack, n)
        entry = _entry(leaf, n, ack)
        if declared is not None and entry.get("leaf") != declared:
            raise fail(f"acknowledgement {ack.header.id} acknowledges another entry of item "
                       f"{entry.get('id')}", "wrong_leaf")
        builder.add(merkle.leaf_hash(leaf))
        yield pack.pack(leaf)
    _tree_holds(ack, builder, ACK)


def _entry(leaf: bytes, n: int, doc: SignedHeader) -> dict[str, Any]:
    """An entry's map, at its position and naming an item. Read with msgpack alone, not
    every rule of §2.4 again: these are the stored bytes intake decoded with every check,
    and the Merkle root at the end says they are the signed ones."""
    try:
        value = msgpack.unpackb(leaf, raw=False, strict_map_key=True)
    except Exception as exc:  # damaged bytes: whatever msgpack makes of them
        raise fail(f"entry {n} of {doc.header.id} cannot be read", "bad_entry") from exc
    if not isinstance(value, dict) or value.get("i") != n or not isinstance(value.get("id"),
                                                                            str):
        raise fail(f"entry {n} of {doc.header.id} is not an entry at its position",
                   "bad_entry")
    return value


def _within(doc: SignedHeader, n: int) -> None:
    if n >= doc.header.count:
        raise fail(f"{doc.header.id} declares {doc.header.count} entries but more are present",
                   "count_mismatch")


def _tree_holds(doc: SignedHeader, builder: merkle.RootBuilder, what: str) -> None:
    if builder.size != doc.header.count:
        raise fail(f"{what} {doc.header.id} declares {doc.header.count} entries but "
                   f"{builder.size} are present", "count_mismatch")
    if not hmac.compare_digest(builder.root(), doc.header.root):
        raise fail(f"the entries of {what} {doc.header.id} do not hash to its signed root",
                   "root_mismatch")


__all__ = ["AckEntries", "spliced", "stream_document_receipt"]
