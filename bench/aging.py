"""Aging: does the cost of one envelope grow with the link's history?

    .venv/bin/python bench/aging.py                      # histories 0, 1,000, 8,000, 10,000
    .venv/bin/python bench/aging.py --history 0,10000 --json

Builds one store per history size H through ``bridge.store.sqlite.store`` (no daemon): one
document, H envelopes of about 16 KiB each (a 100-item chunk of manifest entries, sealed) that
the peer has receipted; closes and reopens it (a checkpointed store, as one that has aged);
then times the store's per-envelope delivery bookkeeping for the next envelopes, as the sender
does it: queue the envelope (one transaction), ``next_pending``, count the attempt (one
transaction), then the receipt: ``finish_outbox`` + ``pending_for_doc`` (one transaction).
Each figure is the median over ``--envelopes`` envelopes, in milliseconds, split
into the reads (``next_pending`` + ``pending_for_doc``: what scanned the outbox) and the whole
cycle (three commits with ``synchronous=FULL``, so mostly fsync). The last column is the cycle
at H over the cycle at 0: the target is at most 1.2 at H = 10,000.

Only the Store API is used, so the same script measures an older Bridge too: run a copy of it
beside that Bridge's ``bridge`` package. Synthetic bytes only. A measurement, never a test.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.store.sqlite.store import Store

ENVELOPE_BYTES = 16 * 1024
RECEIPT_BYTES = 330
T0 = 1_772_463_600_000


def _document(store: Store) -> int:
    with store.transaction():
        return store.insert_document(
            id="M-AGING", direction="out", peer="beta", type="manifest", digest=os.urandom(32),
            header=b"h", sig=b"s", count=1 << 30, answers=None, meta={}, created=T0,
            state="sending", now=T0)


def _queue(store: Store, doc: int, seq: int) -> None:
    store.insert_outbox(peer="beta", seq=seq, msg_id=os.urandom(16), digest=os.urandom(32),
                        envelope=os.urandom(ENVELOPE_BYTES), kind="chunk", doc=doc,
                        first=seq * 100, n=100, now=T0 + seq)


def _history(store: Store, doc: int, h: int) -> None:
    """``h`` envelopes queued and receipted, in batches of 500 per transaction."""
    for start in range(1, h + 1, 500):
        with store.transaction():
            for seq in range(start, min(start + 500, h + 1)):
                _queue(store, doc, seq)
                store.finish_outbox("beta", seq, "delivered", os.urandom(RECEIPT_BYTES),
                                    T0 + seq)


def _cycle(store: Store, doc: int, seq: int) -> tuple[float, float]:
    """(reads, whole cycle) in seconds for envelope ``seq``."""
    t0 = time.perf_counter()
    with store.transaction():
        _queue(store, doc, seq)
    r0 = time.perf_counter()
    row = store.next_pending("beta")
    reads = time.perf_counter() - r0
    assert row is not None and row.seq == seq
    with store.transaction():
        store.count_attempt("beta", seq)
    with store.transaction():
        store.finish_outbox("beta", seq, "delivered", os.urandom(RECEIPT_BYTES), T0 + seq)
        r0 = time.perf_counter()
        store.pending_for_doc(doc)
        reads += time.perf_counter() - r0
    return reads, time.perf_counter() - t0


def measure(h: int, envelopes: int, root: Path) -> dict[str, Any]:
    path = root / f"aging-{h}.db"
    store = Store(path)
    try:
        doc = _document(store)
        _history(store, doc, h)
    finally:
        store.close()  # the last connection checkpoints the WAL: an aged store, at rest
    store = Store(path)
    try:
        times = [_cycle(store, doc, h + 1 + k) for k in range(envelopes)]
    finally:
        store.close()
    size = sum(p.stat().st_size for p in root.glob(f"aging-{h}.db*"))
    for p in root.glob(f"aging-{h}.db*"):
        p.unlink()
    return {"history": h, "store_mib": round(size / 2**20, 1),
            "reads_ms": round(statistics.median(t[0] for t in times) * 1000, 3),
            "cycle_ms": round(statistics.median(t[1] for t in times) * 1000, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--history", default="0,1000,8000,10000",
                    help="comma-separated numbers of receipted envelopes already in the store")
    ap.add_argument("--envelopes", type=int, default=40, help="envelopes timed per size")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bridge-aging-") as tmp:
        rows = [measure(int(h), args.envelopes, Path(tmp)) for h in args.history.split(",")]
    base = rows[0]["cycle_ms"] or 1e-9
    for row in rows:
        row["cycle_ratio"] = round(row["cycle_ms"] / base, 2)
    if args.json:
        print(json.dumps({"envelope_bytes": ENVELOPE_BYTES, "rows": rows}, indent=2))
        return
    print(f"{'history':>8} {'store MiB':>10} {'reads ms':>9} {'cycle ms':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['history']:>8} {r['store_mib']:>10} {r['reads_ms']:>9} {r['cycle_ms']:>9} "
              f"{r['cycle_ratio']:>6}")


if __name__ == "__main__":
    main()
