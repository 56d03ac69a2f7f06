"""Pinning and unpinning a peer while the daemon runs: ``bridge peer add`` and ``peer remove``
apply at once (the daemon is told, as on SIGHUP), never only after a restart."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from collections.abc import Callable

from bridge.client import ApiError
from bridge.daemon.pair import Node

from .conftest import wait_for


def bridge(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "--home", str(node.home.path), *args],
                          capture_output=True, text=True, check=False, timeout=60)


def _unpin_before_start(node: Node, party: str) -> None:
    cfg = node.home.config()
    node.home.write_config(dataclasses.replace(
        cfg, peers={k: v for k, v in cfg.peers.items() if k != party}))


def test_a_peer_pinned_while_the_daemon_runs_is_delivered_to_without_a_restart(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    beta.start()
    _unpin_before_start(alpha, "beta")  # alpha starts knowing no peer
    alpha.start()
    assert alpha.client.peers() == []

    pub = beta.home.public_key_path("beta")
    fp = beta.home.public_identity().fingerprint
    added = bridge(alpha, "peer", "add", str(pub), "--url", beta.url, "--fingerprint", fp)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "restart it" not in added.stdout + added.stderr
    assert "applies this now" in added.stdout
    assert [p["name"] for p in alpha.client.peers()] == ["beta"]

    alpha.client.submit_document("manifest", "beta", [{"id": "BAG-1", "kind": "person"}], id="M-1")
    wait_for(lambda: alpha.client.document("M-1")["state"] == "delivered",
             what="M-1 delivered to the peer pinned while running")
    assert [d["id"] for d in beta.client.documents(direction="in")] == ["M-1"]


def test_peer_remove_refuses_while_documents_are_open_and_stops_delivery(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    alpha.start()  # beta down: what alpha sends stays queued
    alpha.client.submit_document("manifest", "beta", [{"id": "BAG-1", "kind": "person"}], id="M-1")

    refused = bridge(alpha, "peer", "remove", "beta")
    assert refused.returncode != 0
    assert "1 envelope(s) queued" in refused.stderr and "--force" in refused.stderr
    assert "beta" in alpha.home.config().peers  # nothing changed

    removed = bridge(alpha, "peer", "remove", "beta", "--force")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "kept" in removed.stdout
    assert "beta" not in alpha.home.config().peers
    assert alpha.home.peers_dir.joinpath("beta.pub").exists()  # its identity file stays
    assert alpha.client.peers() == []
    try:
        alpha.client.submit_document("manifest", "beta", [{"id": "X", "kind": "person"}])
    except ApiError as err:
        assert err.code == "unknown_peer"
    else:
        raise AssertionError("a document for a removed peer was accepted")

    assert alpha.client.document("M-1")["state"] == "queued"  # its history stays

    # Pinned again (beta is up now): what stayed queued for it goes out.
    beta.pinned_by.remove(alpha)  # alpha pins it by hand below
    beta.start()
    fp = beta.home.public_identity().fingerprint
    again = bridge(alpha, "peer", "add", str(beta.home.public_key_path("beta")), "--url",
                   beta.url, "--fingerprint", fp)
    assert again.returncode == 0, again.stdout + again.stderr
    wait_for(lambda: alpha.client.document("M-1")["state"] == "delivered",
             what="M-1 delivered once beta is pinned again")


def test_sighup_after_an_edit_of_bridge_toml_starts_delivery(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    beta.start()
    kept = alpha.home.config()
    _unpin_before_start(alpha, "beta")
    alpha.start()
    alpha.home.write_config(dataclasses.replace(
        kept, peers={"beta": dataclasses.replace(kept.peers["beta"], url=beta.url)}))
    assert alpha.proc is not None
    alpha.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: [p["name"] for p in alpha.client.peers()] == ["beta"],
             what="beta pinned after SIGHUP")
    alpha.client.submit_document("manifest", "beta", [{"id": "BAG-1", "kind": "person"}], id="M-1")
    wait_for(lambda: alpha.client.document("M-1")["state"] == "delivered", what="M-1 delivered")
