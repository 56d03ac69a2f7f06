"""Two bridges on this machine: set up two homes that pin each other, run both daemons as real
subprocesses on loopback, and stop them. Used by ``bridge demo``, the tests and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bridge.client import ApiError, BridgeClient
from bridge.core.errors import BridgeError
from bridge.home.config import Delivery, PeerConfig
from bridge.home.files import open_private_append, write_file
from bridge.home.folder import Home
from bridge.home.tls import TlsFiles, file_fingerprint

LOOPBACK = "127.0.0.1"


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux; the IANA range
    elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def free_port(rng: random.Random | None = None) -> int:
    """A free loopback port for a daemon's peer endpoint, chosen BELOW the ephemeral range.

    Asking the kernel for port 0 returns a port from the ephemeral range, which it hands out
    again for the very next outgoing connection (our own clients and delivery loops make many):
    released and rebound a moment later, such a port is sometimes taken (EADDRINUSE). Ports
    below that range are never given to outgoing connections, so the only rival is another
    listener picking the same random port in the same instant.
    """
    rng = rng or random.SystemRandom()
    low = 20000
    high = min(_ephemeral_range()[0], 65536) - 1
    if high <= low:  # an unusual kernel setting: fall back to the kernel's own choice
        low, high = 0, 0
    for _ in range(200):
        port = rng.randint(low, high) if high else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free loopback port found")


def pin(home: Home, other: Home, url: str) -> None:
    """Pin ``other`` as a peer of ``home`` (what ``bridge peer add`` does after the fingerprint
    has been compared out of band), with its TLS certificate for an https:// URL."""
    pub = other.public_identity()
    write_file(home.peers_dir / f"{pub.party}.pub",
               other.public_key_path(pub.party).read_bytes(), replace=True)
    cfg = home.config()
    peers = dict(cfg.peers)
    tls_pin = (file_fingerprint(TlsFiles.of(other.tls_dir)) if url.startswith("https://")
               else None)
    peers[pub.party] = PeerConfig(name=pub.party, url=url, fingerprint=pub.fingerprint,
                                  tls_fingerprint=tls_pin)
    home.write_config(dataclasses.replace(cfg, peers=peers))


@dataclass
class Node:
    home: Home
    party: str
    port: int
    log_path: Path
    tls: bool = False
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def client(self) -> BridgeClient:
        return BridgeClient(str(self.home.socket_path))

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    def start(self, *, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self._log = os.fdopen(open_private_append(self.log_path), "ab")
        # glibc's malloc otherwise raises its mmap threshold after the first large free and
        # then keeps up to 32 MiB of freed request bodies mapped: a fixed threshold gives each
        # large body back to the system when it is freed (as packaging/bridge@.service does).
        env = dict(os.environ, PYTHONUNBUFFERED="1", MALLOC_MMAP_THRESHOLD_="131072")
        self.proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
            [sys.executable, "-m", "bridge", "--home", str(self.home.path), "daemon"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon {self.party} exited with {self.proc.returncode}; "
                                   f"log: {self.log_path}")
            try:
                self.client.health()
                return
            except ApiError as exc:
                if exc.status == 403:  # up, but this user is not on its allowed_uids
                    return
                time.sleep(0.05)
            except BridgeError:
                time.sleep(0.05)
        raise RuntimeError(f"daemon {self.party} did not become ready; log: {self.log_path}")

    def stop(self, *, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        if self._log:
            self._log.close()
        return int(code)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self._log:
            self._log.close()

    @property
    def peak_rss_mb(self) -> float | None:
        """Peak resident memory of the running daemon (Linux VmHWM)."""
        if self.proc is None:
            return None
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None


def make_pair(root: Path, *, names: tuple[str, str] = ("alpha", "beta"),
              delivery: Delivery | None = None, tls: bool = False) -> tuple[Node, Node]:
    """Create two homes under ``root`` that pin each other; daemons not started. With ``tls``
    each serves its peer endpoint over TLS and pins the other's certificate."""
    nodes = []
    for name in names:
        home = Home(root / name)
        port = free_port()
        home.init(name, listen=f"{LOOPBACK}:{port}", tls=tls)
        if delivery is not None:
            home.write_config(dataclasses.replace(home.config(), delivery=delivery))
        nodes.append(Node(home=home, party=name, port=port, log_path=root / f"{name}.log",
                          tls=tls))
    a, b = nodes
    pin(a.home, b.home, b.url)
    pin(b.home, a.home, a.url)
    return a, b
