"""Fixtures of the relay's tests: a real mediator relay (``relay init`` + ``relay run`` with a
real nats-server on 127.0.0.1), from :mod:`relay.mediator`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.mediator import Relay, running_relay


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    """A relay for alpha and bravo (one pair)."""
    with running_relay(tmp_path / "mediator", ["alpha", "bravo"]) as running:
        yield running


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Relay]:
    """A relay for two pairs: alpha–bravo and carol–dave (no one else paired)."""
    with running_relay(tmp_path / "mediator", ["alpha", "bravo", "carol", "dave"],
                       pairs=[("alpha", "bravo"), ("carol", "dave")]) as running:
        yield running
