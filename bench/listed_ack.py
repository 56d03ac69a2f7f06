"""A streamed listed acknowledgement, in one process: CPU seconds by part.

    .venv/bin/python bench/listed_ack.py                    # 100,000 listed statements
    .venv/bin/python bench/listed_ack.py --items 10000 --json
    .venv/bin/python bench/listed_ack.py --profile 20       # and the top 20 functions

Beta sends alpha a manifest of N items (two real engines, ``tests/harness``: their own homes
and SQLite store files, synchronous=FULL as the daemon runs them); alpha then acknowledges
every item in one streamed listed acknowledgement (``POST /v1/documents/{id}/acks`` less the
HTTP: ``begin_ack_stream``, ``ack_stream_items`` a batch of ``STREAM_BATCH`` at a time,
``finish_ack_stream``), of mixed statuses: RECEIVED, NOT_RECEIVED, IDENTITY_CONFIRMED, and
DISPUTED with a reason and evidence, and one item in a thousand never declared
(RECEIVED_UNDECLARED). Printed: the CPU seconds of the batches (checks and staging, what runs
while the caller still sends), of the finish (signing, the commit, the sealed chunks) and of
beta applying the acknowledgement's chunks. Compare a change against the code before it, back
to back. Synthetic records (``workload``). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import open_pair, wire
from workload import iter_items, print_figures

from bridge.core.crypto import suites
from bridge.core.crypto.identity import PrivateIdentity
from bridge.local.stream import STREAM_BATCH

DOC = "M-LISTED"


def statements(n: int) -> Iterator[dict[str, Any]]:
    """One statement for each of the manifest's ``n`` items, and one undeclared a thousand."""
    for i in range(n):
        kind = i % 5
        if kind < 2:
            yield {"id": f"ITEM-{i:07d}", "status": "RECEIVED"}
        elif kind == 2:
            yield {"id": f"ITEM-{i:07d}", "status": "NOT_RECEIVED", "reason": "not on board"}
        elif kind == 3:
            yield {"id": f"ITEM-{i:07d}", "status": "IDENTITY_CONFIRMED"}
        else:
            yield {"id": f"ITEM-{i:07d}", "status": "DISPUTED", "reason": "tag differs",
                   "evidence": f"photo sheet {i}"}
        if i % 1000 == 999:
            yield {"id": f"EXTRA-{i:07d}", "status": "RECEIVED_UNDECLARED"}


def _batches(n: int) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[]]
    for raw in statements(n):
        if len(out[-1]) == STREAM_BATCH:
            out.append([])
        out[-1].append(raw)
    return out


def measure(n: int, suite: suites.Suite, profile: cProfile.Profile | None) -> dict[str, Any]:
    created = 1_700_000_000_000  # the harness's clock starts after it
    alpha, beta = (PrivateIdentity.generate(p, created=created, suite=suite)
                   for p in ("alpha", "beta"))
    with tempfile.TemporaryDirectory() as root, \
            open_pair(Path(root), alpha, beta, chunk_items=4096) as h:
        for party in (h.alpha, h.beta):
            wire.sql(party.engine).execute("PRAGMA synchronous=FULL")
        wire.submit(h.beta.engine, "manifest", "alpha", list(iter_items(n)), doc_id=DOC)
        h.courier.settle()
        engine, batches = h.alpha.engine, _batches(n)
        if profile is not None:
            profile.enable()
        t = time.process_time()
        streamed = engine.begin_ack_stream(DOC, {})
        for batch in batches:
            engine.ack_stream_items(streamed, batch)
        add = time.process_time() - t
        t = time.process_time()
        answer = engine.finish_ack_stream(streamed)
        finish = time.process_time() - t
        if profile is not None:
            profile.disable()
        t = time.process_time()
        for pending in wire.pending_batch(engine, "beta", 1 << 20):
            reply = h.beta.engine.receive_envelope(pending.data)
            engine.tried(pending.row, reply.body, "in process", frozenset())
        applied = time.process_time() - t
        acknowledged = wire.document(h.beta.engine, DOC, "out")["items"]["acknowledged"]
        assert answer["items"] == n + n // 1000 and acknowledged == n, (answer, acknowledged)
    return {"items": n, "statements": answer["items"], "suite": suite.number,
            "batches_cpu_seconds": round(add, 3), "finish_cpu_seconds": round(finish, 3),
            "total_cpu_seconds": round(add + finish, 3),
            "peer_applies_cpu_seconds": round(applied, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--suite", type=int, choices=(1, 2), default=1)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print the N functions of most own time (batches and finish)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    suite = suites.SUITE_2 if args.suite == 2 else suites.SUITE_1
    profile = cProfile.Profile() if args.profile else None
    print_figures(measure(args.items, suite, profile), as_json=args.json)
    if profile is not None:
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.profile)
        print(text.getvalue(), file=sys.stderr)  # stdout: the figures alone


if __name__ == "__main__":
    main()
