"""Trouble with a peer is visible where an operator looks: health, ``/v1/peers``, ``bridge
status`` and ``/metrics`` name, per peer, whether it is reachable and since when, the last
success, the last error and its reason, and what waits for it (how many, since when)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from bridge.daemon.pair import Node

from .conftest import person, wait_for


def bridge(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "--home", str(node.home.path), *args],
                          capture_output=True, text=True, check=False, timeout=60,
                          env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"})


def sample(node: Node, name: str, **labels: str) -> float | None:
    """One sample of /metrics with these labels (besides the party), None if absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted({"party": node.party, **labels}.items()))
    for line in node.client.metrics().splitlines():
        if line.startswith(f"bridge_{name}{{"):
            labels_text = line[line.index("{") + 1:line.index("}")]
            if ",".join(sorted(labels_text.split(","))) == want:
                return float(line.rsplit(" ", 1)[1])
    return None


def test_a_peer_down_is_named_with_its_reason_and_what_waits_for_it(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    alpha.start()  # beta never started: connections to it are refused
    alpha.client.submit_document("manifest", "beta", [person(1)], id="M-1")
    link = wait_for(lambda: (p := alpha.client.health()["peers"]["beta"])["last_error"] and p,
                    what="the failed try named in health")
    assert link["reachable"] is False and link["since"]
    assert link["last_error"]["reason"] == "unreachable"
    assert link["last_error"]["detail"]  # why, in the courier's words
    assert link["last_success"] is None
    assert link["queued"] == 1 and link["oldest_queued"]
    assert link["oldest_queued_age_seconds"] >= 0

    [peer] = alpha.client.peers()
    assert peer["name"] == "beta" and peer["last_error"]["reason"] == "unreachable"
    assert peer["queued"] == 1

    assert sample(alpha, "peer_reachable", peer="beta") == 0
    assert sample(alpha, "peer_queued", peer="beta") == 1
    assert sample(alpha, "peer_oldest_queued_age_seconds", peer="beta") is not None
    assert (sample(alpha, "peer_errors_total", peer="beta", reason="unreachable") or 0) >= 1
    assert sample(alpha, "peer_last_error_seconds", peer="beta")

    shown = bridge(alpha, "status")
    assert shown.returncode == 0, shown.stderr
    assert "DOWN since" in shown.stdout and "unreachable" in shown.stdout

    beta.start()  # back: the link says so, and when it last worked
    wait_for(lambda: alpha.client.document("M-1")["state"] == "delivered", what="delivered")
    link = wait_for(lambda: (p := alpha.client.health()["peers"]["beta"])["reachable"] and p,
                    what="beta reachable again")
    assert link["last_success"] and link["queued"] == 0
    assert link["last_error"]["reason"] == "unreachable"  # the last trouble is still told
    assert sample(alpha, "peer_reachable", peer="beta") == 1
    assert "up since" in bridge(alpha, "status").stdout


def test_the_peer_refusing_us_is_named_with_its_reason(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    removed = bridge(beta, "peer", "remove", "alpha")  # beta no longer knows alpha's key
    assert removed.returncode == 0, removed.stderr
    alpha.pinned_by.remove(beta)
    beta.start()
    alpha.start()
    alpha.client.submit_document("manifest", "beta", [person(1)], id="M-1")
    link = wait_for(lambda: (p := alpha.client.health()["peers"]["beta"])["last_error"] and p,
                    what="the refusal named in health")
    assert link["reachable"] is True  # it answers; it will not take what we send
    assert link["last_error"]["reason"] == "rejected"
    assert "unauthenticated" in link["last_error"]["detail"]  # the peer's own reason code
    assert (sample(alpha, "peer_errors_total", peer="beta", reason="rejected") or 0) >= 1
    assert "rejected" in bridge(alpha, "status").stdout
