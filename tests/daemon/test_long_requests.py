"""A request whose work outlasts the client's timeout: the timeout bounds silence, not the
work. A real daemon whose acknowledgements wait, where their work runs, until the test lets
them go (the tests' launcher: a slow operation on a loaded host, made deterministic).

A client that asks for it (``Prefer: processing=SECONDS``, as ``BridgeClient`` does) is sent
``102 Processing`` while the work goes on and gets the answer at the end; one that does not
ask hears nothing, gives up after its timeout and reports a failure for work the daemon then
does anyway (bridge/local/processing.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.client import BridgeClient
from bridge.client_wire import UnixHTTPConnection
from bridge.daemon.pair import Node

from .conftest import FAST, person, wait_for
from .launcher import command

SILENCE = 2.0  # seconds a client waits for a byte


def _received(node: Node, doc_id: str) -> bool:
    docs = node.client.documents(direction="in")
    return any(d["id"] == doc_id and d["state"] == "received" for d in docs)


def _silent_client_gives_up(node: Node, doc_id: str) -> None:
    """An acknowledgement of all items by a client that does not ask for 102 Processing:
    nothing comes within its timeout (the work is held), and it gives up."""
    conn = UnixHTTPConnection(str(node.home.socket_path), timeout=SILENCE)
    try:
        conn.request("POST", f"/v1/documents/{doc_id}/acks", body=json.dumps(
            {"all": "RECEIVED"}).encode(), headers={"Content-Type": "application/json"})
        with pytest.raises(TimeoutError):
            conn.getresponse()
    finally:
        conn.close()


def test_ack_all_outlasting_the_client_timeout_is_answered_not_given_up(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, beta = make_nodes(delivery=FAST)
    go = tmp_path / "go"
    beta.command = command(beta.home.path, hold_acks=go)
    alpha.start()
    beta.start()
    for doc in ("M-LONG-1", "M-LONG-2"):
        alpha.client.submit_document("manifest", "beta", [person(n) for n in range(20)], id=doc)
    wait_for(lambda: _received(beta, "M-LONG-1") and _received(beta, "M-LONG-2"),
             what="beta: both manifests")

    patient = BridgeClient(beta.home.socket_path, timeout=SILENCE)
    got: dict[str, Any] = {}

    def acknowledge() -> None:
        try:
            got["answer"] = patient.acknowledge("M-LONG-2", all="RECEIVED")
        except Exception as exc:  # what the client raised, asserted below
            got["error"] = exc
    waiting = threading.Thread(target=acknowledge)
    waiting.start()
    try:
        # Two clients that did not ask each wait out their timeout meanwhile: twice the
        # silence the patient client allows has passed, and it still waits.
        _silent_client_gives_up(beta, "M-LONG-1")
        _silent_client_gives_up(beta, "M-LONG-1")
        assert waiting.is_alive() and not got, got
    finally:
        go.touch()
        waiting.join(timeout=60)
    assert "error" not in got, got
    assert got["answer"]["items"] == 20 and got["answer"]["ack_id"]
    assert got["answer"]["changed"] == {"unacknowledged": 20}
    # What the first silent client gave up on, the daemon did all the same (its retry, the
    # second, changed nothing): the failure it reported was no failure.
    wait_for(lambda: beta.client.document("M-LONG-1")["items"]["acknowledged"] == 20,
             what="beta: M-LONG-1 acknowledged")
    assert len(beta.client.document("M-LONG-1")["acks"]) == 1
