"""JSON bodies of hostile shape on the local API: nesting past the parser's recursion limit,
numbers that are not JSON (NaN, Infinity) or too long, lone surrogates, and every top-level
type where an object is due. Each gets a 400 with the error shape, never a 500; the store is
unchanged and the daemon still answers."""

from __future__ import annotations

import json
from collections.abc import Callable

from bridge.daemon.pair import Node

from .conftest import person
from .test_bad_api_input import request, snapshot

DEEP = 200_000


def _manifest(**extra: object) -> str:
    return json.dumps({"type": "manifest", "to": "beta", "items": [person(1)], **extra})


def _deep_in_meta(depth: int, open_: str, close: str) -> bytes:
    body = _manifest(meta="@")
    return body.replace('"@"', open_ * depth + close * depth).encode()


BODIES: dict[str, bytes] = {
    "200,000 nested arrays": b"[" * DEEP + b"]" * DEEP,
    "200,000 nested objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "200,000 nested arrays in meta": _deep_in_meta(DEEP, "[", "]"),
    "900 nested arrays in meta (under the parser's limit)": _deep_in_meta(900, "[", "]"),
    "900 nested arrays as an item value": _manifest(items=["@"]).replace(
        '"@"', "[" * 900 + "]" * 900).encode(),
    "NaN": _manifest(meta={"x": "@"}).replace('"@"', "NaN").encode(),
    "Infinity": _manifest(meta={"x": "@"}).replace('"@"', "-Infinity").encode(),
    "a number too large for a float": _manifest(meta={"x": "@"}).replace(
        '"@"', "1e400").encode(),
    "an integer of 5,000 digits": _manifest(meta={"x": "@"}).replace(
        '"@"', "9" * 5000).encode(),
    "a lone surrogate": _manifest(meta={"x": "@"}).replace('"@"', '"\\ud800"').encode(),
    "a lone surrogate in an item id": _manifest().replace('"P-00001"', '"\\udfff"').encode(),
    "a UTF-8 byte-order mark": b"\xef\xbb\xbf" + _manifest().encode(),
    "a duplicate key": _manifest().replace('"type": "manifest"',
                                           '"type": "manifest", "type": "roster"').encode(),
    "null": b"null",
    "an array": b"[]",
    "a string": b'"manifest"',
    "a number": b"12",
    "true": b"true",
    "empty": b"",
    "whitespace": b"  \n ",
}


def test_deep_json_and_other_hostile_bodies_are_refused_with_400_not_500(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    before = snapshot(alpha)
    failures = []
    for name, body in BODIES.items():
        for path in ("/v1/documents", "/v1/documents/M-NONE/acks"):
            status, answer = request(alpha, "POST", path, body)
            err = answer.get("error", {})
            if not (400 <= status < 500 and set(err) == {"code", "message", "field"}):
                failures.append(f"{name} on {path}: {status} {answer}")
        assert alpha.client.health()["status"] == "ok"
    assert not failures, "\n".join(failures)
    assert snapshot(alpha) == before
    assert alpha.stop() == 0
