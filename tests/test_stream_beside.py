"""The pieces of checking a large msgpack stream beside the daemon: ``MsgpackFrames`` cuts a
stream into its values' bytes wherever its blocks end, and refuses what ``MsgpackValues``
refuses with the same words; ``check_packed`` makes the very entries the daemon's own path
makes; real ``Checkers`` processes answer the same entries and refusals, and a process that
dies mid-batch costs the stream nothing."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import msgpack
import pytest

from bridge.core.errors import InputError
from bridge.core.streaming import DocumentStream
from bridge.daemon.checkers import Checkers, check_processes
from bridge.engine.metrics import Metrics
from bridge.engine.stream_batch import BatchRules, CheckedBatch, check_batch
from bridge.local.msgpack_frames import MsgpackFrames, decode_values
from bridge.local.msgpack_values import MsgpackValues
from bridge.local.packed_batch import check_packed

RULES = BatchRules(doc_type="manifest", peer="beta", meta={"batch": 1}, count=5)
ITEMS = [{"id": f"P-{n}", "kind": "person", "surname": f"Testname{n}", "tags": ["a", n]}
         for n in range(5)]


def _place(n: int) -> str:
    return f"items[{n}]"


def _stream() -> DocumentStream:
    return DocumentStream(doc_type="manifest", doc_id="M-1", recipient="beta", created=1,
                          meta={"batch": 1}, count=5, salt_key=bytes(32), chunk=4)


def _frames_of(data: bytes, block: int, max_value: int = 1 << 20) -> list[bytes]:
    frames = MsgpackFrames(max_value, _place)
    out = [v for at in range(0, len(data), block) for v in frames.feed(data[at:at + block])]
    frames.finish()
    return out


@pytest.mark.parametrize("block", [1, 2, 7, 64, 1 << 20])
def test_values_are_cut_whole_wherever_the_blocks_of_the_stream_end(block: int) -> None:
    packed = [msgpack.packb(v) for v in ITEMS]
    assert _frames_of(b"".join(packed), block) == packed


def _refusal(data: bytes, max_value: int = 1 << 20) -> tuple[str | None, str | None, str]:
    with pytest.raises(InputError) as err:
        _frames_of(data, 3, max_value)
    return err.value.code, err.value.field, err.value.detail


def _values_refusal(data: bytes, max_value: int = 1 << 20) -> tuple[str | None, str | None, str]:
    values = MsgpackValues(max_value, _place)
    with pytest.raises(InputError) as err:
        for at in range(0, len(data), 3):
            list(values.feed(data[at:at + 3]))
        values.finish()
    return err.value.code, err.value.field, err.value.detail


@pytest.mark.parametrize(("tail", "max_value"), [
    (b"\xc1", 1 << 20),  # a byte that begins no msgpack value
    (msgpack.packb({"id": "P-9"})[:-1], 1 << 20),  # cut inside a value
    (msgpack.packb({"id": "P-9", "note": "x" * 200}), 100),  # over the bound
    (b"\x91" * 3000 + b"\x01", 1 << 20),  # nested past what any walk follows
])
def test_a_stream_the_frames_refuse_is_refused_in_the_words_of_the_decoder(
        tail: bytes, max_value: int) -> None:
    data = msgpack.packb({"id": "P-0"}) + tail
    assert _refusal(data, max_value) == _values_refusal(data, max_value)


def test_a_batch_checked_apart_makes_the_entries_the_daemons_own_path_makes() -> None:
    mine = _stream()
    leaves, hashes = mine.add_record_columns([(i["id"], {k: v for k, v in i.items()
                                                          if k != "id"}) for i in ITEMS])
    packed = b"".join(msgpack.packb(v) for v in ITEMS)
    batch = check_packed(RULES, 0, _stream().salt_bytes(0, 5), packed)
    assert (list(batch.leaves), list(batch.hashes)) == (leaves, hashes)
    assert list(batch.ids) == [i["id"] for i in ITEMS]


@pytest.mark.parametrize(("bad", "field"), [
    ({"id": "P-2", "weight": 1.5}, "items[7]"),  # a float: signed data has none
    ({"id": "P-2", "photo": b"\x89PNG"}, "items[7]"),  # no JSON text holds bytes
])
def test_a_bad_item_of_a_batch_checked_apart_is_named_by_its_place_in_the_stream(
        bad: dict[str, Any], field: str) -> None:
    items = [*ITEMS[:2], bad]
    rules = BatchRules(doc_type="manifest", peer="beta", meta={}, count=10)
    with pytest.raises(InputError) as err:
        check_packed(rules, 5, bytes(16 * 3), b"".join(msgpack.packb(v) for v in items))
    assert (err.value.field or "").startswith(field), err.value


def test_more_items_than_the_header_announced_are_refused_naming_the_first_too_many() -> None:
    with pytest.raises(InputError) as err:
        check_batch(RULES, 3, bytes(16 * 2), [dict(i) for i in ITEMS[:3]])
    assert err.value.field == "items[5]"


def _dies_beside(parent: int, *args: Any) -> CheckedBatch:
    """``check_packed``, but a process beside ``parent`` ends mid-batch (killed, out of
    memory) instead of answering."""
    if os.getpid() != parent:
        os._exit(3)
    return check_packed(*args)


def test_real_processes_answer_the_same_entries_and_refusals_and_survive_one_dying() -> None:
    checkers = Checkers(1)
    assert checkers.beside() is checkers
    packed = b"".join(msgpack.packb(v) for v in ITEMS)
    salts = _stream().salt_bytes(0, 5)

    async def run() -> None:
        here = check_packed(RULES, 0, salts, packed)
        assert await checkers(check_packed, RULES, 0, salts, packed) == here
        bad = b"".join(msgpack.packb(v) for v in [*ITEMS[:4], {"id": "P-4", "weight": 0.5}])
        with pytest.raises(InputError) as there:
            await checkers(check_packed, RULES, 0, salts, bad)
        with pytest.raises(InputError) as err:
            check_packed(RULES, 0, salts, bad)
        said = (err.value.detail, err.value.field, err.value.code, err.value.problems)
        assert (there.value.detail, there.value.field, there.value.code,
                there.value.problems) == said
        assert (err.value.field or "").startswith("items[4]")
        # The process dies: that batch is checked here instead, with the same answer ...
        assert await checkers(_dies_beside, os.getpid(), RULES, 0, salts, packed) == here
        # ... and the next batch gets a new process.
        assert await checkers(check_packed, RULES, 0, salts, packed) == here

    try:
        asyncio.run(run())
    finally:
        checkers.close()


def test_one_core_has_no_process_to_spare_more_have_two_and_the_setting_says_last() -> None:
    assert [check_processes(n) for n in (1, 2, 4, 64)] == [0, 2, 2, 2]
    assert [check_processes(64, setting=s) for s in (0, 1, 3)] == [0, 1, 3]
    assert Checkers(check_processes(setting=0)).beside() is None


def test_decode_values_refuses_what_no_json_text_could_be_naming_the_item() -> None:
    with pytest.raises(InputError) as err:
        decode_values(msgpack.packb({"id": "P-0"}) + msgpack.packb({"x": b""}),
                      lambda n: f"items[{10 + n}]")
    assert (err.value.code, err.value.field) == ("bad_msgpack", "items[11]")


def test_where_no_process_can_be_started_the_daemon_checks_the_batches_itself(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    checkers = Checkers(2)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError(38, "Function not implemented")  # as sem_open says without /dev/shm

    monkeypatch.setattr("bridge.daemon.checkers.ProcessPoolExecutor", refused)
    packed = b"".join(msgpack.packb(v) for v in ITEMS)
    salts = _stream().salt_bytes(0, 5)
    here = check_packed(RULES, 0, salts, packed)
    for _ in range(2):  # said once, then simply done here
        assert asyncio.run(checkers(check_packed, RULES, 0, salts, packed)) == here
    said = [r.getMessage() for r in caplog.records if "no process can be started" in
            r.getMessage()]
    assert len(said) == 1 and "Function not implemented" in said[0]
    checkers.close()


def test_a_pool_warmed_is_ready_once_every_process_has_started_and_says_so() -> None:
    metrics = Metrics()
    checkers = Checkers(2, metrics=metrics)
    try:
        assert not checkers.ready()  # nothing started: batches are checked in the daemon
        checkers.warm()
        checkers.warm()  # once is enough: no second pool
        deadline = time.monotonic() + 120
        said = 'bridge_check_processes_ready{party="alpha"} 2.0'
        while not (checkers.ready() and said in metrics.render({}, "alpha")):
            assert time.monotonic() < deadline, "the processes never started, or never said"
            time.sleep(0.05)
    finally:
        checkers.close()
