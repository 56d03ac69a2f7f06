"""Isolation on the mediator's relay, shown with the real nats-server and raw NATS clients
holding each party's credentials (RELAY binding, "Credentials and permissions").

Two pairs share one relay: alpha–bravo and carol–dave. Every attempt of alpha's outside its
rights must be *refused* by the server (a permissions violation on alpha's connection, naming
the subject), not merely go unanswered; and where the test looks at an absence (nothing
stored, nothing consumed), the same thing done with the right credentials is shown to work,
so that the test can fail.
"""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from nats.aio.client import Client

from bridge.transports.relay import binding
from bridge.transports.relay.nkeys import UserKey
from relay.clients import Errors, connect
from relay.mediator import Relay

BODY = b"an envelope for bravo"


def violation(kind: str, subject: str) -> str:
    """The server's words, as nats-py reports them (lower case)."""
    return f'permissions violation for {kind} to "{subject}"'.lower()


class Party:
    def __init__(self, nc: Client, errors: Errors) -> None:
        self.nc, self.errors = nc, errors

    async def refused_publish(self, subject: str, payload: bytes = b"{}") -> None:
        await self.nc.publish(subject, payload, reply=self.nc.new_inbox())
        await self.nc.flush()
        await self.errors.wait_for(violation("publish", subject))

    async def refused_subscribe(self, subject: str) -> None:
        await self.nc.subscribe(subject)
        await self.nc.flush()
        await self.errors.wait_for(violation("subscription", subject))


async def party(relay: Relay, name: str) -> Party:
    errors = Errors()
    return Party(await connect(relay.url, relay.creds(name), party=name, errors=errors), errors)


async def admin(relay: Relay) -> Client:
    return await connect(relay.url, relay.admin_creds, party=None)


async def messages(relay: Relay, recipient: str) -> int:
    nc = await admin(relay)
    try:
        return (await nc.jetstream().stream_info(binding.stream_name(recipient))).state.messages
    finally:
        await nc.close()


async def publish_as(relay: Relay, sender: str, recipient: str, body: bytes) -> None:
    p = await party(relay, sender)
    try:
        await p.nc.jetstream().publish(binding.subject(recipient, sender), body,
                                       headers=binding.envelope_headers(body))
    finally:
        await p.nc.close()


async def pull(relay: Relay, name: str) -> list[bytes]:
    p = await party(relay, name)
    try:
        sub = await p.nc.jetstream().pull_subscribe_bind(binding.consumer_name(name),
                                                        binding.stream_name(name))
        got = await sub.fetch(10, timeout=5)
        for msg in got:
            await msg.ack_sync()
        assert not p.errors.seen, p.errors
        return [m.data for m in got]
    finally:
        await p.nc.close()


async def test_alpha_publishes_toward_bravo_as_itself_and_nothing_else(hub: Relay) -> None:
    alpha = await party(hub, "alpha")
    try:
        ack = await alpha.nc.jetstream().publish("bridge.v1.bravo.alpha", BODY,
                                                 headers=binding.envelope_headers(BODY))
        assert ack.stream == "BRIDGE_bravo" and not alpha.errors.seen
        for subject in ("bridge.v1.bravo.carol",   # to its peer, as a third party
                        "bridge.v1.bravo.bravo",
                        "bridge.v1.alpha.bravo",   # into its own stream, as its peer
                        "bridge.v1.alpha.alpha",
                        "bridge.v1.carol.alpha",   # toward a party it is not paired with
                        "bridge.v1.carol.dave",    # inside the other pair, either way
                        "bridge.v1.dave.carol",
                        "bridge.v1.bravo",
                        "bridge.v1.bravo.alpha.x",
                        "bridge.v1.bravo.*",
                        "bridge.>"):
            await alpha.refused_publish(subject, BODY + subject.encode())
    finally:
        await alpha.nc.close()
    # Only the one allowed message was stored anywhere.
    assert await messages(hub, "bravo") == 1
    assert await messages(hub, "alpha") == 0
    assert await messages(hub, "carol") == 0 and await messages(hub, "dave") == 0
    assert await pull(hub, "bravo") == [BODY]


async def test_alpha_cannot_pull_read_or_ack_bravos_messages(hub: Relay) -> None:
    await publish_as(hub, "alpha", "bravo", BODY)
    await publish_as(hub, "bravo", "alpha", b"for alpha")
    alpha = await party(hub, "alpha")
    try:
        for subject in ("$JS.API.CONSUMER.MSG.NEXT.BRIDGE_bravo.bravo",
                        "$JS.API.CONSUMER.MSG.NEXT.BRIDGE_carol.carol",
                        "$JS.API.STREAM.MSG.GET.BRIDGE_bravo",
                        "$JS.API.DIRECT.GET.BRIDGE_bravo",
                        "$JS.API.DIRECT.GET.BRIDGE_bravo.bridge.v1.bravo.alpha",
                        "$JS.API.STREAM.INFO.BRIDGE_bravo",
                        "$JS.API.CONSUMER.INFO.BRIDGE_bravo.bravo",
                        "$JS.ACK.BRIDGE_bravo.bravo.1.1.1.0.0"):
            await alpha.refused_publish(subject, json.dumps({"batch": 1, "seq": 1}).encode())
    finally:
        await alpha.nc.close()
    # Bravo's message is still there for bravo, and alpha's own consumer works for alpha.
    assert await pull(hub, "bravo") == [BODY]
    assert await pull(hub, "alpha") == [b"for alpha"]


async def test_alpha_cannot_delete_purge_create_or_list_anything(hub: Relay) -> None:
    await publish_as(hub, "bravo", "alpha", b"kept")
    await publish_as(hub, "alpha", "bravo", b"kept too")
    alpha = await party(hub, "alpha")
    try:
        for subject in ("$JS.API.STREAM.DELETE.BRIDGE_alpha",
                        "$JS.API.STREAM.DELETE.BRIDGE_bravo",
                        "$JS.API.STREAM.PURGE.BRIDGE_alpha",
                        "$JS.API.STREAM.PURGE.BRIDGE_bravo",
                        "$JS.API.STREAM.MSG.DELETE.BRIDGE_alpha",
                        "$JS.API.STREAM.MSG.DELETE.BRIDGE_bravo",
                        "$JS.API.STREAM.UPDATE.BRIDGE_alpha",
                        "$JS.API.STREAM.CREATE.EVIL",
                        "$JS.API.CONSUMER.DELETE.BRIDGE_alpha.alpha",
                        "$JS.API.CONSUMER.DELETE.BRIDGE_bravo.bravo",
                        "$JS.API.CONSUMER.CREATE.BRIDGE_alpha",
                        "$JS.API.CONSUMER.CREATE.BRIDGE_alpha.spy",
                        "$JS.API.CONSUMER.CREATE.BRIDGE_bravo.spy",
                        "$JS.API.CONSUMER.CREATE.BRIDGE_bravo.spy.bridge.v1.bravo.alpha",
                        "$JS.API.CONSUMER.DURABLE.CREATE.BRIDGE_bravo.spy",
                        "$JS.API.STREAM.NAMES",
                        "$JS.API.STREAM.LIST",
                        "$JS.API.CONSUMER.NAMES.BRIDGE_alpha",
                        "$JS.API.CONSUMER.LIST.BRIDGE_bravo",
                        "$JS.API.INFO",            # the account's totals: other pairs' traffic
                        "$JS.API.STREAM.SNAPSHOT.BRIDGE_bravo",
                        "$SYS.REQ.SERVER.PING"):
            await alpha.refused_publish(subject)
    finally:
        await alpha.nc.close()
    # Nothing was deleted, and the mediator's own user can list what alpha could not.
    assert await messages(hub, "alpha") == 1 and await messages(hub, "bravo") == 1
    nc = await admin(hub)
    try:
        names = json.loads((await nc.request("$JS.API.STREAM.NAMES", b"{}", timeout=10)).data)
        assert sorted(names["streams"]) == ["BRIDGE_alpha", "BRIDGE_bravo", "BRIDGE_carol",
                                            "BRIDGE_dave"]
    finally:
        await nc.close()


async def test_alpha_can_subscribe_to_its_own_inbox_only(hub: Relay) -> None:
    alpha = await party(hub, "alpha")
    try:
        for subject in ("bridge.>", ">", "bridge.v1.bravo.>", "bridge.v1.alpha.>",
                        "bridge.v1.carol.dave", "_INBOX_bravo.>", "_INBOX_carol.x", "_INBOX.>",
                        "$JS.ACK.BRIDGE_bravo.>", "$JS.API.>", "$JS.EVENT.>"):
            await alpha.refused_subscribe(subject)
        # Its own inbox works: a request from alpha gets its answer there.
        info = await alpha.nc.jetstream().consumer_info("BRIDGE_alpha", "alpha")
        assert info.name == "alpha"
    finally:
        await alpha.nc.close()


async def test_what_alpha_may_not_see_is_there_for_the_rightful_party(hub: Relay) -> None:
    """The absences above are real: carol and dave exchange through the same server, and
    dave's consumer gets what carol sent, while alpha saw none of it."""
    await publish_as(hub, "carol", "dave", b"carol to dave")
    alpha = await party(hub, "alpha")
    try:
        await alpha.refused_subscribe("bridge.v1.dave.carol")
        await alpha.refused_publish("$JS.API.CONSUMER.MSG.NEXT.BRIDGE_dave.dave",
                                    b'{"batch": 1}')
        await asyncio.sleep(0)  # let any delivery that slipped through arrive
    finally:
        await alpha.nc.close()
    assert await pull(hub, "dave") == [b"carol to dave"]


async def test_no_credentials_or_unknown_keys_cannot_connect_at_all(hub: Relay,
                                                                    tmp_path) -> None:
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(hub.url, allow_reconnect=False, max_reconnect_attempts=0,
                           connect_timeout=5, error_cb=Errors().record)
    stranger = tmp_path / "stranger.creds"
    stranger.write_text(UserKey.generate().seed_block())
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await connect(hub.url, stranger, party="alpha")
