"""An envelope off the relay that comes before the one due from its sender (a gap) is left to
the broker (bridge/transports/relay/consumer.py, PROTOCOL.md §8.6): never acked undecided, since
its sender's resend of the same bytes would be dropped inside the broker's duplicate window;
brought again later each time; and answered ``gap`` only once it has waited about a minute, so
that a window the broker brings out of order never makes its sender resend or rewind."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from bridge.engine.metrics import Metrics
from bridge.engine.outcomes import Answer, Outcome
from bridge.home.config import Limits
from bridge.transports.relay import binding
from bridge.transports.relay.consumer import GAP_ANSWERED_FROM, GAP_RETRY_MAX, RelayConsumer

BODY = b"an envelope past the next one due"


class Link:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        self.published.append((subject, body))


class Msg:
    """A message as the broker brings it the ``brought``-th time."""

    def __init__(self, brought: int) -> None:
        self.subject = binding.subject("beta", "alpha")
        self.headers = binding.envelope_headers(BODY)
        self.data = BODY
        self.metadata = SimpleNamespace(num_delivered=brought)
        self.acked = 0
        self.naks: list[float] = []

    async def ack(self) -> None:
        self.acked += 1

    async def nak(self, delay: float | None = None) -> None:
        self.naks.append(delay or 0.0)

    async def in_progress(self) -> None:
        return None


def _consumer(link: Link, outcome: Outcome, reason: str | None) -> RelayConsumer:
    async def run(fn: Any, *args: Any) -> Any:
        return fn(*args)

    exchange = SimpleNamespace(
        me=SimpleNamespace(party="beta"),
        receive_envelope=lambda data, parsed, ahead: Answer(
            outcome=outcome, body=b"signed answer", reason=reason))
    return RelayConsumer(link=link, exchange=exchange, run=run,  # type: ignore[arg-type]
                         metrics=Metrics(), couriers={"alpha": object()},  # type: ignore[dict-item]
                         limits=Limits(), max_body=1 << 20, batch=8)


def _handled(outcome: Outcome, reason: str | None, brought: int) -> tuple[Link, Msg]:
    link, msg = Link(), Msg(brought)
    asyncio.run(_consumer(link, outcome, reason).handle(msg))  # type: ignore[arg-type]
    return link, msg


@pytest.mark.parametrize("brought", range(1, GAP_ANSWERED_FROM))
def test_a_gap_is_left_to_the_broker_unanswered_and_never_acked(brought: int) -> None:
    link, msg = _handled(Outcome.OUT_OF_SEQUENCE, "gap", brought)
    assert msg.acked == 0 and len(msg.naks) == 1
    assert link.published == []  # the sender hears nothing: no resend, no rewind


def test_a_gap_waits_longer_each_time_it_comes_back_up_to_a_bound() -> None:
    delays = [_handled(Outcome.OUT_OF_SEQUENCE, "gap", n)[1].naks[0] for n in range(1, 40)]
    assert delays == sorted(delays) and delays[0] < 1.0
    assert delays[-1] == GAP_RETRY_MAX


def test_a_gap_that_goes_on_is_answered_and_still_left_to_the_broker() -> None:
    link, msg = _handled(Outcome.OUT_OF_SEQUENCE, "gap", GAP_ANSWERED_FROM)
    assert msg.acked == 0 and len(msg.naks) == 1
    assert link.published == [(binding.subject("alpha", "beta"), b"signed answer")]


def test_an_equivocation_is_answered_and_acked_it_never_becomes_due() -> None:
    link, msg = _handled(Outcome.OUT_OF_SEQUENCE, "equivocation", 1)
    assert msg.acked == 1 and msg.naks == []
    assert len(link.published) == 1


def test_an_accepted_envelope_is_answered_then_acked() -> None:
    link, msg = _handled(Outcome.ACCEPTED, None, 3)
    assert msg.acked == 1 and msg.naks == [] and len(link.published) == 1
