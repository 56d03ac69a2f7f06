"""A streamed submission whose daemon is killed (SIGKILL) mid-stream: while the stream runs,
none of it is visible; after the restart nothing of it is in the store (no document, item,
envelope or audit record of it) and the store check is clean; the same stream, sent again
whole, is committed as if the first had never been."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from bridge.client import ApiError
from bridge.daemon.pair import Node
from bridge.engine.store_check import check_all
from bridge.local.stream import STREAM_BATCH
from bridge.store.sqlite.store import Store

from .conftest import db, person

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


def _stalled(n_before: int, reached: threading.Event, release: threading.Event
             ) -> Iterator[dict[str, Any]]:
    """``N`` items, stopping after ``n_before`` of them until ``release`` is set."""
    for k in range(N):
        if k == n_before:
            reached.set()
            release.wait(60)
            return  # the daemon is dead by then: the request fails, nothing more is sent
        yield person(k) | {"kind": "person"}


def test_a_daemon_killed_mid_stream_leaves_nothing_of_it_and_takes_it_again_whole(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _beta = make_nodes()
    alpha.start()
    reached, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def submit() -> None:
        try:
            alpha.client.submit_document_stream(
                "manifest", "beta", _stalled(STREAM_BATCH * 3 + 2, reached, release),
                count=N, id=DOC)
        except BaseException as exc:  # what the killed daemon gave back
            failed.append(exc)

    sender = threading.Thread(target=submit, daemon=True)
    sender.start()
    assert reached.wait(60), "the stream never reached its fourth batch"
    # Give the daemon a moment to read and stage what was sent (the checks below hold
    # whenever the kill lands; the moment only makes it land with batches staged).
    time.sleep(1.0)
    assert alpha.client.documents() == []  # mid-stream: nothing of it is visible
    with db(alpha) as con:
        assert _counts(con) == (0, 0, 0, 0)
    alpha.kill()
    release.set()
    sender.join(30)
    assert failed, "a stream cut by the daemon's death must not be answered as committed"

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
    alpha.stop()
    store = Store(alpha.home.db_path)
    try:
        assert check_all(store.check_rows()) == []  # every row as signed, nothing left over
    finally:
        store.close()
