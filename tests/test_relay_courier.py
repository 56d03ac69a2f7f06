"""The relay courier's bookkeeping of answers (bridge/transports/relay/courier.py), with a
link that records what is published: the broker drops a second publish of the same bytes, so
an answer that came while nobody waited is kept and handed back at once when its envelope is
sent again, and an answer's broker message is acked only after the delivery loop is done; with
several envelopes in flight, each is awaited until its answer comes or the loop lets go of it."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.engine.ports import Carried, Outgoing
from bridge.transports.relay import binding
from bridge.transports.relay.courier import RelayCourier
from bridge.transports.relay.link import RelayUnavailable

ENV = Outgoing(peer="beta", seq=3, digest=b"\x03" * 32, data=b"envelope three")


class Link:
    """Records publishes; ``down`` makes them fail as a link with no broker does."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.down = False

    async def publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        if self.down:
            raise RelayUnavailable("not connected to the relay")
        self.published.append((subject, body, dict(headers)))


class Msg:
    def __init__(self) -> None:
        self.acked = 0

    async def ack(self) -> None:
        self.acked += 1


def courier(link: Link) -> RelayCourier:
    return RelayCourier(link=link, me="alpha", peer="beta")  # type: ignore[arg-type]


def test_envelope_is_published_on_the_peers_subject_with_its_hash_as_msg_id() -> None:
    link = Link()

    async def go() -> None:
        await courier(link).send([ENV])
    asyncio.run(go())
    [(subject, body, headers)] = link.published
    assert subject == "bridge.v1.beta.alpha" and body == ENV.data
    assert headers[binding.HEADER_MSG_ID] == binding.msg_id(ENV.data)
    assert headers[binding.HEADER_KIND] == "envelope"


FOUR = Outgoing(peer="beta", seq=4, digest=b"\x04" * 32, data=b"four")
FIVE = Outgoing(peer="beta", seq=5, digest=b"\x05" * 32, data=b"five")


def test_answer_awaited_is_handed_on_and_acked_only_when_the_loop_asks_for_the_next() -> None:
    link, msg = Link(), Msg()

    async def go() -> Any:
        c = courier(link)
        await c.send([ENV])
        c.offer(ENV.seq, ENV.digest, b"signed answer", msg)  # type: ignore[arg-type]
        arrival = await c.receive()
        assert msg.acked == 0  # the engine has not acted on it yet
        # With a window the loop sends more while an answer it has taken is not acted on
        # yet: a send must not ack it (a daemon killed then would lose the answer for good).
        await c.send([FOUR])
        assert msg.acked == 0
        c.offer(FOUR.seq, FOUR.digest, b"answer to four", None)
        await asyncio.wait_for(c.receive(), 1.0)  # the loop is done with the first
        return arrival
    arrival = asyncio.run(go())
    assert arrival.result is Carried.ANSWERED and arrival.body == b"signed answer"
    assert (arrival.seq, arrival.digest) == (ENV.seq, ENV.digest)
    assert msg.acked == 1


def test_a_window_awaits_every_envelope_sent_and_hands_their_answers_in_any_order() -> None:
    link = Link()

    async def go() -> list[Any]:
        c = courier(link)
        await c.send([ENV, FOUR])
        await c.send([FIVE])  # more while three and four are on their way
        for env in (FIVE, ENV, FOUR):
            c.offer(env.seq, env.digest, env.data + b" answered", None)
        return [await asyncio.wait_for(c.receive(), 1.0) for _ in range(3)]
    arrivals = asyncio.run(go())
    assert [a.seq for a in arrivals] == [5, 3, 4]
    assert [a.result for a in arrivals] == [Carried.ANSWERED] * 3
    assert len(link.published) == 3


def test_an_answer_after_the_loop_let_go_of_its_envelope_is_kept_for_its_next_send() -> None:
    link, msg = Link(), Msg()

    async def go() -> Any:
        c = courier(link)
        await c.send([ENV, FOUR])
        c.offer(ENV.seq, ENV.digest, b"late answer to three", msg)  # type: ignore[arg-type]
        c.let_go(ENV.seq, ENV.digest)  # its wait ran out before the loop took the answer
        c.offer(FOUR.seq, FOUR.digest, b"answer to four", None)
        four = await asyncio.wait_for(c.receive(), 1.0)  # not three's: the loop dropped it
        await c.send([ENV])  # the window starts over from three: handed at once
        return four, await asyncio.wait_for(c.receive(), 1.0)
    four, three = asyncio.run(go())
    assert four.body == b"answer to four" and three.body == b"late answer to three"
    assert len(link.published) == 2  # three was not published again
    assert msg.acked == 0  # never acked before the loop had it


def test_late_answer_is_kept_and_handed_back_at_once_when_the_envelope_is_sent_again() -> None:
    link, msg = Link(), Msg()

    async def go() -> Any:
        c = courier(link)
        await c.send([ENV])
        await c.close()  # the loop's wait ran out: nothing is awaited now
        c.offer(ENV.seq, ENV.digest, b"late answer", msg)  # type: ignore[arg-type]
        await c.send([ENV])  # sent again: the broker would drop it as a duplicate
        return await asyncio.wait_for(c.receive(), 1.0)
    arrival = asyncio.run(go())
    assert arrival.body == b"late answer"
    assert len(link.published) == 1  # handed back from what was kept, not published again


def test_answer_queued_for_an_envelope_no_longer_awaited_is_not_lost() -> None:
    link, msg = Link(), Msg()
    other = Outgoing(peer="beta", seq=2, digest=b"\x02" * 32, data=b"two")

    async def go() -> Any:
        c = courier(link)
        await c.send([ENV])
        c.offer(ENV.seq, ENV.digest, b"answer to three", msg)  # type: ignore[arg-type]
        await c.send([other])  # a rewind: seq 2 first; three's answer must wait, not vanish
        c.offer(other.seq, other.digest, b"answer to two", None)
        first = await c.receive()
        await c.send([ENV])
        return first, await asyncio.wait_for(c.receive(), 1.0)
    first, second = asyncio.run(go())
    assert first.body == b"answer to two" and second.body == b"answer to three"
    assert msg.acked == 0  # never acked before the loop had it


def test_broker_unreachable_is_an_unreachable_arrival_at_once() -> None:
    link = Link()
    link.down = True

    async def go() -> Any:
        c = courier(link)
        await c.send([ENV])
        return await asyncio.wait_for(c.receive(), 1.0)
    arrival = asyncio.run(go())
    assert arrival.result is Carried.UNREACHABLE and "not connected" in arrival.detail


def test_letting_go_of_one_envelope_leaves_the_answers_queued_for_the_others() -> None:
    link = Link()

    async def go() -> Any:
        c = courier(link)
        await c.send([ENV, FOUR])
        c.offer(FOUR.seq, FOUR.digest, b"answer to four", None)  # queued, not taken yet
        c.let_go(ENV.seq, ENV.digest)  # three's wait ran out meanwhile
        return await asyncio.wait_for(c.receive(), 1.0)
    four = asyncio.run(go())
    assert four.body == b"answer to four"  # still the loop's: not kept away from it


class FlakyLink(Link):
    """Fails the publishes numbered in ``failing`` (from 0), as a broker lost for a moment."""

    def __init__(self, failing: set[int]) -> None:
        super().__init__()
        self.failing, self.tries = failing, 0

    async def publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        self.tries += 1
        if self.tries - 1 in self.failing:
            raise RelayUnavailable("the broker did not answer")
        await super().publish(subject, body, headers)


def test_nothing_is_published_past_an_envelope_that_could_not_be_until_the_window_starts_over(
        ) -> None:
    link = FlakyLink(failing={0})

    async def go() -> list[Any]:
        c = courier(link)
        await c.send([ENV, FOUR])  # three fails; four must not reach the broker before it
        await c.send([FIVE])  # more, while the loop has not yet seen three's failure
        arrivals = [await asyncio.wait_for(c.receive(), 1.0) for _ in range(3)]
        await c.send([ENV, FOUR, FIVE])  # the window starts over from three
        return arrivals
    arrivals = asyncio.run(go())
    assert [(a.seq, a.result) for a in arrivals] == [(3, Carried.UNREACHABLE),
                                                      (4, Carried.UNREACHABLE),
                                                      (5, Carried.UNREACHABLE)]
    assert "not published" in arrivals[1].detail
    assert [body for _, body, _ in link.published] == [ENV.data, FOUR.data, FIVE.data]
