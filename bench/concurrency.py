"""Round trips under load: 8 clients on each side at once, each submitting a one-item manifest
to the other side and waiting until the acknowledged status is visible at its own side; 8
more on each side acknowledge what arrives. Two real daemons on loopback, for ``--seconds``.
Prints the distribution of round trips (p50/p90/p99/max), in milliseconds, and how many were
still in flight at the end (waited for, at most 60 s, before any is counted as an error).

    python bench/concurrency.py [--seconds 60] [--clients 8] [--in-flight 8] [--suite 2]
                                [--rate R] [--burst B] [--json] [--profile]

``--profile`` samples both daemons with py-spy and prints their top lines. ``--rate`` and
``--burst`` set both daemons' peer endpoint limit ([limits] requests_per_second, burst): below
what the link carries, they show how the sender keeps to a peer's pace (its 429s).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import cpu_seconds, print_profile, spy

from bridge.client import ApiError
from bridge.daemon.pair import Node, make_pair
from bridge.home.config import Delivery, Limits


class Side:
    """One daemon: who waits for which acknowledgement, and what arrived to acknowledge."""

    def __init__(self, node: Node, peer: str) -> None:
        self.node = node
        self.peer = peer
        self.waiting: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.arrived: Queue[str] = Queue()

    def follow(self) -> None:
        for event in self.node.client.events(read_timeout=120):
            if event.type == "document_received":
                self.arrived.put(event.data["id"])
            elif event.type == "document_acknowledged":
                with self.lock:
                    done = self.waiting.pop(event.data["id"], None)
                if done is not None:
                    done.set()


def submitter(side: Side, name: str, until: float, samples: list[float],
              errors: list[str]) -> None:
    n = 0
    client = side.node.client  # one per client thread, as an application holds one
    while time.monotonic() < until:
        doc_id = f"CC-{side.node.party}-{name}-{n:06d}"
        n += 1
        done = threading.Event()
        with side.lock:
            side.waiting[doc_id] = done
        t0 = time.perf_counter()
        try:
            client.submit_document("manifest", side.peer,
                                             [{"id": "P-1", "kind": "person"}], id=doc_id)
        except ApiError as exc:
            errors.append(f"{doc_id}: {exc}")
            continue
        if not done.wait(timeout=ROUND_TRIP_WAIT):
            with side.lock:
                side.waiting.pop(doc_id, None)  # given up on: nothing waits for it now
            errors.append(f"{doc_id}: no acknowledgement within {ROUND_TRIP_WAIT:g} s")
            continue
        samples.append(time.perf_counter() - t0)


ROUND_TRIP_WAIT = 60.0
"""Seconds a submitter waits for its acknowledgement: also how long after the end the
acknowledgers keep going for the round trips still in flight."""


def unanswered(sides: tuple[Side, ...]) -> int:
    """Round trips submitted whose acknowledgement has not come back yet."""
    return sum(len(side.waiting) for side in sides)


def acknowledger(side: Side, sides: tuple[Side, ...], until: float, errors: list[str]) -> None:
    """Acknowledges what arrives at ``side`` until the end, and after it for as long as a
    round trip of either side is in flight (at most ``ROUND_TRIP_WAIT`` more): stopping at the
    first quiet second after the end counted a pause of the link there as round trips lost."""
    client = side.node.client
    while time.monotonic() < until + ROUND_TRIP_WAIT + 1:
        try:
            doc_id = side.arrived.get(timeout=0.2)
        except Empty:
            if time.monotonic() >= until and not unanswered(sides):
                return
            continue
        try:
            client.acknowledge(doc_id, all="RECEIVED")
        except ApiError as exc:
            errors.append(f"ack {doc_id}: {exc}")


def counters(node: Node, names: tuple[str, ...]) -> dict[str, float]:
    """The daemon's counters ``names`` from its /metrics (0 for one never counted)."""
    seen = dict.fromkeys(names, 0.0)
    for line in node.client.metrics().splitlines():
        for name in names:
            if line.startswith(f"bridge_{name}_total{{"):
                seen[name] = float(line.rsplit(" ", 1)[1])
    return seen


def commits(node: Node) -> dict[str, float]:
    """The database thread's groups (one commit each) and the operations in them
    (bridge/daemon/dbthread.py), from the daemon's /metrics."""
    seen = counters(node, ("store_groups", "store_grouped_operations"))
    groups, ops = seen["store_groups"], seen["store_grouped_operations"]
    return {"group_commits": groups, "grouped_operations": ops,
            "operations_per_commit": round(ops / groups, 2) if groups else 0.0}


# What makes a round trip wait seconds rather than milliseconds: the peer endpoint's rate
# limit (429: each direction carries one envelope per round trip, and [limits]
# requests_per_second bounds them), an envelope held for one that it overtook, a retry.
WAITS = ("peer_rate_limited", "envelopes_held", "delivery_retries", "delivery_busy")


def percentile(ms: list[float], p: float) -> float:
    return round(ms[min(len(ms) - 1, max(0, int(len(ms) * p) - 1))], 2)


def run(seconds: float, clients: int, in_flight: int, suite: int = 2, profile: bool = False,
        limits: Limits | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bridge-concurrency-") as tmp:
        a, b = make_pair(Path(tmp), delivery=Delivery(in_flight=in_flight),
                         suites=(suite, suite))
        for node in (a, b) if limits is not None else ():
            node.home.write_config(dataclasses.replace(node.home.config(), limits=limits))
        a.start()
        b.start()
        spies = [spy(node, Path(tmp) / f"profile-{node.party}.txt") for node in (a, b)] \
            if profile else []
        sides = (Side(a, b.party), Side(b, a.party))
        samples: list[float] = []
        errors: list[str] = []
        grouping: dict[str, dict[str, float]] = {}
        at_end = 0
        waits: dict[str, dict[str, float]] = {}
        try:
            for side in sides:
                threading.Thread(target=side.follow, daemon=True).start()
            time.sleep(0.3)  # let both event streams attach
            cpu0 = [cpu_seconds(node) for node in (a, b)]
            until = time.monotonic() + seconds
            threads = [threading.Thread(target=submitter,
                                        args=(side, f"c{k}", until, samples, errors))
                       for side in sides for k in range(clients)]
            threads += [threading.Thread(target=acknowledger, args=(side, sides, until, errors))
                        for side in sides for _ in range(clients)]
            for t in threads:
                t.start()
            time.sleep(max(0.0, until - time.monotonic()))
            at_end = unanswered(sides)  # waited for below, before any is counted an error
            for t in threads:
                t.join()
            cpu = [cpu_seconds(node) - c for node, c in zip((a, b), cpu0, strict=True)]
            grouping = {node.party: commits(node) for node in (a, b)}
            waits = {node.party: counters(node, WAITS) for node in (a, b)}
        finally:
            for s in spies:
                s.send_signal(2)  # SIGINT: py-spy writes what it sampled
                s.wait(timeout=30)
            a.stop()
            b.stop()
        for node in (a, b) if profile else ():
            print_profile(Path(tmp) / f"profile-{node.party}.txt", node.party)
    ms = sorted(s * 1000 for s in samples)
    if not ms:
        return {"round_trips": 0, "errors": errors[:5]}
    return {"seconds": seconds, "clients_per_side": clients, "in_flight": in_flight,
            "suite": suite,
            "round_trips": len(ms),
            "per_second": round(len(ms) / seconds, 1),
            "p50_ms": round(statistics.median(ms), 2), "p90_ms": percentile(ms, 0.90),
            "p99_ms": percentile(ms, 0.99), "max_ms": round(ms[-1], 2),
            "in_flight_at_end": at_end,
            "errors": len(errors), "first_errors": errors[:3], "commits": grouping,
            "waits": waits,
            # CPU each daemon spent per round trip: the round trips a second two cores allow.
            "cpu_ms_per_round_trip": {node.party: round(c * 1000 / len(ms), 2)
                                      for node, c in zip((a, b), cpu, strict=True)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8, help="submitters (and as many "
                        "acknowledgers) on each side")
    parser.add_argument("--in-flight", type=int, default=Delivery().in_flight,
                        help="envelopes in flight to a peer ([delivery] in_flight)")
    parser.add_argument("--suite", type=int, choices=(1, 2), default=2,
                        help="both parties' key suite (PROTOCOL.md §3.1)")
    parser.add_argument("--rate", type=float, default=Limits().requests_per_second,
                        help="both peer endpoints' [limits] requests_per_second")
    parser.add_argument("--burst", type=int, default=Limits().burst,
                        help="both peer endpoints' [limits] burst")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true", help="sample both daemons (py-spy)")
    args = parser.parse_args()
    limits = Limits(requests_per_second=args.rate, burst=args.burst)
    result = run(args.seconds, args.clients, args.in_flight, args.suite, args.profile,
                 None if limits == Limits() else limits)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")
        p99 = result.get("p99_ms")
        print(f"target p99 < 100 ms: {'PASS' if p99 is not None and p99 < 100 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
