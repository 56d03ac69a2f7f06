"""What one acknowledgement costs when the store holds many other documents: it must not grow
with the store's history (issue 14, "cost per envelope independent of history").

    .venv/bin/python bench/ack_history.py [--documents 10000] [--acks 30] [--json]

Builds a receiver's store directly (as ``bench/queries.py`` does): the peer's 10-item manifest,
signed with its real key and stored as intake stores one, and ``--documents`` other received
documents (rows of the documents table only: an acknowledgement never reads their entries).
Then ``Exchange.acknowledge`` of one item at a time (signed, audited, queued, committed),
``--acks`` of them, on the empty store and on the full one: median wall and CPU milliseconds
of each. A/B: run it from an older tree with that tree on ``PYTHONPATH``. Synthetic data; a
measurement, never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queries import DOC_ID, store_manifest

from bridge.daemon.pair import make_pair
from bridge.engine.exchange import Exchange
from bridge.store.sqlite.store import Store

ITEMS = 10


def _fill(store: Store, documents: int) -> None:
    """``documents`` received manifests of one peer, each its own id and digest."""
    with store.transaction():
        for n in range(documents):
            store.insert_document(id=f"OTHER-{n:06d}", direction="in", peer="beta",
                                  type="manifest", digest=os.urandom(32), header=b"",
                                  sig=b"", count=0, answers=None, meta={}, created=n,
                                  state="received", now=n)


def run(documents: int, acks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bridge-bench-ack-history-") as tmp:
        a, b = make_pair(Path(tmp))
        store = Store(a.home.db_path)
        exchange = Exchange(store=store, identity=a.home.identity(),
                            peers={"beta": b.home.public_identity()}, config=a.home.config())
        _fill(store, documents)
        store_manifest(exchange, b.home.identity(), ITEMS)
        walls, cpus = [], []
        for k in range(acks):
            item = f"ITEM-{k % ITEMS:07d}"
            status = "RECEIVED" if (k // ITEMS) % 2 == 0 else "IDENTITY_CONFIRMED"
            time.sleep(0.002)  # acknowledgements of one document have strictly later times
            t, c = time.perf_counter(), time.process_time()
            exchange.acknowledge(DOC_ID, {"items": [{"id": item, "status": status}]})
            walls.append((time.perf_counter() - t) * 1000)
            cpus.append((time.process_time() - c) * 1000)
        store.close()
    return {"wall_ms": round(statistics.median(walls), 2),
            "cpu_ms": round(statistics.median(cpus), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--documents", type=int, default=10_000)
    ap.add_argument("--acks", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"documents": args.documents, "acks": args.acks,
                           "empty": run(0, args.acks), "full": run(args.documents, args.acks)}
    out["ratio_cpu"] = round(out["full"]["cpu_ms"] / out["empty"]["cpu_ms"], 2)
    if args.json:
        print(json.dumps(out))
    else:
        for key in ("empty", "full"):
            print(f"{key:6} ({0 if key == 'empty' else args.documents:,} other documents): "
                  f"median {out[key]['wall_ms']:.2f} ms wall, {out[key]['cpu_ms']:.2f} ms CPU")
        print(f"full / empty CPU: {out['ratio_cpu']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
