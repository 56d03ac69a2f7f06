"""The witness tests' fixture: two real daemons (not started) that pin each other, and the
mediator's witness (a subprocess) that both pin."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.daemon.pair import Node
from bridge.witness.process import WitnessProcess, pin_to, start_witness


@pytest.fixture
def witnessed(tmp_path: Path, make_nodes: Callable[..., tuple[Node, Node]]
              ) -> Iterator[tuple[Node, Node, WitnessProcess]]:
    alpha, beta = make_nodes()
    w = start_witness(tmp_path / "mediator", origins=[
        alpha.home.public_key_path("alpha"), beta.home.public_key_path("beta")])
    try:
        for node in (alpha, beta):
            pin_to(node.home, w, interval_seconds=0.2)
        yield alpha, beta, w
    finally:
        w.kill()


def verified_transcript(node: Node, peer: str, path: Path, keys: list[str | Path],
                        witness: Path) -> str:
    """``audit export`` of ``node``'s exchange with ``peer`` to ``path``, then ``bridge verify
    --witness`` of it (which must pass): what it printed."""
    got = _bridge("--home", node.home.path, "audit", "export", "--peer", peer, "-o", path)
    assert got.returncode == 0, got.stdout + got.stderr
    checked = _bridge("verify", path, *keys, "--witness", witness)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return checked.stdout


def _bridge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)
