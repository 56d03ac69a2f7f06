"""The witness tests' fixture: two real daemons (not started) that pin each other, and the
mediator's witness (a subprocess) that both pin."""

from __future__ import annotations

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
