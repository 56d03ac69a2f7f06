"""A document submitted as a stream (``application/x-ndjson``, or msgpack values one after
another, ``application/vnd.msgpack``) to the local API on a real Unix socket, in front of a
real engine and SQLite store (``tests/harness``): committed whole and delivered as the JSON
body's document would be; a bad item at the very end, a duplicate id in
a later batch, too few items or a stream that breaks off refuse all of it (naming the item)
and leave nothing behind (no document, item, envelope, audit record or staged entry); a retry
of a committed stream answers for it; ``bridge.client`` streams a large document by itself;
a msgpack value that no JSON text could be (binary, an extension, a key that is not text, a
name twice, too deep, NaN) refuses the stream as a bad JSON line does."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from aiohttp import web
from harness import Harness, open_pair, person, wire

from bridge import client as client_module
from bridge import client_wire
from bridge.client import ApiError, BridgeClient
from bridge.core import envelope as envelope_module
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import InputError
from bridge.daemon.dbthread import SigningPool
from bridge.engine.metrics import Metrics
from bridge.engine.store_check import check_all
from bridge.local import stream as stream_module
from bridge.local import stream_beside
from bridge.local.api import LocalApi


class PickledThreads:
    """A ``CheckBeside`` for every msgpack stream, however short: its batches checked on two
    threads, each call's arguments and answer passed through pickle as a process's are
    (``bridge.daemon.checkers`` runs them in processes; ``test_stream_beside.py`` does too)."""

    min_items, ahead = 1, 2

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(2)
        self.calls = 0

    def warm(self) -> None:
        pass

    def ready(self) -> bool:
        return True

    async def __call__(self, fn: Any, *args: Any) -> Any:
        self.calls += 1
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, _through_pickle, fn, pickle.dumps(args))


def _through_pickle(fn: Any, args: bytes) -> Any:
    try:
        answer = fn(*pickle.loads(args))
    except Exception as exc:  # what a process raises comes back pickled too
        raise pickle.loads(pickle.dumps(exc)) from None
    return pickle.loads(pickle.dumps(answer))


class Served:
    """Alpha's local API on a Unix socket, served by a thread of its own; engine calls run on
    one database thread, as in the daemon; with ``beside``, msgpack streams are checked
    beside it (``bridge.local.stream_beside``)."""

    def __init__(self, h: Harness, sock: Path, beside: PickledThreads | None = None) -> None:
        self.sock, self.beside = sock, beside
        self.db = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(h, ready), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _serve(self, h: Harness, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        engine = h.alpha.engine

        async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
            return await self.loop.run_in_executor(self.db, lambda: fn(*args, **kwargs))

        api = LocalApi(exchange=engine, run=run, metrics=Metrics(),
                       events_changed=asyncio.Condition(), peer_status=dict,
                       max_body=1 << 20)
        api.check_beside = self.beside
        runner = web.AppRunner(api.app())
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.UnixSite(runner, str(self.sock)).start())
        self.runner = runner
        ready.set()
        self.loop.run_forever()

    def on_db(self, fn: Any) -> Any:
        """``fn()`` on the database thread, between two of the API's calls."""
        return self.db.submit(fn).result(10)

    def close(self) -> None:
        if not self.thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.db.shutdown()


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        yield harness


@pytest.fixture(params=["checked_by_the_daemon", "checked_beside"])
def served(h: Harness, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """Every test twice: a msgpack stream's batches checked by the daemon, and beside it."""
    s = Served(h, tmp_path / "alpha.sock",
               PickledThreads() if request.param == "checked_beside" else None)
    yield s
    s.close()
    if s.beside is not None:
        s.beside.pool.shutdown()


def _left_behind(h: Harness) -> dict[str, int]:
    q = wire.sql(h.alpha.engine).execute
    return {table: q(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("documents", "items", "outbox", "audit")} | {
        "staged": q("SELECT COUNT(*) FROM sqlite_temp_master WHERE type='table'").fetchone()[0]}


def _wait_until(condition: Any, what: str) -> None:
    """What the server does once it reads on (bounded wait; no timing is asserted)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.02)


def _nothing_added(h: Harness, served: Served, before: dict[str, int]) -> None:
    assert served.on_db(lambda: _left_behind(h)) == before


def test_a_streamed_manifest_is_committed_whole_and_delivered(h: Harness,
                                                              served: Served) -> None:
    client = BridgeClient(served.sock)
    sent = [person(n) for n in range(10)]
    sent[3] |= {"category": "pow", "roster_record": "POW-3"}  # columns reconciliation reads
    answer = client.submit_document_stream("manifest", "beta", iter(sent), count=10,
                                           id="M-S1", meta={"batch": 1})
    assert (answer["id"], answer["items"]) == ("M-S1", 10)
    assert served.on_db(lambda: _left_behind(h))["staged"] == 0
    store = h.alpha.engine.store
    assert served.on_db(lambda: check_all(store.check_rows())) == []  # what was signed
    assert served.on_db(lambda: wire.sql(h.alpha.engine).execute(
        "SELECT idx, category, roster_record FROM items WHERE category IS NOT NULL"
    ).fetchall()) == [(3, "pow", "POW-3")]
    served.close()  # the harness carries the envelopes from here on, on this thread
    h.courier.settle()
    received = wire.items(h.beta.engine, "M-S1", "in")
    assert [i["id"] for i in received] == [p["id"] for p in sent]
    assert wire.document(h.beta.engine, "M-S1", "in")["meta"] == {"batch": 1}
    assert wire.document(h.alpha.engine, "M-S1", "out")["state"] == "delivered"
    assert check_all(h.beta.engine.store.check_rows()) == []  # the receiver's columns too
    assert wire.sql(h.beta.engine).execute(
        "SELECT idx, category, roster_record FROM items WHERE category IS NOT NULL"
    ).fetchall() == [(3, "pow", "POW-3")]


def test_a_bad_item_at_the_end_refuses_all_of_it_and_names_it(h: Harness,
                                                              served: Served) -> None:
    before = served.on_db(lambda: _left_behind(h))
    items: list[dict[str, Any]] = [person(n) for n in range(9)]
    items.append({"id": "P-bad", "weight": 1.5})  # a float: signed data has none
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock).submit_document_stream("manifest", "beta", items, count=10,
                                                         id="M-S2")
    assert err.value.status == 400 and err.value.field is not None
    assert err.value.field.startswith("items[9]"), err.value.field
    _nothing_added(h, served, before)


@pytest.mark.parametrize(("bad", "field"), [
    ({"n": 1 << 53}, "items[7].n"),  # past what every JSON reader holds exactly
    ({"tags": ["a", 2.5]}, "items[7].tags[1]"),
    ({"tags": [[]] * 40}, "items[7].data"),  # more arrays than its bytes allow
])
def test_a_record_only_the_entry_check_refuses_in_the_last_batch_refuses_all_of_it(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch, bad: dict[str, Any],
        field: str) -> None:
    monkeypatch.setattr(stream_module, "STREAM_BATCH", 3)  # batches 0-2, 3-5, 6-7
    before = served.on_db(lambda: _left_behind(h))
    items: list[dict[str, Any]] = [person(n) for n in range(7)] + [{"id": "P-bad", **bad}]
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock).submit_document_stream("manifest", "beta", items, count=8)
    assert (err.value.status, err.value.field) == (400, field)
    _nothing_added(h, served, before)


def test_a_duplicate_id_in_a_later_batch_is_named_by_its_place_in_the_stream(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "STREAM_BATCH", 3)
    before = served.on_db(lambda: _left_behind(h))
    items = [person(n) for n in range(8)]
    items[7] = person(1)  # batch 3 repeats an id of batch 1
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock).submit_document_stream("manifest", "beta", items, count=8)
    assert (err.value.field, err.value.message) == ("items[7].id", "duplicate item id 'P-00001'")
    _nothing_added(h, served, before)


def test_a_stream_with_fewer_items_than_its_header_announced_is_refused(
        h: Harness, served: Served) -> None:
    before = served.on_db(lambda: _left_behind(h))
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock).submit_document_stream(
            "manifest", "beta", [person(n) for n in range(3)], count=4)
    assert (err.value.status, err.value.field) == (400, "count")
    _nothing_added(h, served, before)


def test_a_stream_that_breaks_off_mid_way_leaves_nothing_behind(h: Harness,
                                                                served: Served) -> None:
    before = served.on_db(lambda: _left_behind(h))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(served.sock))
    lines = b'{"type":"manifest","to":"beta","id":"M-S4","count":100}\n' + b"".join(
        b'{"id":"P-%d","surname":"Testname"}\n' % n for n in range(40))
    sock.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: bridge\r\nContent-Type: "
                 b"application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + b"%x\r\n" % len(lines) + lines + b"\r\n")
    _wait_until(lambda: served.on_db(lambda: _left_behind(h))["staged"] == 1, "staged")
    sock.close()  # 40 of 100 items staged, and the connection is gone
    _wait_until(lambda: served.on_db(lambda: _left_behind(h))["staged"] == 0, "dropped")
    # A full submission of the same id then goes through (nothing of the broken one is in its
    # way), and nothing else was added.
    answer = BridgeClient(served.sock).submit_document_stream(
        "manifest", "beta", [person(n) for n in range(5)], count=5, id="M-S4")
    assert answer["items"] == 5
    after = served.on_db(lambda: _left_behind(h))
    assert after["staged"] == 0
    assert after["documents"] == before["documents"] + 1
    assert after["items"] == before["items"] + 5


def test_a_retried_stream_answers_for_the_committed_document_and_other_content_is_refused(
        h: Harness, served: Served) -> None:
    client = BridgeClient(served.sock)
    sent = [person(n) for n in range(6)]
    first = client.submit_document_stream("manifest", "beta", sent, count=6, id="M-S5")
    again = client.submit_document_stream("manifest", "beta", sent, count=6, id="M-S5")
    assert again == {**first, "existing": True}
    before = served.on_db(lambda: _left_behind(h))
    changed = [*sent[:5], {**sent[5], "surname": "Othername"}]
    with pytest.raises(ApiError) as err:
        client.submit_document_stream("manifest", "beta", changed, count=6, id="M-S5")
    assert (err.value.status, err.value.code) == (409, "duplicate_document")
    _nothing_added(h, served, before)


def test_the_client_streams_a_large_document_by_itself(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(client_module, "STREAM_FROM", 4)
    with caplog.at_level(logging.INFO, logger="bridge.exchange"):
        big = BridgeClient(served.sock).submit_document(
            "manifest", "beta", [person(n) for n in range(5)], id="M-S6")
        small = BridgeClient(served.sock).submit_document(
            "manifest", "beta", [person(n) for n in range(4)], id="M-S7")
    assert (big["items"], small["items"]) == (5, 4)
    streamed = [r.getMessage() for r in caplog.records if "(streamed)" in r.getMessage()]
    assert len(streamed) == 1 and "M-S6" in streamed[0]


def test_a_stream_that_stalls_is_given_up_and_leaves_nothing_behind(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "STREAM_IDLE", 0.3)
    before = served.on_db(lambda: _left_behind(h))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(served.sock))
        lines = b'{"type":"manifest","to":"beta","count":3}\n{"id":"P-1"}\n'
        sock.sendall(b"POST /v1/documents HTTP/1.1\r\nHost: bridge\r\nContent-Type: "
                     b"application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n" % len(lines) + lines + b"\r\n")
        answer = sock.recv(65536)  # and then nothing more is sent
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert b"stream_stalled" in answer
    _nothing_added(h, served, before)


@pytest.mark.parametrize(("line", "why"), [
    (b'{"id": "P-2", "note": "\\ud800"}', "lone surrogate"),
    (b'{"id": "P-2", "deep": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper"),
    (b'{"id": "P-2", "id": "P-3"}', "appears twice"),
    (b'{"id": "P-2", "weight": NaN}', "not a JSON number"),
])
def test_a_line_that_is_not_valid_json_refuses_the_stream_naming_its_item(
        h: Harness, served: Served, line: bytes, why: str) -> None:
    before = served.on_db(lambda: _left_behind(h))
    body = (b'{"type":"manifest","to":"beta","count":3}\n{"id":"P-0"}\n{"id":"P-1"}\n'
            + line + b"\n")
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock)._json("POST", "/v1/documents", stream=[body])
    assert (err.value.status, err.value.code, err.value.field) == (400, "bad_json", "items[2]")
    assert why in err.value.message
    _nothing_added(h, served, before)


def test_a_bad_item_still_being_staged_is_named_before_a_bad_line_read_after_it(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next batch is read while the one before it is staged: a line that is not JSON in
    it must not hide the bad record before it (the first bad item of the stream is named)."""
    monkeypatch.setattr(stream_module, "STREAM_BATCH", 3)  # items 0-2 staged, 3-4 read on
    before = served.on_db(lambda: _left_behind(h))
    body = (b'{"type":"manifest","to":"beta","count":5}\n{"id":"P-0"}\n'
            b'{"id":"P-1","weight":1.5}\n{"id":"P-2"}\n{"id":"P-3"}\n'
            b'{"id":"P-4","weight":NaN}\n')
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock)._json("POST", "/v1/documents", stream=[body])
    assert err.value.status == 400 and err.value.field is not None
    assert err.value.field.startswith("items[1]"), err.value.field
    _nothing_added(h, served, before)


def test_a_chunk_whose_sealing_fails_after_earlier_chunks_were_published_leaves_nothing(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks are sealed on the daemon's signing thread while each is published as items:
    a failure there, with two chunks' items already written, rolls back the whole commit,
    and the same stream sent again is committed whole."""
    real_seal, calls = envelope_module.seal, []
    pool = SigningPool()
    monkeypatch.setattr(h.alpha.engine.engine, "beside", pool)

    def seal_failing_on_the_third_chunk(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise RuntimeError("the sealer broke")
        return real_seal(*args, **kwargs)

    monkeypatch.setattr(envelope_module, "seal", seal_failing_on_the_third_chunk)
    before = served.on_db(lambda: _left_behind(h))
    client = BridgeClient(served.sock)
    sent = [person(n) for n in range(10)]  # three chunks of at most four
    with pytest.raises(ApiError) as err:
        client.submit_document_stream("manifest", "beta", iter(sent), count=10, id="M-SEAL")
    assert err.value.status == 500
    assert len(calls) == 3  # two chunks sealed and stored, their items published, before
    _nothing_added(h, served, before)
    monkeypatch.setattr(envelope_module, "seal", real_seal)
    answer = client.submit_document_stream("manifest", "beta", iter(sent), count=10,
                                           id="M-SEAL")
    assert (answer["id"], answer["items"]) == ("M-SEAL", 10)
    store = h.alpha.engine.store
    assert served.on_db(lambda: check_all(store.check_rows())) == []
    pool.close()


def test_two_streams_of_one_id_at_once_commit_one_document(h: Harness) -> None:
    engine = h.alpha.engine
    header = {"type": "manifest", "to": "beta", "id": "M-S8", "count": 2}
    same, other = engine.begin_stream(dict(header)), engine.begin_stream(dict(header))
    twin = engine.begin_stream(dict(header))
    for stream, items in ((same, [person(1), person(2)]), (other, [person(1), person(3)]),
                          (twin, [person(1), person(2)])):
        engine.stream_items(stream, items)
    first = engine.finish_stream(same)
    assert engine.finish_stream(twin) == {**first, "existing": True}
    with pytest.raises(InputError) as err:  # committed meanwhile, with other items
        engine.finish_stream(other)
    assert err.value.code == "duplicate_document"
    engine.abort_stream(other)
    assert len([d for d in wire.documents(engine) if d["id"] == "M-S8"]) == 1


def _msgpack_stream(h: Harness, served: Served, *values: Any, tail: bytes = b"") -> ApiError:
    """A msgpack stream of ``values`` (then ``tail``) that must be refused, leaving nothing."""
    before = served.on_db(lambda: _left_behind(h))
    body = b"".join(v if isinstance(v, bytes) else msgpack.packb(v) for v in values) + tail
    with pytest.raises(ApiError) as err:
        BridgeClient(served.sock)._json("POST", "/v1/documents", stream=[body],
                                        stream_type=stream_module.MSGPACK)
    _nothing_added(h, served, before)
    return err.value


def test_a_msgpack_stream_commits_what_the_same_ndjson_stream_commits(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    client = BridgeClient(served.sock)
    sent = [person(n) for n in range(7)]
    sent[2] |= {"seal_numbers": ["S-1", "S-2"], "kind": "person", "category": "pow",
                "roster_record": "POW-2"}
    types: list[str] = []
    raw = client._raw

    def seen(*args: Any, **kwargs: Any) -> Any:
        types.append(kwargs.get("content_type", ""))
        return raw(*args, **kwargs)

    monkeypatch.setattr(client, "_raw", seen)
    client.submit_document_stream("manifest", "beta", sent, count=7, id="M-MP", meta={"b": 1})
    monkeypatch.setattr(client_wire, "msgpack", None)  # a client without msgpack: NDJSON
    client.submit_document_stream("manifest", "beta", sent, count=7, id="M-NJ", meta={"b": 1})
    assert types == [stream_module.MSGPACK, stream_module.NDJSON]
    as_msgpack, as_ndjson = (wire.items(h.alpha.engine, d, "out") for d in ("M-MP", "M-NJ"))
    assert as_msgpack == as_ndjson and [i["id"] for i in as_msgpack] == [p["id"] for p in sent]
    assert served.on_db(lambda: check_all(h.alpha.engine.store.check_rows())) == []
    assert served.beside is None or served.beside.calls == 1  # the msgpack stream's one batch


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


_HEADER = {"type": "manifest", "to": "beta", "count": 3}


@pytest.mark.parametrize(("item", "why"), [
    ({"id": "P-2", "photo": b""}, "a bytes is no JSON value"),
    ({"id": "P-2", "photo": b"\x89PNG"}, "max_bin_len"),
    ({"id": "P-2", "x": msgpack.ExtType(7, b"")}, "extension type"),
    ({"id": "P-2", "seen": msgpack.Timestamp(1_700_000_000)}, "max_ext_len"),
    ({"id": "P-2", 7: "seven"}, "map key"),
    (b"\x82\xa2id\xa3P-2\xa2id\xa3P-3", "appears twice"),  # {"id": "P-2", "id": "P-3"}
    ({"id": "P-2", "deep": _nested(40)}, "nested deeper than 32"),
    ({"id": "P-2", "weight": float("nan")}, "a float is no JSON value"),
    ({"id": "P-2", "tags": ["a", [1, float("inf")]]}, "a float is no JSON value"),
    ({"id": "P-2", "x": {b"": 1}}, "map key"),  # an empty bin passes max_bin_len=0
    ({"id": "P-2", "tags": [b""]}, "a bytes is no JSON value"),
    (b"\x82\xa2id\xa3P-2\xa1x\x82\xa1k\x01\xa1k\x02", "appears twice"),  # nested twice
    (b"\xa2\xff\xfe", "utf-8"),  # a string that is not UTF-8
    (b"\xc1", "begins no msgpack value"),
])
def test_a_msgpack_value_that_no_json_text_could_be_refuses_the_stream_naming_its_item(
        h: Harness, served: Served, item: Any, why: str) -> None:
    err = _msgpack_stream(h, served, _HEADER, {"id": "P-0"}, {"id": "P-1"}, item)
    assert (err.status, err.code, err.field) == (400, "bad_msgpack", "items[2]")
    assert why in err.message, err.message


def test_a_msgpack_stream_cut_inside_an_item_or_over_the_size_bound_is_refused(
        h: Harness, served: Served) -> None:
    cut = _msgpack_stream(h, served, _HEADER, {"id": "P-0"}, {"id": "P-1"},
                          msgpack.packb({"id": "P-2", "surname": "Testname"})[:-3])
    assert (cut.code, cut.field) == ("bad_msgpack", "items[2]")
    assert "ends inside a value" in cut.message
    big = _msgpack_stream(h, served, _HEADER, {"id": "P-0", "note": "x" * (2 << 20)})
    assert big.code == "too_large" and "over 1048576 bytes" in big.message, big  # max_body
    header_only = _msgpack_stream(h, served, [_HEADER])
    assert header_only.field == "$"


@pytest.mark.parametrize(("items", "tail", "field"), [
    # A bad record in batch 1 (checked first), a byte that begins no value in batch 2.
    ([{"id": "P-0"}, {"id": "P-1", "weight": 1.5}, {"id": "P-2"}, {"id": "P-3"}], b"\xc1",
     "items[1]"),
    # An id of batch 1 again in batch 2 (found as it is staged), a bad record in batch 3
    # (checked beside before batch 2 is staged).
    ([{"id": "P-0"}, {"id": "P-1"}, {"id": "P-2"}, {"id": "P-3"}, {"id": "P-1"},
      {"id": "P-5"}, {"id": "P-6", "weight": 1.5}], b"", "items[4].id"),
    # A bad record in batch 2, and a stream that ends inside a value.
    ([{"id": "P-0"}, {"id": "P-1"}, {"id": "P-2"}, {"id": "P-3", "weight": 1.5}],
     msgpack.packb({"id": "P-4"})[:-1], "items[3]"),
])
def test_the_first_bad_item_of_a_msgpack_stream_is_named_whichever_is_found_first(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch, items: list[Any],
        tail: bytes, field: str) -> None:
    """Batches are checked ahead of their staging (beside: two at once): a later batch's
    refusal, or a value read after them that is no item, must not hide an earlier one."""
    monkeypatch.setattr(stream_module, "STREAM_BATCH", 3)
    header = {"type": "manifest", "to": "beta", "count": len(items) + 1}
    err = _msgpack_stream(h, served, header, *items, tail=tail)
    assert err.status == 400 and (err.field or "").startswith(field), err


def test_batches_cut_by_their_bytes_commit_what_batches_cut_by_count_commit(
        h: Harness, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside, a batch also ends at ``BATCH_BYTES`` (large items): batches of every length
    stage the same entries, in order."""
    monkeypatch.setattr(stream_beside, "BATCH_BYTES", 200)  # about three items a batch
    client = BridgeClient(served.sock)
    sent = [person(n) for n in range(10)]
    client.submit_document_stream("manifest", "beta", sent, count=10, id="M-BYTES")
    monkeypatch.setattr(client_wire, "msgpack", None)  # NDJSON: the daemon's own path
    client.submit_document_stream("manifest", "beta", sent, count=10, id="M-LINES")
    by_bytes, by_lines = (wire.items(h.alpha.engine, d, "out") for d in ("M-BYTES", "M-LINES"))
    assert by_bytes == by_lines and [i["id"] for i in by_bytes] == [p["id"] for p in sent]
    assert served.on_db(lambda: check_all(h.alpha.engine.store.check_rows())) == []
    assert served.beside is None or served.beside.calls >= 4
