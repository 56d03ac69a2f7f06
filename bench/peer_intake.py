"""What one daemon's peer endpoint can answer a second from one sender: the figure its
``[limits] requests_per_second`` is weighed against (README, "Security limits").

    python bench/peer_intake.py [--seconds 10] [--connections 4] [--suite 2] [--json]

A real envelope of alpha's is taken from its outbox (queued while beta was not running), then
beta alone runs with its rate limit out of the way and is sent, over ``--connections`` kept
connections at once, for ``--seconds`` each:

- ``forged``: that envelope with its last byte changed (claimed by the pinned peer alpha, so
  charged to alpha's bucket; refused after its signature fails: the work a forger makes us do);
- ``replayed``: the envelope itself (accepted once, then answered as a duplicate with the
  stored receipt: the work a sender that retries makes us do).

Prints requests a second, the HTTP statuses, and beta's CPU milliseconds per request.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import cpu_seconds

from bridge.daemon.pair import LOOPBACK, Node, make_pair
from bridge.home.config import Limits

ENVELOPE_TYPE = "application/vnd.bridge.envelope"
OPEN = Limits(requests_per_second=1e6, burst=1_000_000, max_connections=256)


def queued_envelope(alpha: Node) -> bytes:
    """alpha's first envelope to beta, queued while beta is away."""
    alpha.start()
    try:
        alpha.client.submit_document("manifest", "beta", [{"id": "P-1", "kind": "person"}],
                                     id="INTAKE-1")
        with sqlite3.connect(f"file:{alpha.home.db_path}?mode=ro", uri=True) as con:
            (data,) = con.execute("SELECT envelope FROM outbox_sent WHERE peer='beta' AND seq=1"
                                  ).fetchone()
    finally:
        alpha.stop()
    return bytes(data)


def flood(port: int, body: bytes, seconds: float, connections: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def post() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        seen: Counter[int] = Counter()
        while time.monotonic() < until:
            conn.request("POST", "/v1/envelopes", body=body,
                         headers={"Content-Type": ENVELOPE_TYPE})
            resp = conn.getresponse()
            resp.read()
            seen[resp.status] += 1
            if resp.will_close:
                conn.close()
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        conn.close()
        with lock:
            statuses.update(seen)

    threads = [threading.Thread(target=post) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def run(seconds: float, connections: int, suite: int) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": seconds, "connections": connections, "suite": suite}
    with tempfile.TemporaryDirectory(prefix="bridge-intake-") as tmp:
        alpha, beta = make_pair(Path(tmp), suites=(suite, suite))
        genuine = queued_envelope(alpha)
        beta.home.write_config(dataclasses.replace(beta.home.config(), limits=OPEN))
        beta.start()
        try:
            assert beta.port is not None
            cases = {"forged": genuine[:-1] + bytes([genuine[-1] ^ 0x01]), "replayed": genuine}
            for name, body in cases.items():
                cpu0 = cpu_seconds(beta)
                statuses = flood(beta.port, body, seconds, connections)
                cpu = cpu_seconds(beta) - cpu0
                total = sum(statuses.values())
                out[name] = {"per_second": round(total / seconds, 1),
                             "statuses": dict(sorted(statuses.items())),
                             "cpu_ms_per_request": round(cpu * 1000 / max(1, total), 3)}
        finally:
            beta.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--suite", type=int, choices=(1, 2), default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.seconds, args.connections, args.suite)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>12}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
