"""The witness on the mediator's relay (PROTOCOL.md §13.8), shown with the real nats-server and
raw clients holding the parties' and the witness's credentials: a party's request reaches the
witness and its answer comes back to that party's own inbox; no party can read another's
answers, listen as the witness, or read the shared inbox; the witness can answer a request and
do nothing else (no envelope into any stream, no reading of any party's traffic); and the
party's courier takes no responder, no answer in time, or an answer without a valid status
for a witness that cannot be reached, never for an answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from bridge.engine.metrics import Metrics
from bridge.transports.relay import binding
from bridge.transports.relay.link import LinkSettings, RelayLink
from bridge.transports.relay.nkeys import read_seed
from bridge.transports.relay.server import server_config
from bridge.witness import couriers
from bridge.witness.couriers import RelayWitnessCourier, WitnessUnreachable
from relay.clients import Errors, connect
from relay.mediator import Relay, running_relay
from relay.test_isolation import Party, messages, violation

WITNESS = "mediator"
SUBJECT = binding.witness_subject(WITNESS)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    with running_relay(tmp_path / "m", ["alpha", "bravo", "carol"],
                       pairs=[("alpha", "bravo")], witnesses=[WITNESS]) as running:
        yield running


async def _party(relay: Relay, name: str) -> Party:
    errors = Errors()
    return Party(await connect(relay.url, relay.creds(name), party=name, errors=errors), errors)


Answer = Callable[[Client, Msg], Awaitable[None]]


@contextlib.asynccontextmanager
async def stand_in(relay: Relay, answer: Answer | None) -> AsyncIterator[Party]:
    """A witness of ours with the witness's credentials, answering with ``answer`` (None:
    never answering)."""
    errors = Errors()
    nc = await connect(relay.url, relay.creds(WITNESS), party=None, errors=errors)

    async def reply(msg: Msg) -> None:
        if answer is not None:
            await answer(nc, msg)

    await nc.subscribe(SUBJECT, cb=reply)
    await nc.flush()
    try:
        yield Party(nc, errors)
    finally:
        await nc.close()


async def _reversed(nc: Client, msg: Msg) -> None:
    await nc.publish(msg.reply, msg.data[::-1], headers={
        binding.HEADER_STATUS: "200", binding.HEADER_CONTENT_TYPE: "text/plain"})


@pytest.fixture
async def witness(relay: Relay) -> AsyncIterator[Party]:
    """A stand-in witness that answers each request with the request's own bytes reversed and
    status 200, as the real one answers with its bytes."""
    async with stand_in(relay, _reversed) as party:
        yield party


def test_the_server_config_gives_the_witness_its_own_user_and_parties_the_subject(
        relay: Relay) -> None:
    config = relay.home.config()
    users = server_config(relay.home, config, 1)["authorization"]["users"]
    mine = next(u for u in users if u["nkey"] == config.witnesses[WITNESS].nkey)
    assert mine["permissions"] == {"publish": {"deny": [">"]},
                                   "subscribe": {"allow": [SUBJECT], "deny": ["_INBOX.>"]},
                                   "allow_responses": {"max": 1}}
    alpha = next(u for u in users if u["nkey"] == config.parties["alpha"].nkey)
    assert SUBJECT in alpha["permissions"]["publish"]["allow"]
    assert alpha["permissions"]["subscribe"] == {"allow": ["_INBOX_alpha.>"],
                                                 "deny": ["_INBOX.>"]}


async def test_a_partys_request_is_answered_on_its_own_inbox(relay: Relay,
                                                             witness: Party) -> None:
    alpha = await _party(relay, "alpha")
    try:
        reply = await alpha.nc.request(SUBJECT, b"checkpoint", timeout=5)
        assert reply.data == b"tniopkcehc" and reply.subject.startswith("_INBOX_alpha.")
        assert reply.headers == {binding.HEADER_STATUS: "200",
                                 binding.HEADER_CONTENT_TYPE: "text/plain"}
        assert not alpha.errors.seen and not witness.errors.seen
    finally:
        await alpha.nc.close()


async def test_a_party_cannot_read_another_partys_witness_answers(relay: Relay,
                                                                  witness: Party) -> None:
    alpha, bravo = await _party(relay, "alpha"), await _party(relay, "bravo")
    try:
        heard: list[bytes] = []

        async def keep(msg: Msg) -> None:
            heard.append(msg.data)

        for subject in ("_INBOX_alpha.>", "_INBOX.>", "_INBOX_alpha.*", ">",
                        SUBJECT, "bridge.witness.v1.>"):
            await bravo.nc.subscribe(subject, cb=keep)
            await bravo.nc.flush()
            await bravo.errors.wait_for(violation("subscription", subject))
        # The refusals are the server's: alpha's exchange with the witness still works, and
        # bravo, refused every one of those subscriptions, hears none of it.
        reply = await alpha.nc.request(SUBJECT, b"alpha's checkpoint", timeout=5)
        assert reply.data == b"tniopkcehc s'ahpla"
        await asyncio.sleep(0.2)
        assert heard == []
    finally:
        await alpha.nc.close()
        await bravo.nc.close()


async def test_a_party_without_a_peer_still_reaches_the_witness_only(relay: Relay,
                                                                     witness: Party) -> None:
    carol = await _party(relay, "carol")  # on the relay, paired with no one
    try:
        assert (await carol.nc.request(SUBJECT, b"c", timeout=5)).data == b"c"
        await carol.refused_publish("bridge.witness.v1.other.add-checkpoint")
        await carol.refused_publish("bridge.v1.alpha.carol")
    finally:
        await carol.nc.close()


async def test_the_witness_can_answer_but_not_publish_or_read_traffic(relay: Relay,
                                                                      witness: Party) -> None:
    for subject in ("bridge.v1.alpha.bravo", "bridge.v1.bravo.alpha", "_INBOX_alpha.x",
                    "$JS.API.STREAM.INFO.BRIDGE_alpha", SUBJECT):
        await witness.refused_publish(subject)
    for subject in ("bridge.v1.>", "_INBOX_alpha.>", "_INBOX.>", "$JS.>"):
        await witness.refused_subscribe(subject)
    assert await messages(relay, "alpha") == 0 and await messages(relay, "bravo") == 0


@pytest.fixture
async def link(relay: Relay) -> AsyncIterator[RelayLink]:
    """Alpha's own relay connection, as its daemon makes it."""
    made = RelayLink(LinkSettings(url=relay.url, seed=read_seed(relay.creds("alpha")),
                                  party="alpha"), Metrics())
    task = asyncio.create_task(made.run())
    await made.wait_connected()
    yield made
    await made.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def heard(courier: RelayWitnessCourier, body: bytes) -> tuple[int, str, bytes]:
    """``add_checkpoint`` once the stand-in's subscription has reached the party's side:
    the broker makes a new responder known to other connections a moment after its flush,
    and until then answers "no responders" (a busy machine showed it)."""
    for _ in range(100):
        try:
            return await courier.add_checkpoint(body)
        except WitnessUnreachable as exc:
            if "no one answers" not in str(exc):
                raise
        await asyncio.sleep(0.05)
    return await courier.add_checkpoint(body)


async def test_the_couriers_no_answer_a_silent_witness_or_a_bad_status_is_unreachable(
        relay: Relay, link: RelayLink, monkeypatch: pytest.MonkeyPatch) -> None:
    courier = RelayWitnessCourier(link, WITNESS)
    with pytest.raises(WitnessUnreachable, match="no one answers"):
        await courier.add_checkpoint(b"no witness yet")  # no responder: at once
    monkeypatch.setattr(couriers, "REQUEST_SECONDS", 0.5)
    async with stand_in(relay, None):
        with pytest.raises(WitnessUnreachable, match="no answer"):
            await heard(courier, b"a witness that never answers")
    for status in ("", "20", "2000", "abc", "600"):
        async def bad(nc: Client, msg: Msg, status: str = status) -> None:
            await nc.publish(msg.reply, b"x", headers={binding.HEADER_STATUS: status}
                             if status else {"Other": "1"})

        async with stand_in(relay, bad):
            with pytest.raises(WitnessUnreachable, match="Bridge-Status"):
                await heard(courier, b"checkpoint")

    async def size(nc: Client, msg: Msg) -> None:
        await nc.publish(msg.reply, b"7\n", headers={
            binding.HEADER_STATUS: "409", binding.HEADER_CONTENT_TYPE: "text/x.tlog.size"})

    async with stand_in(relay, size):
        assert await heard(courier, b"checkpoint") == (409, "text/x.tlog.size", b"7\n")


async def test_a_witness_whose_connection_is_closed_for_good_connects_again_and_answers(
        relay: Relay) -> None:
    # nats-py reconnects forever, but gives a connection up after a protocol error from the
    # server: the witness's subscription must not be left on it, unheard.
    from bridge.core.notes.witness_wire import Decision
    from bridge.witness.relay import RelaySettings, RelayWitness

    async def judge(body: bytes, via: str) -> Decision:
        return Decision(400, "malformed", f"{len(body)} bytes via {via}")

    served = RelayWitness(RelaySettings(url=relay.url, creds=relay.creds(WITNESS)), WITNESS,
                          judge)  # type: ignore[arg-type]
    await served.start()
    alpha = await _party(relay, "alpha")
    try:
        assert (await alpha.nc.request(SUBJECT, b"one", timeout=5)).data == \
            b"malformed: 3 bytes via relay\n"
        first = served.nc
        await first.close()
        async with asyncio.timeout(30):
            while served.nc is first or not served.nc.is_connected:
                await asyncio.sleep(0.05)
        reply = await alpha.nc.request(SUBJECT, b"two!", timeout=5)
        assert reply.data == b"malformed: 4 bytes via relay\n"
        assert reply.headers is not None and reply.headers[binding.HEADER_STATUS] == "400"
    finally:
        await alpha.nc.close()
        await served.close()
    assert served.nc.is_closed
