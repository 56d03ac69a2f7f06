"""The daemons of the tests and the demo ask the kernel for a port (port 0) and report the one
they got; no test picks a port and hopes it stays free until a daemon binds it."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.daemon.pair import LOOPBACK, Node, Parking, make_pair


@pytest.fixture
def pair(tmp_path: Path):
    alpha, beta = make_pair(tmp_path)
    yield alpha, beta
    for node in (alpha, beta):
        node.stop(timeout=20)
        node.kill()


def _pinned_url(node: Node, party: str) -> str:
    return node.home.config().peers[party].url


def test_a_daemon_on_port_0_reports_the_port_it_got(pair: tuple[Node, Node]) -> None:
    alpha, _ = pair
    assert alpha.home.config().listen == f"{LOOPBACK}:0"
    alpha.start()
    health = alpha.client.health()
    port = health["listen"]["port"]
    assert health["listen"] == {"host": LOOPBACK, "port": port, "scheme": "http"}
    assert port == alpha.port and port != 0
    # The port file: the port alone, the owner's only, written once the port was bound.
    assert alpha.home.port_path.read_text() == f"{port}\n"
    assert stat.S_IMODE(alpha.home.port_path.stat().st_mode) == 0o600
    with socket.create_connection((LOOPBACK, port), timeout=10) as s:  # it is listening
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = s.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 200") and json.loads(reply.split(b"\r\n\r\n")[1])
    alpha.stop()
    assert not alpha.home.port_path.exists()  # a stopped daemon leaves no port to trust


def test_peers_learn_the_new_port_of_a_restarted_daemon(pair: tuple[Node, Node]) -> None:
    alpha, beta = pair
    alpha.start()
    parked = _pinned_url(alpha, "beta")
    beta.start()
    assert _pinned_url(alpha, "beta") == beta.url != parked
    assert _pinned_url(beta, "alpha") == alpha.url
    first = beta.port
    assert first is not None
    beta.stop()
    assert _pinned_url(alpha, "beta") == parked  # refused at once, never a stranger's port
    # Another program takes beta's old port: beta starts on another, and alpha follows it.
    with socket.socket() as stranger:
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        stranger.bind((LOOPBACK, first))
        stranger.listen()
        stranger.setblocking(False)
        beta.start()
        assert beta.port != first and _pinned_url(alpha, "beta") == beta.url
        alpha.client.submit_document("manifest", "beta",
                                     [{"id": "BAG-1", "kind": "remains_package"}], id="M-P0")
        assert _poll(lambda: any(d["id"] == "M-P0"
                                 for d in beta.client.documents(direction="in")))
        with pytest.raises(BlockingIOError):
            stranger.accept()  # nothing was sent to the stranger


def _poll(predicate: Callable[[], bool], timeout: float = 90.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_parked_address_refuses_connections_and_cannot_be_taken() -> None:
    with Parking() as parked:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, parked.port), timeout=10)
        with socket.socket() as other, pytest.raises(OSError):
            other.bind((LOOPBACK, parked.port))


def test_a_peer_whose_api_is_not_ours_learns_the_new_port_by_sighup(
        pair: tuple[Node, Node]) -> None:
    alpha, beta = pair
    other = 4242 if os.geteuid() != 4242 else 4343  # this user may not use alpha's local API
    alpha.home.write_config(dataclasses.replace(alpha.home.config(), allowed_uids=(other,)))
    alpha.start()  # up (403 to us): its port is read from HOME/peer.port
    assert alpha.port == int(alpha.home.port_path.read_text())
    beta.start()  # alpha's reload is refused (403): it gets SIGHUP, and re-reads its peers
    assert _poll(lambda: f"delivering to beta at {beta.url}" in alpha.log_path.read_text())
