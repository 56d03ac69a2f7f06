"""One streamed submission to a real daemon, from the first byte to its 202: wall and CPU.

    .venv/bin/python bench/submit_stream.py [--items 100000] [--repeat 3] [--json]

Starts one daemon (its peer need not run: nothing is delivered before the clock stops),
streams a 10,000-item manifest first (the processes that check large streams beside the
daemon start then, as at a daemon's first large stream), then ``--repeat`` manifests of
``--items`` synthetic items (``workload``) through ``bridge.client``, msgpack, as ``bridge
send`` streams. Prints each run's wall seconds and the daemon's CPU seconds with its helper
processes' (``e2e.cpu_seconds``), and their medians. Compare a change with the code before it
run in turn with it: the machine's speed drifts. A measurement, never a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import cpu_seconds
from workload import iter_items

from bridge.client import BridgeClient
from bridge.daemon.pair import make_pair

WARM_UP = 10_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bridge-submit-") as tmp:
        alpha, _beta = make_pair(Path(tmp))
        alpha.start()
        try:
            client = BridgeClient(alpha.home.socket_path, timeout=3600)
            client.submit_document_stream("manifest", "beta", iter_items(WARM_UP),
                                          count=WARM_UP, id="M-WARM")
            for k in range(args.repeat):
                cpu0, t0 = cpu_seconds(alpha), time.perf_counter()
                client.submit_document_stream("manifest", "beta", iter_items(args.items),
                                              count=args.items, id=f"M-{k}")
                runs.append((time.perf_counter() - t0, cpu_seconds(alpha) - cpu0))
            helpers_mb = alpha.helpers_peak_rss_mb
            daemon_mb = alpha.peak_rss_mb or 0
        finally:
            alpha.stop()
    result = {"items": args.items, "wall_seconds": [round(w, 3) for w, _ in runs],
              "cpu_seconds": [round(c, 2) for _, c in runs],
              "median_wall_seconds": round(statistics.median(w for w, _ in runs), 3),
              "median_cpu_seconds": round(statistics.median(c for _, c in runs), 2),
              "daemon_peak_rss_mb": round(daemon_mb, 1),
              "helpers_peak_rss_mb": round(helpers_mb, 1)}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
