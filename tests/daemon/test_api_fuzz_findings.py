"""What schemathesis (``make fuzz-api``) and its follow-up review found in the local API, each
pinned by a test against a real daemon: no input gets a 500, and answers follow the spec."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from bridge.daemon.pair import Node


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("bridge", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def call(node: Node, method: str, target: str, *, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    conn = _Unix(str(node.home.socket_path))
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v.encode("latin-1"))
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = raw
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


@pytest.fixture
def alpha(make_nodes: Callable[..., tuple[Node, Node]]) -> Node:
    a, _b = make_nodes()
    a.start()
    return a


@pytest.mark.parametrize("target", [
    "/v1/documents?limit=%C2%B2",               # "²": str.isdigit() is true, int() raises
    "/v1/documents/X/items?limit=%C2%B2",
    "/v1/events?after=%C2%B2",
])
def test_unicode_digits_are_a_400_not_a_500(alpha: Node, target: str) -> None:
    status, _, data = call(alpha, "GET", target)
    assert status == 400, data
    assert data["error"]["field"] in ("limit", "after")


def test_items_cursor_past_64_bits_is_a_400_not_a_500(alpha: Node) -> None:
    alpha.client.submit_document("manifest", "beta", [{"id": "X-1"}], id="M-CUR-1")
    status, _, data = call(alpha, "GET", "/v1/documents/M-CUR-1/items?after=1")
    assert status == 200 and data["items"] == []
    for after in ("99999999999999999999", "-1", "1e3", "%C2%B2"):
        status, _, data = call(alpha, "GET", f"/v1/documents/M-CUR-1/items?after={after}")
        assert status == 400, (after, data)
        assert data["error"]["field"] == "after"


def test_unicode_digit_in_last_event_id_is_a_400(alpha: Node) -> None:
    status, _, data = call(alpha, "GET", "/v1/events", headers={"Last-Event-ID": "\u00b2"})
    assert status == 400 and data["error"]["field"] == "Last-Event-ID"
    # A bad `after` is refused even when the header (which wins) is good.
    status, _, data = call(alpha, "GET", "/v1/events?after=%C2%84",
                           headers={"Last-Event-ID": "0"})
    assert status == 400 and data["error"]["field"] == "after"


@pytest.mark.parametrize("path", ["/v1/health", "/v1/documents", "/v1/keys/rotate",
                                  "/metrics"])
def test_405_names_the_allowed_methods(alpha: Node, path: str) -> None:
    status, headers, data = call(alpha, "TRACE", path)
    assert status == 405
    assert headers.get("Allow"), headers
    assert data["error"]["code"] == "http"


@pytest.mark.parametrize("target", ["/v1/documents?peer=", "/v1/reconcile?peer=",
                                    "/v1/documents?peer=Not%20A%20Party",
                                    "/v1/reconcile?peer=%00"])
def test_peer_filter_must_be_a_party_name(alpha: Node, target: str) -> None:
    status, _, data = call(alpha, "GET", target)
    assert status == 400, data
    assert data["error"]["field"] == "peer"


@pytest.mark.parametrize("reason", [{}, [], 0, False, "x" * 2001])
def test_revocation_reason_must_be_text(alpha: Node, reason: object) -> None:
    before = alpha.client.health()["fingerprint"]
    body = json.dumps({"reason": reason}).encode()
    status, _, data = call(alpha, "POST", "/v1/keys/revoke",
                           headers={"Content-Type": "application/json"}, body=body)
    assert status == 400, data  # a falsy non-text was taken as the default reason, and revoked
    assert data["error"]["field"] == "reason"
    assert alpha.client.health()["fingerprint"] == before  # nothing revoked
