"""kill -9 in the middle of group commit: every answered submission is on disk.

Twelve clients submit small manifests to one real daemon at once, so its database thread runs
them in groups with one commit each (bridge/daemon/dbthread.py). The daemon is killed
(SIGKILL) while submissions are still coming, then restarted on the same store: every
submission that was answered 202 before the kill is there, whole (its item and its queued
envelope), and nothing answered was lost with the group it was in. The peer is not running:
nothing leaves, only the store's own durability is tried.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from bridge.client import ApiError, DaemonUnavailable
from bridge.daemon.pair import Node

from .conftest import db, metric, wait_for

CLIENTS = 12
ANSWERED_BEFORE_KILL = 60


def submit_until_gone(node: Node, name: str, answered: list[str], lock: threading.Lock,
                      stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        doc_id = f"G-{name}-{n:04d}"
        n += 1
        try:
            node.client.submit_document("manifest", "beta", [{"id": "P-1", "kind": "person"}],
                                        id=doc_id)
        except (ApiError, DaemonUnavailable, OSError):
            return  # killed under us: this one was never answered
        with lock:
            answered.append(doc_id)


def test_kill9_during_group_commits_loses_no_answered_submission(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _beta = make_nodes()
    alpha.start()
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    clients = [threading.Thread(target=submit_until_gone, args=(alpha, f"c{k}", answered, lock,
                                                                 stop)) for k in range(CLIENTS)]
    for t in clients:
        t.start()
    try:
        wait_for(lambda: len(answered) >= ANSWERED_BEFORE_KILL, what="submissions answered")
        grouped = metric(alpha, "store_grouped_operations_total")
        groups = metric(alpha, "store_groups_total")
        alpha.kill()  # clients are still submitting: a group is likely mid-way
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=60)
    with lock:
        kept = list(answered)
    # Groups did form: more operations committed than commits made.
    assert grouped > groups > 0, (grouped, groups)
    alpha.start()
    try:
        for doc_id in kept:
            doc = alpha.client.document(doc_id, direction="out")
            assert doc["items"]["total"] == 1, doc
    finally:
        alpha.stop()
    with db(alpha) as conn:
        queued = {d for (d,) in conn.execute(
            "SELECT d.id FROM outbox o JOIN documents d ON d.rowid = o.doc "
            "WHERE d.direction = 'out'")}
    assert set(kept) <= queued  # each one's envelope committed with it
