"""End-to-end throughput and memory: two real daemons on loopback.

    python bench/e2e.py --items 100000 [--json] [--suites 1,2] [--transport relay]
    python bench/e2e.py --sizes 10000,100000,1000000 --floor-script FLOOR.py [--json]
    python bench/e2e.py --items 100000 --profile      # and both daemons sampled by py-spy
    python bench/e2e.py --items 100000 --profile DIR  # ... keeping the raw samples in DIR
    python bench/e2e.py --sizes 100000,1000000 --shuffled-ids  # item ids in no order
    python bench/e2e.py --items 100000 --warm 10000   # after a first, unmeasured exchange
    python bench/e2e.py --transport relay --relay-delay-ms 25  # ... and a broker far away

With ``--warm N`` each pair first exchanges an N-item manifest in full, unmeasured, and the
clock starts once the processes each daemon starts beside it (at its first large stream or
chunk) are up: the steady state of a daemon that has run for a while. Without it, the figures
include that start.

With ``--transport relay`` the same run measures each pair twice: delivering directly over
HTTP, then through the mediator's relay (``bridge relay init`` and ``relay run``: a real
nats-server on loopback, the daemons listening on no port), and prints both times and their
ratio (the target: the relay at most 1.3 x the direct time).

Starts two daemons (subprocesses), submits an N-item manifest through the sender's socket, has
the receiver acknowledge every item through its own socket, and stops the clock when the
sender's status shows all N acknowledged (and a per-item receipt is exported). Each daemon's
CPU time over the exchange is printed beside it (steadier than the clock on a busy machine),
the processes it started to check a streamed submission counted in, and their peak RSS
apart, added up (``*_helpers_peak_rss_mb``).
The manifest is submitted as a stream from a generator. In the same run it measures the floor: with
``--floor-script``, the floor benchmark given (run here, in the same process tree), else the same
work in one process with no network and no daemon (encode, seal, open, sign, verify, Merkle, and
the SQLite inserts and updates of N rows). It does so for each key suite (PROTOCOL.md §3.1; both
parties in that suite) and prints the suites side by side: the target is suite 2 end to end at
most 1.1 x suite 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slow_link import SlowLink
from workload import item_number, iter_items, manifest_items

from bridge.cli.demo_relay import DemoRelay
from bridge.client import BridgeClient
from bridge.core import chunks, codec, documents, envelope, merkle
from bridge.core.crypto import suites
from bridge.core.crypto.identity import Keyring, PrivateIdentity
from bridge.core.documents import AckItem, Item
from bridge.daemon.checkers import check_processes
from bridge.daemon.pair import Node, make_pair, make_relay_pair
from bridge.home.config import Delivery


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


def floor(items: list[dict], root: Path, suite: suites.Suite = suites.SUITE_1) -> float:
    """The same cryptographic and storage work, in one process, no network, no daemons."""
    a = PrivateIdentity.generate("alpha", created=1, suite=suite)
    b = PrivateIdentity.generate("beta", created=1, suite=suite)
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
    db = sqlite3.connect(str(root / f"floor-{len(items)}-{suite.number}.db"),
                         isolation_level=None)
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


def floor_script(path: str, n: int) -> float | None:
    """``floor_seconds`` of the floor benchmark at ``path`` (a script printing one JSON line),
    run here, in this process tree, for ``n`` items."""
    out = subprocess.run([sys.executable, path, str(n)], capture_output=True, text=True,
                         check=True, timeout=3600)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["floor_seconds"])


def profile_dir(args: argparse.Namespace, tmp: str) -> Path:
    """Where the daemons' samples go: ``--profile DIR``, else the run's temporary folder."""
    path = Path(args.profile or tmp)
    path.mkdir(parents=True, exist_ok=True)
    return path


def profile_name(party: str, n: int, suite: suites.Suite) -> str:
    return f"profile-{party}-{n}-{suite.number}.txt"


def exchange(n: int, root: Path, timeout: float, *, suite: suites.Suite,
             profile: Path | None = None, shuffled: bool = False, warm: int = 0
             ) -> dict[str, Any]:
    """One N-item manifest through two real daemons, both parties in ``suite``, delivering to
    each other's HTTP endpoint; with ``profile``, both sampled into files there."""
    a, b = make_pair(root / f"pair-{n}-{suite.number}", suites=(suite.number, suite.number))
    spied = ({node.party: profile / profile_name(node.party, n, suite) for node in (a, b)}
             if profile is not None else None)
    return exchange_between(a, b, n, root, timeout, profile=spied, shuffled=shuffled,
                            warm=warm) | {"suite": suite.number}


def through_relay(n: int, root: Path, timeout: float, suite: suites.Suite, *,
                  shuffled: bool = False, warm: int = 0, delay: float = 0.0,
                  in_flight: int | None = None) -> dict[str, Any]:
    """The same exchange through the mediator's relay; with ``delay``, each party's connection
    to the broker delays every byte that long each way (a broker far away, ``SlowLink``);
    with ``in_flight``, that many envelopes on their way at once (``[delivery] in_flight``)."""
    where = root / f"relay-{n}-{suite.number}-{int(delay * 1000)}-{in_flight}"
    relay = DemoRelay(where / "mediator", ("alpha", "beta"))
    relay.start()
    try:
        host, port = relay.url.removeprefix("nats://").rsplit(":", 1)
        with SlowLink((host, int(port)), delay) if delay else contextlib.nullcontext() as slow:
            url = f"nats://127.0.0.1:{slow}" if delay else relay.url
            a, b = make_relay_pair(where / "parties", url,
                                   {name: relay.creds(name) for name in ("alpha", "beta")},
                                   suite=suite.number,
                                   delivery=Delivery(in_flight=in_flight) if in_flight else None)
            return exchange_between(a, b, n, root, timeout, shuffled=shuffled, warm=warm)
    finally:
        relay.stop()


def exchange_between(a: Node, b: Node, n: int, root: Path, timeout: float, *,
                     profile: dict[str, Path] | None = None, shuffled: bool = False,
                     warm: int = 0) -> dict[str, Any]:
    """Submitted as a stream from a generator (never a list in this process either), every
    item acknowledged, receipt checked; with ``shuffled``, the item ids in no order
    (``workload.item_number``); with ``warm``, after an unmeasured exchange of that many."""
    spies: list[subprocess.Popen[bytes]] = []
    try:
        a.start(timeout=120)  # a loaded machine starts a daemon slowly; the clock is not on
        b.start(timeout=120)
        spies = [spy(node, profile[node.party]) for node in (a, b)] if profile else []
        # The commands of one exchange of a million items may take minutes each.
        ca, cb = (BridgeClient(node.home.socket_path, timeout=timeout) for node in (a, b))
        # From the first event: a stream opens when it is first read, after the submission,
        # and a small document is received (and acknowledged) before that.
        sender_events = ca.events(0, read_timeout=timeout)
        receiver_events = cb.events(0, read_timeout=timeout)
        if warm:
            warm_up(ca, cb, sender_events, receiver_events, warm)
        cpu0 = [cpu_seconds(node) for node in (a, b)]
        t0 = time.perf_counter()
        doc = ca.submit_document_stream("manifest", "beta", iter_items(n, shuffled=shuffled),
                                        count=n, meta={"batch": 1}, id="M-E2E")
        t_submit = time.perf_counter() - t0
        cpu_submitted = [cpu_seconds(node) for node in (a, b)]
        wait_event(receiver_events, "document_received", doc["id"])
        t_recv = time.perf_counter() - t0
        cpu_received = [cpu_seconds(node) for node in (a, b)]
        cb.acknowledge(doc["id"], all="RECEIVED")
        wait_event(sender_events, "document_acknowledged", doc["id"])
        e2e = time.perf_counter() - t0
        cpu_acknowledged = [cpu_seconds(node) for node in (a, b)]
        # Every item acknowledged on both sides, and one item's receipt (the last item of
        # the document) verified offline as a mediator would: ``bridge verify``.
        acknowledged = {side: client.document(doc["id"])["items"]["acknowledged"]
                        for side, client in (("sender", ca), ("receiver", cb))}
        assert acknowledged == {"sender": n, "receiver": n}, acknowledged
        last = item_number(n - 1, n, shuffled=shuffled)  # the document's last item
        receipt = ca.receipt(doc["id"], item=f"ITEM-{last:07d}")
        rss_a, rss_b = a.peak_rss_mb, b.peak_rss_mb
        helpers_a, helpers_b = a.helpers_peak_rss_mb, b.helpers_peak_rss_mb
        cpu_a, cpu_b = (cpu_seconds(node) - c for node, c in zip((a, b), cpu0, strict=True))
        verified = verify_receipt(receipt, root / f"receipt-{n}.bridge", (a, b))
    finally:
        for proc in spies:
            proc.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
            proc.wait(60)
        code_a, code_b = a.stop(), b.stop()
    return {"items": n, "e2e_seconds": round(e2e, 3),
            "submit_seconds": round(t_submit, 3),
            "received_seconds": round(t_recv, 3), "receipt_bytes": len(receipt),
            "sender_peak_rss_mb": round(rss_a or 0, 1),
            "receiver_peak_rss_mb": round(rss_b or 0, 1),
            # The processes each started beside it to check a streamed submission, added up.
            "sender_helpers_peak_rss_mb": round(helpers_a, 1),
            "receiver_helpers_peak_rss_mb": round(helpers_b, 1),
            "sender_cpu_seconds": round(cpu_a, 2), "receiver_cpu_seconds": round(cpu_b, 2),
            # Each phase's CPU seconds (sender, receiver): submitted, then received (sealed
            # chunks delivered and applied), then acknowledged. Steadier than the phases'
            # wall times on a shared machine.
            "phase_cpu_seconds": {
                phase: [round(y - x, 2) for x, y in zip(before, after, strict=True)]
                for phase, before, after in (
                    ("submit", cpu0, cpu_submitted), ("deliver", cpu_submitted, cpu_received),
                    ("acknowledge", cpu_received, cpu_acknowledged))},
            "acknowledged_both_sides": True, "receipt_verify": verified,
            "shuffled_ids": shuffled, "warmed_up_with": warm,
            "clean_exit": code_a == 0 and code_b == 0}


def warm_up(ca: BridgeClient, cb: BridgeClient, sender_events: Any, receiver_events: Any,
            n: int) -> None:
    """An ``n``-item manifest exchanged in full, then a wait until both daemons' checking
    processes are up (``bridge_check_processes_ready`` at ``check_processes()``)."""
    doc = ca.submit_document_stream("manifest", "beta", iter_items(n), count=n,
                                    meta={"batch": 0}, id="M-WARM")
    wait_event(receiver_events, "document_received", doc["id"])
    cb.acknowledge(doc["id"], all="RECEIVED")
    wait_event(sender_events, "document_acknowledged", doc["id"])
    wait_for(lambda: all(gauge(c, "check_processes_ready") >= check_processes()
                         for c in (ca, cb)), timeout=120, interval=0.1)


def gauge(client: BridgeClient, name: str) -> float:
    for line in client.metrics().splitlines():
        if line.startswith(f"bridge_{name}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def verify_receipt(receipt: bytes, path: Path, nodes: tuple[Node, Node]) -> str:
    """``bridge verify`` of the receipt with both parties' public keys: its first line."""
    path.write_bytes(receipt)
    keys = [arg for node in nodes
            for arg in ("--keys", str(node.home.public_key_path(node.party)))]
    out = subprocess.run([sys.executable, "-m", "bridge", "verify", str(path), *keys],
                         capture_output=True, text=True, check=False, timeout=600)
    first = (out.stdout.strip() or out.stderr.strip()).splitlines()[:1]
    if out.returncode != 0:
        raise RuntimeError(f"bridge verify refused the receipt: {out.stdout}{out.stderr}")
    return first[0] if first else "OK"


def one_size(n: int, root: Path, args: argparse.Namespace, suite: suites.Suite
             ) -> dict[str, Any]:
    if args.floor_script:
        floor_s = floor_script(args.floor_script, n)
    else:
        floor_s = floor(manifest_items(n), root, suite)
    row = exchange(n, root, args.timeout, suite=suite,
                   profile=profile_dir(args, str(root)) if args.profile is not None else None,
                   shuffled=args.shuffled_ids, warm=args.warm)
    row["floor_seconds"] = round(floor_s, 3) if floor_s else None
    row["ratio"] = round(row["e2e_seconds"] / floor_s, 2) if floor_s else None
    if args.transport == "relay":
        relay_s = through_relay(n, root, args.timeout, suite, shuffled=args.shuffled_ids,
                                warm=args.warm)["e2e_seconds"]
        row["relay_e2e_seconds"] = relay_s
        row["relay_over_http"] = round(relay_s / row["e2e_seconds"], 2)
        if args.relay_delay_ms:
            # A broker far away: the same relay behind a link of that latency, with the
            # default window and with one envelope at a time.
            delay = args.relay_delay_ms / 1000
            row["relay_delay_ms"] = args.relay_delay_ms
            for window in (None, 1):
                far = through_relay(n, root, args.timeout, suite, shuffled=args.shuffled_ids,
                                    warm=args.warm, delay=delay, in_flight=window)
                key = "far_relay_e2e_seconds" + ("_one_in_flight" if window else "")
                row[key] = far["e2e_seconds"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--sizes", help="comma-separated sizes: one row each (e.g. "
                        "10000,100000,1000000)")
    parser.add_argument("--floor-script", metavar="PATH",
                        help="the floor benchmark (a script taking N and printing JSON with "
                             "floor_seconds), run in the same process tree; without it, the "
                             "built-in floor below")
    parser.add_argument("--profile", nargs="?", const="", default=None, metavar="DIR",
                        help="sample both daemons with py-spy and print the top lines; with "
                             "DIR, keep each daemon's raw samples there "
                             "(profile-PARTY-N-SUITE.txt)")
    parser.add_argument("--shuffled-ids", action="store_true",
                        help="item ids (and roster records) in no order, as real ones come: "
                             "what the indexes on them cost when each item lands at a random "
                             "place in them (the floor keeps its ordered ids)")
    parser.add_argument("--relay-delay-ms", type=float, default=0, metavar="MS",
                        help="with --transport relay: also through a link to the broker that "
                             "delays each byte MS each way, with the default in_flight and "
                             "with 1")
    parser.add_argument("--warm", type=int, default=0, metavar="N",
                        help="first exchange an N-item manifest, unmeasured, and wait for "
                             "the processes beside each daemon to be up (e.g. 10000)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--suites", default="1,2", help="key suites to run (default 1,2)")
    parser.add_argument("--transport", choices=("http", "relay"), default="http",
                        help="relay: measure the direct HTTP pair and then the relay, and "
                             "print their ratio")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else [args.items]
    chosen = [suites.by_number(int(x)) for x in args.suites.split(",")]
    if None in chosen:
        parser.error("--suites: 1, 2 or 1,2")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bridge-e2e-") as tmp:
        for n in sizes:
            for suite in chosen:
                assert suite is not None
                rows.append(one_size(n, Path(tmp), args, suite))
                if args.profile is not None:
                    for party in ("alpha", "beta"):
                        print_profile(profile_dir(args, tmp) / profile_name(party, n, suite),
                                      party)
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows))
        return 0
    if len(sizes) > 1:
        print_rows(rows)
    for result in rows:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
        peak = max(side_mb(result, "sender"), side_mb(result, "receiver"))
        ratio = result["ratio"]
        print(f"target e2e <= 2 x floor: {'PASS' if ratio and ratio <= 2 else 'MISS'}; "
              f"peak RSS < 300 MB: {'PASS' if peak < 300 else 'MISS'}")
        if "relay_over_http" in result:
            over = result["relay_over_http"]
            print(f"target relay <= 1.3 x direct: {'PASS' if over <= 1.3 else 'MISS'} "
                  f"({over} x)")
        print()
    for n in sizes:
        by_suite = {r["suite"]: r for r in rows if r["items"] == n}
        if 1 in by_suite and 2 in by_suite:
            ratio = by_suite[2]["e2e_seconds"] / by_suite[1]["e2e_seconds"]
            print(f"{n} items, suite 2 / suite 1 end to end: {ratio:.2f} x "
                  f"(target <= 1.1: {'PASS' if ratio <= 1.1 else 'MISS'})")
    return 0


def cpu_seconds(node: Node) -> float:
    """CPU time (user and system, every thread) the running daemon has used so far, with the
    processes it started beside it (its checkers, running or ended): on a shared machine a
    steadier measure of its work than the wall clock (Linux /proc)."""
    assert node.proc is not None
    ticks = 0
    for pid in (node.proc.pid, *node.helpers()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile: its time is the daemon's children's, below
            continue
        ticks += int(fields[11]) + int(fields[12])
        if pid == node.proc.pid:
            ticks += int(fields[13]) + int(fields[14])  # children it has waited for
    return ticks / os.sysconf("SC_CLK_TCK")


def side_mb(row: dict[str, Any], side: str) -> float:
    """A daemon's peak RSS with its helper processes' peaks added: what the 300 MB is of."""
    return float(row[f"{side}_peak_rss_mb"] + row.get(f"{side}_helpers_peak_rss_mb", 0))


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The issue's row per size and suite, then the scale targets against the 100,000 row:
    each daemon's peak RSS (with its helper processes') under 300 MB and at most 1.3 x its
    peak at 100,000; the time at most 11 x the 100,000 time."""
    print(f"{'items':>9} {'suite':>5} {'e2e s':>9} {'floor s':>8} {'ratio':>6} "
          f"{'sender MB':>9} {'receiver MB':>11}  (MB: each daemon with its helpers)")
    for r in rows:
        print(f"{r['items']:>9,} {r['suite']:>5} {r['e2e_seconds']:>9.1f} "
              f"{r['floor_seconds'] or 0:>8.1f} {r['ratio'] or 0:>6.2f} "
              f"{side_mb(r, 'sender'):>9.1f} {side_mb(r, 'receiver'):>11.1f}")
    for r in rows:
        base = next((b for b in rows if b["items"] == 100_000 and b["suite"] == r["suite"]),
                    None)
        if base is None or r["items"] <= 100_000:
            continue
        time_x = r["e2e_seconds"] / base["e2e_seconds"]
        grow = max(side_mb(r, side) / side_mb(base, side) for side in ("sender", "receiver"))
        peak = max(side_mb(r, "sender"), side_mb(r, "receiver"))
        limit = 1.1 * r["items"] / 100_000  # 11 x at 1,000,000 items
        print(f"{r['items']:,} items (suite {r['suite']}): time {time_x:.2f} x the 100,000 "
              f"time (target <= {limit:g}: {'PASS' if time_x <= limit else 'MISS'}); peak RSS "
              f"{peak:.0f} MB (< 300: {'PASS' if peak < 300 else 'MISS'}), {grow:.2f} x the "
              f"100,000 peak (<= 1.3: {'PASS' if grow <= 1.3 else 'MISS'}); receipt: "
              f"{r['receipt_verify']}")
    print()


def spy(node: Any, out: Path, *, gil: bool = False) -> subprocess.Popen[bytes]:
    """py-spy sampling every thread of the daemon (the database thread above all); with
    ``gil``, only the thread holding the GIL: where the Python CPU goes, without the waits."""
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:  # not a dependency of the project: said plainly, not as a traceback
        raise SystemExit("--profile samples with py-spy, which is not installed: "
                         ".venv/bin/pip install py-spy")
    return subprocess.Popen([exe, "record", "--pid", str(node.proc.pid), "--rate", "200",
                             "--format", "raw", "--nonblocking", *(["--gil"] if gil else []),
                             "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_profile(path: Path, party: str, top: int = 25) -> None:
    """The functions with the most samples on top of the stack (own time), and the Bridge
    functions with the most samples anywhere in it (time in them and what they call). On
    stderr: stdout holds the figures alone (one JSON value with ``--json``)."""
    if not path.exists():
        print(f"no profile from {party}", file=sys.stderr)
        return
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            if "bridge/" in frame:
                inclusive[frame] += int(count)
    if not total:
        print(f"no samples from {party}", file=sys.stderr)
        return
    print(f"--- {party}: {total} samples; top {top} by own time", file=sys.stderr)
    for frame, count in own.most_common(top):
        print(f"{100 * count / total:6.1f}%  {frame}", file=sys.stderr)
    print(f"--- {party}: top {top} Bridge functions, inclusive", file=sys.stderr)
    for frame, count in inclusive.most_common(top):
        print(f"{100 * count / total:6.1f}%  {frame}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
