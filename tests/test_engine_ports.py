"""The engine behind its ports: outcomes as enums (the HTTP endpoint maps them to the same
statuses as before), document and outbox states as tables, the delivery policy sans I/O, and
two real engines (real SQLite files) wired by an in-memory courier whose answers come late,
out of order, and for envelopes no longer in flight."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bridge.core import answers as transport
from bridge.core.errors import BridgeError, StoreCorrupt
from bridge.daemon.pair import make_pair
from bridge.engine.delivery import InFlight, Reachability, Retry, backoff_delay, carriage_reaction
from bridge.engine.exchange import Exchange
from bridge.engine.metrics import Metrics
from bridge.engine.outcomes import Outcome
from bridge.engine.ports import Arrival, Carried, Outgoing
from bridge.engine.sender import DeliveryLoop
from bridge.engine.states import (
    DOCUMENT_TRANSITIONS,
    DocumentState,
    OutboxState,
    TransitionRefused,
    check_document,
    check_outbox,
    new_state,
)
from bridge.home.config import Delivery
from bridge.store.sqlite.store import OutboxRow, Store
from bridge.transports.http.endpoint import HTTP_STATUS

# ---------------------------------------------------------------- outcomes


def test_each_outcome_is_carried_by_the_http_status_it_always_had() -> None:
    assert HTTP_STATUS == {
        Outcome.ACCEPTED: 200, Outcome.DUPLICATE: 200, Outcome.REFUSED: 200,
        Outcome.MALFORMED: 400, Outcome.UNAUTHENTICATED: 403, Outcome.OUT_OF_SEQUENCE: 409,
        Outcome.UNAVAILABLE: 503}
    # Metrics and logs count the three rejections as one, as before.
    assert {o.counted_as for o in Outcome} == {
        "accepted", "duplicate", "refused", "rejected", "unavailable"}


# ---------------------------------------------------------------- states as tables


@pytest.mark.parametrize("direction", ["out", "in"])
def test_every_transition_in_the_table_is_allowed_and_no_other(direction: str) -> None:
    table = DOCUMENT_TRANSITIONS[direction]
    for previous in [None, *DocumentState]:
        for new in DocumentState:
            stored = None if previous is None else previous.value
            if new in table.get(previous, frozenset()):
                check_document(direction, stored, new)
            else:
                with pytest.raises(TransitionRefused):
                    check_document(direction, stored, new)


def test_a_refused_transition_is_a_store_fault_of_the_one_family() -> None:
    with pytest.raises(StoreCorrupt) as info:
        check_document("in", "acknowledged", DocumentState.RECEIVING)
    assert isinstance(info.value, BridgeError)
    assert "acknowledged may not change to receiving" in str(info.value)
    with pytest.raises(TransitionRefused, match="no code writes"):
        check_document("out", "lost", DocumentState.DELIVERED)


def test_outbox_envelopes_finish_from_pending_and_rewind_to_it() -> None:
    check_outbox(OutboxState.PENDING, OutboxState.DELIVERED)
    check_outbox(OutboxState.REFUSED, OutboxState.PENDING)
    with pytest.raises(TransitionRefused):
        check_outbox(OutboxState.DELIVERED, OutboxState.REFUSED)
    assert new_state("out") is DocumentState.QUEUED
    assert new_state("in") is DocumentState.RECEIVING


# ---------------------------------------------------------------- the delivery policy


def _row(seq: int, digest: bytes) -> OutboxRow:
    return OutboxRow(peer="beta", seq=seq, msg_id=bytes(16), digest=digest, envelope=b"e",
                     kind="chunk", doc=None, first=None, n=None, attempts=0)


def test_answers_are_matched_by_seq_and_hash_with_several_in_flight() -> None:
    flight = InFlight()
    one, two = _row(1, b"\x01" * 32), _row(2, b"\x02" * 32)
    assert flight.add(one) == Outgoing(peer="beta", seq=1, digest=b"\x01" * 32, data=b"e")
    flight.add(two)
    late = Arrival(seq=2, digest=b"\x02" * 32, result=Carried.ANSWERED)
    assert flight.match(late) is two  # out of order: the row it names, not the last sent
    assert flight.match(Arrival(seq=1, digest=b"\x09" * 32, result=Carried.ANSWERED)) is None
    assert flight.match(late) is None  # a replayed answer names nothing in flight
    assert flight.match(Arrival(seq=1, digest=b"\x01" * 32, result=Carried.ANSWERED)) is one
    assert len(flight) == 0


def test_backoff_resets_only_on_new_ground() -> None:
    policy = Delivery(initial_backoff=1.0, max_backoff=8.0)
    retry = Retry(policy, random.Random(7))
    assert retry.after(1, progress=True) is None and retry.delivered == 1
    delays = [retry.after(2, progress=False) for _ in range(6)]
    assert all(d is not None and 0.01 <= d <= 8.0 for d in delays)
    assert retry.failures == 6
    assert retry.after(1, progress=True) is None  # a rewound envelope again: not progress
    assert retry.failures == 6
    assert retry.after(2, progress=True) is None and retry.failures == 0
    ceilings = [min(8.0, 1.0 * 2 ** n) for n in range(6)]
    rng = random.Random(1)
    assert all(backoff_delay(n, policy, rng) <= c for n, c in enumerate(ceilings))


def test_a_429_is_a_busy_peer_that_is_reachable_and_no_answer_to_decide_on() -> None:
    # The courier counts each 429 and holds the next send for its Retry-After: the loop adds
    # no backoff (paced) and counts it as no failure.
    busy = Arrival(seq=3, digest=b"\x03" * 32, result=Carried.BUSY, detail="HTTP 429")
    reaction = carriage_reaction(busy)
    assert reaction is not None
    assert (reaction.progress, reaction.reachable, reaction.trouble, reaction.counter,
            reaction.paced) == (False, True, "busy", None, True)
    unreachable = carriage_reaction(Arrival(seq=3, digest=b"\x03" * 32,
                                            result=Carried.UNREACHABLE, detail="refused"))
    assert unreachable is not None and not unreachable.paced


def test_reachability_says_each_change_once() -> None:
    reach = Reachability()
    assert reach.mark(True) is None  # first contact: nothing was wrong
    assert reach.mark(False) == "peer_unreachable"
    assert reach.mark(False) is None
    assert reach.mark(True) == "peer_back"


# ---------------------------------------------------------------- two engines, one courier


class LateCourier:
    """Carries envelopes to another engine in memory. Each answer is held back until the
    next send, and an answer to an envelope no longer in flight comes first: a relay that
    answers late and replays."""

    def __init__(self, receiver: Exchange) -> None:
        self.receiver = receiver
        self.held: list[Arrival] = []
        self.ready: asyncio.Queue[Arrival] = asyncio.Queue()
        self.sent: list[int] = []

    async def send(self, batch: Sequence[Outgoing]) -> None:
        for env in batch:
            self.sent.append(env.seq)
            answer = self.receiver.receive_envelope(env.data)
            arrival = Arrival(seq=env.seq, digest=env.digest, result=Carried.ANSWERED,
                              body=answer.body, note="memory")
            stale = Arrival(seq=env.seq, digest=bytes(32), result=Carried.ANSWERED,
                            body=answer.body, note="memory")
            await self.ready.put(stale)  # names another hash: not this envelope's answer
            await self.ready.put(arrival)

    async def receive(self) -> Arrival:
        return await self.ready.get()

    def let_go(self, seq: int, digest: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


def _engine(node: Any, peer: str, clock: list[int]) -> tuple[Exchange, Store]:
    store = Store(node.home.db_path)
    return Exchange(store=store, identity=node.home.identity(),
                    peers={peer: node.home.peer_identity(peer)}, config=node.home.config(),
                    clock=lambda: clock[0]), store


def test_two_engines_exchange_through_an_in_memory_courier(tmp_path: Path) -> None:
    alpha_node, beta_node = make_pair(tmp_path, delivery=Delivery(chunk_items=2))
    clock = [alpha_node.home.public_identity().created + 1000]
    alpha, alpha_store = _engine(alpha_node, "beta", clock)
    beta, beta_store = _engine(beta_node, "alpha", clock)
    items = [{"id": f"P-{n}", "name": f"person {n}"} for n in range(5)]
    alpha.submit_document({"type": "roster", "to": "beta", "id": "R-1", "items": items})
    courier = LateCourier(beta)

    async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    async def main() -> None:
        loop = DeliveryLoop(peer="beta", courier=courier, exchange=alpha, run=run,
                            policy=alpha.config.delivery, metrics=Metrics(),
                            wake=asyncio.Event())
        task = asyncio.create_task(loop.run_forever())
        async with asyncio.timeout(30):
            while alpha.document_detail("R-1", "out")["state"] != "delivered":
                await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert courier.sent == [1, 2, 3]  # three chunks, each sent once: stale answers dropped
    assert beta.document_detail("R-1", "in")["state"] == "received"
    ack = beta.acknowledge("R-1", {"all": "RECEIVED"})
    assert ack["items"] == 5
    sent = []
    while (row := beta.next_pending("alpha")) is not None:  # three chunks of two entries
        sent.append(row)
        answer = alpha.receive_envelope(row.envelope)
        assert answer.outcome is Outcome.ACCEPTED
        assert transport.parse_answer(answer.body, alpha.me.public).result == "accepted"
        assert beta.answered(row, answer.body).state == "delivered"
    assert alpha.document_detail("R-1", "out")["state"] == "acknowledged"
    # The same bytes again: the stored receipt, an outcome and never an HTTP code.
    again = alpha.receive_envelope(sent[0].envelope)
    assert again.outcome is Outcome.DUPLICATE and not hasattr(again, "status")
    alpha_store.close()
    beta_store.close()


def test_the_engine_reads_the_time_of_day_only_through_its_clock_port() -> None:
    """``time.time()`` or ``datetime.now()`` anywhere in the engine but ``ports.system_clock``
    would make a test's clock a lie."""
    import ast

    import bridge.engine

    found = []
    for path in Path(bridge.engine.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in {"time", "now", "utcnow"} \
                    and isinstance(node.value, ast.Name) \
                    and node.value.id in {"time", "datetime"}:
                found.append(f"{path.name}:{node.lineno}")
    assert found == ["ports.py:" + str(_system_clock_line())], found


def _system_clock_line() -> int:
    import inspect

    from bridge.engine import ports

    source, start = inspect.getsourcelines(ports.system_clock)
    return start + next(n for n, line in enumerate(source) if "time.time()" in line)


def test_what_the_sender_does_after_each_kind_of_try() -> None:
    from bridge.engine.delivery import NOT_PINNED, answer_reaction, carriage_reaction
    from bridge.engine.outcomes import DeliveryOutcome, DeliveryState

    def arrival(result: Carried, detail: str = "") -> Arrival:
        return Arrival(seq=1, digest=bytes(32), result=result, detail=detail, note="HTTP 503")

    large = carriage_reaction(arrival(Carried.ANSWER_TOO_LARGE, "answer over 65536 bytes"))
    assert large is not None and (large.progress, large.reachable, large.counter) == (
        False, False, "delivery_failed")
    pinned = carriage_reaction(arrival(Carried.NOT_PINNED, "certificate"))
    assert pinned is not None and pinned.pin_mismatch and pinned.detail == NOT_PINNED
    assert carriage_reaction(arrival(Carried.ANSWERED)) is None
    busy = answer_reaction(arrival(Carried.ANSWERED), DeliveryOutcome(
        state=DeliveryState.UNAVAILABLE, detail="the peer cannot record envelopes now"))
    assert (busy.progress, busy.reachable, busy.counter) == (False, False, "delivery_unavailable")
    assert busy.detail == "HTTP 503: the peer cannot record envelopes now"
    done = answer_reaction(arrival(Carried.ANSWERED),
                           DeliveryOutcome(state=DeliveryState.REFUSED))
    assert (done.progress, done.reachable, done.counter, done.detail) == (
        True, True, None, "HTTP 503: refused")


# ---------------------------------------------------------------- trust: bytes in, answers out


def test_trust_takes_a_rotation_as_bytes_and_changes_only_when_told() -> None:
    from bridge.core import keylife
    from bridge.core.crypto.identity import PrivateIdentity
    from bridge.core.errors import VerificationError
    from bridge.engine.kinds import KIND_KEY_REVOCATION, KIND_KEY_ROTATION
    from bridge.engine.trust import TrustState

    t0 = 1_700_000_000_000
    me = PrivateIdentity.generate("beta", created=t0)
    old = PrivateIdentity.generate("alpha", created=t0)
    new = PrivateIdentity.generate("alpha", created=t0 + 1)
    trust = TrustState(me=me, peers={"alpha": old.public})
    rotation = keylife.make_rotation(old, new, at=t0 + 5)
    change = trust.plan("alpha", KIND_KEY_ROTATION, rotation, seq=7, now=t0 + 10)
    assert change is not None and change.new == new.public and change.statement == rotation
    assert trust.peers["alpha"] == old.public  # planned, not applied
    assert trust.key_refusal(old.public, 8) is None
    trust.apply(change)
    assert trust.peers["alpha"] == new.public
    assert trust.key_refusal(old.public, 7) is None  # up to the rotation's envelope
    assert "retired by a rotation" in (trust.key_refusal(old.public, 8) or "")
    assert trust.plan("alpha", KIND_KEY_ROTATION, rotation, seq=9, now=t0 + 20) is None
    with pytest.raises(VerificationError, match="kind and statement type differ"):
        trust.plan("alpha", KIND_KEY_REVOCATION, rotation, seq=9, now=t0 + 20)
    stranger = PrivateIdentity.generate("alpha", created=t0)
    with pytest.raises(VerificationError, match="never pinned"):
        trust.plan("alpha", KIND_KEY_ROTATION, keylife.make_rotation(stranger, new, at=t0),
                   seq=9, now=t0 + 20)
    revocation = keylife.make_revocation(new, since=t0 + 2, at=t0 + 30, reason="stolen")
    revoked = trust.plan("alpha", KIND_KEY_REVOCATION, revocation, seq=12, now=t0 + 40)
    assert revoked is not None and not trust.peer_key_revoked("alpha")
    trust.apply(revoked)
    assert trust.peer_key_revoked("alpha")
    assert trust.keyring.void_reason(new.key_id, t0 + 2) == "revoked_key"
