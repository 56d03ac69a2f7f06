"""The party's relay consumer across a new connection and a restart, with a real nats-server
(bridge/transports/relay/consumer.py and link.py): whatever happens to the connection or the
consuming task, what the broker holds for us is pulled through the connection in use, and what
was pulled and not handled comes back at once (not after the consumer's ack wait)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace

import nats
from nats.aio.msg import Msg

from bridge.daemon.supervise import supervise
from bridge.engine.metrics import Metrics
from bridge.home.config import Limits
from bridge.transports.relay import binding
from bridge.transports.relay.consumer import RelayConsumer
from bridge.transports.relay.link import LinkSettings, RelayLink

from .relay_broker import Broker

WAIT = 30.0  # a deadline for a fault; a sound run takes a fraction of a second


class Recorder(RelayConsumer):
    """The real consumer's subscription and pulls; what it handles is recorded (and acked)
    instead of going to an engine. ``hold`` keeps the first message in hand until set."""

    def __init__(self, link: RelayLink, metrics: Metrics) -> None:
        super().__init__(link=link, exchange=SimpleNamespace(me=SimpleNamespace(party="beta")),
                         run=None, metrics=metrics, couriers={}, limits=Limits(),
                         max_body=1 << 20, batch=8)  # type: ignore[arg-type]
        self.got: asyncio.Queue[bytes] = asyncio.Queue()
        self.hold: asyncio.Event | None = None

    async def handle(self, msg: Msg) -> None:
        if self.hold is not None:
            await self.hold.wait()
        await msg.ack()
        await self.got.put(msg.data)


def link_of(broker: Broker, metrics: Metrics) -> RelayLink:
    return RelayLink(LinkSettings(url=broker.url, seed=broker.keys["beta"].seed, party="beta"),
                     metrics)


async def publish_as_alpha(broker: Broker, *bodies: bytes) -> None:
    nc = await nats.connect(broker.url, nkeys_seed_str=broker.keys["alpha"].seed,
                            inbox_prefix=binding.inbox_prefix("alpha"), allow_reconnect=False)
    try:
        for body in bodies:
            await nc.jetstream().publish(binding.subject("beta", "alpha"), body,
                                         headers=binding.envelope_headers(body))
    finally:
        await nc.close()


async def received(consumer: Recorder, n: int) -> list[bytes]:
    return [await asyncio.wait_for(consumer.got.get(), WAIT) for _ in range(n)]


async def stopped(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_a_connection_closed_for_good_is_made_again_and_the_consumer_pulls_through_it(
        tmp_path: Path) -> None:
    broker = Broker(tmp_path / "mediator", ("alpha", "beta"))
    broker.start()

    async def go() -> None:
        metrics = Metrics()
        link = link_of(broker, metrics)
        consumer = Recorder(link, metrics)
        tasks = [asyncio.create_task(supervise("relay-link", link.run, metrics, initial=0.05)),
                 asyncio.create_task(consumer.run_forever())]
        try:
            await publish_as_alpha(broker, b"one")
            assert await received(consumer, 1) == [b"one"]
            # The server ends the connection with a protocol error: nats-py closes it for good
            # (no reconnect), the link's task returns and is started again with a new one.
            first = link._nc
            assert first is not None
            await first.close()
            async with asyncio.timeout(WAIT):
                while link._nc is first or not link.connected:
                    await asyncio.sleep(0.05)
            await publish_as_alpha(broker, b"two")
            assert await received(consumer, 1) == [b"two"]
        finally:
            await stopped(*tasks)
            await link.close()

    try:
        asyncio.run(go())
    finally:
        broker.stop()


def test_a_consumer_stopped_mid_batch_gives_the_rest_back_at_once(tmp_path: Path) -> None:
    # An ack wait far longer than the test's deadline: a message left "delivered, unacked" by
    # the stopped consumer would only come back after it.
    broker = Broker(tmp_path / "mediator", ("alpha", "beta"), ack_wait=3600.0)
    broker.start()

    async def go() -> None:
        metrics = Metrics()
        link = link_of(broker, metrics)
        linked = asyncio.create_task(link.run())
        try:
            await publish_as_alpha(broker, b"a", b"b", b"c")
            first = Recorder(link, metrics)
            first.hold = asyncio.Event()  # the first of the batch is being taken in...
            task = asyncio.create_task(first.run_forever())
            async with asyncio.timeout(WAIT):
                while not first.got.empty() or not _holding(first):
                    await asyncio.sleep(0.05)
            await stopped(task)  # ...when the daemon stops
            assert first.got.empty()
            again = Recorder(link, metrics)  # the daemon started again
            task = asyncio.create_task(again.run_forever())
            try:
                assert sorted(await received(again, 3)) == [b"a", b"b", b"c"]
            finally:
                await stopped(task)
        finally:
            await link.close()
            with contextlib.suppress(Exception):
                await stopped(linked)

    try:
        asyncio.run(go())
    finally:
        broker.stop()


def _holding(consumer: Recorder) -> bool:
    """The consumer is inside ``handle`` with a message (waiting on its ``hold``)."""
    assert consumer.hold is not None
    return bool(consumer.hold._waiters)  # type: ignore[attr-defined]
