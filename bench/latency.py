"""Single-item round-trip latency: submit a one-item manifest at the sender, acknowledge it at
the receiver as soon as it arrives, and stop the clock when the acknowledged status is visible
at the sender. Two real daemons on loopback.

    python bench/latency.py [--rounds 200] [--suite 2] [--json] [--profile]

Besides the distribution it prints the CPU milliseconds each daemon and this process spent
per round trip: on a shared machine the steadier measure, and the part of the wall time that
is work rather than waiting (the rest is waiting: for the disk, for a wake-up, for a core).
``--profile`` samples both daemons with py-spy (the thread holding the GIL: where the Python
CPU goes) and prints their top lines.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Queue

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import cpu_seconds, print_profile, spy

from bridge.daemon.pair import make_pair


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--suite", type=int, choices=(1, 2), default=2,
                        help="both parties' key suite (PROTOCOL.md §3.1)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true", help="sample both daemons (py-spy)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bridge-latency-") as tmp:
        a, b = make_pair(Path(tmp), suites=(args.suite, args.suite))
        a.start()
        b.start()
        spies = [spy(node, Path(tmp) / f"profile-{node.party}.txt", gil=True)
                 for node in (a, b)] \
            if args.profile else []
        try:
            received: Queue[str] = Queue()
            acknowledged: Queue[str] = Queue()

            def pump(node, kind: str, queue: Queue[str]) -> None:  # type: ignore[no-untyped-def]
                for event in node.client.events(read_timeout=60):
                    if event.type == kind:
                        queue.put(event.data["id"])

            # One client a side, as an application holds one: its connections are kept.
            ca, cb = a.client, b.client
            for node, kind, queue in ((b, "document_received", received),
                                      (a, "document_acknowledged", acknowledged)):
                threading.Thread(target=pump, args=(node, kind, queue), daemon=True).start()
            time.sleep(0.3)  # let both streams attach
            samples = []
            cpu0 = [cpu_seconds(a), cpu_seconds(b), own_cpu_seconds()]
            for n in range(args.rounds):
                doc_id = f"LAT-{n:05d}"
                t0 = time.perf_counter()
                ca.submit_document("manifest", "beta",
                                         [{"id": "P-1", "kind": "person"}], id=doc_id)
                while received.get(timeout=30) != doc_id:
                    pass
                cb.acknowledge(doc_id, all="RECEIVED")
                while acknowledged.get(timeout=30) != doc_id:
                    pass
                samples.append(time.perf_counter() - t0)
            cpu = [after - before for after, before in
                   zip((cpu_seconds(a), cpu_seconds(b), own_cpu_seconds()), cpu0, strict=True)]
        finally:
            for s in spies:
                s.send_signal(2)  # SIGINT: py-spy writes what it sampled
                s.wait(timeout=30)
            a.stop()
            b.stop()
        for node in (a, b) if args.profile else ():
            print_profile(Path(tmp) / f"profile-{node.party}.txt", node.party, top=40)
    ms = sorted(s * 1000 for s in samples)
    result = {"rounds": len(ms), "median_ms": round(statistics.median(ms), 2),
              "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 2),
              "p99_ms": round(ms[max(0, int(len(ms) * 0.99) - 1)], 2), "min_ms": round(ms[0], 2),
              "max_ms": round(ms[-1], 2),
              "cpu_ms_per_round": {who: round(seconds * 1000 / len(ms), 2) for who, seconds
                                   in zip(("alpha", "beta", "bench"), cpu, strict=True)}}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>10}: {value}")
        met = result["median_ms"] < 10 and result["p99_ms"] < 25
        print(f"target median < 10 ms, p99 < 25 ms: {'PASS' if met else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
