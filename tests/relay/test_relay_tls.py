"""A relay that serves TLS (``relay init --tls``): parties connect with tls:// and the relay's
pinned certificate; a client that does not trust it, or speaks plain NATS, gets nowhere."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.home.tls import create_certificate
from bridge.transports.relay import binding
from relay.clients import connect
from relay.mediator import Relay, bridge_cli, running_relay


@pytest.fixture
def tls_relay(tmp_path: Path) -> Iterator[Relay]:
    with running_relay(tmp_path / "mediator", ["alpha", "bravo"], tls=True) as running:
        yield running


async def test_a_party_pinning_the_relays_certificate_connects_over_tls(tls_relay: Relay
                                                                         ) -> None:
    assert tls_relay.url.startswith("tls://127.0.0.1:")
    nc = await connect(tls_relay.url, tls_relay.creds("alpha"), party="alpha",
                       ca=tls_relay.cert)
    try:
        ack = await nc.jetstream().publish("bridge.v1.bravo.alpha", b"x",
                                           headers=binding.envelope_headers(b"x"))
        assert ack.stream == "BRIDGE_bravo"
    finally:
        await nc.close()


async def test_a_client_trusting_another_certificate_is_refused(tls_relay: Relay,
                                                                tmp_path: Path) -> None:
    create_certificate(tmp_path / "other", "impostor")
    with pytest.raises(Exception, match=r"(?i)certificate|ssl"):
        await connect(tls_relay.url, tls_relay.creds("alpha"), party="alpha",
                      ca=tmp_path / "other" / "cert.pem")


def test_the_server_requires_tls_before_any_credentials(tls_relay: Relay) -> None:
    with socket.create_connection(("127.0.0.1", tls_relay.port), timeout=10) as sock:
        info = sock.recv(4096)
    assert info.startswith(b"INFO ") and b'"tls_required":true' in info


def test_relay_status_reads_a_tls_relay_through_the_admin(tls_relay: Relay) -> None:
    out = bridge_cli("--home", str(tls_relay.home.path), "relay", "status").stdout
    assert out.startswith(f"relay {tls_relay.url}:") and "to bravo: 0 waiting" in out
