"""The relay's limits, enforced by the real server: the largest message, a full stream that
refuses new messages instead of dropping old ones, and settings changed in relay.toml brought
to a running relay's streams and consumers by a reload."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.errors import MaxPayloadError
from nats.js.errors import APIError

from bridge.transports.relay import binding
from relay.clients import connect
from relay.mediator import Relay, init_relay

SMALL = {"max_message_bytes = 8388608": "max_message_bytes = 65536",
         "max_stream_bytes = 1073741824": "max_stream_bytes = 1048576"}


def edit(relay: Relay, changes: dict[str, str]) -> None:
    text = relay.home.config_path.read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    relay.home.config_path.write_text(text)


@pytest.fixture
def small_relay(tmp_path: Path) -> Iterator[Relay]:
    relay = init_relay(tmp_path / "mediator", ["alpha", "bravo"])
    edit(relay, SMALL)
    try:
        relay.start()
        yield relay
    finally:
        relay.stop()


async def test_a_message_over_the_largest_is_refused(small_relay: Relay) -> None:
    nc = await connect(small_relay.url, small_relay.creds("alpha"), party="alpha")
    try:
        assert nc.max_payload == 65536 + 1024
        fits = os.urandom(65536)
        await nc.jetstream().publish("bridge.v1.bravo.alpha", fits,
                                     headers=binding.envelope_headers(fits))
        big = os.urandom(65536 + 1025)
        with pytest.raises(MaxPayloadError):
            await nc.jetstream().publish("bridge.v1.bravo.alpha", big,
                                         headers=binding.envelope_headers(big))
    finally:
        await nc.close()


async def test_a_full_stream_refuses_new_messages_and_keeps_the_old(small_relay: Relay) -> None:
    nc = await connect(small_relay.url, small_relay.creds("alpha"), party="alpha")
    js = nc.jetstream()
    stored = 0
    try:
        with pytest.raises(APIError, match=r"(?i)maximum bytes"):
            for _ in range(40):  # 40 × 60 KiB > 1 MiB
                body = os.urandom(60 * 1024)
                await js.publish("bridge.v1.bravo.alpha", body,
                                 headers=binding.envelope_headers(body))
                stored += 1
    finally:
        await nc.close()
    admin = await connect(small_relay.url, small_relay.admin_creds, party=None)
    try:
        state = (await admin.jetstream().stream_info("BRIDGE_bravo")).state
        assert 0 < stored == state.messages and state.first_seq == 1  # the first kept
    finally:
        await admin.close()


async def test_changed_settings_reach_the_running_streams_at_a_reload(relay: Relay) -> None:
    edit(relay, {"ack_wait = 60.0": "ack_wait = 90.0", "max_age = 2592000.0": "max_age = 86400.0"})
    relay.add_party("carol")  # a reload, with the edits above
    nc = await connect(relay.url, relay.admin_creds, party=None)
    try:
        js = nc.jetstream()
        for party in ("alpha", "bravo", "carol"):
            assert (await js.stream_info(f"BRIDGE_{party}")).config.max_age == 86400
            assert (await js.consumer_info(f"BRIDGE_{party}", party)).config.ack_wait == 90
    finally:
        await nc.close()
