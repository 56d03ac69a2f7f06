"""The acknowledge phase alone, in one process: the receiver's acknowledgement of all items of
a delivered manifest (its entries, statuses, signature and sealed chunks), then the sender
opening and applying each chunk of it, and the receiver taking each signed answer.

    python bench/ack_phase.py --items 100000 [--chunk 5000] [--suite 2] [--json]
    python bench/ack_phase.py --items 100000 --profile 25   # and cProfile's top 25 of each side

Two real engines (``tests/harness``: their own homes and SQLite store files, synchronous=FULL
as the daemon runs them) and no network, so the CPU seconds are the two sides' own work on the
phase between the receiver's ``document_received`` and the sender's ``document_acknowledged``:
what ``bench/e2e.py`` reports as ``phase_cpu_seconds.acknowledge``, without the daemons' other
work and much steadier on a shared machine. ``receiver_acknowledge`` is the acknowledgement
made and committed; ``receiver_answers`` the transport receipts of its envelopes taken back.
The deliver phase before it is ``bench/deliver.py``'s. Synthetic records (``workload.py``). A
measurement, never a test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deliver import submitted
from harness import wire
from workload import print_figures

from bridge.core.crypto import suites

T = TypeVar("T")


class Side:
    """One party's CPU seconds, and its cProfile when asked for."""

    def __init__(self, profile: bool) -> None:
        self.seconds = 0.0
        self.profile = cProfile.Profile() if profile else None

    def run(self, call: Callable[[], T]) -> T:
        t = time.process_time()
        if self.profile is not None:
            self.profile.enable()
        try:
            return call()
        finally:
            if self.profile is not None:
                self.profile.disable()
            self.seconds += time.process_time() - t

    def top(self, n: int) -> str:
        assert self.profile is not None
        out = io.StringIO()
        pstats.Stats(self.profile, stream=out).sort_stats("tottime").print_stats(n)
        return out.getvalue()


def measure(n: int, chunk: int, suite: suites.Suite, profile: int) -> dict[str, Any]:
    with submitted(n, chunk, suite) as h:
        for pending in wire.pending_batch(h.alpha.engine, "beta", 1 << 20):
            answer = h.beta.engine.receive_envelope(pending.data)
            h.alpha.engine.tried(pending.row, answer.body, "in process", frozenset())
        assert wire.document(h.beta.engine, "M-1", "in")["state"] == "received"
        for party in (h.alpha, h.beta):  # as the daemon does at start: every status holds,
            party.engine.check_store()    # so no chunk reads the signed history again
        acknowledging, answers, sender = (Side(profile > 0) for _ in range(3))
        wall = time.perf_counter()
        acknowledging.run(lambda: wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED"))
        for pending in wire.pending_batch(h.beta.engine, "alpha", 1 << 20):
            answer = sender.run(lambda p=pending: h.alpha.engine.receive_envelope(p.data))
            outcome = answers.run(lambda p=pending, a=answer: h.beta.engine.tried(
                p.row, a.body, "in process", frozenset()))
            assert outcome.state == "delivered", outcome
        wall = time.perf_counter() - wall
        assert wire.document(h.alpha.engine, "M-1", "out")["state"] == "acknowledged"
        if profile:
            for name, side in (("receiver acknowledge", acknowledging), ("sender", sender),
                               ("receiver answers", answers)):
                print(f"--- {name}\n{side.top(profile)}", file=sys.stderr)
    return {"items": n, "chunk_items": chunk, "suite": suite.number,
            "receiver_acknowledge_cpu_seconds": round(acknowledging.seconds, 3),
            "receiver_answers_cpu_seconds": round(answers.seconds, 3),
            "sender_cpu_seconds": round(sender.seconds, 3), "wall_seconds": round(wall, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in (("--items", 100_000), ("--chunk", 5000), ("--suite", 2)):
        ap.add_argument(flag, type=int, default=default)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print cProfile's top N functions of each side (to stderr)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    suite = suites.SUITE_2 if args.suite == 2 else suites.SUITE_1
    print_figures(measure(args.items, args.chunk, suite, args.profile), as_json=args.json)


if __name__ == "__main__":
    main()
