"""A peer signs (bypassing its own checks) a document that declares one item id twice, in
one chunk or in two: the receiver refuses its content (``duplicate_item``, PROTOCOL.md §8.1)
with a signed refusal and an alarm, stores none of its items, and the link goes on (the next
document is taken). Before, the store's unique index raised out of ``receive`` and the
envelope was never answered. In the in-process harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, hostile, open_pair, person, wire

from bridge.core import codec, documents, merkle
from bridge.core.crypto.identity import PrivateIdentity


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta, chunk_items=4) as harness:
        yield harness


def _declaring_twice(h: Harness, n: int, repeated: int, of: int) -> documents.SignedDocument:
    """Beta's manifest of ``n`` items whose entry ``repeated`` carries the id of entry
    ``of``, re-rooted and signed again by beta."""
    beta = h.beta.identity
    doc = documents.sign_document(
        beta, doc_type="manifest", doc_id="M-TWICE", recipient="alpha", created=h.clock(),
        meta={}, items=[documents.Item(id=f"P-{k:05d}", data={"surname": f"Testname{k}"})
                        for k in range(n)], salt_key=bytes(32))
    leaves = list(doc.leaves)
    entry = codec.decode(leaves[repeated], codec.SMALL_LIMITS)
    entry["id"] = f"P-{of:05d}"
    leaves[repeated] = codec.encode(entry)
    forged = documents.SignedDocument(signed=doc.signed, leaves=tuple(leaves))
    return hostile.resigned_header(beta, forged, root=merkle.MerkleTree.from_leaves(leaves).root)


@pytest.mark.parametrize(("n", "repeated", "of", "named", "kept"), [
    (3, 2, 0, "item P-00000 is declared twice", 0),
    (6, 5, 1, "entries 4 to 5 is declared by an earlier entry", 4),
], ids=["in-one-chunk", "in-another-chunk"])
def test_document_declaring_an_item_id_twice_is_refused_and_the_link_goes_on(
        h: Harness, n: int, repeated: int, of: int, named: str, kept: int) -> None:
    for payload in hostile.chunk_payloads(_declaring_twice(h, n, repeated, of), 4):
        wire.enqueue_raw(h.beta.engine, "chunk", payload)
    trips = h.courier.settle()
    assert [t.answer.outcome for t in trips if t.answer is not None][-1] == "refused"
    (refusal,) = wire.refusals(h.alpha.engine)
    assert (refusal["reason"], refusal["alarm"]) == ("duplicate_item", 1)
    assert named in refusal["detail"]
    # The refused chunk's items are not stored (an earlier chunk's are, as taken).
    assert wire.sql(h.alpha.engine).execute(
        "SELECT COUNT(*) FROM items i JOIN documents d ON d.rowid = i.doc "
        "WHERE d.id = 'M-TWICE'").fetchone()[0] == kept
    wire.submit(h.beta.engine, "roster", "alpha", [person(1)], doc_id="R-AFTER")
    h.courier.settle()
    assert wire.document(h.alpha.engine, "R-AFTER", "in")["state"] == "received"
