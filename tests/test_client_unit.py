"""Unit tests of bridge.client (HTTP over a Unix socket, SSE parsing, error mapping) against a
tiny scripted aiohttp server, and of the CLI's own parsing and exit codes (no daemon).

The real daemon is tested end to end elsewhere; the server here only says what each test makes
it say.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from bridge.cli import follow
from bridge.cli.main import main
from bridge.client import ApiError, BridgeClient, DaemonUnavailable, Event, parse_sse

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeServer:
    """An aiohttp app on a Unix socket in a thread. ``reply`` answers every request;
    ``seen`` records (method, path with query, headers, body, match_info)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[dict[str, Any]] = []
        self.reply: Handler = self._default
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    @staticmethod
    async def _default(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append({"method": request.method, "path": request.path_qs,
                          "headers": dict(request.headers), "body": await request.read(),
                          "match": dict(request.match_info)})
        return await self.reply(request)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/v1/documents/{id}/items/{item_id}", self._handle)
        app.router.add_route("*", "/v1/documents/{id}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.2)

        async def start() -> None:
            await self.runner.setup()
            await web.UnixSite(self.runner, str(self.path)).start()

        self.loop.run_until_complete(start())
        self.ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture()
def sockdir() -> Iterator[Path]:
    # Short, so that the socket path stays far below the ~107-byte limit of AF_UNIX.
    d = Path(tempfile.mkdtemp(prefix="bc", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture()
def server(sockdir: Path) -> Iterator[FakeServer]:
    srv = FakeServer(sockdir / "bridge.sock")
    yield srv
    srv.close()


@pytest.fixture()
def client(server: FakeServer) -> BridgeClient:
    return BridgeClient(server.path, timeout=5)


def answer(value: Any, status: int = 200) -> Handler:
    async def h(_request: web.Request) -> web.StreamResponse:
        return web.json_response(value, status=status)
    return h


# -- requests and answers ------------------------------------------------------------------

def test_health(server: FakeServer, client: BridgeClient) -> None:
    body = {"status": "ok", "party": "alpha", "fingerprint": "AAAA", "version": "0.1.0",
            "peers": {"bravo": {"reachable": None, "queued": 0}}}
    server.reply = answer(body)
    assert client.health() == body
    seen = server.seen[-1]
    assert (seen["method"], seen["path"]) == ("GET", "/v1/health")
    assert seen["headers"]["Host"] == "bridge"


def test_peers_unwraps_list(server: FakeServer, client: BridgeClient) -> None:
    peers = [{"name": "bravo", "url": "https://b:1", "fingerprint": "F", "reachable": True,
              "queued": 2}]
    server.reply = answer({"peers": peers})
    assert client.peers() == peers


def test_submit_document_body(server: FakeServer, client: BridgeClient) -> None:
    server.reply = answer({"id": "R-1", "type": "roster", "to": "bravo", "items": 2,
                           "digest": "ab" * 32}, status=202)
    out = client.submit_document("roster", "bravo", [{"id": "p-1"}, {"id": "p-2", "n": "Zoë"}],
                                 meta={"round": 3}, id="R-1")
    assert out["id"] == "R-1"
    seen = server.seen[-1]
    assert (seen["method"], seen["path"]) == ("POST", "/v1/documents")
    assert seen["headers"]["Content-Type"] == "application/json"
    assert json.loads(seen["body"]) == {"type": "roster", "to": "bravo", "id": "R-1",
                                        "meta": {"round": 3},
                                        "items": [{"id": "p-1"}, {"id": "p-2", "n": "Zoë"}]}


def test_submit_document_leaves_out_absent_fields(server: FakeServer,
                                                  client: BridgeClient) -> None:
    server.reply = answer({"id": "X"}, status=202)
    client.submit_document("manifest", "bravo", iter([{"id": "a"}]))
    assert json.loads(server.seen[-1]["body"]) == {"type": "manifest", "to": "bravo",
                                                   "items": [{"id": "a"}]}


def test_query_parameters_and_path_escaping(server: FakeServer, client: BridgeClient) -> None:
    server.reply = answer({"documents": []})
    assert client.documents(direction="in", peer="bravo") == []
    assert server.seen[-1]["path"] == "/v1/documents?direction=in&peer=bravo"
    assert client.documents() == []
    assert server.seen[-1]["path"] == "/v1/documents"

    server.reply = answer({"id": "D:1"})
    client.document("D:1", direction="out")
    assert server.seen[-1]["match"] == {"id": "D:1"}
    assert server.seen[-1]["path"].endswith("?direction=out")

    server.reply = answer({"id": "p/1", "history": []})
    client.item("D.1", "p/1")  # item ids may hold '/': it must stay one path segment
    assert server.seen[-1]["match"] == {"id": "D.1", "item_id": "p/1"}


def test_iter_items_follows_next(server: FakeServer, client: BridgeClient) -> None:
    pages = {None: ([{"id": "a"}, {"id": "b"}], "b"), "b": ([{"id": "c"}], "c"),
             "c": ([], None)}

    async def h(request: web.Request) -> web.StreamResponse:
        rows, nxt = pages[request.query.get("after")]
        assert request.query.get("status") == "RECEIVED"
        return web.json_response({"items": rows, "next": nxt})

    server.reply = h
    assert [r["id"] for r in client.iter_items("D1", status="RECEIVED")] == ["a", "b", "c"]
    assert [s["path"] for s in server.seen] == [
        "/v1/documents/D1/items?status=RECEIVED",
        "/v1/documents/D1/items?status=RECEIVED&after=b",
        "/v1/documents/D1/items?status=RECEIVED&after=c"]


def test_items_page(server: FakeServer, client: BridgeClient) -> None:
    server.reply = answer({"items": [{"id": "a"}], "next": None})
    assert client.items("D1", after="x", limit=5) == {"items": [{"id": "a"}], "next": None}
    assert server.seen[-1]["path"] == "/v1/documents/D1/items?after=x&limit=5"
    client.items("D1", direction="in")
    assert server.seen[-1]["path"] == "/v1/documents/D1/items?direction=in"
    server.reply = answer({"id": "a", "history": []})
    client.item("D1", "a", direction="out")
    assert server.seen[-1]["path"] == "/v1/documents/D1/items/a?direction=out"


def test_acknowledge_bodies(server: FakeServer, client: BridgeClient) -> None:
    server.reply = answer({"ack_id": "A1", "items": 2}, status=202)
    assert client.acknowledge("D1", all="RECEIVED", reason="all here") == {"ack_id": "A1",
                                                                          "items": 2}
    assert server.seen[-1]["path"] == "/v1/documents/D1/acks"
    assert json.loads(server.seen[-1]["body"]) == {"all": "RECEIVED", "reason": "all here"}
    client.acknowledge("D1", items=[{"id": "a", "status": "RECEIVED", "reason": None},
                                    {"id": "b", "status": "WITHHELD", "evidence": "E-9"}])
    assert json.loads(server.seen[-1]["body"]) == {"items": [
        {"id": "a", "status": "RECEIVED"}, {"id": "b", "status": "WITHHELD", "evidence": "E-9"}]}


def test_acknowledge_needs_exactly_one_form(client: BridgeClient) -> None:
    from bridge.core.errors import UsageError
    with pytest.raises(UsageError):
        client.acknowledge("D1")
    with pytest.raises(UsageError):
        client.acknowledge("D1", items=[], all="RECEIVED")


def test_metrics_text(server: FakeServer, client: BridgeClient) -> None:
    text = "# TYPE bridge_documents_total counter\nbridge_documents_total 3\n"

    async def h(_request: web.Request) -> web.StreamResponse:
        return web.Response(text=text, content_type="text/plain")

    server.reply = h
    assert client.metrics() == text
    assert server.seen[-1]["path"] == "/metrics"


# -- errors ----------------------------------------------------------------------------------

def test_api_error_fields(server: FakeServer, client: BridgeClient) -> None:
    server.reply = answer({"error": {"code": "unknown_peer", "message": "no peer named zulu",
                                     "field": "to"}}, status=404)
    with pytest.raises(ApiError) as exc:
        client.submit_document("roster", "zulu", [{"id": "a"}])
    err = exc.value
    assert (err.status, err.code, err.detail, err.field) == (404, "unknown_peer",
                                                             "no peer named zulu", "to")
    assert err.message == "no peer named zulu"
    assert str(err) == "to: no peer named zulu"


def test_api_error_without_field(server: FakeServer, client: BridgeClient) -> None:
    server.reply = answer({"error": {"code": "ambiguous", "message": "in both directions",
                                     "field": None}}, status=409)
    with pytest.raises(ApiError) as exc:
        client.document("D1")
    assert exc.value.field is None and str(exc.value) == "in both directions"


def test_api_error_not_json(server: FakeServer, client: BridgeClient) -> None:
    async def h(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=502, text="Bad Gateway from a proxy")

    server.reply = h
    with pytest.raises(ApiError) as exc:
        client.health()
    assert (exc.value.status, exc.value.code) == (502, "http_502")
    assert "Bad Gateway" in exc.value.detail


def test_success_that_is_not_json(server: FakeServer, client: BridgeClient) -> None:
    async def h(_request: web.Request) -> web.StreamResponse:
        return web.Response(text="hello")

    server.reply = h
    with pytest.raises(ApiError) as exc:
        client.health()
    assert exc.value.code == "invalid_response"


def test_no_socket(sockdir: Path) -> None:
    c = BridgeClient(sockdir / "bridge.sock")
    with pytest.raises(DaemonUnavailable) as exc:
        c.health()
    assert f"bridge --home {sockdir} daemon" in str(exc.value)
    assert not exc.value.reached


def test_stale_socket_refused(sockdir: Path) -> None:
    path = sockdir / "bridge.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # the file stays; nobody listens
    with pytest.raises(DaemonUnavailable) as exc:
        BridgeClient(path).documents()
    assert "daemon" in str(exc.value) and not exc.value.reached


def test_socket_path_too_long(sockdir: Path) -> None:
    with pytest.raises(DaemonUnavailable) as exc:
        BridgeClient(sockdir / ("x" * 200) / "bridge.sock").health()
    assert "too long" in str(exc.value) or "no Bridge daemon" in str(exc.value)


def test_timeout(server: FakeServer) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.0)
        return web.json_response({})

    server.reply = slow
    with pytest.raises(DaemonUnavailable) as exc:
        BridgeClient(server.path, timeout=0.2).health()
    assert "did not answer" in str(exc.value) and exc.value.reached


def test_hang_up(server: FakeServer, client: BridgeClient) -> None:
    async def rude(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
        return web.json_response({})

    server.reply = rude
    with pytest.raises(DaemonUnavailable) as exc:
        client.health()
    assert exc.value.reached


# -- server-sent events ----------------------------------------------------------------------

def sse(chunks: list[str], *, status: int = 200) -> Handler:
    async def h(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=status, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in chunks:
            await resp.write(chunk.encode())
            await asyncio.sleep(0.01)  # separate chunks on the wire
        await resp.write_eof()
        return resp
    return h


def test_events_stream(server: FakeServer, client: BridgeClient) -> None:
    server.reply = sse([
        ": ping\n\n",
        'id: 1\nevent: document_received\ndata: {"id": "D1", "peer": "bra',  # split mid-line
        'vo"}\n\n',
        "id: 2\r\nevent: item_status_changed\r\n",
        'data: {"id": "D1",\r\ndata: "item": "p-1"}\r\n\r\n',  # CRLF, multi-line data
        "event: no_data_so_dropped\n\n",
        "id: 3\rdata:[1, 2]\r\r",  # bare CR; no space after the colon; not an object
        'id: 4\nevent: security_alarm\ndata: {"reason": "equivocation"}\n\n',
        'data: {"unterminated": true}\n',  # stream ends before the blank line: dropped
    ])
    got = list(client.events(last_event_id=7))
    assert got == [
        Event("1", "document_received", {"id": "D1", "peer": "bravo"}),
        Event("2", "item_status_changed", {"id": "D1", "item": "p-1"}),
        Event("3", "message", {"value": [1, 2]}),
        Event("4", "security_alarm", {"reason": "equivocation"}),
    ]
    seen = server.seen[-1]
    assert seen["path"] == "/v1/events"
    assert seen["headers"]["Last-Event-ID"] == "7"
    assert seen["headers"]["Accept"] == "text/event-stream"
    # an Event is also a plain (id, type, data) tuple
    ev_id, ev_type, data = got[0]
    assert (ev_id, ev_type, data["id"]) == ("1", "document_received", "D1")


def test_events_without_last_id_sends_no_header(server: FakeServer,
                                                client: BridgeClient) -> None:
    server.reply = sse(["id: 1\ndata: {}\n\n"])
    assert list(client.events()) == [Event("1", "message", {})]
    assert "Last-Event-ID" not in server.seen[-1]["headers"]


def test_events_error_answer(server: FakeServer, client: BridgeClient) -> None:
    server.reply = answer({"error": {"code": "too_many", "message": "too many listeners",
                                     "field": None}}, status=503)
    with pytest.raises(ApiError) as exc:
        list(client.events())
    assert (exc.value.status, exc.value.code) == (503, "too_many")


def test_events_can_be_closed_early(server: FakeServer, client: BridgeClient) -> None:
    server.reply = sse(["id: 1\ndata: {}\n\n"] * 50)
    stream = client.events()
    assert next(stream).id == "1"
    stream.close()  # closes the connection; no error


def test_parse_sse_rules() -> None:
    lines = ["data: a", "data:b", "data", "", "id: x\x00y", "data: 1", "", "retry: 5",
             "bogus: 1", "id", "data: 2", ""]
    # "data" with no colon is an empty data line; an id with NUL is ignored; "id" alone
    # resets the id to "".
    assert list(parse_sse(lines)) == [Event(None, "message", {"raw": "a\nb\n"}),
                                      Event(None, "message", {"value": 1}),
                                      Event("", "message", {"value": 2})]


# -- CLI: parsing and exit codes, no daemon ----------------------------------------------------

def cli(home: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    # A wide, fixed terminal: rich would otherwise wrap table cells at the caller's width.
    r = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["--home", str(home), *args],
                                                 input=input)
    return r.exit_code, r.stdout, r.stderr


def test_cli_daemon_unavailable_exit_3(sockdir: Path) -> None:
    for args in (["status"], ["inbox", "--json"], ["items", "D1"], ["events"],
                 ["ack", "D1", "--all", "RECEIVED"]):
        code, out, err = cli(sockdir, *args)
        assert code == 3, (args, out, err)
        assert f"bridge --home {sockdir} daemon" in err


def test_cli_json_error_object(sockdir: Path) -> None:
    code, out, _ = cli(sockdir, "status", "D1", "--json")
    assert code == 3
    assert json.loads(out)["error"]["code"] == "daemon_unavailable"


def test_cli_send_bad_file_exit_1(sockdir: Path) -> None:
    bad = sockdir / "bad.json"
    bad.write_text('{"items": [\n  {"id": "a"},\n]}')
    code, _, err = cli(sockdir, "send", "roster", str(bad), "--to", "bravo")
    assert code == 1 and "line 3" in err
    bad.write_text('{"items": [], "to": "bravo"}')
    code, _, err = cli(sockdir, "send", "roster", str(bad), "--to", "bravo")
    assert code == 1 and "unexpected top-level key" in err
    bad.write_text('"roster"')
    code, _, err = cli(sockdir, "send", "manifest", str(bad), "--to", "bravo")
    assert code == 1


def test_cli_send_usage_exit_2(sockdir: Path) -> None:
    assert cli(sockdir, "send", "letter", "-", "--to", "bravo", input="[]")[0] == 2
    assert cli(sockdir, "send", "roster", "-", input="[]")[0] == 2  # no --to


@pytest.mark.parametrize("args", [
    ["ack", "D1"],
    ["ack", "D1", "--all", "RECEIVED", "--item", "a", "RECEIVED"],
    ["ack", "D1", "--all", "RECEIVED", "--evidence", "E"],
    ["ack", "D1", "--all", "NOT_A_STATUS"],
    ["ack", "D1", "--item", "a", "LOST"],
    ["ack", "D1", "--item", "a", "RECEIVED", "--item", "a", "WITHHELD"],
    ["ack", "D1", "--item", "a", "RECEIVED", "--reason", "x", "--reason", "y"],
    ["status", "--watch"],
])
def test_cli_usage_exit_2(sockdir: Path, args: list[str]) -> None:
    code, _, err = cli(sockdir, *args)
    assert code == 2, err


class Recorder:
    """Stands in for BridgeClient methods in CLI tests: records calls, returns answers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.mp = monkeypatch

    def stub(self, name: str, fn: Callable[..., Any]) -> None:
        def method(_self: BridgeClient, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return fn(*args, **kwargs)
        self.mp.setattr(BridgeClient, name, method)


def test_cli_ack_pairs_reasons_with_their_items(sockdir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    rec.stub("acknowledge", lambda *a, **k: {"ack_id": "A1", "items": 3})
    code, out, err = cli(sockdir, "ack", "D1", "--evidence", "BOX-1",
                         "--item", "p-1", "received",
                         "--item", "p-2", "WITHHELD", "--reason", "medical hold",
                         "--evidence", "MED-7",
                         "--item=p-3", "DISPUTED", "--reason=not on our list")
    assert code == 0, err
    assert "Acknowledged 3 item(s) of D1 (acknowledgement A1)" in out
    _name, args, kwargs = rec.calls[-1]
    assert args == ("D1",)
    assert kwargs["items"] == [
        {"id": "p-1", "status": "RECEIVED", "evidence": "BOX-1"},
        {"id": "p-2", "status": "WITHHELD", "reason": "medical hold", "evidence": "MED-7"},
        {"id": "p-3", "status": "DISPUTED", "reason": "not on our list", "evidence": "BOX-1"},
    ]
    code, out, _ = cli(sockdir, "ack", "D1", "--all", "received", "--reason", "ok", "--json")
    assert code == 0 and json.loads(out) == {"ack_id": "A1", "items": 3}
    assert rec.calls[-1][2] == {"all": "RECEIVED", "reason": "ok"}


def test_cli_send_passes_file_and_prints_id(sockdir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    rec.stub("submit_document", lambda *a, **k: {"id": "R-9", "type": "roster", "to": "bravo",
                                                  "items": 1, "digest": "00"})
    doc = {"meta": {"round": 1}, "items": [{"id": "p-1", "name": "Sample Person"}]}
    code, out, _ = cli(sockdir, "send", "roster", "-", "--to", "bravo", "--id", "R-9",
                       input=json.dumps(doc))
    assert code == 0 and out.strip() == "R-9"
    assert rec.calls[-1][1] == ("roster", "bravo", doc["items"])
    assert rec.calls[-1][2] == {"meta": {"round": 1}, "id": "R-9"}
    code, out, _ = cli(sockdir, "send", "manifest", "-", "--to", "bravo", "--json",
                       input=json.dumps(doc["items"]))
    assert code == 0 and json.loads(out)["id"] == "R-9"
    assert rec.calls[-1][2] == {"meta": None, "id": None}


def test_cli_api_error_exit_1_with_hint(sockdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise ApiError(409, "ambiguous", "D1 exists in both directions")

    rec.stub("document", refuse)
    code, _, err = cli(sockdir, "status", "D1")
    assert code == 1
    assert "D1 exists in both directions" in err and "--direction" in err


def summary(state: str, acked: int, total: int = 4) -> dict[str, Any]:
    by_status = {"RECEIVED": acked} if acked else {}
    if total - acked:
        by_status["delivered"] = total - acked
    return {"id": "D1", "type": "roster", "direction": "out", "peer": "bravo", "state": state,
            "created": "2025-01-01T00:00:00Z", "digest": "00", "meta": {},
            "items": {"total": total, "acknowledged": acked, "by_status": by_status}}


def test_cli_watch_polls_until_acknowledged(sockdir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "POLL_INTERVAL", 0.01)
    rec = Recorder(monkeypatch)
    states = iter([summary("delivered", 0), summary("delivered", 1), summary("delivered", 3),
                   summary("acknowledged", 4)])
    rec.stub("document", lambda *a, **k: next(states))

    def no_events(*_a: Any, **_k: Any) -> Any:
        raise DaemonUnavailable("no events here")

    rec.stub("events", no_events)
    code, out, err = cli(sockdir, "status", "D1", "--watch")
    assert code == 0, err
    assert "4/4 acknowledged" in out
    # after the first answer the direction is pinned, so that the id cannot become ambiguous
    assert [c[1] for c in rec.calls if c[0] == "document"][1:] == [("D1", "out")] * 3

    states = iter([summary("delivered", 0), summary("delivered", 2),
                   summary("acknowledged", 4)])
    code, out, _ = cli(sockdir, "status", "D1", "--watch", "--json")
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["items"]["acknowledged"] for x in lines] == [0, 2, 4]


def test_cli_status_table_and_json(sockdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    rec.stub("documents", lambda *a, **k: [summary("delivered", 1)])
    rec.stub("document", lambda *a, **k: {**summary("delivered", 1), "acks": []})
    rec.stub("peers", lambda *a, **k: [])  # status lists each peer's link first
    code, out, _ = cli(sockdir, "status")
    assert code == 0 and "D1" in out and "RECEIVED 1 · delivered 3" in out
    assert out.splitlines()[1].split()[5:7] == ["4", "1"]  # TOTAL, ACKED
    code, out, _ = cli(sockdir, "status", "D1", "--json")
    doc = json.loads(out)
    assert doc["items"]["by_status"] == {"RECEIVED": 1, "delivered": 3}
    code, out, _ = cli(sockdir, "inbox")
    assert code == 0 and "1/4 (25%)" in out
    late = {**summary("received", 1), "direction": "in", "deadline": "2025-02-01T00:00:00Z"}
    late["items"]["overdue"] = 3
    rec.stub("documents", lambda *a, **k: [late])
    rec.stub("document", lambda *a, **k: {**late, "acks": []})
    code, out, _ = cli(sockdir, "inbox")
    assert code == 0 and "(3 overdue)" in out
    code, out, _ = cli(sockdir, "status", "D1")
    assert code == 0 and "deadline: 2025-02-01T00:00:00Z (3 items overdue)" in out


def test_cli_events_resume_after_the_stream_ends(sockdir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "POLL_INTERVAL", 0.01)
    monkeypatch.setattr(follow, "UNAVAILABLE_GRACE", 0.05)
    rec = Recorder(monkeypatch)
    streams = iter([[Event("1", "document_received", {"id": "D1"})], []])

    def events(*_a: Any, **_k: Any) -> Iterator[Event]:
        try:
            batch = next(streams)
        except StopIteration:
            raise DaemonUnavailable("gone for good") from None
        return iter(batch)

    rec.stub("events", events)
    code, out, err = cli(sockdir, "events", "--json")
    assert code == 3  # the daemon went away for longer than the grace period
    assert json.loads(out.splitlines()[0]) == {"id": "1", "type": "document_received",
                                               "data": {"id": "D1"}}
    assert "reconnecting" in err
    resumed = [c[2].get("last_event_id") for c in rec.calls]
    assert resumed[0] is None and set(resumed[1:]) == {"1"}


def test_cli_items_long_list_is_plain_and_fast(sockdir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    rows = [{"id": f"p-{i}", "index": i, "status": "RECEIVED" if i % 2 else "delivered",
             "reason": None, "evidence": None, "updated": None} for i in range(20000)]
    rec.stub("iter_items", lambda *a, **k: iter(rows))
    code, out, _ = cli(sockdir, "items", "D1", "--status", "received")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 20001
    assert lines[0].split() == ["#", "ID", "STATUS", "REASON", "EVIDENCE", "UPDATED"]
    assert lines[2].split() == ["1", "p-1", "RECEIVED"]
    assert rec.calls[-1][2]["status"] == "RECEIVED"  # upper case for an ack status
    cli(sockdir, "items", "D1", "--status", "QUEUED")
    assert rec.calls[-1][2]["status"] == "queued"  # lower case for a transport state


def test_local_api_spec_names_every_status_and_event() -> None:
    from bridge.core.documents import ACK_STATUSES
    spec = (Path(__file__).parent.parent / "schemas" / "local-api.yaml").read_text()
    for name in (*ACK_STATUSES, "document_received", "document_delivered",
                 "document_acknowledged", "item_status_changed", "peer_unreachable",
                 "peer_back", "security_alarm", "document_refused", "unacknowledged"):
        assert name in spec, name
    for path in ("/v1/health:", "/v1/peers:", "/v1/documents:", "/v1/documents/{id}:",
                 "/v1/documents/{id}/items:", "/v1/documents/{id}/items/{item_id}:",
                 "/v1/documents/{id}/acks:", "/v1/events:", "/metrics:"):
        assert f"  {path}\n" in spec, path


def test_early_answer_to_a_large_body_is_read(sockdir: Path) -> None:
    """A daemon may refuse a body over its limit before reading it and hang up: the client
    must report the daemon's 413, not the broken pipe."""
    path = sockdir / "bridge.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    body = json.dumps({"error": {"code": "too_large", "message": "request body too large",
                                 "field": None}}).encode()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: "
                         b"application/json\r\nConnection: close\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            conn.shutdown(socket.SHUT_RDWR)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with pytest.raises(ApiError) as exc:
            BridgeClient(path, timeout=5).submit_document(
                "roster", "bravo", [{"id": f"p-{i}", "note": "x" * 1000} for i in range(20000)])
        assert (exc.value.status, exc.value.code) == (413, "too_large")
    finally:
        t.join(5)
        listener.close()


# -- connections kept between requests (bridge/client_idle.py) ------------------------------

def connection_of_each_request(server: FakeServer) -> list[int]:
    """The server records which connection (its transport) carried each request."""
    carried: list[int] = []

    async def h(request: web.Request) -> web.StreamResponse:
        carried.append(id(request.transport))
        return web.json_response({"path": request.path_qs})
    server.reply = h
    return carried


def test_a_second_request_reuses_the_connection_the_first_left_idle(
        server: FakeServer, client: BridgeClient) -> None:
    carried = connection_of_each_request(server)
    for _ in range(3):
        client.health()
    assert len(carried) == 3 and len(set(carried)) == 1


def test_a_connection_the_daemon_closed_while_idle_is_dropped_not_used(sockdir: Path) -> None:
    """The daemon restarted between two requests: the kept connection is closed at its end;
    the next request sees that before sending and connects again, instead of failing."""
    first = FakeServer(sockdir / "bridge.sock")
    client = BridgeClient(first.path, timeout=5)
    client.health()
    first.close()
    second = FakeServer(sockdir / "bridge.sock")
    try:
        carried = connection_of_each_request(second)
        assert client.health() == {"path": "/v1/health"}
        assert len(carried) == 1
    finally:
        second.close()


def test_an_answer_that_closes_its_connection_leaves_nothing_to_reuse(
        server: FakeServer, client: BridgeClient) -> None:
    carried: list[int] = []

    async def closing(request: web.Request) -> web.StreamResponse:
        carried.append(id(request.transport))
        resp = web.json_response({"status": "ok"})
        resp.force_close()
        return resp
    server.reply = closing
    client.health()
    client.health()
    assert len(carried) == 2 and carried[0] != carried[1]


def test_threads_sharing_one_client_each_get_their_own_answer(server: FakeServer,
                                                              client: BridgeClient) -> None:
    connection_of_each_request(server)
    wrong: list[str] = []

    def ask(k: int) -> None:
        for n in range(15):
            path = f"/v1/documents/T-{k}-{n}"
            got = client.document(f"T-{k}-{n}")["path"]
            if not got.startswith(path):
                wrong.append(f"{path} answered with {got}")

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert wrong == []
