"""Proofs of an append-only log read through its complete subtrees (bridge.core.logtree),
against RFC 9162 §2.1.4's recursive definition transcribed here and the Certificate
Transparency test vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_merkle import _split, ref_mth

from bridge.core import logtree
from bridge.core.errors import VerificationError
from bridge.core.merkle import MerkleTree, leaf_hash, node_hash


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1, literally."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


# RFC 6962 / CT test data: the 8 leaves and the proofs between some of their sizes.
CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
             bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
CT_PROOFS = {
    (1, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}


def test_consistency_proofs_equal_the_certificate_transparency_vectors() -> None:
    tree = MerkleTree.from_leaves(CT_LEAVES)
    for (m, n), want in CT_PROOFS.items():
        proof = logtree.consistency_proof(tree.node, m, n)
        assert [h.hex() for h in proof] == want
        old = MerkleTree.from_leaves(CT_LEAVES[:m]).root
        logtree.verify_consistency(m, n, proof, old, logtree.tree_root(tree.node, n))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.data())
def test_proofs_at_any_size_equal_the_recursive_definitions(n: int, data: st.DataObject) -> None:
    leaves = [i.to_bytes(2, "big") for i in range(n)]
    tree = MerkleTree.from_leaves(leaves)
    m = data.draw(st.integers(1, n))
    i = data.draw(st.integers(0, m - 1))
    assert logtree.tree_root(tree.node, m) == ref_mth(leaves[:m])
    assert logtree.consistency_proof(tree.node, m, n) == (
        ref_subproof(m, leaves, True) if m < n else [])
    assert logtree.inclusion_proof(tree.node, i, m) == MerkleTree.from_leaves(
        leaves[:m]).inclusion_proof(i)
    logtree.verify_consistency(m, n, logtree.consistency_proof(tree.node, m, n),
                               ref_mth(leaves[:m]), ref_mth(leaves))


def test_a_forked_log_fails_consistency_with_what_was_witnessed() -> None:
    leaves = [bytes([i]) for i in range(11)]
    witnessed = MerkleTree.from_leaves(leaves[:6]).root
    forked = MerkleTree.from_leaves([*leaves[:4], b"rewritten", *leaves[5:]])
    proof = logtree.consistency_proof(forked.node, 6, 11)
    with pytest.raises(VerificationError) as err:
        logtree.verify_consistency(6, 11, proof, witnessed, forked.root)
    assert err.value.reason == "bad_proof"


@pytest.mark.parametrize("mangle", ["drop", "extra", "flip", "swap_roots", "equal_sizes"])
def test_a_mangled_consistency_proof_is_refused(mangle: str) -> None:
    tree = MerkleTree.from_leaves([bytes([i]) for i in range(13)])
    old, new = MerkleTree.from_leaves([bytes([i]) for i in range(5)]).root, tree.root
    proof = logtree.consistency_proof(tree.node, 5, 13)
    m, n = 5, 13
    if mangle == "drop":
        proof = proof[:-1]
    elif mangle == "extra":
        proof = [*proof, bytes(32)]
    elif mangle == "flip":
        proof[1] = bytes([proof[1][0] ^ 1]) + proof[1][1:]
    elif mangle == "swap_roots":
        old, new = new, old
    else:
        m, n = 13, 13
    with pytest.raises(VerificationError):
        logtree.verify_consistency(m, n, proof, old, new)


def test_stored_subtrees_are_what_each_append_completes() -> None:
    # Writing levels_to_store's subtrees as the log grows gives every node proofs read.
    nodes: dict[tuple[int, int], bytes] = {}
    for size in range(1, 40):
        for level, index in logtree.levels_to_store(size):
            nodes[(level, index)] = (leaf_hash(bytes([index])) if level == 0 else node_hash(
                nodes[(level - 1, 2 * index)], nodes[(level - 1, 2 * index + 1)]))
        tree = MerkleTree.from_leaves([bytes([i]) for i in range(size)])
        assert logtree.tree_root(lambda lv, ix: nodes[(lv, ix)], size) == tree.root
    assert len(nodes) == 2 * 39 - bin(39).count("1")
