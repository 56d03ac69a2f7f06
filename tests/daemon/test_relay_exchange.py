"""Two real daemons exchange through a real nats-server configured as the mediator's relay:
neither listens on any TCP port, every item is acknowledged, and the receipts verify."""

from __future__ import annotations

from pathlib import Path

from bridge.cli.demo import pow_roster, remains_manifest
from bridge.client import BridgeClient
from bridge.core.crypto.identity import Keyring
from bridge.core.receipts import check_receipt
from bridge.daemon.pair import Node
from bridge.home.folder import Home
from bridge.home.relay import join_relay
from bridge.home.tls import TlsFiles, create_certificate

from .conftest import wait_for
from .relay_broker import Broker
from .relay_fixtures import listening_tcp_ports


def received(client: BridgeClient, doc_id: str) -> bool:
    return any(d["id"] == doc_id and d["state"] in ("received", "acknowledged")
               for d in client.documents(direction="in"))


def test_a_roster_and_a_manifest_through_the_relay_with_no_tcp_port_open(relay_pair) -> None:
    broker, alpha, beta = relay_pair()
    alpha.start()
    beta.start()
    for node in (alpha, beta):
        assert node.proc is not None
        assert listening_tcp_ports(node.proc.pid) == []
        health = node.client.health()
        assert health["listen"] is None
        wait_for(lambda n=node: n.client.health()["relay"]["state"] == "connected",
                 what="the relay connected")
    a, b = alpha.client, beta.client
    roster = a.submit_document("roster", "beta", pow_roster(12), id="R-1")
    manifest = a.submit_document("manifest", "beta", remains_manifest(30), id="M-1",
                                 meta={"declared": {"remains_package": 30}})
    for doc in (roster, manifest):
        wait_for(lambda d=doc: received(b, d["id"]), what=f"beta received {doc['id']}")
    b.acknowledge("R-1", all="RECEIVED")
    b.acknowledge("M-1", all="RECEIVED")
    for doc_id, n in (("R-1", 12), ("M-1", 30)):
        wait_for(lambda d=doc_id, n=n: a.document(d)["items"]["acknowledged"] == n,
                 what=f"alpha saw every acknowledgement of {doc_id}")
    keys = Keyring.of([alpha.home.public_identity(), beta.home.public_identity()])
    assert check_receipt(a.receipt("M-1", item="BAG-0007"), keys).ok
    assert check_receipt(a.receipt("R-1"), keys).ok
    # The broker keeps nothing it delivered (work queue: acked messages leave it).
    wait_for(lambda: broker.waiting("alpha") == 0 and broker.waiting("beta") == 0,
             what="the broker to hold nothing")
    for node in (alpha, beta):
        assert node.proc is not None and listening_tcp_ports(node.proc.pid) == []


def _tls_relay_pair(tmp_path: Path, ca_of: dict[str, Path]) -> tuple[Broker, Node, Node]:
    create_certificate(tmp_path / "broker-tls", "mediator")
    files = TlsFiles.of(tmp_path / "broker-tls")
    broker = Broker(tmp_path / "mediator", ("alpha", "beta"), tls=(files.cert, files.key))
    broker.start()
    nodes = []
    for name in ("alpha", "beta"):
        home = Home(tmp_path / name)
        home.init(name)
        join_relay(home, broker.url, broker.creds(name).read_bytes(),
                   tls_ca=(ca_of.get(name) or files.cert).read_bytes())
        nodes.append(Node(home=home, party=name, log_path=tmp_path / f"{name}.log",
                          via="relay"))
    alpha, beta = nodes
    alpha.pin(beta)
    beta.pin(alpha)
    return broker, alpha, beta


def test_tls_relay_is_reached_through_the_pinned_ca_and_another_ca_is_refused(
        tmp_path: Path) -> None:
    create_certificate(tmp_path / "stranger", "stranger")
    stranger = TlsFiles.of(tmp_path / "stranger").cert
    broker, alpha, beta = _tls_relay_pair(tmp_path, {"beta": stranger})
    try:
        alpha.start()
        beta.start()
        wait_for(lambda: alpha.client.health()["relay"]["state"] == "connected",
                 what="alpha connected over TLS with the pinned CA")
        alpha.client.submit_document("roster", "beta", pow_roster(3), id="R-TLS")
        wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in (
            beta.client.health()["relay"]["last_error"] or ""),
                 what="beta to fail the TLS handshake, saying why")
        assert beta.client.health()["relay"]["state"] == "connecting"  # never connected
        assert "relay_disconnected" in beta.client.health()["faults"]
        wait_for(lambda: broker.waiting("beta") == 1,
                 what="the envelope to wait for beta in the broker")
    finally:
        for node in (alpha, beta):
            node.stop()
        broker.stop()
