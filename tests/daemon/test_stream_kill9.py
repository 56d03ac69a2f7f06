"""A streamed submission whose daemon is killed (SIGKILL) mid-stream: while the stream runs,
none of it is visible; after the restart nothing of it is in the store (no document, item,
envelope or audit record of it) and the store check is clean; the same stream, sent again
whole, is committed as if the first had never been."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from bridge.client import ApiError
from bridge.daemon.pair import Node
from bridge.local.stream import STREAM_BATCH

from .conftest import db, person
from .midstream import kill_mid_stream, stop_and_check_store

DOC = "M-STREAM-K9"
N = STREAM_BATCH * 3 + 5  # three whole batches staged before the kill, a fourth half read


def _counts(con: sqlite3.Connection) -> tuple[int, int, int, int]:
    """(documents, items, outbox rows, audit records naming DOC) of a store."""
    one = [con.execute(sql).fetchone()[0] for sql in (
        "SELECT COUNT(*) FROM documents", "SELECT COUNT(*) FROM items",
        "SELECT COUNT(*) FROM outbox")]
    named = con.execute("SELECT COUNT(*) FROM audit WHERE instr(body, ?) > 0",
                        (DOC.encode(),)).fetchone()[0]
    return one[0], one[1], one[2], named


def test_a_daemon_killed_mid_stream_leaves_nothing_of_it_and_takes_it_again_whole(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _beta = make_nodes()
    alpha.start()

    def mid_stream() -> None:
        assert alpha.client.documents() == []  # mid-stream: nothing of it is visible
        with db(alpha) as con:
            assert _counts(con) == (0, 0, 0, 0)

    kill_mid_stream(alpha, lambda items: alpha.client.submit_document_stream(
        "manifest", "beta", items, count=N, id=DOC),
        (person(k) | {"kind": "person"} for k in range(N)), STREAM_BATCH * 3 + 2,
        while_stalled=mid_stream)

    alpha.start()
    assert alpha.client.documents() == []
    try:
        alpha.client.document(DOC)
        raise AssertionError("a killed stream's document is visible")
    except ApiError as err:
        assert err.code == "not_found"
    with db(alpha) as con:
        assert _counts(con) == (0, 0, 0, 0)

    done = alpha.client.submit_document_stream(
        "manifest", "beta", (person(k) | {"kind": "person"} for k in range(N)), count=N, id=DOC)
    assert done["items"] == N and not done.get("existing")
    with db(alpha) as con:
        documents, items, outbox, named = _counts(con)
    assert (documents, items) == (1, N) and outbox > 0 and named > 0
    stop_and_check_store(alpha)
