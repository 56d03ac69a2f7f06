"""Hardening between two real daemons on 127.0.0.1: TLS on the peer endpoint with the peer's
certificate pinned, a wrong pin that refuses to deliver, the local API's uid allow-list and the
refusal to start on folders other users can reach."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.client import ApiError
from bridge.daemon.pair import LOOPBACK, Node, make_pair
from bridge.home.folder import Home
from bridge.home.peers import pin_peer
from bridge.home.tls import TlsFiles, file_fingerprint, format_tls_fingerprint

from .conftest import FAST, EventLog, metric, person, wait_for


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest
         ) -> Iterator[Callable[..., tuple[Node, Node]]]:
    made: list[Node] = []
    request.node.bridge_nodes = made

    def make(*, tls: bool) -> tuple[Node, Node]:
        a, b = make_pair(tmp_path, delivery=FAST, tls=tls)
        made.extend((a, b))
        return a, b

    yield make
    for node in made:
        with contextlib.suppress(Exception):
            node.stop(timeout=10)
        with contextlib.suppress(Exception):
            node.kill()


def _served_certificate(port: int) -> tuple[bytes, str]:
    """The DER certificate the endpoint presents, and the TLS version negotiated."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw, \
            ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der, str(tls.version())


def test_two_daemons_exchange_over_tls_with_pinned_certificates(
        pair: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog]) -> None:
    alpha, beta = pair(tls=True)
    pinned = alpha.home.config().peers["beta"]
    assert pinned.url == beta.url and pinned.url.startswith("https://")
    assert pinned.tls_fingerprint == file_fingerprint(TlsFiles.of(beta.home.tls_dir))
    alpha.start()
    beta.start()
    alpha_events, beta_events = events(alpha), events(beta)

    # What beta serves is the certificate alpha pinned, over TLS 1.3 only.
    der, version = _served_certificate(beta.port)
    assert hashlib.sha256(der).hexdigest() == pinned.tls_fingerprint
    assert version == "TLSv1.3"
    # Plain HTTP gets nothing from a TLS endpoint.
    with socket.create_connection((LOOPBACK, beta.port), timeout=10) as raw:
        raw.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            assert b"HTTP/1.1 200" not in raw.recv(4096)

    alpha.client.submit_document("manifest", "beta", [person(n) for n in range(5)],
                                 id="M-TLS-1")
    beta_events.wait("document_received", id="M-TLS-1")
    beta.client.acknowledge("M-TLS-1", all="RECEIVED")
    alpha_events.wait("document_acknowledged", id="M-TLS-1")
    wait_for(lambda: alpha.client.document("M-TLS-1")["state"] == "acknowledged",
             what="alpha: acknowledged over TLS")
    assert not alpha_events.of_type("security_alarm")
    assert not beta_events.of_type("security_alarm")
    assert alpha.stop() == 0
    assert beta.stop() == 0


def test_wrong_pinned_certificate_refuses_to_deliver(
        pair: Callable[..., tuple[Node, Node]], events: Callable[[Node], EventLog]) -> None:
    alpha, beta = pair(tls=True)
    cfg = alpha.home.config()
    right = cfg.peers["beta"].tls_fingerprint
    assert right is not None
    wrong = hashlib.sha256(b"a certificate an on-path attacker might present").hexdigest()
    peers = dict(cfg.peers)
    peers["beta"] = dataclasses.replace(peers["beta"], tls_fingerprint=wrong)
    alpha.home.write_config(dataclasses.replace(cfg, peers=peers))
    alpha.start()
    beta.start()
    alpha_events, beta_events = events(alpha), events(beta)

    alpha.client.submit_document("manifest", "beta", [person(1)], id="M-PIN-1")
    alarm = alpha_events.wait("security_alarm", peer="beta", reason="tls_pin_mismatch")
    # Both certificates named as bridge prints them (AB:CD:…), so they can be compared.
    detail = alarm.data["detail"]
    assert format_tls_fingerprint(right) in detail and format_tls_fingerprint(wrong) in detail
    wait_for(lambda: metric(alpha, "tls_pin_mismatches_total") >= 2, what="retries refused")
    # Nothing crossed: the envelope stays queued, beta has no document, one alarm only.
    assert alpha.client.document("M-PIN-1")["state"] == "queued"
    assert alpha.client.health()["peers"]["beta"]["queued"] == 1
    assert alpha.client.health()["peers"]["beta"]["reachable"] is False
    # Named where operators look: the reason per peer, and the alarm counted in /metrics.
    assert alpha.client.peers()[0]["last_error"]["reason"] == "tls_pin_mismatch"
    assert metric(alpha, "security_alarm_events") >= 1
    assert beta.client.documents() == []
    assert len([e for e in alpha_events.of_type("security_alarm")
                if e.data.get("reason") == "tls_pin_mismatch"]) == 1
    assert "TLS certificate" in alpha.log_path.read_text()

    # The operator re-pins the right certificate (after comparing it out of band).
    assert alpha.stop() == 0
    with pytest.raises(Exception, match="another TLS certificate"):
        pin_peer(alpha.home, beta.home.public_key_path("beta"), url=beta.url,
                 fingerprint=beta.home.public_identity().fingerprint, tls_fingerprint=right)
    pin_peer(alpha.home, beta.home.public_key_path("beta"), url=beta.url,
             fingerprint=beta.home.public_identity().fingerprint, tls_fingerprint=right,
             replace_key=True)
    alpha.start()
    beta_events.wait("document_received", id="M-PIN-1")
    wait_for(lambda: alpha.client.document("M-PIN-1")["state"] == "delivered",
             what="delivered once the right certificate is pinned")


def test_https_peer_without_a_pin_is_refused_at_start(
        pair: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _beta = pair(tls=True)
    cfg = alpha.home.config()
    peers = dict(cfg.peers)
    peers["beta"] = dataclasses.replace(peers["beta"], tls_fingerprint=None)
    alpha.home.write_config(dataclasses.replace(cfg, peers=peers))
    done = _run_daemon(alpha.home)
    assert done.returncode == 1
    assert "no TLS certificate fingerprint is pinned" in done.stderr


def test_local_api_refuses_a_uid_not_allowed(
        pair: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _beta = pair(tls=False)
    me = os.geteuid()
    other = 4242 if me != 4242 else 4343
    alpha.home.write_config(dataclasses.replace(alpha.home.config(), allowed_uids=(other,)))
    assert tomllib.loads(alpha.home.config_path.read_text())["local"]["allowed_uids"] == [other]
    alpha.start()  # up: it answers 403
    with pytest.raises(ApiError) as refused:
        alpha.client.health()
    assert refused.value.status == 403 and refused.value.code == "forbidden"
    with pytest.raises(ApiError) as refused:
        alpha.client.submit_document("manifest", "beta", [person(1)], id="M-UID-1")
    assert refused.value.status == 403
    assert f"refused GET /v1/health from uid {me}" in alpha.log_path.read_text()
    assert alpha.stop() == 0

    # The same user, listed, gets in; the socket itself is 0600.
    alpha.home.write_config(dataclasses.replace(alpha.home.config(), allowed_uids=(me,)))
    alpha.start()
    assert alpha.client.health()["status"] == "ok"
    assert (os.stat(alpha.home.socket_path).st_mode & 0o777) == 0o600
    assert alpha.client.documents() == []


def _run_daemon(home: Home) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--home", str(home.path), "daemon"],
        capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("folder", "mode"), [("home", 0o755), ("keys", 0o750),
                                              ("data", 0o707)])
def test_daemon_refuses_folders_open_to_others(
        pair: Callable[..., tuple[Node, Node]], folder: str, mode: int) -> None:
    alpha, _beta = pair(tls=False)
    path = {"home": alpha.home.path, "keys": alpha.home.keys_dir,
            "data": alpha.home.db_path.parent}[folder]
    os.chmod(path, mode)
    done = _run_daemon(alpha.home)
    assert done.returncode == 1, done.stderr
    assert f"Permissions {mode:04o}" in done.stderr
    assert f"Fix: chmod 700 '{path}'" in done.stderr
    assert not alpha.home.socket_path.exists()
    os.chmod(path, 0o700)
    alpha.start()
    assert alpha.client.health()["status"] == "ok"
