"""An append-only log as an RFC 9162 Merkle tree, read through its complete subtrees.

A log that only grows never changes a *complete* subtree once written: the subtree of
``2**level`` leaves starting at leaf ``index * 2**level`` has one hash forever. Those are the
only hashes a store needs to keep (fewer than two per leaf), and every root, inclusion proof
and consistency proof at *any* size ``n`` is made of them, because the recursive definitions
of RFC 9162 §2.1 split ``D[lo:hi]`` at ``lo + k`` with ``k`` the largest power of two below
``hi - lo``: the left part is always one complete, aligned subtree, and the ragged right part
splits the same way again. So each function here takes ``node(level, index)``, the hash of one
complete subtree, and costs O(log n) lookups (O(log² n) for a ragged range).

:func:`verify_consistency` is the verifier of RFC 9162 §2.1.4.2, step by step.

Pure: the store passes ``node``; :class:`bridge.core.merkle.MerkleTree` has one too.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from bridge.core.crypto.hashes import new_sha256
from bridge.core.errors import InputError, VerificationError
from bridge.core.merkle import EMPTY_ROOT, HASH_SIZE, node_hash

NodeFn = Callable[[int, int], bytes]
"""``node(level, index)``: the root of the complete subtree of ``2**level`` leaves that starts
at leaf ``index << level``."""

MAX_PROOF_HASHES = 63
"""A proof in a tree of fewer than 2**63 leaves has at most 63 hashes (tlog-witness caps the
consistency proof lines at 63 too)."""

__all__ = ["MAX_PROOF_HASHES", "NodeFn", "consistency_proof", "inclusion_proof",
           "levels_to_store", "range_root", "tree_root", "verify_consistency"]


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1), as in RFC 9162 §2.1.1."""
    return 1 << ((n - 1).bit_length() - 1)


def range_root(node: NodeFn, lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for a range that the recursive split can reach (``lo`` a multiple of the
    largest power of two not above ``hi - lo``, as every range below is)."""
    n = hi - lo
    if n <= 0:
        raise InputError(f"empty range {lo}:{hi}", field="size")
    if n & (n - 1) == 0:  # a power of two: one complete subtree
        level = n.bit_length() - 1
        return node(level, lo >> level)
    k = _split(n)
    return node_hash(range_root(node, lo, lo + k), range_root(node, lo + k, hi))


def tree_root(node: NodeFn, size: int) -> bytes:
    """MTH(D[size]) (RFC 9162 §2.1.1); :data:`EMPTY_ROOT` for no leaves."""
    _check_size(size)
    return EMPTY_ROOT if size == 0 else range_root(node, 0, size)


def inclusion_proof(node: NodeFn, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1: sibling hashes from the leaf up."""
    _check_size(size)
    if isinstance(index, bool) or not 0 <= index < size:
        raise InputError(f"leaf index {index} is not in a tree of {size} leaves", field="index")
    path: list[bytes] = []
    lo, hi = 0, size
    # Walk down from the root, noting the sibling of each subtree the leaf is in; the path is
    # those siblings read from the leaf up, so it is reversed at the end.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(range_root(node, lo + k, hi))
            hi = lo + k
        else:
            path.append(range_root(node, lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def consistency_proof(node: NodeFn, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 9162 §2.1.4.1, empty when ``old`` is 0 or ``new``.

    SUBPROOF(m, D[lo:hi], b) walks down the same splits as the inclusion proof: when ``m`` is
    within the left part, the right part's root is needed; otherwise the left part's root, and
    the walk continues in the right part with ``b`` false (the old tree's root there is no
    longer a subtree the verifier already has).
    """
    _check_size(old)
    _check_size(new)
    if old > new:
        raise InputError(f"old size {old} is larger than new size {new}", field="old")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    lo, hi, m, whole = 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(range_root(node, lo + k, hi))
            hi = lo + k
        else:
            proof.append(range_root(node, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(range_root(node, lo, hi))
    proof.reverse()
    return proof


def levels_to_store(size: int) -> list[tuple[int, int]]:
    """The complete subtrees (level, index) that leaf ``size - 1`` completes, smallest first:
    written when the log grows to ``size`` leaves, and never again. Level 0 is the leaf; the
    subtree (level, i) is ``node_hash`` of (level - 1, 2i) and (level - 1, 2i + 1)."""
    _check_size(size)
    if size == 0:
        return []
    out = [(0, size - 1)]
    level = 1
    while size % (1 << level) == 0:
        out.append((level, (size >> level) - 1))
        level += 1
    return out


def verify_consistency(old: int, new: int, proof: Sequence[bytes], old_root: bytes,
                       new_root: bytes) -> None:
    """Raise :class:`VerificationError` (reason ``bad_proof``) unless ``proof`` shows that the
    tree of ``old`` leaves with ``old_root`` is a prefix of the one of ``new`` with
    ``new_root``: RFC 9162 §2.1.4.2, with the cases it leaves to the caller (equal sizes, an
    empty old tree) decided as tlog-witness does (an empty proof, and equal roots)."""
    _check_form(old, new, proof)
    if old == new:
        if proof:
            raise _bad("a proof between equal sizes must be empty")
        if not hmac.compare_digest(old_root, new_root):
            raise _bad("the same size with two different roots")
        return
    if old == 0:
        if proof:
            raise _bad("a proof from the empty tree must be empty")
        return
    fr, sr, sn = _fold(old, new, proof, old_root)
    # Step 7: both roots reproduced, and the walk ended at the root.
    if sn != 0:
        raise _bad("the proof is shorter than the trees are tall")
    if not hmac.compare_digest(fr, old_root):
        raise _bad("the proof does not lead to the old root")
    if not hmac.compare_digest(sr, new_root):
        raise _bad("the proof does not lead to the new root")


def _fold(old: int, new: int, proof: Sequence[bytes], old_root: bytes
          ) -> tuple[bytes, bytes, int]:
    """Steps 1-6 of RFC 9162 §2.1.4.2: (fr, sr, sn) after the whole path."""
    sha256 = new_sha256
    # Step 1: an empty path proves nothing between two different sizes.
    if not proof:
        raise _bad("the proof is empty")
    path = list(proof)
    # Step 2: when the old tree is complete, its root is the node the path starts from.
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    for c in path[1:]:
        # 6a.
        if sn == 0:
            raise _bad("the proof is longer than the trees are tall")
        # 6b.
        if fn & 1 or fn == sn:
            fr = sha256(b"\x01" + c + fr).digest()
            sr = sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(b"\x01" + sr + c).digest()
        # 6c.
        fn >>= 1
        sn >>= 1
    return fr, sr, sn


def _check_form(old: int, new: int, proof: Sequence[bytes]) -> None:
    for name, value in (("old", old), ("new", new)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(f"{name} size must be a non-negative integer")
    if old > new:
        raise _bad(f"old size {old} is larger than new size {new}")
    if len(proof) > MAX_PROOF_HASHES:
        raise _bad(f"{len(proof)} hashes is more than any proof has")
    for i, p in enumerate(proof):
        if not isinstance(p, bytes) or len(p) != HASH_SIZE:
            raise _bad(f"proof[{i}] is not {HASH_SIZE} bytes")


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InputError("must be a non-negative integer", field="size")


def _bad(why: str) -> VerificationError:
    return VerificationError(f"consistency proof rejected: {why}", reason="bad_proof")
