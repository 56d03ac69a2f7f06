"""``bridge relay run`` with a real nats-server: streams and consumers made as the binding
says, a second publish of the same bytes stored once, a killed server restarted with what it
had stored, a clean stop, and ``relay status`` that counts without reading."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nats.js.api import StreamInfo

from bridge.transports.relay import binding, server, supervise
from bridge.transports.relay.supervise import Supervisor, Timing
from relay.clients import connect
from relay.mediator import Relay, bridge_cli, init_relay

BODY = b"sealed envelope bytes: opaque to the mediator"


async def stream_info(relay: Relay, party: str) -> StreamInfo:
    nc = await connect(relay.url, relay.admin_creds, party=None)
    try:
        return await nc.jetstream().stream_info(binding.stream_name(party))
    finally:
        await nc.close()


async def publish(relay: Relay, sender: str, recipient: str, body: bytes) -> bool:
    """Publish as ``sender``; whether the broker called it a duplicate."""
    nc = await connect(relay.url, relay.creds(sender), party=sender)
    try:
        ack = await nc.jetstream().publish(binding.subject(recipient, sender), body,
                                           headers=binding.envelope_headers(body))
        return bool(ack.duplicate)
    finally:
        await nc.close()


async def pull_one(relay: Relay, party: str) -> tuple[bytes, dict[str, str]]:
    nc = await connect(relay.url, relay.creds(party), party=party)
    try:
        # No inbox_prefix here: nats-py then takes the connection's, with its "." (one given
        # here is used as it is, and "_INBOX_bravo" + a nuid is not under "_INBOX_bravo.>").
        sub = await nc.jetstream().pull_subscribe_bind(
            binding.consumer_name(party), binding.stream_name(party))
        (msg,) = await sub.fetch(1, timeout=10)
        await msg.ack_sync()
        return msg.data, dict(msg.headers or {})
    finally:
        await nc.close()


async def test_streams_and_consumers_are_made_as_the_binding_says(relay: Relay) -> None:
    nc = await connect(relay.url, relay.admin_creds, party=None)
    try:
        js = nc.jetstream()
        for party in ("alpha", "bravo"):
            cfg = (await js.stream_info(binding.stream_name(party))).config
            assert cfg.subjects == [f"bridge.v1.{party}.>"]
            assert (str(cfg.retention), str(cfg.storage), str(cfg.discard)) == (
                "workqueue", "file", "new")
            assert cfg.duplicate_window == 86400 and cfg.max_age == 30 * 86400
            assert cfg.max_msg_size == 8 * 1024 * 1024 + 1024
            ci = await js.consumer_info(binding.stream_name(party), party)
            assert ci.config.durable_name == party
            assert (str(ci.config.ack_policy), str(ci.config.deliver_policy)) == (
                "explicit", "all")
            assert ci.config.ack_wait == 60 and ci.config.max_deliver == -1
            assert ci.config.deliver_subject is None  # a pull consumer
    finally:
        await nc.close()


async def test_the_same_bytes_published_twice_are_stored_once_even_after_delivery(
        relay: Relay) -> None:
    assert await publish(relay, "alpha", "bravo", BODY) is False
    assert await publish(relay, "alpha", "bravo", BODY) is True
    assert (await stream_info(relay, "bravo")).state.messages == 1
    data, headers = await pull_one(relay, "bravo")
    assert data == BODY and headers["Nats-Msg-Id"] == binding.msg_id(BODY)
    assert (await stream_info(relay, "bravo")).state.messages == 0  # work queue: acked, gone
    # A retry of the same bytes after delivery, inside the window: still not stored again.
    assert await publish(relay, "alpha", "bravo", BODY) is True
    assert (await stream_info(relay, "bravo")).state.messages == 0
    # Other bytes are stored: the test could fail.
    assert await publish(relay, "alpha", "bravo", BODY + b"!") is False
    assert (await stream_info(relay, "bravo")).state.messages == 1


async def test_a_killed_server_is_restarted_with_what_it_had_stored(relay: Relay) -> None:
    await publish(relay, "alpha", "bravo", BODY)
    first = relay.state()
    again = relay.kill_server()  # kill -9 of nats-server; relay run starts another
    assert again["server_pid"] != first["server_pid"] and again["starts"] == 2
    assert again["url"] == first["url"]  # the same port: the parties' URL holds
    assert "exited with status -9; restarting" in relay.log()
    assert (await stream_info(relay, "bravo")).state.messages == 1
    data, _ = await pull_one(relay, "bravo")
    assert data == BODY
    # ... and the stream the restart ensured is the same one: nothing delivered twice.
    assert (await stream_info(relay, "bravo")).state.messages == 0


def test_relay_run_stops_cleanly_on_sigterm_and_takes_its_server_with_it(relay: Relay) -> None:
    child = int(relay.state()["server_pid"])
    assert relay.stop() == 0
    assert not relay.home.state_path.exists()
    assert not alive(child)
    assert "nats-server stopped" in relay.log()


async def test_a_relay_run_started_again_keeps_the_port_and_the_data(relay: Relay) -> None:
    await publish(relay, "alpha", "bravo", BODY)
    url = relay.url
    relay.stop()
    relay.start()
    assert relay.url == url
    assert (await stream_info(relay, "bravo")).state.messages == 1


async def test_status_counts_per_pair_without_showing_contents(relay: Relay) -> None:
    secret = b"CONTENTS-NEVER-SHOWN " * 10
    await publish(relay, "alpha", "bravo", secret)
    await publish(relay, "alpha", "bravo", secret + b"2")
    out = bridge_cli("--home", str(relay.home.path), "relay", "status", "--json").stdout
    status = json.loads(out)
    bravo = next(p for p in status["parties"] if p["party"] == "bravo")
    assert bravo["messages"] == 2 and bravo["waiting_from"] == {"alpha": 2}
    assert bravo["bytes"] > 2 * len(secret) and bravo["last_message_at"]
    alpha = next(p for p in status["parties"] if p["party"] == "alpha")
    assert alpha["messages"] == 0
    assert status["pairs"] == [{"pair": ["alpha", "bravo"], "to_alpha": 0, "to_bravo": 2}]
    text = bridge_cli("--home", str(relay.home.path), "relay", "status").stdout
    assert "to bravo: 2 waiting" in text and "from alpha: 2 waiting" in text
    for shown in (out, text):
        assert "CONTENTS" not in shown


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except FileNotFoundError:
        return False


def test_a_relay_run_killed_by_sigkill_takes_its_server_with_it(relay: Relay) -> None:
    server = int(relay.state()["server_pid"])
    assert relay.proc is not None
    relay.proc.kill()
    relay.proc.wait()
    relay.proc = None
    deadline = time.monotonic() + 30
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(server), "an orphaned nats-server kept running"


def test_a_second_relay_run_on_the_same_home_is_refused(relay: Relay) -> None:
    done = subprocess.run([sys.executable, "-m", "bridge", "--home", str(relay.home.path),
                           "relay", "run"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2 and "already runs" in done.stderr
    assert relay.state()["ready"]  # the first one is untouched


def test_restart_backoff_doubles_to_its_cap_and_resets_after_a_stable_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = init_relay(tmp_path / "m", ["alpha"]).home
    sup = Supervisor(home, server.find_server(), Timing(initial_backoff=0.5, max_backoff=4,
                                                        stable_after=60))
    now = [1000.0]
    monkeypatch.setattr(supervise.time, "monotonic", lambda: now[0])
    sup.state.last_start = now[0]
    assert [sup._next_backoff() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    now[0] += 60  # the last start ran a minute before it exited
    assert sup._next_backoff() == 0.5


async def test_a_server_that_lost_its_store_comes_back_with_empty_streams_not_none(
        relay: Relay) -> None:
    await publish(relay, "alpha", "bravo", BODY)
    relay.stop()
    shutil.rmtree(relay.home.data_dir / "jetstream")
    relay.start()
    assert (await stream_info(relay, "bravo")).state.messages == 0  # lost, as the disk was
    # ... but the stream and consumer are there again: the sender's resend is delivered.
    assert await publish(relay, "alpha", "bravo", BODY) is False
    data, _ = await pull_one(relay, "bravo")
    assert data == BODY
