"""A large msgpack stream checked by processes beside the daemon (``bridge.daemon.checkers``,
``bridge.local.stream_beside``), on real daemons: committed whole, delivered (its chunks
prepared beside the receiving daemon, ``bridge.transports.ahead``), acknowledged item by item
(the acknowledgement's chunks prepared beside the sender) and receipted like any other; a bad
item or a repeated id far down refuses all of it, naming the item; and a daemon killed
mid-stream (SIGKILL) leaves none of its processes running and nothing of the stream in its
store."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.client import ApiError
from bridge.daemon.checker_process import PARENT_POLL_SECONDS
from bridge.daemon.checkers import MIN_ITEMS
from bridge.daemon.pair import Node
from bridge.local.stream import STREAM_BATCH

from .conftest import db, metric, person, wait_for
from .midstream import kill_mid_stream, stop_and_check_store

N = MIN_ITEMS + STREAM_BATCH + 7  # checked beside: five whole batches and a short one
STARTED = "processes to check large streamed submissions beside the daemon"


def _items(n: int = N, change: dict[int, dict[str, Any]] | None = None
           ) -> Iterator[dict[str, Any]]:
    for k in range(n):
        yield (change or {}).get(k) or person(k) | {"kind": "person"}


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _delivered_and_acknowledged_prepared_beside(alpha: Node, beta: Node, doc_id: str,
                                                prepared_before: int) -> None:
    """``doc_id`` (N items) reaches beta, its two whole chunks (5,000 items each) decoded and
    checked beside beta, and every item's acknowledgement reaches alpha, prepared beside it."""
    wait_for(lambda: any(d["id"] == doc_id and d["state"] == "received"
                         for d in beta.client.documents(direction="in")),
             what="the manifest at beta", timeout=120)
    assert metric(beta, "chunks_prepared_beside_total") >= prepared_before + 2
    beta.client.acknowledge(doc_id, all="RECEIVED")
    wait_for(lambda: alpha.client.document(doc_id)["state"] == "acknowledged",
             what="every item acknowledged at alpha", timeout=120)
    assert metric(alpha, "chunks_prepared_beside_total") >= 2  # the acknowledgement's
    assert alpha.client.document(doc_id)["items"]["acknowledged"] == N


def test_a_stream_checked_beside_is_committed_delivered_acknowledged_and_receipted(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, beta = make_nodes(suites=(1, 1))
    alpha.start()
    beta.start()
    # The first large stream starts the processes; its batches are checked in the daemon
    # until they are up (a stream never waits for them).
    alpha.client.submit_document_stream("manifest", "beta", _items(), count=N, id="M-FIRST")
    assert STARTED in alpha.log_path.read_text()
    wait_for(lambda: metric(alpha, "check_processes_ready") == 2, what="both processes up")
    # At beta, the first large chunk received starts them, to prepare chunks ahead of
    # their turn (bridge/transports/ahead.py).
    wait_for(lambda: metric(beta, "check_processes_ready") == 2, what="beta's processes up",
             timeout=120)
    prepared_before = metric(beta, "chunks_prepared_beside_total")
    done = alpha.client.submit_document_stream("manifest", "beta", _items(), count=N,
                                               id="M-BESIDE", meta={"batch": 7})
    assert done["items"] == N
    assert metric(alpha, "stream_batches_beside_total") >= N // STREAM_BATCH  # checked beside
    _delivered_and_acknowledged_prepared_beside(alpha, beta, "M-BESIDE", prepared_before)
    last = f"P-{N - 1:05d}"
    path = tmp_path / "last.receipt"
    path.write_bytes(alpha.client.receipt("M-BESIDE", item=last))
    keys = [a for n in (alpha, beta) for a in ("--keys", str(n.home.public_key_path(n.party)))]
    verified = subprocess.run([sys.executable, "-m", "bridge", "verify", str(path), *keys],
                              capture_output=True, text=True, timeout=120, check=False)
    assert verified.returncode == 0 and last in verified.stdout, verified.stdout
    stop_and_check_store(alpha)


@pytest.mark.parametrize(("change", "field"), [
    ({N - 1: {"id": "P-last", "weight": 1.5}}, f"items[{N - 1}]"),  # no float is signed
    ({N - 3: person(5) | {"kind": "person"}}, f"items[{N - 3}].id"),  # item 5's id again
])
def test_a_bad_item_far_down_a_stream_checked_beside_refuses_all_of_it_naming_it(
        make_nodes: Callable[..., tuple[Node, Node]], change: dict[int, dict[str, Any]],
        field: str) -> None:
    alpha, _ = make_nodes(suites=(1, 1))
    alpha.start()
    with pytest.raises(ApiError) as err:
        alpha.client.submit_document_stream("manifest", "beta", _items(change=change),
                                            count=N, id="M-BAD")
    assert err.value.status == 400 and (err.value.field or "").startswith(field), err.value
    assert alpha.client.documents() == []
    alpha.stop()
    with db(alpha) as con:
        assert con.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0


def test_a_daemon_killed_while_processes_check_its_stream_leaves_none_of_them_running(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _ = make_nodes(suites=(1, 1))
    alpha.start()
    seen: list[int] = []

    def mid_stream() -> None:
        seen.extend(alpha.helpers())
        assert seen, "no process checks the stream beside the daemon"
        assert alpha.client.documents() == []

    kill_mid_stream(alpha, lambda items: alpha.client.submit_document_stream(
        "manifest", "beta", items, count=N, id="M-K9"), _items(), N - STREAM_BATCH,
        while_stalled=mid_stream)
    deadline = time.monotonic() + 20 * PARENT_POLL_SECONDS
    while any(map(_running, seen)):
        assert time.monotonic() < deadline, "a checking process outlived its daemon"
        time.sleep(0.1)
    alpha.start()
    assert alpha.client.documents() == []
    stop_and_check_store(alpha)


def test_through_the_relay_a_large_stream_s_chunks_are_prepared_beside_the_receiver(
        relay_pair: Callable[..., tuple[Any, Node, Node]]) -> None:
    _, alpha, beta = relay_pair()
    alpha.start()
    beta.start()
    for node in (alpha, beta):
        wait_for(lambda n=node: n.client.health()["relay"]["state"] == "connected",
                 what="the relay connected")
    alpha.client.submit_document_stream("manifest", "beta", _items(), count=N, id="M-FIRST")
    wait_for(lambda: metric(beta, "check_processes_ready") == 2, what="beta's processes up",
             timeout=120)
    prepared_before = metric(beta, "chunks_prepared_beside_total")
    alpha.client.submit_document_stream("manifest", "beta", _items(), count=N, id="M-RELAY")
    # The consumer prepares the large envelopes it pulls beside the daemon
    # (bridge/transports/relay/consumer.py), as the HTTP endpoint does.
    _delivered_and_acknowledged_prepared_beside(alpha, beta, "M-RELAY", prepared_before)
