"""Audit-log tree benchmark: what the Merkle tree of the audit log (PROTOCOL.md §13.1) costs in
a real SQLite store, and what a witness costs per checkpoint.

    .venv/bin/python bench/audit_tree.py                  # 20,000 records
    .venv/bin/python bench/audit_tree.py --records 100000 --json

Figures: records appended a second with the tree kept (each in its own transaction, as the
daemon appends them, synchronous=FULL), against a second store with the tree step skipped
(the hash chain alone); the root, an inclusion proof and a consistency proof at the full size;
and one witness judgement (parse, verify the checkpoint and the proof, cosign, commit).
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
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workload import print_figures

from bridge.core import audit, audit_tree
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.notes import witness_wire
from bridge.store.sqlite import audit_log
from bridge.store.sqlite.store import Store
from bridge.witness.home import WitnessHome, cosigner


def _append(store: Store, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        with store.transaction():
            store.append_audit(kind=audit.REFUSAL, peer="beta", body={"i": i, "x": "r" * 40},
                               now=1_700_000_000_000 + i)
    return time.perf_counter() - t


def _timed(fn: Any, repeat: int = 50) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Store(root / "tree.db")
        with_tree = _append(store, n)
        plain = Store(root / "plain.db")
        with mock.patch.object(audit_log, "add_leaf", lambda *a: None):
            chain_only = _append(plain, n)
        size = store.audit_tree_size()
        out: dict[str, Any] = {
            "records": n,
            "append_with_tree_per_s": round(n / with_tree),
            "append_chain_only_per_s": round(n / chain_only),
            "root_ms": round(_timed(lambda: store.audit_root(size)) * 1000, 3),
            "inclusion_proof_ms": round(_timed(lambda: store.audit_inclusion(size // 3, size))
                                        * 1000, 3),
            "consistency_proof_ms": round(_timed(lambda: store.audit_consistency(size // 3 + 1,
                                                                                 size)) * 1000, 3),
            "tree_rows": int(store._conn.execute("SELECT COUNT(*) FROM audit_tree").fetchone()[0]),
        }
        me = PrivateIdentity.generate("alpha", created=1_700_000_000_000)
        home = WitnessHome(root / "w")
        home.init("mediator")
        state = home.state()
        state.add_origin(me.public, 0)
        sign = cosigner(home.identity())
        old = 0
        runs = []
        for k in range(1, 41):
            s = size * k // 40
            note = audit_tree.sign_log_checkpoint(me, s, store.audit_root(s))
            body = witness_wire.format_request(old, store.audit_consistency(old, s), note)
            t = time.perf_counter()
            d = state.judge(body, 1_700_000_000 + k, sign)
            runs.append(time.perf_counter() - t)
            assert d.status == 200, d
            old = s
        out["witness_judgement_ms"] = round(statistics.median(runs) * 1000, 3)
        state.close()
        store.close()
        plain.close()
    print_figures(out, as_json=args.json)


if __name__ == "__main__":
    main()
