"""Checkpoints to the peer (PROTOCOL.md §13.7): what one ``checkpoint`` envelope costs to build
from a real SQLite store and to check on the other side, and how large it is.

    .venv/bin/python bench/peer_checkpoints.py                  # 20,000 records
    .venv/bin/python bench/peer_checkpoints.py --records 100000 --json

The log holds ``--records`` audit records, one in 50 a document or ack record about the peer
(their bodies the size of a suite-2 document record: a signed header with both signatures),
the rest envelope and receipt records. Figures: the payload's bytes with a full envelope of
records (64) and with one; building it (the records read, their inclusion proofs and the
consistency proof from the size the peer kept); and the peer's check (decode, the party's
signature, a witness's cosignature, each record's proof, the consistency proof). A 100,000-item
exchange is one manifest and a few acknowledgements: a few records, whatever the items.
All records are synthetic. A measurement, never a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workload import print_figures

from bridge.core import audit, audit_tree, peer_log
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.notes.checkpoint import Checkpoint, witness_key_name
from bridge.core.notes.cosignature import cosign
from bridge.store.sqlite.store import Store

SIGNED_HEADER = 3309 + 64 + 600  # ML-DSA-65 and Ed25519 signatures, a header with its meta


def _fill(store: Store, n: int) -> None:
    with store.transaction():
        for i in range(1, n + 1):
            if i % 50 == 0:
                body = {"dir": "out", "id": f"M-{i}", "type": "manifest", "count": 100_000,
                        "digest": i.to_bytes(32, "big"), "header": b"h" * SIGNED_HEADER,
                        "sig": b""}
                store.append_audit(kind=audit.DOCUMENT, peer="beta", body=body,
                                   now=1_700_000_000_000 + i)
            else:
                store.append_audit(kind=audit.RECEIPT_ISSUED, peer="beta",
                                   body={"seq": i, "r": b"r" * 200}, now=1_700_000_000_000 + i)


def _timed(fn: Any, repeat: int = 20) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def _payload(store: Store, me: PrivateIdentity, witness: PrivateIdentity, old: int, size: int,
             limit: int) -> bytes:
    """What ``PeerCheckpoints.offer`` builds: the records about the peer since ``old``, their
    inclusion proofs, the consistency proof from ``old``, the cosigned note."""
    note = audit_tree.sign_log_checkpoint(me, size, store.audit_root(size))
    text = Checkpoint(origin=audit_tree.identity_origin(me.public), size=size,
                      root=store.audit_root(size)).text()
    line = cosign(text, name=witness_key_name(witness.party, witness.public.fingerprint),
                  public=witness.public.note_key, timestamp=1_700_000_000,
                  sign=witness.sign_note).line.line()
    records = [audit_tree.LoggedRecord(record=data, index=seq - 1,
                                       proof=tuple(store.audit_inclusion(seq, size)))
               for seq, data in store.records_about("beta", old, size, limit)]
    return peer_log.encode(note + line, old, store.audit_consistency(old, size), records)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.records < 64 * 50:  # the peer's kept checkpoint is 64 document records back
        p.error(f"--records must be at least {64 * 50}")
    n = args.records
    me = PrivateIdentity.generate("alpha", created=1_700_000_000_000)
    witness = PrivateIdentity.generate("mediator", created=1_700_000_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bridge.db")
        _fill(store, n)
        old = n - 64 * 50  # the peer kept a checkpoint 64 document records ago
        full = _payload(store, me, witness, old, n, peer_log.MAX_RECORDS)
        one = _payload(store, me, witness, n - 50, n, peer_log.MAX_RECORDS)
        kept = Checkpoint(origin=audit_tree.identity_origin(me.public), size=old,
                          root=store.audit_root(old))

        def check() -> None:
            msg = peer_log.decode(full)
            peer_log.verify(msg, party=me.public, me="beta",
                            witnesses={"mediator": witness.public})
            peer_log.judge(kept, msg)

        out = {
            "records": n,
            "payload_bytes_64_records": len(full),
            "payload_bytes_1_record": len(one),
            "build_64_records_ms": round(_timed(lambda: _payload(
                store, me, witness, old, n, peer_log.MAX_RECORDS)) * 1000, 2),
            "check_64_records_ms": round(_timed(check) * 1000, 2),
        }
        store.close()
    print_figures(out, as_json=args.json)


if __name__ == "__main__":
    main()
