"""Tests for bridge.core.merkle against a reference written from the recursive RFC 9162
definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.errors import InputError, VerificationError
from bridge.core.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleTree,
    RootBuilder,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_inclusion,
)

# --- Reference: RFC 9162 §2.1.1 (MTH) and §2.1.3.1 (PATH), transcribed literally -------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over raw leaves."""
    n = len(d)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + d[0])
    k = _split(n)
    return _sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) over raw leaves."""
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_sides(m: int, n: int) -> list[str]:
    """For PATH(m, D[n]), on which side each sibling sits ("L"/"R"), bottom-up.

    This is the shape of the proof; two sizes with the same shape for m accept the same path.
    """
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_sides(m, k), "R"]
    return [*ref_sides(m - k, n - k), "L"]


def leaves_for(n: int) -> list[bytes]:
    # Distinct leaves, so any mix-up of positions changes a hash.
    return [b"leaf-%d" % i for i in range(n)]


def flip_bit(b: bytes, bit: int = 0) -> bytes:
    arr = bytearray(b)
    arr[bit // 8] ^= 1 << (bit % 8)
    return bytes(arr)


# Trees for sizes 1..70 built once; several tests walk them.
SIZES = range(1, 71)
TREES = {n: MerkleTree.from_leaves(leaves_for(n)) for n in SIZES}


# --- Primitives and known answers ---------------------------------------------------------


def test_hash_primitives_follow_rfc_prefixes() -> None:
    assert leaf_hash(b"abc") == _sha256(b"\x00abc")
    a, b = _sha256(b"a"), _sha256(b"b")
    assert node_hash(a, b) == _sha256(b"\x01" + a + b)
    assert HASH_SIZE == 32
    assert EMPTY_ROOT == _sha256(b"")


def test_known_answer_empty_leaf_and_empty_tree() -> None:
    assert MerkleTree.from_leaves([b""]).root == _sha256(b"\x00")
    assert MerkleTree.from_leaves([]).root == _sha256(b"")
    assert root_from_leaf_hashes([]) == _sha256(b"")
    assert _sha256(b"\x00").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


# Test vectors of the Certificate Transparency project (merkle tree tests of the reference
# implementations, RFC 6962 hashing, which RFC 9162 §2.1 keeps unchanged).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_certificate_transparency_vectors() -> None:
    for n, want in enumerate(CT_ROOTS):
        assert MerkleTree.from_leaves(CT_LEAVES[:n]).root.hex() == want, n
    tree = MerkleTree.from_leaves(CT_LEAVES)
    assert [p.hex() for p in tree.inclusion_proof(0)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


# --- Agreement with the reference ---------------------------------------------------------


def test_root_and_every_proof_match_reference_for_sizes_1_to_70() -> None:
    for n in SIZES:
        d = leaves_for(n)
        tree = TREES[n]
        root = ref_mth(d)
        assert tree.size == n
        assert tree.root == root, n
        assert root_from_leaf_hashes([leaf_hash(x) for x in d]) == root
        for m in range(n):
            path = tree.inclusion_proof(m)
            assert path == ref_path(m, d), (n, m)
            lh = leaf_hash(d[m])
            assert root_from_inclusion_proof(lh, m, n, path) == root
            assert verify_inclusion(lh, m, n, path, root)


def test_from_leaf_hashes_equals_from_leaves() -> None:
    d = leaves_for(37)
    assert MerkleTree.from_leaf_hashes([leaf_hash(x) for x in d]) == MerkleTree.from_leaves(d)


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=40), min_size=1, max_size=150),
    data=st.data(),
)
def test_random_leaves_match_reference(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.from_leaves(leaves)
    root = ref_mth(leaves)
    assert tree.root == root
    m = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1), label="index")
    path = tree.inclusion_proof(m)
    assert path == ref_path(m, leaves)
    assert verify_inclusion(leaf_hash(leaves[m]), m, len(leaves), path, root)


# --- Attacks: each must fail to verify -----------------------------------------------------


def _case(n: int, m: int) -> tuple[bytes, list[bytes], bytes]:
    tree = TREES[n]
    return leaf_hash(leaves_for(n)[m]), tree.inclusion_proof(m), tree.root


def test_attack_proof_for_another_index() -> None:
    for n in SIZES:
        root = TREES[n].root
        for m in range(n):
            lh = leaf_hash(leaves_for(n)[m])
            for j in {0, m - 1, m + 1, n - 1} - {m}:
                if not 0 <= j < n:
                    continue
                other = TREES[n].inclusion_proof(j)
                # The leaf at m with the path of j, claimed at either position.
                assert not verify_inclusion(lh, m, n, other, root), (n, m, j)
                assert not verify_inclusion(lh, j, n, other, root), (n, m, j)
                # The leaf at m with its own path, claimed at position j.
                assert not verify_inclusion(lh, j, n, TREES[n].inclusion_proof(m), root)


def test_attack_flipped_bit() -> None:
    for n in (2, 3, 5, 8, 13, 70):
        for m in range(n):
            lh, path, root = _case(n, m)
            for i in range(len(path)):
                for bit in (0, 255):
                    bad = [*path]
                    bad[i] = flip_bit(bad[i], bit)
                    assert not verify_inclusion(lh, m, n, bad, root), (n, m, i, bit)
            assert not verify_inclusion(flip_bit(lh), m, n, path, root)
            assert not verify_inclusion(lh, m, n, path, flip_bit(root, 100))


def test_attack_truncated_proof() -> None:
    for n in SIZES:
        for m in range(n):
            lh, path, root = _case(n, m)
            for bad in (path[:-1], path[1:]) if path else ():
                assert not verify_inclusion(lh, m, n, bad, root), (n, m)
                with pytest.raises(VerificationError) as exc:
                    root_from_inclusion_proof(lh, m, n, bad)
                assert exc.value.reason == "bad_proof"


def test_attack_extended_proof() -> None:
    for n in SIZES:
        for m in range(n):
            lh, path, root = _case(n, m)
            for extra in (root, bytes(HASH_SIZE), lh):
                for bad in ([*path, extra], [extra, *path]):
                    assert not verify_inclusion(lh, m, n, bad, root), (n, m)
                    with pytest.raises(VerificationError) as exc:
                        root_from_inclusion_proof(lh, m, n, bad)
                    assert exc.value.reason == "bad_proof"


def test_attack_wrong_tree_size() -> None:
    # The size is not bound by the proof by itself: when a claimed size gives leaf m an audit
    # path of the same shape (same sibling sides, bottom-up) as the real size, the same path
    # recomputes the same root. That only ever re-proves the true statement "this leaf is at m
    # under this root"; a wrong size is refused whenever it changes the shape. The check here
    # is exact: accepted iff the shapes from the recursive definition are equal. (This is why
    # size and root must both come from a signed tree head, RFC 9162 §4.10.)
    rejected = accepted = 0
    for n in SIZES:
        for m in range(n):
            lh, path, root = _case(n, m)
            for wrong in (n - 1, n + 1, 2 * n, n + 7):
                if wrong == n:
                    continue
                if wrong <= m:
                    assert not verify_inclusion(lh, m, wrong, path, root)
                    rejected += 1
                    continue
                same_shape = ref_sides(m, wrong) == ref_sides(m, n)
                assert verify_inclusion(lh, m, wrong, path, root) == same_shape, (n, m, wrong)
                rejected += not same_shape
                accepted += same_shape
    # Both outcomes occur, so the exact check above is exercising something on each side.
    assert rejected > 0
    assert accepted > 0


def test_attack_second_preimage_inner_node_as_leaf() -> None:
    # RFC 9162 §2.1.1 prefixes 0x00/0x01 so the two children of an inner node, presented as the
    # bytes of a leaf, do not hash to the inner node.
    d = leaves_for(4)
    tree = MerkleTree.from_leaves(d)
    la, lb, lc, ld = (leaf_hash(x) for x in d)
    n_ab, n_cd = node_hash(la, lb), node_hash(lc, ld)
    assert tree.root == node_hash(n_ab, n_cd)
    # The root's children as a one-leaf tree.
    assert not verify_inclusion(leaf_hash(n_ab + n_cd), 0, 1, [], tree.root)
    # An inner node's children as leaf 0 of a two-leaf tree, with the real sibling.
    assert not verify_inclusion(leaf_hash(la + lb), 0, 2, [n_cd], tree.root)
    assert not verify_inclusion(leaf_hash(lc + ld), 1, 2, [n_ab], tree.root)
    # A tree built from those forged leaves has a different root.
    assert MerkleTree.from_leaves([la + lb, lc + ld]).root != tree.root
    # And an inner node's hash is not the leaf hash of its children's concatenation.
    assert leaf_hash(la + lb) != n_ab


def test_attack_index_at_or_past_size() -> None:
    lh, path, root = _case(8, 7)
    for index, size in ((8, 8), (9, 8), (0, 0), (-1, 8)):
        assert not verify_inclusion(lh, index, size, path, root)
        with pytest.raises(VerificationError) as exc:
            root_from_inclusion_proof(lh, index, size, path)
        assert exc.value.reason == "bad_proof"


def test_malformed_hash_lengths_rejected() -> None:
    lh, path, root = _case(8, 3)
    for bad_path in ([path[0][:31], *path[1:]], [*path[:-1], path[-1] + b"\x00"]):
        with pytest.raises(VerificationError) as exc:
            root_from_inclusion_proof(lh, 3, 8, bad_path)
        assert exc.value.reason == "bad_proof"
        assert not verify_inclusion(lh, 3, 8, bad_path, root)
    with pytest.raises(VerificationError):
        root_from_inclusion_proof(lh[:16], 3, 8, path)
    with pytest.raises(InputError) as ierr:
        MerkleTree.from_leaf_hashes([lh, b"short"])
    assert ierr.value.field == "hashes[1]"


def test_inclusion_proof_index_out_of_range() -> None:
    for tree, index in ((TREES[5], 5), (TREES[5], -1), (MerkleTree.from_leaves([]), 0)):
        with pytest.raises(InputError) as exc:
            tree.inclusion_proof(index)
        assert exc.value.field == "index"


def test_a_tree_of_100000_leaves_proves_one_of_them() -> None:
    """A large, uneven tree (its speed is measured in bench/core.py, never here)."""
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(100_000)]
    tree = MerkleTree.from_leaf_hashes(hashes)
    assert tree.size == 100_000
    path = tree.inclusion_proof(77_777)
    assert len(path) == 17  # ceil(log2(100,000)): one hash a level
    assert verify_inclusion(hashes[77_777], 77_777, 100_000, path, tree.root)


def test_streamed_root_is_the_tree_root_for_every_size() -> None:
    """``RootBuilder`` (what the store check uses to stream a document of any size in
    O(log n) memory) gives the root of RFC 9162 §2.1.1 for every size, odd and even."""
    hashes = [leaf_hash(n.to_bytes(4, "big")) for n in range(130)]
    for size in range(len(hashes) + 1):
        builder = RootBuilder()
        for h in hashes[:size]:
            builder.add(h)
        assert builder.size == size
        assert builder.root() == MerkleTree.from_leaf_hashes(hashes[:size]).root, size


def test_streamed_root_fed_in_runs_of_any_length_is_the_tree_root() -> None:
    """``RootBuilder.extend`` hashes aligned complete subtrees at once: fed in runs of any
    length (1, 3, 64, 100, 1000 … leaves, starting anywhere), the root and size are those of
    one leaf at a time, for sizes that are and are not powers of two."""
    hashes = [leaf_hash(n.to_bytes(4, "big")) for n in range(2100)]
    for size in (1, 2, 3, 64, 65, 127, 1024, 1025, 2047, 2100):
        want = MerkleTree.from_leaf_hashes(hashes[:size]).root
        for run in (1, 3, 64, 100, 1000, 4096):
            builder = RootBuilder()
            for start in range(0, size, run):
                builder.extend(hashes[start:min(size, start + run)])
            assert (builder.size, builder.root()) == (size, want), (size, run)


@settings(max_examples=80, deadline=None)
@given(leaves=st.lists(st.binary(max_size=24), min_size=0, max_size=300))
def test_root_only_is_the_whole_trees_root_byte_for_byte(leaves: list[bytes]) -> None:
    """``root_from_leaf_hashes`` keeps no tree (only the level it hashes): for any size, odd,
    even, a power of two or not, empty, its root is the kept tree's and the RFC's."""
    hashes = [leaf_hash(x) for x in leaves]
    root = root_from_leaf_hashes(hashes)
    assert root == MerkleTree.from_leaf_hashes(hashes).root == ref_mth(leaves)


def test_root_only_refuses_a_hash_of_the_wrong_size_as_the_tree_does() -> None:
    """A 31-byte "hash" would hash fine into a root nobody can reproduce: refused, named."""
    good = leaf_hash(b"x")
    for bad in ([good, good[:31]], [good, "not bytes"]):
        with pytest.raises(InputError) as exc:
            root_from_leaf_hashes(bad)  # type: ignore[arg-type]
        assert exc.value.field == "hashes[1]"
