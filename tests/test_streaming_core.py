"""A streamed document (``bridge.core.streaming``) is byte for byte the document the
whole-document path signs and chunks from the same salt key, time and items: the same entries,
the same signed header and the same chunk payloads, for counts on, below and just past a chunk
boundary, and so is a streamed acknowledgement, counted at its start or only at its end; a
stream refuses more or fewer items than its
header announced."""

from __future__ import annotations

import pytest
from conftest import make_identity

from bridge.core import chunks, documents, merkle
from bridge.core.documents import AckItem, Item
from bridge.core.errors import InputError
from bridge.core.streaming import PROOF_BLOCK, AckStream, DocumentStream, inclusion_proof

T0 = 1_772_463_600_000
SALT_KEY = bytes(range(32))


def _items(count: int) -> list[Item]:
    return [Item(id=f"P-{n}", data={"kind": "person", "surname": f"S{n}", "n": n})
            for n in range(count)]


def _stream(count: int, chunk: int) -> DocumentStream:
    return DocumentStream(doc_type="manifest", doc_id="M-1", recipient="beta", created=T0,
                          meta={"batch": 1}, count=count, salt_key=SALT_KEY, chunk=chunk)


@pytest.mark.parametrize(("count", "chunk"), [(1, 4), (3, 4), (4, 4), (5, 4), (17, 4), (9, 1)])
def test_a_streamed_document_is_the_signed_document_byte_for_byte(count: int,
                                                                  chunk: int) -> None:
    alpha = make_identity("alpha")
    whole = documents.sign_document(alpha, doc_type="manifest", doc_id="M-1", recipient="beta",
                                    created=T0, meta={"batch": 1}, items=_items(count),
                                    salt_key=SALT_KEY)
    stream = _stream(count, chunk)
    items = _items(count)
    made = stream.add(items[:2]) + stream.add(items[2:])  # in two batches
    assert [leaf for leaf, _ in made] == list(whole.leaves)
    assert [lh for _, lh in made] == list(whole.tree.levels[0])
    signed = stream.finish(alpha)
    assert (signed.data, signed.signature) == (whole.signed.data, whole.signed.signature)
    payloads = [stream.chunk_payload(k, whole.leaves[k * chunk:(k + 1) * chunk])
                for k in range(stream.chunks)]
    assert payloads == [c.payload for c in chunks.split(whole, chunk)]


def test_a_stream_refuses_more_items_than_announced_naming_the_first_extra() -> None:
    stream = _stream(2, 4)
    with pytest.raises(InputError) as err:
        stream.add(_items(3))
    assert err.value.field == "items[2]"


def test_a_batch_of_records_past_the_announced_count_is_refused_naming_the_first_extra(
        ) -> None:
    stream = _stream(3, 4)
    stream.add_record_columns([(i.id, dict(i.data)) for i in _items(2)])
    with pytest.raises(InputError) as err:
        stream.add_record_columns([(i.id, dict(i.data)) for i in _items(4)[2:]])
    assert (err.value.field, stream.added) == ("items[3]", 2)


def test_a_stream_that_ends_short_of_its_count_signs_nothing() -> None:
    stream = _stream(3, 4)
    stream.add(_items(2))
    with pytest.raises(InputError, match="2 items, 3 announced"):
        stream.finish(make_identity("alpha"))


@pytest.mark.parametrize("count", [0, -1, 1_000_001, True])
def test_a_stream_header_with_no_sensible_count_is_refused(count: int) -> None:
    with pytest.raises(InputError) as err:
        _stream(count, 4)
    assert err.value.field == "count"


@pytest.mark.parametrize(("count", "chunk"), [(1, 4), (4, 4), (9, 4)])
def test_a_streamed_acknowledgement_is_the_signed_one_byte_for_byte(count: int,
                                                                    chunk: int) -> None:
    alpha, beta = make_identity("alpha"), make_identity("beta")
    doc = documents.sign_document(alpha, doc_type="manifest", doc_id="M-1", recipient="beta",
                                  created=T0, meta={}, items=_items(count), salt_key=SALT_KEY)
    lh = {f"P-{n}": doc.tree.levels[0][n] for n in range(count)}
    acks = [AckItem(id=f"P-{n}", status="RECEIVED", reason=None if n % 2 else "counted")
            for n in range(count)]
    whole = documents.sign_ack(beta, answers=doc.signed, ack_id="A-1", created=T0 + 1,
                               items=acks, declared_leaf_hashes=lh, salt_key=SALT_KEY)
    stream = AckStream(answers=doc.signed, ack_id="A-1", created=T0 + 1, count=count,
                       salt_key=SALT_KEY, chunk=chunk)
    leaves = stream.add((a, lh[a.id]) for a in acks[:1]) + stream.add(
        (a, lh[a.id]) for a in acks[1:])
    assert leaves == list(whole.leaves)
    signed = stream.finish(beta)
    assert (signed.data, signed.signature) == (whole.signed.data, whole.signed.signature)
    payloads = [stream.chunk_payload(k, whole.leaves[k * chunk:(k + 1) * chunk])
                for k in range(stream.chunks)]
    assert payloads == [c.payload for c in chunks.split(whole, chunk)]


@pytest.mark.parametrize(("count", "chunk", "batch"), [(1, 4, 1), (5, 4, 2), (9, 4, 3),
                                                    (70, 4, 33), (23, 1, 7)])
def test_an_acknowledgement_counted_only_at_its_end_is_the_signed_one_byte_for_byte(
        count: int, chunk: int, batch: int) -> None:
    """Its entries made as the statements come, its salts asked for a little at a time
    (grown past their first size and doubled again), its time given only when it is signed:
    the very entries, header, signature and chunks of ``sign_ack``, undeclared items too."""
    alpha, beta = make_identity("alpha"), make_identity("beta")
    doc = documents.sign_document(alpha, doc_type="manifest", doc_id="M-1", recipient="beta",
                                  created=T0, meta={}, items=_items(count), salt_key=SALT_KEY)
    lh = {f"P-{n}": doc.tree.levels[0][n] for n in range(count)}
    acks = [AckItem(id=f"P-{n}", status="DISPUTED", reason="tag", evidence=f"sheet {n}")
            if n % 3 else AckItem(id=f"P-{n}", status="RECEIVED") for n in range(count)]
    acks.append(AckItem(id="X-1", status="RECEIVED_UNDECLARED"))
    whole = documents.sign_ack(beta, answers=doc.signed, ack_id="A-1", created=T0 + 1,
                               items=acks, declared_leaf_hashes=lh, salt_key=SALT_KEY)
    stream = AckStream(answers=doc.signed, ack_id=None, created=None, count=None,
                       salt_key=SALT_KEY, chunk=chunk)
    leaves: list[bytes] = []
    for at in range(0, len(acks), batch):
        leaves += stream.add_statements([(a.id, lh.get(a.id), a.status, a.reason, a.evidence)
                                         for a in acks[at:at + batch]])
    assert leaves == list(whole.leaves)
    signed = stream.finish(beta, created=T0 + 1, ack_id="A-1")
    assert (signed.data, signed.signature) == (whole.signed.data, whole.signed.signature)
    assert stream.count == len(acks)
    payloads = [stream.chunk_payload(k, whole.leaves[k * chunk:(k + 1) * chunk])
                for k in range(stream.chunks)]
    assert payloads == [c.payload for c in chunks.split(whole, chunk)]


def test_an_acknowledgement_counted_at_its_end_without_entries_time_or_id_is_not_signed(
        ) -> None:
    alpha, beta = make_identity("alpha"), make_identity("beta")
    doc = documents.sign_document(alpha, doc_type="manifest", doc_id="M-1", recipient="beta",
                                  created=T0, meta={}, items=_items(1), salt_key=SALT_KEY)
    empty = AckStream(answers=doc.signed, ack_id="A-1", created=None, count=None,
                      salt_key=SALT_KEY, chunk=4)
    with pytest.raises(InputError, match="at least one item"):
        empty.finish(beta, created=T0 + 1)
    untimed = AckStream(answers=doc.signed, ack_id=None, created=None, count=None,
                        salt_key=SALT_KEY, chunk=4)
    untimed.add_statements([("P-0", doc.tree.levels[0][0], "RECEIVED", None, None)])
    with pytest.raises(ValueError, match="time and id"):
        untimed.finish(beta)


def test_an_inclusion_proof_from_streamed_leaf_hashes_is_the_trees_for_every_leaf() -> None:
    for size in range(1, 34):
        hashes = [merkle.leaf_hash(b"%d" % n) for n in range(size)]
        tree = merkle.MerkleTree.from_leaf_hashes(hashes)
        for index in range(size):
            assert inclusion_proof(index, size, iter(hashes)) == tree.inclusion_proof(index)
    with pytest.raises(ValueError, match="3 leaf hashes for a tree of 4"):
        inclusion_proof(0, 4, hashes[:3])


@pytest.mark.parametrize("size", [PROOF_BLOCK - 1, PROOF_BLOCK, PROOF_BLOCK + 1,
                                  3 * PROOF_BLOCK + 5])
def test_an_inclusion_proof_read_a_block_at_a_time_is_the_trees(size: int) -> None:
    """Runs that begin, end or lie inside a block of leaf hashes read at once, or span
    several: the proof is still the tree's, for leaves at both ends and around each block
    boundary."""
    hashes = [merkle.leaf_hash(b"%d" % n) for n in range(size)]
    tree = merkle.MerkleTree.from_leaf_hashes(hashes)
    around = {b + d for b in range(0, size, PROOF_BLOCK) for d in (-1, 0, 1)}
    for index in sorted({0, size - 1, size // 2} | {i for i in around if 0 <= i < size}):
        assert inclusion_proof(index, size, iter(hashes)) == tree.inclusion_proof(index)
    with pytest.raises(ValueError, match=f"{size + 1} leaf hashes for a tree of {size}"):
        inclusion_proof(0, size, [*hashes, hashes[0]])
