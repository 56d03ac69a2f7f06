"""kill -9 at awkward moments: nothing lost, nothing twice.

One 5,120-item manifest from alpha to beta in 40 envelopes, acknowledged by beta in four
documents of 1,280 items (10 envelopes each). On the way, each daemon is killed (SIGKILL, no
chance to clean up) and restarted:

- alpha right after its 202 (the outbox is committed, delivery has barely begun);
- alpha while one of its POSTs is in flight: beta is frozen (SIGSTOP) so that the request is
  surely on the wire, alpha is killed, then beta resumes and may commit an envelope whose
  receipt alpha never sees (on restart alpha sends it again and must get the same receipt);
- beta in the middle of receiving the chunks;
- beta with acknowledgement envelopes in flight (alpha frozen as above), and again while alpha
  is applying the acknowledgements; alpha too, while applying them.

Then both daemons are stopped and their SQLite files are read: every sequence number once and
in order on both sides, what one side sent is byte for byte what the other accepted (with the
same receipt), every item acknowledged exactly once per acknowledgement document.

A kill that relies on polling may come a little early or late on a slow machine; the checks at
the end hold whatever the moment was, and the frozen-peer kills happen mid-flight every time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

from bridge.client import ApiError, DaemonUnavailable
from bridge.daemon.pair import Node
from bridge.home.config import Delivery

from .conftest import FAST, db, metric, person, wait_for

# What the kills need is many envelopes in flight each way (a kill lands between two of them,
# or inside one), not many items in each: 40 envelopes for the manifest and 10 per
# acknowledgement, as with 20,000 items in chunks of 512, at a quarter of the work (the large
# N is bench/'s). Chunks hold a power of two of entries (bridge/core/chunks.py).
N_ITEMS = 5_120
CHUNK = 128
BATCH = 1_280
N_CHUNKS = -(-N_ITEMS // CHUNK)
N_ACK_CHUNKS = -(-BATCH // CHUNK)
# Batch k of the acknowledgement: (status, reason).
BATCH_STATUS = [("RECEIVED", None), ("PENDING_IDENTIFICATION", None), ("RECEIVED", None),
                ("DISPUTED", "count differs from the declared count")]
DOC = "M-K9-1"


def received(beta: Node) -> int:
    """How many entries of DOC beta has stored so far (0 before the first chunk)."""
    try:
        doc = beta.client.document(DOC)
    except ApiError as exc:
        if exc.code == "not_found":
            return 0
        raise
    return int(doc["items"]["total"] if doc["state"] != "receiving"
               else doc["items"]["by_status"].get("unacknowledged", 0))


def acknowledged(alpha: Node) -> int:
    return int(alpha.client.document(DOC)["items"]["acknowledged"])


def first_pending(node: Node) -> tuple[int, int] | None:
    """(seq, attempts) of the node's first pending envelope. Its delivery loop counts an
    attempt, durably, just before it POSTs."""
    con = sqlite3.connect(f"file:{node.home.db_path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT seq, attempts FROM outbox WHERE state='pending' "
                          "ORDER BY seq LIMIT 1").fetchone()
    finally:
        con.close()
    return None if row is None else (int(row[0]), int(row[1]))


def wait_post_in_flight(node: Node, before: tuple[int, int] | None) -> None:
    """Wait until the node has started a new POST since ``before``, then a moment more for its
    bytes to reach the (frozen) peer's socket buffer."""
    wait_for(lambda: (now := first_pending(node)) is not None and now != before
             and now[1] >= 1, what=f"{node.party}: a POST in flight")
    time.sleep(0.3)


@contextlib.contextmanager
def frozen(node: Node) -> Iterator[None]:
    """SIGSTOP the node's daemon (it accepts connections in the kernel, answers nothing)."""
    assert node.proc is not None
    pid = node.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def kill_when(node: Node, probe: Callable[[], int], *, above: int, below: int,
              timeout: float = 60.0) -> int:
    """Poll ``probe`` fast and SIGKILL ``node`` as soon as it reads more than ``above``; if it
    is already at ``below`` or more, kill anyway (late, but harmless). Returns the reading."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except DaemonUnavailable:
            value = above
        if value > above or value >= below:
            node.kill()
            return value
        time.sleep(0.005)
    node.kill()
    return -1


def rows(con: sqlite3.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, args).fetchall()


def test_kill9_anywhere_loses_nothing_and_doubles_nothing(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, beta = make_nodes(delivery=Delivery(
        chunk_items=CHUNK, initial_backoff=FAST.initial_backoff, max_backoff=FAST.max_backoff))
    alpha.start()
    beta.start()
    sent = [person(n) for n in range(N_ITEMS)]
    ids = [p["id"] for p in sent]

    # -- alpha killed right after the 202: the whole document must already be on disk
    answer = alpha.client.submit_document("manifest", "beta", sent, id=DOC)
    alpha.kill()
    assert answer["items"] == N_ITEMS

    # -- alpha killed with a POST in flight: beta frozen, so the request waits on the wire
    with frozen(beta):
        before = first_pending(alpha)
        alpha.start()
        assert alpha.client.document(DOC)["items"]["total"] == N_ITEMS
        wait_post_in_flight(alpha, before)
        alpha.kill()
    # Beta resumes and may commit that envelope; alpha never saw the receipt.
    wait_for(lambda: beta.client.health()["status"] == "ok", what="beta resumes")
    seen_by_beta = received(beta)
    assert seen_by_beta < N_ITEMS

    # -- beta killed in the middle of receiving
    alpha.start()
    at_kill = kill_when(beta, lambda: received(beta), above=seen_by_beta, below=N_ITEMS)
    assert at_kill != -1, "delivery did not resume"
    beta.start()
    wait_for(lambda: received(beta) == N_ITEMS, what="beta: all 5,120 items received")
    wait_for(lambda: alpha.client.document(DOC)["state"] == "delivered", what="alpha: delivered")
    assert beta.client.document(DOC)["state"] == "received"

    # -- acknowledgements in four documents; beta killed with some of them in flight
    ack_ids = []
    with frozen(alpha):
        for k in range(2):
            status, reason = BATCH_STATUS[k]
            items = [{"id": i, "status": status, "reason": reason}
                     for i in ids[k * BATCH:(k + 1) * BATCH]]
            ack_ids.append(beta.client.acknowledge(DOC, items=items)["ack_id"])
        wait_post_in_flight(beta, None)
        beta.kill()
    beta.start()
    # The acknowledgements still to come, then beta and alpha killed while they are applied.
    for k in range(2, 4):
        status, reason = BATCH_STATUS[k]
        items = [{"id": i, "status": status, "reason": reason}
                 for i in ids[k * BATCH:(k + 1) * BATCH]]
        ack_ids.append(beta.client.acknowledge(DOC, items=items)["ack_id"])
    assert beta.client.document(DOC)["state"] == "acknowledged"
    start = acknowledged(alpha)
    kill_when(beta, lambda: acknowledged(alpha), above=start, below=N_ITEMS)
    beta.start()
    kill_when(alpha, lambda: acknowledged(alpha), above=acknowledged(alpha), below=N_ITEMS)
    alpha.start()

    # -- everything arrives, once
    wait_for(lambda: acknowledged(alpha) == N_ITEMS, what="alpha: all items acknowledged")
    wait_for(lambda: alpha.client.document(DOC)["state"] == "acknowledged",
             what="alpha: document acknowledged")
    wait_for(lambda: metric(alpha, "queue_depth") + metric(beta, "queue_depth") == 0,
             what="both outboxes empty")
    doc = alpha.client.document(DOC)
    assert [a["id"] for a in doc["acks"]] == ack_ids
    assert doc["items"]["by_status"] == {"RECEIVED": 2 * BATCH, "PENDING_IDENTIFICATION": BATCH,
                                         "DISPUTED": BATCH}
    for n in (0, BATCH + 7, 3 * BATCH + 11, N_ITEMS - 1):
        item = alpha.client.item(DOC, ids[n])
        assert [(h["status"], h["ack_id"]) for h in item["history"]] == [
            (BATCH_STATUS[n // BATCH][0], ack_ids[n // BATCH])]
    assert alpha.stop() == 0
    assert beta.stop() == 0

    check_stores(alpha, beta, ids, ack_ids)


def check_stores(alpha: Node, beta: Node, ids: list[str], ack_ids: list[str]) -> None:
    expected_status = {i: BATCH_STATUS[n // BATCH] for n, i in enumerate(ids)}
    with db(alpha) as a, db(beta) as b:
        for con in (a, b):
            assert rows(con, "SELECT reason, detail FROM refusals") == []
            assert rows(con, "PRAGMA integrity_check") == [("ok",)]
            assert rows(con, "SELECT COUNT(*) FROM outbox WHERE state != 'delivered'") == [(0,)]
            # The POSTs cut off by a kill were sent again (and those were taken as duplicates,
            # as the receipts compared below show).
            assert rows(con, "SELECT COUNT(*) > 0 FROM outbox WHERE attempts > 1") == [(1,)]

        # Documents: one manifest each way round, four acknowledgements, nothing else.
        assert rows(a, "SELECT id, direction, type, state, count FROM documents "
                       "WHERE type != 'ack'") == [(DOC, "out", "manifest", "acknowledged",
                                                   N_ITEMS)]
        assert rows(b, "SELECT id, direction, type, state, count, stored FROM documents "
                       "WHERE type != 'ack'") == [(DOC, "in", "manifest", "acknowledged",
                                                   N_ITEMS, N_ITEMS)]
        assert rows(a, "SELECT id, direction, state, count, stored FROM documents "
                       "WHERE type = 'ack' ORDER BY rowid") == [
            (i, "in", "received", BATCH, BATCH) for i in ack_ids]
        assert rows(b, "SELECT id, direction, count FROM documents WHERE type = 'ack' "
                       "ORDER BY rowid") == [(i, "out", BATCH) for i in ack_ids]

        # Links: sequence numbers 1..N once each, and what was sent is what was accepted,
        # with the very receipt the receiver stored (a resend got the original back).
        for sender, receiver, n_envelopes in ((a, b, N_CHUNKS), (b, a, 4 * N_ACK_CHUNKS)):
            sent = rows(sender, "SELECT seq, digest, receipt FROM outbox ORDER BY seq")
            got = rows(receiver, "SELECT seq, digest, receipt FROM inbox ORDER BY seq")
            assert [r[0] for r in sent] == list(range(1, n_envelopes + 1))
            assert got == sent
            assert rows(receiver, "SELECT DISTINCT result FROM inbox") == [("accepted",)]

        # Items: 5,120 on each side, each once, with its last status.
        for con in (a, b):
            items = rows(con, "SELECT item_id, status, reason FROM items ORDER BY idx")
            assert [r[0] for r in items] == ids
            assert {r[0]: (r[1], r[2]) for r in items} == expected_status
        assert rows(a, "SELECT DISTINCT transport FROM items") == [("delivered",)]

        # Acknowledgement history: per item, exactly one entry, in the right acknowledgement.
        for con in (a, b):
            assert rows(con, "SELECT COUNT(*), COUNT(DISTINCT item_id) FROM ack_entries") == [
                (N_ITEMS, N_ITEMS)]
            assert rows(con, "SELECT ack, item_id FROM ack_entries GROUP BY ack, item_id "
                             "HAVING COUNT(*) > 1") == []
            history = rows(con, "SELECT d.id, e.item_id, e.status FROM ack_entries e "
                                "JOIN documents d ON d.rowid = e.ack ORDER BY d.rowid, e.idx")
            assert history == [(ack_ids[n // BATCH], i, BATCH_STATUS[n // BATCH][0])
                               for n, i in enumerate(ids)]
            assert rows(con, "SELECT COUNT(*) FROM ack_entries WHERE item_idx IS NULL") == [(0,)]

        # Events: received once, acknowledged once, whatever was retried.
        assert rows(b, "SELECT COUNT(*) FROM events WHERE type='document_received'") == [(1,)]
        assert rows(a, "SELECT COUNT(*) FROM events WHERE type='document_acknowledged'") == [
            (1,)]
        assert rows(a, "SELECT COUNT(*) FROM events WHERE type='document_delivered' "
                       "AND data LIKE ?", f'%"{DOC}"%') == [(1,)]
