"""Two bridges on this machine: set up two homes that pin each other, run both daemons as real
subprocesses on loopback, and stop them. Used by ``bridge demo``, the tests and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bridge.client import ApiError, BridgeClient
from bridge.core.crypto import suites as suite_table
from bridge.core.errors import BridgeError
from bridge.home.config import VIA_HTTP, VIA_RELAY, Delivery, PeerConfig, Via
from bridge.home.files import open_private_append, write_file
from bridge.home.folder import Home
from bridge.home.relay import join_relay
from bridge.home.tls import TlsFiles, file_fingerprint

LOOPBACK = "127.0.0.1"
# Each daemon asks the kernel for a port (port 0) and reports the one it got (its health
# answer, HOME/peer.port): no test depends on a port it picked staying free until a daemon
# binds it.
ANY_PORT = f"{LOOPBACK}:0"
# How long a peer's daemon may take to re-read its peers before it is sent SIGHUP instead.
RELOAD_TIMEOUT = 5.0
# How long a daemon may take to start (answer on its local API) or to stop after SIGTERM.
# Deadlines for a fault, not expectations: a daemon that exits is noticed at once, and on a
# loaded machine (tests side by side on two shared cores) its imports alone have taken over
# 20 s.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 90.0


class Parking:
    """A loopback address where nothing answers, for as long as this object lives: its port is
    bound, so no other program can listen there, and not listening, so a connection to it is
    refused at once. A node that is not running is pinned by its peers at its parking address;
    the moment it runs, at the port it got."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((LOOPBACK, 0))
        self.port = int(self._sock.getsockname()[1])

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Parking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pin(home: Home, other: Home, url: str | None, via: Via = VIA_HTTP) -> None:
    """Pin ``other`` as a peer of ``home`` (what ``bridge peer add`` does after the fingerprint
    has been compared out of band), with its TLS certificate for an https:// URL; or reached
    ``via`` the relay, with no URL at all."""
    pub = other.public_identity()
    write_file(home.peers_dir / f"{pub.party}.pub",
               other.public_key_path(pub.party).read_bytes(), replace=True)
    cfg = home.config()
    peers = dict(cfg.peers)
    tls_pin = (file_fingerprint(TlsFiles.of(other.tls_dir))
               if url is not None and url.startswith("https://") else None)
    peers[pub.party] = PeerConfig(name=pub.party, url=url if via == VIA_HTTP else None,
                                  fingerprint=pub.fingerprint, tls_fingerprint=tls_pin, via=via)
    home.write_config(dataclasses.replace(cfg, peers=peers))


def set_peer_url(home: Home, party: str, url: str) -> bool:
    """Point ``home``'s pinned peer ``party`` at ``url`` (its key and TLS pin unchanged), if
    ``home`` reaches it over HTTP: a peer it reaches through the relay or by carrier files has
    no URL. True when the URL was written."""
    cfg = home.config()
    if cfg.peers[party].via != VIA_HTTP:
        return False
    peers = {**cfg.peers, party: dataclasses.replace(cfg.peers[party], url=url)}
    home.write_config(dataclasses.replace(cfg, peers=peers))
    return True


@dataclass(eq=False)
class Node:
    """One daemon of the pair (or more). ``port`` is the port its peer endpoint got on its
    last start; the nodes that pin it (``pinned_by``) are told each time it changes."""

    home: Home
    party: str
    log_path: Path
    tls: bool = False
    via: Via = VIA_HTTP  # how the nodes that pin this one reach it
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    pinned_by: list[Node] = field(default_factory=list, repr=False)
    pins: list[Node] = field(default_factory=list, repr=False)  # kept: their parking is held
    _parking: Parking = field(default_factory=Parking, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)
    env: dict[str, str] = field(default_factory=dict)  # more environment for the daemon
    # The daemon's command line, for a test that starts it another way (its own launcher
    # calling ``run_daemon``); None: ``bridge --home HOME daemon``.
    command: list[str] | None = None

    @property
    def client(self) -> BridgeClient:
        return BridgeClient(str(self.home.socket_path))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        """Where its peers reach it: its peer endpoint while it runs, else its parking
        address (connections refused)."""
        port = self.port if self.running and self.port else self._parking.port
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{port}"

    def pin(self, other: Node) -> None:
        """Pin ``other`` in this node's home, at its address now and whenever it changes (or
        via the relay, where it has no address)."""
        pin(self.home, other.home, other.url if other.via == VIA_HTTP else None, other.via)
        other.pinned_by.append(self)
        self.pins.append(other)

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        if self.running:
            return
        self._spawn()
        try:
            self.port = self._wait_ready(timeout)
        except BaseException:
            self.kill()  # a daemon that never became ready is not left running unowned
            raise
        self._tell_peers()

    def _spawn(self) -> None:
        self._log = os.fdopen(open_private_append(self.log_path), "ab")
        # glibc's malloc otherwise raises its mmap threshold after the first large free and
        # then keeps up to 32 MiB of freed request bodies mapped: a fixed threshold gives each
        # large body back to the system when it is freed (as packaging/bridge@.service does).
        env = dict(os.environ, PYTHONUNBUFFERED="1", MALLOC_MMAP_THRESHOLD_="131072", **self.env)
        command = self.command or [sys.executable, "-m", "bridge", "--home",
                                   str(self.home.path), "daemon"]
        self.proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def _wait_ready(self, timeout: float) -> int | None:
        """The port the daemon's peer endpoint got, once its local API answers (from its
        health answer; from HOME/peer.port when this user may not use the local API)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon {self.party} exited with {self.proc.returncode}; "
                                   f"log: {self.log_path}")
            try:
                listen = self.client.health()["listen"]
                return int(listen["port"]) if listen is not None else None  # None: no port
            except ApiError as exc:
                if exc.status == 403:  # up, but this user is not on its allowed_uids
                    return int(self.home.port_path.read_text())
                time.sleep(0.05)
            except BridgeError:
                time.sleep(0.05)
        raise RuntimeError(f"daemon {self.party} did not become ready; log: {self.log_path}")

    def _tell_peers(self) -> None:
        """Every node that pins this one: its bridge.toml points at this node's address now,
        and a running one re-reads it (``POST /v1/peers/reload``, done when this returns). A
        peer that cannot answer now (frozen by a test, or this user not on its allowed_uids)
        gets SIGHUP instead, which it acts on as soon as it runs again."""
        if self.via != VIA_HTTP:
            return  # reached through the relay: no address to tell
        for peer in self.pinned_by:
            if not set_peer_url(peer.home, self.party, self.url):
                continue  # that peer carries to this one by hand: nothing to tell
            if peer.proc is None or peer.proc.poll() is not None:
                continue
            try:
                BridgeClient(str(peer.home.socket_path), timeout=RELOAD_TIMEOUT).reload_peers()
            except BridgeError:
                peer.proc.send_signal(signal.SIGHUP)

    def stop(self, *, timeout: float = STOP_TIMEOUT) -> int:
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
        self._stopped()
        return int(code)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stopped()

    def _stopped(self) -> None:
        was_running = self.proc is not None
        self.proc = None
        if self._log:
            self._log.close()
        if was_running:
            self._tell_peers()  # its peers now reach its parking address, never a stranger

    @property
    def peak_rss_mb(self) -> float | None:
        """Peak resident memory of the running daemon (Linux VmHWM)."""
        return None if self.proc is None else _peak_rss_mb(self.proc.pid)

    @property
    def helpers_peak_rss_mb(self) -> float:
        """The peak resident memory of the processes the running daemon started beside it
        (``bridge.daemon.checkers``), added up: 0 while it started none."""
        return sum(_peak_rss_mb(pid) or 0 for pid in self.helpers())

    def helpers(self) -> list[int]:
        """The processes whose parent is the running daemon (Linux /proc)."""
        if self.proc is None:
            return []
        return [pid for pid, parent in _parents() if parent == self.proc.pid]


def _peak_rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def _parents() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            out.append((int(entry), int(stat[1])))
    return out


def make_pair(root: Path, *, names: tuple[str, str] = ("alpha", "beta"),
              delivery: Delivery | None = None, tls: bool = False,
              suites: tuple[int, int] = (2, 2)) -> tuple[Node, Node]:
    """Create two homes under ``root`` that pin each other; daemons not started. Each listens
    on a port the kernel gives it (``listen`` port 0). With ``tls`` each serves its peer
    endpoint over TLS and pins the other's certificate. ``suites``: each one's key suite."""
    chosen = dict(zip(names, suites, strict=True))

    def make(name: str) -> Node:
        home = Home(root / name)
        suite = suite_table.by_number(chosen[name])
        if suite is None:
            raise ValueError(f"no key suite {chosen[name]}")
        home.init(name, listen=ANY_PORT, tls=tls, suite=suite)
        return Node(home=home, party=name, log_path=root / f"{name}.log", tls=tls)

    return _pinned_pair(make, names, delivery)


def _pinned_pair(make: Callable[[str], Node], names: tuple[str, str],
                 delivery: Delivery | None) -> tuple[Node, Node]:
    """The two nodes ``make`` sets up, with ``delivery`` as their policy, pinning each other."""
    a, b = (make(name) for name in names)
    for node in (a, b):
        if delivery is not None:
            node.home.write_config(dataclasses.replace(node.home.config(), delivery=delivery))
    a.pin(b)
    b.pin(a)
    return a, b


def make_relay_pair(root: Path, url: str, creds: dict[str, bytes], *,
                    names: tuple[str, str] = ("alpha", "beta"),
                    delivery: Delivery | None = None, suite: int = 2) -> tuple[Node, Node]:
    """Two homes under ``root`` that joined the mediator's relay at ``url`` (each with its
    credential file's bytes, ``creds[name]``) and pin each other ``via = "relay"``. Made
    without a listen address: neither daemon opens any TCP port. Both in key ``suite``."""
    chosen = suite_table.by_number(suite)
    if chosen is None:
        raise ValueError(f"no key suite {suite}")

    def make(name: str) -> Node:
        home = Home(root / name)
        home.init(name, suite=chosen)
        join_relay(home, url, creds[name])
        return Node(home=home, party=name, log_path=root / f"{name}.log", via=VIA_RELAY)

    return _pinned_pair(make, names, delivery)
