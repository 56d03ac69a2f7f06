"""Deadlines judged against witnessed time (PROTOCOL.md §13.9), with two real daemons and a real
witness: beta's clock is a year ahead (its daemon started by the tests' launcher), so
by its own clock every deadline of the next year has passed; each side learns its skew from the
witness's cosignatures, and both give the same verdict on the same deadlines, saying which
clock judged. Alpha is the production daemon with the old test variable in its environment:
its clock stays the system's.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bridge.core.times import format_ms
from bridge.daemon.pair import Node
from bridge.witness.process import pin_to, start_witness

from .conftest import EventLog, person, wait_for
from .launcher import command

YEAR = 365 * 86400


def _caught_up(node: Node) -> bool:
    seen = (node.client.health().get("witnesses") or {}).get("mediator") or {}
    return seen.get("cosigned_size") is not None and seen["cosigned_size"] == seen["log_size"]


def _received(node: Node, doc_id: str) -> bool:
    return any(d["id"] == doc_id for d in node.client.documents(direction="in"))


def test_a_clock_a_year_ahead_gives_the_same_overdue_verdict_as_its_peer(  # type: ignore[no-untyped-def]
        tmp_path: Path, make_nodes: Callable[..., tuple[Node, Node]], events) -> None:
    alpha, beta = make_nodes()
    beta.command = command(beta.home.path, clock_offset=YEAR)
    # The variable that once moved a daemon's clock: read by no production code now.
    alpha.env["BRIDGE_TEST_CLOCK_OFFSET_SECONDS"] = str(YEAR)
    w = start_witness(tmp_path / "mediator", origins=[
        alpha.home.public_key_path("alpha"), beta.home.public_key_path("beta")])
    try:
        for node in (alpha, beta):
            pin_to(node.home, w, interval_seconds=0.2)
        alpha.start()
        beta.start()
        logs: dict[str, EventLog] = {n.party: events(n) for n in (alpha, beta)}
        alpha.client.submit_document("manifest", "beta", [person(1)], id="M-WARM")
        wait_for(lambda: _received(beta, "M-WARM"), what="beta received the first manifest")
        for node in (alpha, beta):
            wait_for(lambda n=node: _caught_up(n), what=f"{node.party} witnessed")
        skew = beta.client.health()["witnesses"]["mediator"]["skew_seconds"]
        assert YEAR - 60 < skew < YEAR + 60  # beta learnt how far ahead it is
        own = alpha.client.health()["witnesses"]["mediator"]["skew_seconds"]
        assert -60 < own < 60  # the environment did not move the production daemon's clock
        now = int(time.time() * 1000)
        later, earlier = format_ms(now + 3_600_000), format_ms(now - 60_000)
        alpha.client.submit_document("manifest", "beta", [person(2), person(3)], id="M-LATER",
                                     meta={"ack_deadline": later})
        alpha.client.submit_document("manifest", "beta", [person(4)], id="M-EARLIER",
                                     meta={"ack_deadline": earlier})
        wait_for(lambda: _received(beta, "M-EARLIER"), what="beta received both manifests")
        # The deadline that has passed is overdue on both sides, judged by witnessed time...
        for party, direction in (("alpha", "out"), ("beta", "in")):
            ev = logs[party].wait("acknowledgement_overdue", id="M-EARLIER")
            assert ev.data["clock"] == "witnessed" and ev.data["witness"] == "mediator"
            node = alpha if party == "alpha" else beta
            doc = node.client.document("M-EARLIER", direction=direction)
            assert doc["items"]["overdue"] == 1 and doc["deadline_clock"] == "witnessed"
        # ...and the one an hour away is overdue on neither, although beta's own clock is a
        # year past it: the same check that raised M-EARLIER's event did not raise this one.
        for node, direction in ((alpha, "out"), (beta, "in")):
            doc = node.client.document("M-LATER", direction=direction)
            assert doc["items"]["overdue"] == 0 and doc["deadline_clock"] == "witnessed", doc
            page = node.client.items("M-LATER", direction=direction)["items"]
            assert [i["overdue"] for i in page] == [False, False]
        shown = subprocess.run([sys.executable, "-m", "bridge", "--home", str(beta.home.path),
                                "status", "M-LATER"], capture_output=True, text=True,
                               timeout=60, check=False).stdout
        assert "(not passed by witnessed time)" in shown, shown
        for log in logs.values():
            assert [e.data["id"] for e in log.of_type("acknowledgement_overdue")] == \
                ["M-EARLIER"]
    finally:
        w.kill()
