"""``bridge doctor`` compares the peer's clock with ours from the ``Date`` header of its
``/v1/health`` (real HTTP on 127.0.0.1). That header is a time from outside: one that does not
parse, names no zone or lies past 9999 is ignored (PROTOCOL.md §3, Ranges), never a crash of
the doctor (``Date: garbage`` raised ValueError out of ``check_peer``)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest

from bridge.cli.doctor import check_peer
from bridge.home.config import PeerConfig


def _serve(date: str) -> Iterator[int]:
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "party": "beta"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def date_time_string(self, timestamp: float | None = None) -> str:
            return date

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("date", ["garbage", "Mon, 00 Jan 0000 00:00:00 GMT",
                                  "Fri, 31 Dec 9999 23:59:59 -1400",
                                  "Tue, 01 Dec 2026 10:00:00 -0000"])
def test_peer_date_header_out_of_range_is_ignored_not_raised(date: str) -> None:
    for port in _serve(date):
        peer = PeerConfig(name="beta", url=f"http://127.0.0.1:{port}", fingerprint="x")
        findings = list(check_peer("beta", peer, time.time()))
        assert [f.check for f in findings] == ["peer beta"]
        assert findings[0].status == "ok"


def test_peer_clock_far_from_ours_is_still_reported() -> None:
    for port in _serve("Tue, 01 Dec 2020 10:00:00 GMT"):
        peer = PeerConfig(name="beta", url=f"http://127.0.0.1:{port}", fingerprint="x")
        findings = list(check_peer("beta", peer, time.time()))
        assert [f.check for f in findings] == ["peer beta", "clock vs beta"]
