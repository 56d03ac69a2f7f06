"""The hub: many pairs through one mediator's relay at once.

    python bench/hub.py --pairs 10 --items 10000 [--json]

One relay (``bridge relay init`` for every party, ``relay run``: a real nats-server on
loopback), then ``--pairs`` pairs of daemons joined to it (none listening on any port); every
pair's sender submits an N-item manifest at the same moment, its receiver acknowledges every
item, and each pair's clock stops when its sender sees all N acknowledged. Prints each pair's
time and the total throughput (items acknowledged end to end, per second, over all pairs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import wait_event
from workload import manifest_items

from bridge.cli.demo_relay import DemoRelay
from bridge.daemon.pair import Node, make_relay_pair


def one_pair(a: Node, b: Node, items: list[dict], timeout: float, start: threading.Event,
             out: dict[str, float]) -> None:
    # From the first event: a stream opens when it is first read, after the submission,
    # and a small document is received (and acknowledged) before that.
    sender = a.client.events(0, read_timeout=timeout)
    receiver = b.client.events(0, read_timeout=timeout)
    start.wait()
    t0 = time.perf_counter()
    doc = a.client.submit_document("manifest", b.party, items, meta={"batch": 1}, id="M-HUB")
    wait_event(receiver, "document_received", doc["id"])
    b.client.acknowledge(doc["id"], all="RECEIVED")
    wait_event(sender, "document_acknowledged", doc["id"])
    out[f"{a.party}->{b.party}"] = time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = [(f"s{i}", f"r{i}") for i in range(args.pairs)]
    items = manifest_items(args.items)
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bridge-hub-") as tmp:
        root = Path(tmp)
        relay = DemoRelay(root / "mediator", tuple(n for pair in names for n in pair))
        relay.start()
        nodes: list[Node] = []
        try:
            for s, r in names:
                a, b = make_relay_pair(root / s, relay.url,
                                       {s: relay.creds(s), r: relay.creds(r)}, names=(s, r))
                nodes += [a, b]
                a.start()
                b.start()
            start = threading.Event()
            threads = [threading.Thread(target=one_pair, args=(nodes[i], nodes[i + 1], items,
                                                               args.timeout, start, times))
                       for i in range(0, len(nodes), 2)]
            for thread in threads:
                thread.start()
            t0 = time.perf_counter()
            start.set()
            for thread in threads:
                thread.join()
            total = time.perf_counter() - t0
        finally:
            for node in nodes:
                node.stop()
            relay.stop()
    result = {"pairs": args.pairs, "items_per_pair": args.items,
              "total_seconds": round(total, 3),
              "items_per_second": round(args.pairs * args.items / total, 1),
              "pair_seconds": {k: round(v, 3) for k, v in sorted(times.items())}}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>17}: {value}")
    return 0 if len(times) == args.pairs else 1


if __name__ == "__main__":
    sys.exit(main())
