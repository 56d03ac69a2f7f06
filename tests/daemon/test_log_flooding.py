"""Log and answer flooding: ids of 4 KiB in a request's path and of 64 KiB in its body.

An id, a name or a status a local caller (or a peer, through its documents) chose is quoted by
a refusal and by a log line only escaped *and cut* (``bridge.core.printable.quoted``): one
request must not make a 64 KiB log line, nor an answer that carries the id whole back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

from bridge.daemon.pair import Node

from .conftest import exchange, person
from .test_bad_api_input import request

IN_PATH = "B" * 4000 + "\x1b[2J"  # well under aiohttp's 8190-byte request line
IN_BODY = "C" * 65536 + "\x1b[2J"
MOST_QUOTED = 2000  # characters of an answer's message, or of a log line, at most


def _flood(alpha: Node, received: str) -> list[tuple[str, int, str]]:
    """Every request with a long id; (what, status, the error's message and field)."""
    p = quote(IN_PATH, safe="")
    gets = [f"/v1/documents/{p}", f"/v1/documents/{p}/items", f"/v1/documents/{p}/items/{p}",
            f"/v1/documents/{received}/items/{p}", f"/v1/documents/{p}/receipt",
            f"/v1/documents/{received}/receipt?item={p}", f"/v1/documents?peer={p}",
            f"/v1/documents?type={p}", f"/v1/documents?after={p}",
            f"/v1/documents?direction={p}", f"/v1/documents/{received}/items?status={p}",
            f"/v1/documents/{received}/items?after={p}", f"/v1/reconcile?peer={p}"]
    posts = [
        ("/v1/documents", {"type": "manifest", "to": "beta", "id": IN_BODY,
                           "items": [person(1)]}),
        ("/v1/documents", {"type": "manifest", "to": IN_BODY, "items": [person(1)]}),
        ("/v1/documents", {"type": IN_BODY, "to": "beta", "items": [person(1)]}),
        ("/v1/documents", {"type": "manifest", "to": "beta",
                           "items": [person(1) | {"id": IN_BODY}]}),
        ("/v1/documents", {"type": "manifest", "to": "beta",
                           "items": [person(1), person(1)]}),
        ("/v1/documents", {"type": "manifest", "to": "beta",
                           "items": [person(1) | {IN_BODY: "x"}]}),
        ("/v1/documents", {"type": "manifest", "to": "beta", "items": [person(1)],
                           "meta": {IN_BODY: "x"}}),
        (f"/v1/documents/{p}/acks", {"all": "RECEIVED"}),
        (f"/v1/documents/{received}/acks", {"items": [{"id": IN_BODY, "status": "RECEIVED"}]}),
        (f"/v1/documents/{received}/acks", {"items": [{"id": "P-00001", "status": IN_BODY}]}),
        (f"/v1/documents/{received}/acks", {"all": IN_BODY}),
        (f"/v1/documents/{received}/acks", {"all": "REJECTED", "including": [IN_BODY]}),
        (f"/v1/carry/{p}/export", {}),
    ]
    answers = []
    for path in gets:
        status, body = request(alpha, "GET", path)
        answers.append((path[:40], status, json.dumps(body.get("error"))))
    for path, value in posts:
        status, body = request(alpha, "POST", path, json.dumps(value).encode())
        answers.append((path[:40] + json.dumps(value)[:60], status, json.dumps(body.get("error"))))
    return answers


def test_log_flooding_with_long_ids_makes_no_long_answer_and_no_long_log_line(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    for node in (alpha, beta):
        node.start()
    exchange(beta, alpha, "M-LF-1")  # received and acknowledged by alpha
    answers = _flood(alpha, "M-LF-1")
    # Refused, each with its reason (a long name of a field or of meta is data: taken).
    assert all(status < 500 for _what, status, _error in answers), answers
    assert sum(400 <= status < 500 for _what, status, _error in answers) >= 20
    long = [(what, len(error)) for what, _status, error in answers if len(error) > MOST_QUOTED]
    assert long == []
    assert alpha.client.health()["status"] == "ok"
    lines = alpha.log_path.read_text(errors="replace").splitlines()
    assert lines, "the daemon logged nothing at all: the test would show nothing"
    assert [line[:120] for line in lines if len(line) > MOST_QUOTED] == []
