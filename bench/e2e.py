"""End-to-end throughput and memory: two real daemons on loopback.

    python bench/e2e.py --items 100000 [--json] [--transport relay]

With ``--transport relay`` the same run measures the pair twice: delivering directly over HTTP,
then through the mediator's relay (``bridge relay init`` and ``relay run``: a real nats-server
on loopback, the daemons listening on no port), and prints both times and their ratio (the
target: the relay at most 1.3 x the direct time).

Starts two daemons (subprocesses), submits an N-item manifest through the sender's socket, has
the receiver acknowledge every item through its own socket, and stops the clock when the
sender's status shows all N acknowledged. In the same run it measures the floor: the same work
in one process with no network and no daemon (encode, seal, open, sign, verify, Merkle, and the
SQLite inserts and updates of N rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import manifest_items

from bridge.cli.demo_relay import DemoRelay
from bridge.core import chunks, codec, documents, envelope, merkle
from bridge.core.crypto.identity import Keyring, PrivateIdentity
from bridge.core.documents import AckItem, Item
from bridge.daemon.pair import Node, make_pair, make_relay_pair


def wait_for(predicate, timeout: float, interval: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not reached")


def wait_event(events, kind: str, doc_id: str) -> None:  # type: ignore[no-untyped-def]
    for event in events:
        if event.type == kind and event.data.get("id") == doc_id:
            return
    raise RuntimeError(f"event stream ended before {kind}")


def floor(items: list[dict], root: Path) -> float:
    """The same cryptographic and storage work, in one process, no network, no daemons."""
    a = PrivateIdentity.generate("alpha", created=1)
    b = PrivateIdentity.generate("beta", created=1)
    now = int(time.time() * 1000)  # signed times lie in a window (PROTOCOL.md §3, Ranges)
    t0 = time.perf_counter()
    doc = documents.sign_document(
        a, doc_type="manifest", doc_id="M-floor", recipient="beta", created=now, meta={},
        items=[Item(id=i["id"], data={k: v for k, v in i.items() if k != "id"}) for i in items],
        salt_key=os.urandom(32))
    payload = codec.encode(doc.to_map())
    env = envelope.seal(a, b.public, message_id=os.urandom(16), seq=1, prev=bytes(32),
                        sent_at=now, kind="chunk", payload=payload)
    opened = envelope.open_envelope(b, Keyring.of([a.public]), env.data,
                                    limits=codec.Limits(max_bytes=1 << 28, max_items=1 << 20))
    got = documents.SignedDocument.parse(codec.decode(opened.payload, codec.Limits(
        max_bytes=1 << 28, max_items=1 << 20)))
    got.check(Keyring.of([a.public]))
    lh = {e.item_id: merkle.leaf_hash(got.leaves[e.index]) for e in got.declared_entries()}
    ack = documents.sign_ack(b, answers=got.signed, ack_id="A-floor", created=now + 1,
                             items=[AckItem(id=i, status="RECEIVED") for i in lh],
                             declared_leaf_hashes=lh, salt_key=os.urandom(32))
    ack_env = envelope.seal(b, a.public, message_id=os.urandom(16), seq=1, prev=bytes(32),
                            sent_at=now + 1, kind="chunk",
                            payload=codec.encode(ack.to_map()))
    ack_open = envelope.open_envelope(a, Keyring.of([b.public]), ack_env.data,
                                      limits=codec.Limits(max_bytes=1 << 28, max_items=1 << 20))
    ack_doc = documents.SignedDocument.parse(codec.decode(ack_open.payload, codec.Limits(
        max_bytes=1 << 28, max_items=1 << 20)))
    ack_doc.check(Keyring.of([b.public]))
    entries = ack_doc.ack_entries()
    db = sqlite3.connect(str(root / "floor.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (doc INTEGER, idx INTEGER, item_id TEXT, leaf BLOB, "
               "status TEXT, PRIMARY KEY (doc, idx)) WITHOUT ROWID")
    db.execute("BEGIN")
    db.executemany("INSERT INTO t VALUES (1, ?, ?, ?, NULL)",
                   ((n, e, leaf) for n, (e, leaf) in enumerate(zip(lh, got.leaves,
                                                                    strict=True))))
    db.execute("COMMIT")
    db.execute("BEGIN")
    db.executemany("UPDATE t SET status=? WHERE doc=1 AND idx=?",
                   ((e.status, e.index) for e in entries))
    db.execute("COMMIT")
    db.close()
    _ = chunks  # the daemon also proves each chunk; the floor proves the whole root once
    return time.perf_counter() - t0


def exchange(a: Node, b: Node, items: list[dict], timeout: float
             ) -> tuple[float, float, float, float | None, float | None, bool]:
    """Submit, receive, acknowledge every item: (e2e, submit, received, the two peak RSS, both
    daemons exited cleanly)."""
    a.start()
    b.start()
    try:
        sender_events = a.client.events(read_timeout=timeout)
        receiver_events = b.client.events(read_timeout=timeout)
        t0 = time.perf_counter()
        doc = a.client.submit_document("manifest", "beta", items, meta={"batch": 1},
                                       id="M-E2E")
        t_submit = time.perf_counter() - t0
        wait_event(receiver_events, "document_received", doc["id"])
        t_recv = time.perf_counter() - t0
        b.client.acknowledge(doc["id"], all="RECEIVED")
        wait_event(sender_events, "document_acknowledged", doc["id"])
        e2e = time.perf_counter() - t0
        status = a.client.document(doc["id"])
        assert status["items"]["acknowledged"] == len(items), status
        rss_a, rss_b = a.peak_rss_mb, b.peak_rss_mb
    finally:
        code_a, code_b = a.stop(), b.stop()
    return e2e, t_submit, t_recv, rss_a, rss_b, code_a == 0 and code_b == 0


def through_relay(root: Path, items: list[dict], timeout: float) -> float:
    """The same exchange through the mediator's relay; its end-to-end seconds."""
    relay = DemoRelay(root / "mediator", ("alpha", "beta"))
    relay.start()
    try:
        a, b = make_relay_pair(root / "relay", relay.url,
                               {n: relay.creds(n) for n in ("alpha", "beta")})
        e2e, *_ = exchange(a, b, items, timeout)
    finally:
        relay.stop()
    return e2e


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--transport", choices=("http", "relay"), default="http",
                        help="relay: measure the direct HTTP pair and then the relay, and "
                             "print their ratio")
    args = parser.parse_args()
    items = manifest_items(args.items)
    with tempfile.TemporaryDirectory(prefix="bridge-e2e-") as tmp:
        root = Path(tmp)
        floor_s = floor(items, root)
        a, b = make_pair(root)
        e2e, t_submit, t_recv, rss_a, rss_b, clean = exchange(a, b, items, args.timeout)
        relay_s = through_relay(root, items, args.timeout) if args.transport == "relay" else None
    result = {
        "items": args.items,
        "e2e_seconds": round(e2e, 3),
        "floor_seconds": round(floor_s, 3),
        "ratio": round(e2e / floor_s, 2),
        "submit_seconds": round(t_submit, 3),
        "received_seconds": round(t_recv, 3),
        "sender_peak_rss_mb": round(rss_a or 0, 1),
        "receiver_peak_rss_mb": round(rss_b or 0, 1),
        "clean_exit": clean,
    }
    if relay_s is not None:
        result["relay_e2e_seconds"] = round(relay_s, 3)
        result["relay_over_http"] = round(relay_s / e2e, 2)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
        peak = max(result["sender_peak_rss_mb"], result["receiver_peak_rss_mb"])
        print(f"target e2e <= 2 x floor: {'PASS' if result['ratio'] <= 2 else 'MISS'}; "
              f"peak RSS < 250 MB: {'PASS' if peak < 250 else 'MISS'}")
        if relay_s is not None:
            ratio = result["relay_over_http"]
            print(f"target relay <= 1.3 x direct: {'PASS' if ratio <= 1.3 else 'MISS'} "
                  f"({ratio} x)")
    return 0


def _exists(node, doc_id: str) -> bool:  # type: ignore[no-untyped-def]
    from bridge.client import ApiError

    try:
        node.client.document(doc_id, direction="in")
        return True
    except ApiError:
        return False


if __name__ == "__main__":
    sys.exit(main())
