"""A real mediator's relay for tests: a relay home made as ``bridge relay init`` makes it, then
``bridge relay run`` as a subprocess (its child, a real nats-server, on a free 127.0.0.1 port
that stays the same across restarts). Used by the ``relay`` fixture of this folder's
conftest; tests elsewhere use it as ``from relay.mediator import running_relay``.

    with running_relay(tmp_path / "mediator", ["alpha", "bravo"]) as relay:
        relay.url, relay.creds("alpha"), relay.admin_creds, relay.home
        relay.kill_server()            # kill -9 of the nats-server; relay run restarts it
        relay.stop(); relay.start()    # the whole relay, same port
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bridge.transports.relay.mediator import MediatorHome, add_party, add_witness, init_home
from bridge.transports.relay.server import configured_port, write_server_config

START_TIMEOUT = 60.0


def bridge_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True,
                          text=True, check=check, timeout=120)


class Relay:
    """One mediator home and its ``relay run`` process."""

    def __init__(self, path: Path) -> None:
        self.home = MediatorHome(path)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    # -------------------------------------------------------------- what a party is handed

    def creds(self, party: str) -> Path:
        return self.home.creds_path(party)

    @property
    def admin_creds(self) -> Path:
        return self.home.admin_creds

    @property
    def cert(self) -> Path:
        """The relay's TLS certificate (with ``tls=True``): what a party pins."""
        return self.home.tls_dir / "cert.pem"

    @property
    def port(self) -> int:
        return int(self.url.rpartition(":")[2])

    @property
    def log_path(self) -> Path:
        return self.home.path / "relay-run.log"

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    # -------------------------------------------------------------- running it

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.home.state_path.read_text("utf-8")))
        except (OSError, ValueError):
            return {}

    def start(self, timeout: float = START_TIMEOUT) -> None:
        assert self.proc is None, "already running"
        self.home.state_path.unlink(missing_ok=True)
        with open(self.log_path, "ab") as out:  # the child keeps its own copy of the file
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bridge", "--home", str(self.home.path), "relay", "run",
                 "--log-level", "debug"], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        self.wait_ready(starts=1, timeout=timeout)
        self._keep_port()

    def wait_ready(self, *, starts: int, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Until the relay says its server is ready after at least ``starts`` starts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"relay run exited ({self.proc.returncode}):\n{self.log()}")
            state = self.state()
            if state.get("ready") and state.get("starts", 0) >= starts:
                self.url = str(state["url"])
                return state
            time.sleep(0.05)
        raise AssertionError(f"relay not ready within {timeout} s:\n{self.log()}")

    def _keep_port(self) -> None:
        """Name the port the first start got in relay.toml, so that a later ``start`` (a new
        ``relay run``) listens where the parties were told to connect."""
        text = self.home.config_path.read_text("utf-8")
        pinned = text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{self.port}"')
        # (the URL is tls:// when the relay serves TLS; the port is the same)
        if pinned != text:
            self.home.config_path.write_text(pinned, "utf-8")

    def add_party(self, name: str, peers: Sequence[str] | None = None) -> None:
        """``relay add-party`` (``peers`` None: every party; empty: no one), and, when the
        relay runs, wait until it has reloaded."""
        before = int(self.state().get("reloads", 0))
        args = ["--home", str(self.home.path), "relay", "add-party", name]
        if peers is not None:
            args += [a for p in peers for a in ("--peer", p)] or ["--no-peers"]
        bridge_cli(*args)
        if self.proc is None:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while int(self.state().get("reloads", 0)) <= before:
            assert time.monotonic() < deadline, f"relay did not reload:\n{self.log()}"
            time.sleep(0.05)

    def kill_server(self, sig: int = signal.SIGKILL) -> dict[str, Any]:
        """Kill the nats-server child (not relay run) and wait until relay run has started
        it again; returns the new state."""
        state = self.state()
        os.kill(int(state["server_pid"]), sig)
        return self.wait_ready(starts=int(state["starts"]) + 1)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to relay run (which stops its server); its exit status."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return int(proc.returncode)


def init_relay(path: Path, parties: Sequence[str],
               pairs: Sequence[tuple[str, str]] | None = None, *, tls: bool = False,
               witnesses: Sequence[str] = ()) -> Relay:
    """What ``relay init --listen 127.0.0.1:0`` does (every two parties paired, or only
    ``pairs``), in this process: a CLI process less per test (tests/relay/test_relay_cli.py
    runs the commands themselves). ``witnesses``: as ``relay add-witness`` each."""
    home = MediatorHome(path)
    if pairs is None:
        config = init_home(home, parties, "127.0.0.1:0", tls=tls)
    else:
        config = init_home(home, [], "127.0.0.1:0", tls=tls)
        for n, name in enumerate(parties):
            peers = [p for p in parties[:n] if (p, name) in pairs or (name, p) in pairs]
            config = add_party(home, name, peers)
    for name in witnesses:
        config = add_witness(home, name)
    write_server_config(home, config, configured_port(config))
    return Relay(path)


@contextlib.contextmanager
def running_relay(path: Path, parties: Sequence[str] = ("alpha", "bravo"),
                  pairs: Sequence[tuple[str, str]] | None = None, *,
                  tls: bool = False, witnesses: Sequence[str] = ()) -> Iterator[Relay]:
    """``relay init`` (``--tls``: the server presents ``relay.cert``, parties connect with
    tls://) then ``relay run`` in ``path``; stopped (and its server with it) at the end,
    whatever happened."""
    relay = init_relay(path, parties, pairs, tls=tls, witnesses=witnesses)
    try:
        relay.start()
        yield relay
    finally:
        state = relay.state()
        relay.stop()
        with contextlib.suppress(OSError, KeyError, ValueError, TypeError):
            os.kill(int(state["server_pid"]), signal.SIGKILL)  # never leave one behind


__all__ = ["Relay", "bridge_cli", "init_relay", "running_relay"]
