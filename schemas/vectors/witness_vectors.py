"""The witnessing vectors (PROTOCOL.md §13, §9): ``schemas/vectors/witness/``, written by
``generate.py`` with the rest.

alpha-test's audit log: the manifest MAN-TEST-0003 it sends (a ``document`` record) and the
three acknowledgements it receives (``ack`` records), each at its document's time, as the
leaves of the log's tree. Its checkpoints at sizes 2 and 4 are signed by alpha-test and
cosigned by the witness ``mediator-test`` (seed ``identity/mediator-test``) at fixed times.
Every byte is deterministic (Ed25519 is; so are the records and the tree).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.core import audit, audit_tree, logtree, peer_log
from bridge.core.crypto import suites
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.documents import SignedDocument
from bridge.core.errors import VerificationError
from bridge.core.merkle import MerkleTree
from bridge.core.notes import checkpoint, cosignature, note, witness_wire
from bridge.core.receipts import build_item_receipt
from bridge.core.receipts.witnessed import check_witnessed, with_witnessed

# POSIX seconds, five minutes after the last record of each size (2026-03-02T15:05Z and
# 2026-04-20T09:35Z).
COSIGNED_AT = {2: 1_772_463_900, 4: 1_776_677_700}


def alpha_log(alpha: PrivateIdentity, manifest: SignedDocument,
              acks: tuple[SignedDocument, ...]) -> list[audit.AuditRecord]:
    records: list[audit.AuditRecord] = []
    for direction, doc in [("out", manifest), *(("in", a) for a in acks)]:
        kind, body = audit.document_body(direction, doc.signed)
        last = records[-1] if records else None
        records.append(audit.next_record(
            last_seq=last.seq if last else 0, last_hash=last.hash if last else audit.ZERO_HASH,
            last_at=last.at if last else 0, now=doc.header.created, kind=kind,
            peer="beta-test", body=body))
    return records


def write_witness(out: Path, w: Any, write_bytes: Callable[..., None],
                  dump_json: Callable[[Any], bytes], identity: Callable[[str], PrivateIdentity]
                  ) -> None:
    folder = out / "witness"
    mediator = identity("mediator-test")
    records = alpha_log(w.alpha, w.manifest, w.acks)
    tree = MerkleTree.from_leaves([r.record_bytes() for r in records])
    wname = checkpoint.witness_key_name(mediator.party, mediator.public.fingerprint)
    cases: dict[str, Any] = {
        "origin": audit_tree.identity_origin(w.alpha.public),
        "log_verifier_key": note.verifier_key(audit_tree.identity_origin(w.alpha.public),
                                              suites.NOTE_ED25519, w.alpha.public.note_key),
        "witness_name": wname,
        "witness_verifier_key": note.verifier_key(wname, suites.NOTE_COSIGNATURE_V1,
                                                  mediator.public.note_key),
        "leaves": [base64.b64encode(r.record_bytes()).decode() for r in records],
        "checkpoints": []}
    write_bytes(folder / "mediator-test.pub", mediator.public.dumps().encode())
    notes: dict[int, bytes] = {}
    for size, at in COSIGNED_AT.items():
        root = logtree.tree_root(tree.node, size)
        signed = audit_tree.sign_log_checkpoint(w.alpha, size, root)
        text = checkpoint.Checkpoint(origin=cases["origin"], size=size, root=root).text()
        cos = cosignature.cosign(text, name=wname, public=mediator.public.note_key,
                                 timestamp=at, sign=mediator.sign_note)
        notes[size] = signed + cos.line.line()
        write_bytes(folder / f"checkpoint-{size}.note", notes[size])
        cases["checkpoints"].append({
            "size": size, "root": base64.b64encode(root).decode(), "file":
            f"checkpoint-{size}.note", "cosigned_at": at,
            "cosigned_message": cosignature.cosigned_message(at, text).decode()})
    proof = logtree.consistency_proof(tree.node, 2, 4)
    write_bytes(folder / "add-checkpoint-2-4.txt",
                witness_wire.format_request(2, proof, audit_tree.sign_log_checkpoint(
                    w.alpha, 4, tree.root)))
    cases["add_checkpoint"] = {"file": "add-checkpoint-2-4.txt", "old": 2, "size": 4,
                               "proof": [base64.b64encode(h).decode() for h in proof]}
    cases["receipt"] = _witnessed_receipt(folder, w, records, notes, mediator, write_bytes)
    write_bytes(folder / "expected.json", dump_json(cases))
    write_bytes(folder / "peer-checkpoint.json", dump_json(
        _peer_checkpoints(folder, w, records, tree, notes, mediator, write_bytes)))


def _peer_checkpoints(folder: Path, w: Any, records: list[audit.AuditRecord], tree: MerkleTree,
                      notes: dict[int, bytes], mediator: PrivateIdentity,
                      write_bytes: Callable[..., None]) -> dict[str, Any]:
    """PROTOCOL.md §13.7: the checkpoint envelope alpha-test sends beta-test once the
    checkpoint of size 4 is cosigned, beta-test having accepted the one of size 2 (with
    records 1 and 2): the proof from 2, and records 3 and 4 with their inclusion proofs. And
    a split view: a checkpoint of size 4 with another root, signed by alpha-test's key."""
    logged = [audit_tree.LoggedRecord(record=records[i].record_bytes(), index=i,
                                      proof=tuple(tree.inclusion_proof(i))) for i in (2, 3)]
    payload = peer_log.encode(notes[4], 2, logtree.consistency_proof(tree.node, 2, 4), logged)
    write_bytes(folder / "peer-checkpoint-2-4.bin", payload)
    kept = checkpoint.Checkpoint(origin=audit_tree.identity_origin(w.alpha.public), size=2,
                                 root=logtree.tree_root(tree.node, 2))
    msg = peer_log.decode(payload)
    verified = peer_log.verify(msg, party=w.alpha.public, me="beta-test",
                               witnesses={"mediator-test": mediator.public})
    assert peer_log.judge(kept, msg) == "extends"
    forged = audit_tree.sign_log_checkpoint(w.alpha, 4, bytes(b ^ 0xFF for b in tree.root))
    split = peer_log.encode(forged, 4, [], [])
    write_bytes(folder / "peer-checkpoint-split-4.bin", split)
    held = checkpoint.Checkpoint(origin=kept.origin, size=4, root=tree.root)
    try:
        peer_log.judge(held, peer_log.decode(split))
    except VerificationError as exc:
        assert exc.reason == peer_log.SPLIT_VIEW
    else:
        raise AssertionError("the split view was not caught")
    return {"sender": "alpha-test", "recipient": "beta-test",
            "cases": [
                {"file": "peer-checkpoint-2-4.bin", "kept": {"size": 2, "root": _b64(kept.root)},
                 "old": 2, "size": 4, "record_indexes": [2, 3],
                 "witnessed": dict(verified.witnessed), "verdict": "extends"},
                {"file": "peer-checkpoint-split-4.bin",
                 "kept": {"size": 4, "root": _b64(tree.root)}, "old": 4, "size": 4,
                 "record_indexes": [], "witnessed": {}, "reason": peer_log.SPLIT_VIEW}]}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _witnessed_receipt(folder: Path, w: Any, records: list[audit.AuditRecord],
                       notes: dict[int, bytes], mediator: PrivateIdentity,
                       write_bytes: Callable[..., None]) -> dict[str, Any]:
    """REM-TEST-0001's receipt with the witnessed times of the manifest (record 1, covered by
    the checkpoint of size 2) and of its acknowledgement ACK-TEST-0003-1 (record 2, ditto)."""
    base = build_item_receipt(w.manifest, "REM-TEST-0001", list(w.acks))
    at_two = MerkleTree.from_leaves([r.record_bytes() for r in records[:2]])
    entries = [{"checkpoint": notes[2], "index": i, "proof": at_two.inclusion_proof(i),
                "record": records[i].record_bytes()} for i in (0, 1)]
    data = with_witnessed(base, entries)
    write_bytes(folder / "item-rem-0001-witnessed.receipt", data)
    report = check_witnessed(data, w.keys, [mediator.public])
    assert report is not None and report.ok, report
    return {"file": "item-rem-0001-witnessed.receipt", "lines": report.lines()}
