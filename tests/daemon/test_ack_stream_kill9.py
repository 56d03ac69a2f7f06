"""A streamed listed acknowledgement whose daemon is killed (SIGKILL) mid-stream: while the
stream runs none of it is visible; after the restart nothing of it is in the store (no
acknowledgement, entry, status, envelope or audit record of it) and the store check is clean;
the same statements, streamed again whole, are committed, delivered and counted by the peer as
if the first stream had never been."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from bridge.daemon.pair import Node
from bridge.local.stream import STREAM_BATCH

from .conftest import db, wait_for
from .midstream import kill_mid_stream, stop_and_check_store

DOC = "M-ACK-K9"
N = STREAM_BATCH * 2 + 5  # two whole batches staged before the kill, a third half read


def _counts(con: sqlite3.Connection) -> list[int]:
    """Documents, acknowledgement entries, items with a status, document chunks in the
    outbox and acknowledgements in the audit log, of a store (a restart audits itself)."""
    return [con.execute(sql).fetchone()[0] for sql in (
        "SELECT COUNT(*) FROM documents", "SELECT COUNT(*) FROM ack_entries",
        "SELECT COUNT(*) FROM items WHERE status IS NOT NULL",
        "SELECT COUNT(*) FROM outbox WHERE kind = 'chunk'",
        "SELECT COUNT(*) FROM audit WHERE kind = 'ack'")]


def _statement(k: int) -> dict[str, Any]:
    if k % 3 == 0:
        return {"id": f"{DOC}-{k}", "status": "DISPUTED", "reason": "tag differs",
                "evidence": f"sheet {k}"}
    return {"id": f"{DOC}-{k}", "status": "NOT_RECEIVED" if k % 3 == 1 else "RECEIVED"}


def test_a_daemon_killed_mid_ack_stream_leaves_nothing_of_it_and_takes_it_again_whole(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes(suites=(1, 1))
    alpha.start()
    beta.start()
    beta.client.submit_document("manifest", "alpha", [
        {"id": f"{DOC}-{k}", "kind": "person"} for k in range(N)], id=DOC)
    wait_for(lambda: any(d["id"] == DOC and d["state"] == "received"
                         for d in alpha.client.documents(direction="in")),
             what=f"{DOC} received at alpha")
    with db(alpha) as con:
        before = _counts(con)

    def mid_stream() -> None:
        assert alpha.client.document(DOC)["items"]["acknowledged"] == 0  # nothing visible
        with db(alpha) as con:
            assert _counts(con) == before

    kill_mid_stream(alpha, lambda items: alpha.client.acknowledge_stream(DOC, items),
                    map(_statement, range(N)), STREAM_BATCH * 2 + 2, while_stalled=mid_stream)

    alpha.start()
    assert alpha.client.document(DOC)["items"]["acknowledged"] == 0
    with db(alpha) as con:
        assert _counts(con) == before

    done = alpha.client.acknowledge_stream(DOC, (_statement(k) for k in range(N)))
    assert done["items"] == N and done["changed"] == {"unacknowledged": N}
    wait_for(lambda: beta.client.document(DOC)["items"]["acknowledged"] == N,
             what=f"{DOC} acknowledged at beta")
    got = {i["id"]: (i["status"], i["reason"]) for i in beta.client.iter_items(DOC)}
    assert got == {s["id"]: (s["status"], s.get("reason")) for s in map(_statement, range(N))}
    stop_and_check_store(alpha)
