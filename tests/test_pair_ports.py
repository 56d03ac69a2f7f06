"""The daemons of the tests and the demo listen on ports that outgoing connections never get."""

from __future__ import annotations

import random
import socket

from bridge.daemon.pair import LOOPBACK, _ephemeral_range, free_port


def test_port_is_never_one_the_kernel_hands_to_outgoing_connections() -> None:
    low, _ = _ephemeral_range()
    rng = random.Random(7)
    for _ in range(50):
        port = free_port(rng)
        assert 20000 <= port < low


def test_port_is_free_to_bind_when_returned() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, port))


def test_a_taken_port_is_skipped() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((LOOPBACK, free_port()))
        taken = held.getsockname()[1]
        rng = random.Random()
        rng.randint = lambda a, b, _seq=iter([taken, taken + 1]): next(_seq)  # type: ignore[assignment]
        assert free_port(rng) == taken + 1
