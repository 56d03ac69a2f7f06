"""The witness through the mediator's relay (PROTOCOL.md §13.8), with real processes: a real
nats-server run by ``relay run``, two daemons joined to it, and a witness process that serves
only on the relay. The parties' only connection is the broker (no one listens on TCP), their
logs are cosigned through it, and the receipts verify with ``--witness``. A witness that is
not there (no responder) never holds the exchange up, and witnessing catches up once it is;
a witness that does not know the origin refuses it (404) as over HTTP; and an answer forged
on the witness's subject (by whoever holds its credentials, or the broker) is the alarm."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from relay.clients import connect
from relay.mediator import Relay, running_relay

from bridge.cli.demo_relay import listening_tcp_ports
from bridge.daemon.pair import Node, make_relay_pair
from bridge.transports.relay import binding
from bridge.witness.process import WitnessProcess, pin_to, start_witness
from bridge.witness.relay import RelaySettings

from .conftest import FAST, EventLog, metric, person, wait_for

WITNESS = "mediator"


def bridge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def relayed(tmp_path: Path) -> Iterator[Callable[..., tuple[Relay, Node, Node,
                                                            WitnessProcess]]]:
    """``relayed(origins=True)``: a running relay with a witness user, two homes joined to it
    and pinning each other and the witness ``via relay`` (daemons not started), and the witness
    serving on the relay only (``origins``: whether it witnesses the two parties' logs)."""
    stack: list[object] = []
    with running_relay(tmp_path / "m", ["alpha", "beta"], witnesses=[WITNESS]) as relay:
        def make(*, origins: bool = True, start: bool = True
                 ) -> tuple[Relay, Node, Node, WitnessProcess]:
            creds = {p: relay.creds(p).read_bytes() for p in ("alpha", "beta")}
            a, b = make_relay_pair(tmp_path / "p", relay.url, creds, delivery=FAST)
            stack.extend((a, b))
            keys = [a.home.public_key_path("alpha"), b.home.public_key_path("beta")]
            w = start_witness(tmp_path / "w", party=WITNESS, origins=keys if origins else (),
                              relay=RelaySettings(url=relay.url, creds=relay.creds(WITNESS)),
                              listen=False)
            stack.append(w)
            if not start:
                w.stop()
            for node in (a, b):
                pin_to(node.home, w, interval_seconds=0.2, via="relay")
            return relay, a, b, w

        try:
            yield make
        finally:
            for item in stack:
                if isinstance(item, Node):
                    item.stop(timeout=10)
                elif isinstance(item, WitnessProcess):
                    item.kill()


def _witnessed(node: Node) -> dict[str, object]:
    return dict((node.client.health().get("witnesses") or {}).get(WITNESS) or {})


def _caught_up(node: Node) -> bool:
    seen = _witnessed(node)
    return seen.get("cosigned_size") is not None and seen["cosigned_size"] == seen["log_size"]


def _exchange(alpha: Node, beta: Node, doc_id: str) -> None:
    alpha.client.submit_document("manifest", "beta", [person(i) for i in (1, 2, 3)], id=doc_id)
    wait_for(lambda: any(d["id"] == doc_id for d in beta.client.documents(direction="in")),
             what=f"beta received {doc_id}")
    beta.client.acknowledge(doc_id, all="RECEIVED")
    wait_for(lambda: alpha.client.document(doc_id)["items"]["acknowledged"] == 3,
             what=f"alpha saw the acknowledgements of {doc_id}")


def test_exchange_and_witnessing_both_through_the_relay_with_no_tcp_port(  # type: ignore[no-untyped-def]
        relayed, tmp_path: Path) -> None:
    _relay, alpha, beta, w = relayed()
    alpha.start()
    beta.start()
    for proc in (alpha.proc, beta.proc, w.proc):
        assert proc is not None and listening_tcp_ports(proc.pid) == []
    _exchange(alpha, beta, "M-R-1")
    for node in (alpha, beta):
        wait_for(lambda n=node: _caught_up(n), what=f"{node.party} witnessed via the relay")
    out = tmp_path / "receipt.bin"
    got = bridge("--home", alpha.home.path, "receipt", "M-R-1", "--item", "P-00002", "-o", out)
    assert got.returncode == 0, got.stderr
    checked = bridge("verify", out, "--keys", alpha.home.public_key_path("alpha"),
                     "--keys", beta.home.public_key_path("beta"), "--witness", w.identity_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    for what in ("document M-R-1", "acknowledgement "):
        assert any(line.strip().startswith(what) and "logged by alpha no later than" in line
                   and line.endswith("(witnessed by mediator)") for line in lines), lines
    status = json.loads(bridge("--home", alpha.home.path, "status", "--json").stdout)
    assert status["witnesses"][WITNESS]["via"] == "relay"
    assert status["witnesses"][WITNESS]["cosigned_size"] >= 1 and status["faults"] == {}
    pins = json.loads(bridge("--home", beta.home.path, "witness", "status", "--json").stdout)
    mine = pins["witnesses"][WITNESS]
    assert pins["daemon_running"] and mine["via"] == "relay" and mine["url"] is None
    assert mine["cosigned_size"] == mine["log_size"]
    log = bridge("--home", w.home.path, "witness", "log")
    assert "cosigned" in log.stdout and "bridge.example/alpha/" in log.stdout, log.stdout
    for proc in (alpha.proc, beta.proc, w.proc):
        assert proc is not None and listening_tcp_ports(proc.pid) == []


def test_a_witness_not_on_the_relay_never_holds_the_exchange_and_is_caught_up(  # type: ignore[no-untyped-def]
        relayed) -> None:
    _relay, alpha, beta, w = relayed(start=False)  # no responder on the witness's subject
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-R-2")  # completes with no witness at all
    wait_for(lambda: metric(alpha, "witness_unreachable_total") >= 1,
             what="alpha found no witness")
    assert _witnessed(alpha).get("cosigned_size") is None
    w.start()
    wait_for(lambda: _caught_up(alpha) and _caught_up(beta), what="witnessing caught up")


def _started(relayed, events, **how: bool  # type: ignore[no-untyped-def]
             ) -> tuple[Relay, Node, Node, EventLog]:
    """Both daemons started, alpha's events followed from its start."""
    relay, alpha, beta, _w = relayed(**how)
    alpha.start()
    log: EventLog = events(alpha)
    beta.start()
    return relay, alpha, beta, log


def test_a_witness_that_does_not_know_the_origin_refuses_it_through_the_relay(  # type: ignore[no-untyped-def]
        relayed, events) -> None:
    _relay, alpha, beta, log = _started(relayed, events, origins=False)
    _exchange(alpha, beta, "M-R-3")  # a refusing witness holds nothing up
    refused = log.wait("witness_refused", reason="witness_unknown_origin")
    assert refused.data["witness"] == WITNESS
    assert _witnessed(alpha).get("cosigned_size") is None


@contextlib.contextmanager
def impostor(relay: Relay) -> Iterator[list[bytes]]:
    """A client with the witness's credentials that answers every request 200 with a line
    that is no cosignature of the pinned witness: what a broker or a thief could send."""
    stop, heard = threading.Event(), []

    async def serve() -> None:
        nc = await connect(relay.url, relay.creds(WITNESS), party=None)

        async def answer(msg):  # type: ignore[no-untyped-def]
            heard.append(msg.data)
            await nc.publish(msg.reply, "\u2014 mediator AAAAAAAAAAAAAAAA\n".encode(), headers={
                binding.HEADER_STATUS: "200",
                binding.HEADER_CONTENT_TYPE: "text/plain; charset=utf-8"})

        await nc.subscribe(binding.witness_subject(WITNESS), cb=answer)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await nc.close()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    try:
        yield heard
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_forged_cosignature_through_the_relay_is_a_security_alarm(  # type: ignore[no-untyped-def]
        relayed, events) -> None:
    relay, alpha, beta, log = _started(relayed, events, start=False)
    with impostor(relay) as heard:
        _exchange(alpha, beta, "M-R-4")
        alarm = log.wait("security_alarm", reason="witness_bad_cosignature")
        assert alarm.data["witness"] == WITNESS and heard  # the request reached it, and
        # what came back was refused, never kept: nothing is cosigned
        assert _witnessed(alpha).get("cosigned_size") is None
        assert "witness_bad_cosignature" in (alpha.client.health().get("faults") or {})


def test_the_relay_killed_mid_witnessing_loses_nothing_and_witnessing_catches_up(  # type: ignore[no-untyped-def]
        relayed) -> None:
    relay, alpha, beta, w = relayed()
    alpha.start()
    beta.start()
    _exchange(alpha, beta, "M-R-5")
    wait_for(lambda: _caught_up(alpha), what="alpha witnessed")
    before = _witnessed(alpha)["cosigned_size"]
    relay.kill_server()  # kill -9 of nats-server; relay run starts it again on the same port
    _exchange(alpha, beta, "M-R-6")  # the parties and the witness reconnect on their own
    wait_for(lambda: _caught_up(alpha) and _caught_up(beta),
             what="witnessing caught up after the broker came back")
    assert _witnessed(alpha)["cosigned_size"] > before
    assert w.proc is not None and w.proc.poll() is None  # the witness rode it out
