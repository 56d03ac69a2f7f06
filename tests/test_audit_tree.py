"""The audit log as a Merkle tree in a real SQLite store: the stored subtrees give the roots
and proofs of the records' tree at every size, a 0.1.0 store gets its tree on upgrade, and a
record's inclusion in a signed checkpoint verifies (and a changed record does not)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_store_upgrade import FIXTURES, _restore

from bridge.core import audit, audit_tree, logtree
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import VerificationError
from bridge.core.merkle import MerkleTree
from bridge.core.notes import checkpoint, note
from bridge.store.sqlite.store import Store


def _append(store: Store, n: int) -> list[audit.AuditRecord]:
    out = []
    for i in range(n):
        with store.transaction():
            out.append(store.append_audit(kind=audit.REFUSAL, peer="beta",
                                          body={"i": i}, now=1_700_000_000_000 + i))
    return out


def _records(store: Store) -> list[bytes]:
    rows = store._conn.execute("SELECT seq, at, kind, peer, body FROM audit ORDER BY seq")
    return [audit.record_bytes(seq=s, at=a, kind=k, peer=p, body=b) for s, a, k, p, b in rows]


def test_stored_tree_gives_the_records_root_and_proofs_at_every_size(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    try:
        _append(store, 13)
        leaves = _records(store)
        assert store.audit_tree_size() == 13
        for size in range(1, 14):
            tree = MerkleTree.from_leaves(leaves[:size])
            assert store.audit_root(size) == tree.root
            assert store.audit_inclusion(size, size) == tree.inclusion_proof(size - 1)
        proof = store.audit_consistency(5, 13)
        logtree.verify_consistency(5, 13, proof, store.audit_root(5), store.audit_root(13))
    finally:
        store.close()


def test_store_of_release_0_1_0_gets_the_tree_of_its_records(tmp_path: Path) -> None:
    path = _restore(FIXTURES / "store-0.1.0-alpha.sql", tmp_path / "alpha" / "bridge.db")
    store = Store(path)
    try:
        leaves = _records(store)
        assert leaves and store.audit_tree_size() == len(leaves)
        assert store.audit_root(len(leaves)) == MerkleTree.from_leaves(leaves).root
        _append(store, 3)  # and it grows from there
        assert store.audit_root(len(leaves) + 3) == MerkleTree.from_leaves(_records(store)).root
    finally:
        store.close()


def test_a_rolled_back_tree_is_not_an_extension_of_the_witnessed_one(tmp_path: Path) -> None:
    # A store restored from a copy and grown again: the same size, another root.
    store = Store(tmp_path / "a.db")
    other = Store(tmp_path / "b.db")
    try:
        _append(store, 8)
        _append(other, 5)
        with other.transaction():
            other.append_audit(kind=audit.REFUSAL, peer="beta", body={"i": "forked"}, now=1)
        _append(other, 2)
        proof = other.audit_consistency(8, 8)
        with pytest.raises(VerificationError):
            logtree.verify_consistency(8, 8, proof, store.audit_root(8), other.audit_root(8))
    finally:
        store.close()
        other.close()


def test_record_in_signed_checkpoint_verifies_and_a_changed_record_does_not(
        tmp_path: Path) -> None:
    me = PrivateIdentity.generate("alpha", created=1_700_000_000)
    store = Store(tmp_path / "bridge.db")
    try:
        records = _append(store, 6)
        signed = audit_tree.sign_log_checkpoint(me, 6, store.audit_root(6))
        opened, _ = note.open_note(signed, [audit_tree.log_verifier(me.public)])
        cp = checkpoint.parse_checkpoint_text(opened.text)
        assert cp.origin == audit_tree.identity_origin(me.public)
        assert cp.origin.startswith("bridge.example/alpha/")
        logged = audit_tree.LoggedRecord(record=records[2].record_bytes(), index=2,
                                         proof=tuple(store.audit_inclusion(3, 6)))
        assert audit_tree.verify_logged(logged, cp)["seq"] == 3
        changed = audit.record_bytes(seq=3, at=records[2].at - 1, kind=records[2].kind,
                                     peer="beta", body=records[2].body)
        with pytest.raises(VerificationError) as err:
            audit_tree.verify_logged(audit_tree.LoggedRecord(
                record=changed, index=2, proof=logged.proof), cp)
        assert err.value.reason == "bad_proof"
    finally:
        store.close()
