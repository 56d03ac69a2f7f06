"""``bridge doctor`` on real homes and real daemons: what is sound is said so, and each fault
an operator meets (open permissions, a misspelled setting, a peer down, a changed TLS
certificate) is named with its fix."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bridge.daemon.pair import Node, make_pair

TLS_PIN_OTHER = "ce7b682201669666750f29c477a43a40838af4e160a5b86b05ab5743d11f3f09"


def _doctor(node: Node) -> tuple[int, list[dict[str, str]]]:
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "--home", str(node.home.path), "doctor", "--json"],
        capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, json.loads(done.stdout)


def _by_check(findings: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {f["check"]: f for f in findings}


def test_sound_pair_is_all_ok(make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    code, findings = _doctor(alpha)
    assert code == 0, findings
    assert {f["status"] for f in findings} <= {"ok", "warn"}
    got = _by_check(findings)
    for check in ("folders", "config", "keys", "pins", "peer beta", "daemon", "disk"):
        assert got[check]["status"] == "ok", got[check]


def test_each_fault_is_named_with_its_fix(make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _ = make_nodes()  # beta is not running: unreachable
    os.chmod(alpha.home.path, 0o755)
    code, findings = _doctor(alpha)
    got = _by_check(findings)
    assert code == 1
    assert got["folders"]["status"] == "fail" and "chmod 700" in got["folders"]["detail"]
    assert got["peer beta"]["status"] == "fail" and "cannot be reached" in \
        got["peer beta"]["detail"]
    assert got["daemon"]["status"] == "warn"
    os.chmod(alpha.home.path, 0o700)

    text = alpha.home.config_path.read_text()
    alpha.home.config_path.write_text(text.replace("[delivery]", "[delivry]"))
    code, findings = _doctor(alpha)
    assert code == 1 and "did you mean 'delivery'" in _by_check(findings)["config"]["detail"]
    alpha.home.config_path.write_text(text)


def test_a_changed_tls_certificate_is_caught(tmp_path: Path) -> None:
    alpha, beta = make_pair(tmp_path, tls=True)
    cfg = alpha.home.config()
    peers = {"beta": dataclasses.replace(cfg.peers["beta"], tls_fingerprint=TLS_PIN_OTHER)}
    alpha.home.write_config(dataclasses.replace(cfg, peers=peers))
    beta.start()
    try:
        code, findings = _doctor(alpha)
    finally:
        beta.stop()
    peer = _by_check(findings)["peer beta"]
    assert code == 1 and peer["status"] == "fail"
    assert "another TLS certificate" in peer["detail"] and "--tls-fingerprint" in peer["fix"]
