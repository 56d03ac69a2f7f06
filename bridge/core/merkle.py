"""Merkle tree hashing and inclusion proofs, as in RFC 9162 (Certificate Transparency v2) §2.1.

Everything here is pure: no I/O, no clock, no state beyond the hashes a tree holds.

Hashing (RFC 9162 §2.1.1) uses SHA-256 with one-byte domain separation: a leaf is hashed as
``SHA-256(0x00 || leaf)`` and an inner node as ``SHA-256(0x01 || left || right)``. The
different prefixes are what stop a second-preimage attack in which the two child hashes of an
inner node are presented as the bytes of a leaf: the leaf hash of those bytes can never equal
the inner node's hash without a SHA-256 collision.

Inclusion proofs ("audit paths", RFC 9162 §2.1.3) are lists of sibling hashes ordered from the
leaf up to the root. Verification follows the iterative algorithm of RFC 9162 §2.1.3.2 step by
step, so that its checks (including the "``sn`` must be zero at the end" rule that rejects a
path of the wrong length or shape) are the ones the RFC reviewers analysed.

Note on what a proof binds: verification takes a *leaf hash*, not a leaf. Callers must compute
it with :func:`leaf_hash` from the leaf bytes themselves; accepting a hash from a peer would let
the peer pass off an inner node as a leaf. The tree size is also not bound by the proof alone
(different sizes can give audit paths of the same shape); it must come from an authenticated
source such as a signed tree head (RFC 9162 §4.10).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bridge.core.crypto.hashes import new_sha256
from bridge.core.errors import InputError, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "RootBuilder",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every hash here: SHA-256, the hash RFC 9162 §2.1 uses for the tree."""

# Domain-separation prefixes of RFC 9162 §2.1.1. Kept as module constants so the hot loops
# below concatenate without building them again.
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT: bytes = new_sha256(b"").digest()
"""MTH({}) = SHA-256() — the root of a tree with no leaves (RFC 9162 §2.1.1)."""


def leaf_hash(leaf: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 || d(0)) (RFC 9162 §2.1.1)."""
    return new_sha256(_LEAF_PREFIX + leaf).digest()


def leaf_hashes(leaves: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each of ``leaves``, in order (a list comprehension: faster here than
    ``map`` over the hash's own callables)."""
    sha256, prefix = new_sha256, _LEAF_PREFIX
    return [sha256(prefix + leaf).digest() for leaf in leaves]


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), the hash of an inner node (RFC 9162 §2.1.1)."""
    return new_sha256(_NODE_PREFIX + left + right).digest()


_BYTES, _HASH_LEN = frozenset({bytes}), frozenset({HASH_SIZE})


def _check_leaf_hashes(hashes: Sequence[bytes]) -> None:
    # A wrong-length "hash" would still hash fine and silently give a root nobody else can
    # reproduce, so reject it where it enters.
    if set(map(type, hashes)) <= _BYTES and set(map(len, hashes)) <= _HASH_LEN:
        return  # the common case, tested in C; else the loop names the first bad one
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise InputError(f"must be {HASH_SIZE} bytes", field=f"hashes[{i}]")


def _build_levels(leaf_hashes: tuple[bytes, ...]) -> tuple[tuple[bytes, ...], ...]:
    """All levels of the tree, leaves first, root level last.

    Built bottom-up: pair adjacent nodes, and carry an unpaired last node up unchanged. This
    gives the same tree as the recursive definition of RFC 9162 §2.1.1, which splits n leaves at
    k, the largest power of two smaller than n: the left k leaves form a complete subtree, which
    pairing builds exactly, and the ragged right part's last node is the one carried up until it
    meets a subtree of its own height.
    """
    sha256 = new_sha256  # local binding: one lookup, not one per node
    prefix = _NODE_PREFIX
    levels: list[tuple[bytes, ...]] = [leaf_hashes]
    current = leaf_hashes
    while len(current) > 1:
        # strict=False on purpose: with an odd count the last node has no partner here.
        pairs = zip(current[0::2], current[1::2], strict=False)
        upper = [sha256(prefix + a + b).digest() for a, b in pairs]
        if len(current) & 1:
            upper.append(current[-1])
        current = tuple(upper)
        levels.append(current)
    return tuple(levels)


def _root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over ``leaf_hashes`` (at least one), by the pairing of ``_build_levels`` but with
    only the level being hashed kept: the very same node hashes, in the same order, without
    keeping (or copying into tuples) every level of a tree nobody asked for."""
    sha256, prefix = new_sha256, _NODE_PREFIX
    current = leaf_hashes
    while len(current) > 1:
        upper = [sha256(prefix + a + b).digest()
                 for a, b in zip(current[0::2], current[1::2], strict=False)]
        if len(current) & 1:
            upper.append(current[-1])  # carried up unchanged, as in _build_levels
        current = upper
    return current[0]


@dataclass(frozen=True)
class MerkleTree:
    """A Merkle tree over leaf hashes that keeps every level, so root and proofs are cheap.

    Levels are tuples so a frozen tree cannot be changed under a root someone has relied on.
    Build with :meth:`from_leaf_hashes` or :meth:`from_leaves`.
    """

    levels: tuple[tuple[bytes, ...], ...] = field(repr=False)

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes]) -> MerkleTree:
        """Tree over already-hashed leaves (each ``leaf_hash(d)``, 32 bytes)."""
        _check_leaf_hashes(hashes)
        return cls(_build_levels(tuple(hashes)))

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """Tree over raw leaves; each is hashed with the 0x00 prefix of RFC 9162 §2.1.1."""
        return cls(_build_levels(tuple(leaf_hashes(leaves))))

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    @property
    def root(self) -> bytes:
        """MTH(D[n]) (RFC 9162 §2.1.1); :data:`EMPTY_ROOT` for no leaves."""
        top = self.levels[-1]
        return top[0] if top else EMPTY_ROOT

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[n]) of RFC 9162 §2.1.3.1: sibling hashes from the leaf up.

        At each level the sibling of node ``i`` is ``i ^ 1``. When it does not exist, node ``i``
        is the unpaired last node that was carried up unchanged, so that level adds nothing to
        the path — exactly where the recursive definition has no sibling either.
        """
        n = self.size
        if isinstance(index, bool) or not 0 <= index < n:
            raise InputError(f"leaf index {index} is not in a tree of {n} leaves", field="index")
        path: list[bytes] = []
        i = index
        for level in self.levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            i >>= 1
        return path

    def node(self, level: int, index: int) -> bytes:
        """The root of the complete subtree of ``2**level`` leaves from leaf ``index << level``:
        the ``node`` that :mod:`bridge.core.logtree` reads proofs of any size through."""
        if (index + 1) << level > self.size or index < 0 or level < 0:
            raise InputError(f"no complete subtree ({level}, {index}) in {self.size} leaves",
                             field="index")
        return self.levels[level][index]

    def __repr__(self) -> str:
        return f"MerkleTree(size={self.size}, root={self.root.hex()})"


class RootBuilder:
    """MTH(D[n]) over leaf hashes given one at a time, in O(log n) memory: for checking a
    stored document of any size against its signed root without holding its leaves.

    Keeps the roots of the complete subtrees seen so far, largest first (the binary
    decomposition of n). The RFC 9162 §2.1.1 split at the largest power of two below n makes
    the root of those subtrees S1..Sk the right fold ``node(S1, node(S2, ... Sk))``.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, its root)
        self.size = 0

    def add(self, leaf_hash_: bytes) -> None:
        self._push(1, leaf_hash_)

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        """``add`` of each, in order. A run that fills a complete subtree aligned where the
        builder stands (its size a multiple of the run's, a power of two) is hashed level by
        level at once: the same nodes as one at a time, with no Python step per leaf."""
        i, left = 0, len(leaf_hashes)
        while left:
            span = 1 << (left.bit_length() - 1)  # the largest power of two that fits
            if self.size:
                span = min(span, self.size & -self.size)  # and keeps the subtree aligned
            if span == 1:
                self._push(1, leaf_hashes[i])
            else:
                self._push(span, _root_of(leaf_hashes[i:i + span]))
            i, left = i + span, left - span

    def _push(self, span: int, node: bytes) -> None:
        """The root of a complete subtree of ``span`` leaves (a power of two dividing
        ``size``), merged with the equal subtrees before it."""
        size = span
        while self._stack and self._stack[-1][0] == size:
            left = self._stack.pop()[1]
            size, node = size * 2, node_hash(left, node)
        self._stack.append((size, node))
        self.size += span

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (RFC 9162 §2.1.1): only the root, so no tree is kept."""
    _check_leaf_hashes(hashes)
    return _root_of(hashes) if len(hashes) else EMPTY_ROOT


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes]
) -> bytes:
    """The root that ``path`` proves ``leaf_hash`` at ``index`` in a tree of ``size`` leaves.

    The algorithm of RFC 9162 §2.1.3.2, step by step. Raises :class:`VerificationError`
    (reason ``"bad_proof"``) when the proof cannot be right for that index and size, whatever
    the root.
    """
    _check_proof_form(leaf_hash, index, size, path)

    sha256 = new_sha256
    prefix = _NODE_PREFIX
    # Step 2: fn is the leaf's index and sn the last index, at the current level.
    fn = index
    sn = size - 1
    # Step 3.
    r = leaf_hash
    # Step 4.
    for p in path:
        # 4a: the node has reached the root already, so an extra hash cannot belong.
        if sn == 0:
            raise _bad_proof("path is longer than the tree is tall")
        # 4b: a right child (LSB(fn) set), or the last node of its level (fn == sn), has its
        # sibling on the left.
        if fn & 1 or fn == sn:
            r = sha256(prefix + p + r).digest()
            if not fn & 1:
                # fn == sn and even: the node was carried up without a sibling on the levels
                # above, until it becomes a right child (LSB set) or reaches the left edge.
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise the node is a left child and its sibling is on the right.
            r = sha256(prefix + r + p).digest()
        # 4c.
        fn >>= 1
        sn >>= 1
    # Step 5: "Compare sn to 0" — if it is not zero, the path stopped short of the root.
    if sn != 0:
        raise _bad_proof("path is shorter than the tree is tall")
    return r


def _bad_proof(why: str) -> VerificationError:
    return VerificationError(f"inclusion proof rejected: {why}", reason="bad_proof")


def _check_proof_form(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes]) -> None:
    """What a proof must be before any hashing: an index within the size (RFC 9162 §2.1.3.2
    step 1), hashes of the right size, and as many as the path to that index has."""
    if isinstance(index, bool) or isinstance(size, bool) or index < 0 or size < 0:
        raise _bad_proof("index and size must be non-negative integers")
    # Step 1: "If leaf_index is greater than or equal to tree_size, then stop and fail."
    if index >= size:
        raise _bad_proof(f"leaf index {index} is not less than tree size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise _bad_proof(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
    for i, p in enumerate(path):
        if len(p) != HASH_SIZE:
            raise _bad_proof(f"path[{i}] is {len(p)} bytes, not {HASH_SIZE}")
    expected = _path_length(index, size)
    if len(path) != expected:
        # The loop of root_from_inclusion_proof would also reject this (sn would be 0 too
        # early or not 0 at the end); checking first only gives a clearer message.
        raise _bad_proof(f"path has {len(path)} hashes; index {index} of {size} needs "
                         f"{expected}")


def _path_length(index: int, size: int) -> int:
    """Length of PATH(index, D[size]) (RFC 9162 §2.1.3.1), without hashing anything.

    Same walk as the tree: one hash per level where the node has a sibling.
    """
    length = 0
    i, last = index, size - 1
    while last > 0:
        if (i ^ 1) <= last:
            length += 1
        i >>= 1
        last >>= 1
    return length


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """True iff ``path`` proves ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``.

    Never raises for a bad proof: a proof that does not hold, for whatever reason, is False.
    ``size`` and ``root`` must come from an authenticated tree head; ``leaf_hash`` must be
    computed locally with :func:`leaf_hash` (see the module docstring).
    """
    try:
        computed = root_from_inclusion_proof(leaf_hash, index, size, path)
    except VerificationError:
        return False
    # Constant-time compare: the result says nothing about how many leading bytes matched.
    return hmac.compare_digest(computed, root)
