"""Schemathesis against the local API of a real daemon (``make fuzz-api``; not part of pytest).

Two daemons are set up on this machine (bridge.pair) and a document is exchanged, so the
fuzzer meets a daemon with a peer and data. Schemathesis needs an HTTP base URL and the local API
is a Unix socket, so a small forwarder listens on 127.0.0.1 (an ephemeral port; never another
address) and pipes each TCP connection to the socket. The fuzzer runs as this user, which the
daemon's uid allow-list admits.

    python tests/fuzz_api.py [--max-examples N] [--timeout S] [--seed N] [SCHEMATHESIS ARGS…]

Exit status: schemathesis's (0: no failure). The daemons' logs are printed when it fails.
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
from bridge.errors import BridgeError
from bridge.home import Delivery
from bridge.pair import LOOPBACK, make_pair

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
    """A manifest each way, so that reads find data: alpha's to beta acknowledged, beta's to
    alpha left for the fuzzer to acknowledge."""
    items = [{"id": f"FZ-{n}", "kind": "remains_package"} for n in range(3)]
    alpha.submit_document("manifest", "beta", items, id="M-FUZZ-1")
    beta.submit_document("manifest", "alpha", items, id="M-FUZZ-IN")
    _ack_when_arrived(beta, "M-FUZZ-1")
    deadline = time.monotonic() + 60
    while not alpha.documents(direction="in"):
        if time.monotonic() > deadline:
            raise RuntimeError("the seed document M-FUZZ-IN did not arrive")
        time.sleep(0.2)


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
