"""The deliver phase alone, in one process: a manifest's sealed chunks carried to the receiver,
opened, checked and stored, and the sender acting on each signed answer.

    python bench/deliver.py --items 100000 [--chunk 5000] [--suite 2] [--json]

Two real engines (``tests/harness``: their own homes and SQLite store files, synchronous=FULL
as the daemon runs them) and no network, so the CPU seconds are the two sides' own work on the
phase between a committed submission and the receiver's ``document_received``: what
``bench/e2e.py`` reports as ``phase_cpu_seconds.deliver``, without the daemons' other work and
much steadier on a shared machine. Synthetic records (``workload.py``). A measurement, never a
test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Harness, open_pair, wire
from workload import manifest_items, print_figures

from bridge.core.crypto import suites
from bridge.core.crypto.identity import PrivateIdentity


@contextmanager
def submitted(n: int, chunk: int, suite: suites.Suite) -> Iterator[Harness]:
    """Alpha and beta (synchronous=FULL), alpha's manifest M-1 of ``n`` items to beta
    committed and not yet delivered (``bench/ack_phase.py`` starts here too)."""
    created = 1_700_000_000_000  # the harness's clock starts after it
    alpha, beta = (PrivateIdentity.generate(p, created=created, suite=suite)
                   for p in ("alpha", "beta"))
    with tempfile.TemporaryDirectory() as root, \
            open_pair(Path(root), alpha, beta, chunk_items=chunk) as h:
        for party in (h.alpha, h.beta):
            wire.sql(party.engine).execute("PRAGMA synchronous=FULL")
        wire.submit(h.alpha.engine, "manifest", "beta", manifest_items(n), doc_id="M-1")
        yield h


def measure(n: int, chunk: int, suite: suites.Suite) -> dict[str, Any]:
    with submitted(n, chunk, suite) as h:
        receiver = sender = 0.0
        wall = time.perf_counter()
        for pending in wire.pending_batch(h.alpha.engine, "beta", 1 << 20):
            t = time.process_time()
            answer = h.beta.engine.receive_envelope(pending.data)
            receiver += time.process_time() - t
            t = time.process_time()
            outcome = h.alpha.engine.tried(pending.row, answer.body, "in process", frozenset())
            sender += time.process_time() - t
            assert outcome.state == "delivered", outcome
        wall = time.perf_counter() - wall
        assert wire.document(h.beta.engine, "M-1", "in")["state"] == "received"
    return {"items": n, "chunk_items": chunk, "suite": suite.number,
            "receiver_cpu_seconds": round(receiver, 3),
            "sender_cpu_seconds": round(sender, 3), "wall_seconds": round(wall, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--suite", type=int, choices=(1, 2), default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    suite = suites.SUITE_2 if args.suite == 2 else suites.SUITE_1
    print_figures(measure(args.items, args.chunk, suite), as_json=args.json)


if __name__ == "__main__":
    main()
