"""Schemathesis against the local API of a real daemon (``make fuzz-api``; not part of pytest).

Two daemons are set up on this machine (bridge.daemon.pair) and documents are exchanged, so the
fuzzer meets a daemon with a peer and data: five received manifests for it to acknowledge
(tests/schemathesis.toml points the document operations at them), and one sent. After the run
it prints how many acknowledgements it got committed, and fails if none: an acknowledgement
endpoint fuzzed only at its 404 has not been fuzzed.

Schemathesis needs an HTTP base URL and the local API is a Unix socket, so a small forwarder
listens on 127.0.0.1 (an ephemeral port; never another address) and pipes each TCP connection
to the socket. The fuzzer runs as this user, which the daemon's uid allow-list admits.

    python tests/fuzz_api.py [--max-examples N] [--timeout S] [--seed N] [SCHEMATHESIS ARGS…]

Exit status: schemathesis's (0: no failure), or 1 when no acknowledgement was committed. The
daemons' logs are printed when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bridge.client import BridgeClient
from bridge.core.errors import BridgeError
from bridge.daemon.pair import LOOPBACK, make_pair
from bridge.home.config import Delivery

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "schemas" / "local-api.yaml"
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.contextmanager
def forwarder(socket_path: Path) -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that relays to ``socket_path``; yields its port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            unix_r, unix_w = await asyncio.open_unix_connection(str(socket_path))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, unix_w), _pipe(unix_r, client_w))

    async def main() -> asyncio.Server:
        server = await asyncio.start_server(relay, LOOPBACK, 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        return server

    server_box: list[asyncio.Server] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        server_box.append(loop.run_until_complete(main()))
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True, name="forwarder")
    thread.start()
    ready.wait(10)
    try:
        yield port[0]
    finally:
        if server_box:
            loop.call_soon_threadsafe(server_box[0].close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


# What the fuzzer is pointed at (tests/schemathesis.toml binds the path parameters of the
# document operations to these ids, so that each operation's logic is reached and not only its
# 404): documents alpha has received from beta, each with the same items, and one alpha sent.
RECEIVED_IDS = tuple(f"M-FUZZ-IN-{n}" for n in range(1, 6))
SENT_ID = "M-FUZZ-1"
ITEM_IDS = tuple(f"FZ-{n}" for n in range(12))


def _ack_when_arrived(client: BridgeClient, doc: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.acknowledge(doc, all="RECEIVED")
            return
        except BridgeError:  # not arrived yet
            time.sleep(0.2)
    raise RuntimeError(f"the seed document {doc} did not arrive")


def seed_data(alpha: BridgeClient, beta: BridgeClient) -> None:
    """Manifests each way, so that reads find data and acknowledgements find documents: alpha's
    to beta acknowledged, beta's to alpha (RECEIVED_IDS) left for the fuzzer to acknowledge."""
    items = [{"id": item, "kind": "remains_package"} for item in ITEM_IDS]
    alpha.submit_document("manifest", "beta", items, id=SENT_ID)
    for doc in RECEIVED_IDS:
        beta.submit_document("manifest", "alpha", items, id=doc)
    _ack_when_arrived(beta, SENT_ID)
    deadline = time.monotonic() + 60
    while True:
        # Arrived completely, so that an acknowledgement is not refused as not_ready.
        arrived = {d["id"] for d in alpha.documents(direction="in")
                   if d["state"] != "receiving"}
        if arrived >= set(RECEIVED_IDS):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the seed documents {sorted(set(RECEIVED_IDS) - arrived)} "
                               "did not arrive")
        time.sleep(0.2)


def acks_reached(alpha: BridgeClient) -> int:
    """How many acknowledgements the fuzzer got committed on the seeded received documents:
    more than none shows that it reached the acknowledgement logic, not only its 404."""
    return sum(len(alpha.document(doc, direction="in")["acks"]) for doc in RECEIVED_IDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900,
                        help="stop schemathesis after this many seconds (a hard cap)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the homes here")
    args, extra = parser.parse_known_args(argv)
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which(
        "schemathesis")
    if exe is None:
        print("schemathesis is not installed: pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    root = args.keep or Path(tempfile.mkdtemp(prefix="bridge-fuzz-"))
    root.mkdir(parents=True, exist_ok=True)
    alpha, beta = make_pair(root, delivery=Delivery(initial_backoff=0.05, max_backoff=0.5))
    code = 1
    try:
        alpha.start()
        beta.start()
        seed_data(alpha.client, beta.client)
        with forwarder(alpha.home.socket_path) as port:
            cmd = [exe, "--config-file", str(CONFIG), "run", str(SPEC), "--url", f"http://{LOOPBACK}:{port}",
                   "--checks", "all", "--max-examples", str(args.max_examples),
                   "--workers", "1", "--request-timeout", "30", "--no-color"]
            if args.seed is not None:
                cmd += ["--seed", str(args.seed)]
            cmd += extra
            print("+", " ".join(cmd), flush=True)
            env = dict(os.environ, NO_COLOR="1")
            try:
                code = subprocess.run(cmd, env=env, check=False,
                                      timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                print(f"schemathesis stopped after {args.timeout:.0f} s", file=sys.stderr)
                code = 124
        reached = acks_reached(alpha.client)
        print(f"acknowledgements committed by the fuzzer on the {len(RECEIVED_IDS)} received "
              f"documents: {reached}", flush=True)
        if reached == 0 and code == 0:
            print("the fuzzer never reached the acknowledgement logic", file=sys.stderr)
            code = 1
    finally:
        alpha.stop()
        beta.stop()
        if code != 0:
            for node in (alpha, beta):
                print(f"--- daemon log: {node.party} (errors) ---")
                for line in node.log_path.read_text(errors="replace").splitlines():
                    if "level=error" in line or "internal error" in line:
                        print(line[:2000])
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
