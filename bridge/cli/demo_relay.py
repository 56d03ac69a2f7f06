"""The mediator's relay for ``bridge demo``: a relay home made by ``bridge relay init`` and
``bridge relay run`` as a child process (its own child a real nats-server on 127.0.0.1), and
a check, from /proc, that a party's daemon listens on no TCP port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from bridge.home.files import open_private_append

READY_TIMEOUT = 60.0


class DemoRelay:
    """``relay init`` then ``relay run`` in ``path``, for the parties ``names`` and the
    witnesses ``witnesses`` (each reached through the relay)."""

    def __init__(self, path: Path, names: tuple[str, ...], witnesses: tuple[str, ...] = ()
                 ) -> None:
        self.path = path
        self.names = names
        self.witnesses = witnesses
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def creds_path(self, name: str) -> Path:
        return self.path / "creds" / f"{name}.creds"

    def creds(self, party: str) -> bytes:
        return self.creds_path(party).read_bytes()

    def start(self) -> None:
        parties = [a for n in self.names for a in ("--party", n)]
        parties += [a for n in self.witnesses for a in ("--witness", n)]
        subprocess.run([sys.executable, "-m", "bridge", "--home", str(self.path),  # noqa: S603
                        "relay", "init", *parties, "--listen", "127.0.0.1:0"],
                       check=True, capture_output=True)
        log = open_private_append(self.path / "relay-run.log")
        self.proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
            [sys.executable, "-m", "bridge", "--home", str(self.path), "relay", "run"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT
        state_path = self.path / "relay.state.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise click.ClickException(f"the relay stopped; see {self.path}/relay-run.log")
            try:
                state = json.loads(state_path.read_text("utf-8"))
            except (OSError, ValueError):
                state = {}
            if state.get("ready"):
                self.url = str(state["url"])
                return
            time.sleep(0.05)
        raise click.ClickException("the relay did not become ready")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return int(proc.returncode)


def listening_tcp_ports(pid: int) -> list[int]:
    """The TCP ports process ``pid`` listens on: its sockets' inodes (/proc/PID/fd) found in
    /proc/net/tcp and tcp6 in state 0A (LISTEN). Linux only; no other tool needed."""
    return sorted(local for local, _remote in _tcp_sockets(pid, "0A"))


def connected_tcp_ports(pid: int) -> list[int]:
    """The remote ports of process ``pid``'s established TCP connections (state 01)."""
    return sorted({remote for _local, remote in _tcp_sockets(pid, "01")})


def _tcp_sockets(pid: int, state: str) -> list[tuple[int, int]]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == state and cols[9] in inodes:
                found.append((int(cols[1].rsplit(":", 1)[1], 16),
                              int(cols[2].rsplit(":", 1)[1], 16)))
    return found


__all__ = ["DemoRelay", "connected_tcp_ports", "listening_tcp_ports"]
