"""Fixtures for the party's side of the relay: a real nats-server configured as the mediator's
relay (``tests/relay/broker.py``) and two real daemons joined to it as subprocesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.cli.demo_relay import listening_tcp_ports
from bridge.daemon.pair import Node, make_relay_pair
from bridge.home.config import Delivery

from .relay_broker import Broker

__all__ = ["listening_tcp_ports", "relay_pair"]

FAST = Delivery(initial_backoff=0.05, max_backoff=0.5, request_timeout=30.0)


@pytest.fixture
def relay_pair(tmp_path: Path) -> Iterator[Callable[..., tuple[Broker, Node, Node]]]:
    """``relay_pair(ack_wait=...)``: a running broker and two homes joined to it, pinning each
    other via the relay (daemons not started). Everything is stopped at the end."""
    made: list[tuple[Broker, Node, Node]] = []

    def make(*, ack_wait: float = 30.0, delivery: Delivery = FAST,
             start_broker: bool = True) -> tuple[Broker, Node, Node]:
        broker = Broker(tmp_path / "mediator", ("alpha", "beta"), ack_wait=ack_wait)
        if start_broker:
            broker.start()
        creds = {p: broker.creds(p).read_bytes() for p in ("alpha", "beta")}
        a, b = make_relay_pair(tmp_path / "parties", broker.url, creds, delivery=delivery)
        made.append((broker, a, b))
        return broker, a, b

    yield make
    for broker, a, b in made:
        for node in (a, b):
            node.stop()
        broker.stop()
