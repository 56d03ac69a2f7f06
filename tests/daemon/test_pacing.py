"""The link under a peer's rate limit, and under its idle timer. Real daemons on 127.0.0.1.

A peer whose token bucket is far tighter than what we send answers 429 with a Retry-After: the
courier then holds every send to it until that has passed (one pause, not a backoff per
envelope that grows), and everything still arrives, once, in chain order, with no try counted
as failed and no warning per 429. A kept connection the peer closes as an envelope goes out on
it (its [limits] idle_seconds ran out) is no failed try either: the envelope goes again at once
on a new connection (an envelope POST is idempotent). No timing assertions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from bridge.daemon.pair import Node
from bridge.engine.metrics import Metrics
from bridge.engine.ports import Carried, Outgoing
from bridge.home.config import Delivery, Limits
from bridge.transports.http.courier import HttpCourier

from .conftest import FAST, EventLog, db, metric

# Far below what the sender offers: 20 envelopes at once against 2 saved up and 4 a second.
TIGHT = Limits(requests_per_second=4.0, burst=2)
IN_FLIGHT = 8
IDLE = 0.2  # seconds a kept connection may idle at the peer before it closes it


def _limit(node: Node, limits: Limits) -> None:
    node.home.write_config(dataclasses.replace(node.home.config(), limits=limits))


def test_a_flood_of_envelopes_over_a_tight_peer_rate_all_arrive_with_no_failed_try(
        make_nodes: Callable[..., tuple[Node, Node]],
        events: Callable[[Node], EventLog]) -> None:
    alpha, beta = make_nodes(delivery=dataclasses.replace(FAST, in_flight=IN_FLIGHT))
    _limit(beta, TIGHT)
    beta.start()
    alpha.start()
    alpha_events = events(alpha)
    ids = [f"M-PACE-{k:02d}" for k in range(20)]
    began = time.monotonic()
    for doc_id in ids:
        alpha.client.submit_document("manifest", "beta", [{"id": f"{doc_id}-1",
                                                           "kind": "person"}], id=doc_id)
    for doc_id in ids:
        alpha_events.wait("document_delivered", id=doc_id)
    pauses = time.monotonic() - began  # at most one pause (Retry-After: 1 s) a second
    busy = metric(alpha, "delivery_busy_total")
    assert busy > 0, "the peer's limit was never reached: the test would show nothing"
    assert metric(beta, "peer_rate_limited_total") >= busy
    assert metric(alpha, "delivery_failed_total") == 0
    # Nothing is sent while a pause runs, and the first 429 after it starts the next: at most
    # the envelopes in flight then are refused per pause, not one per envelope and backoff.
    assert busy <= IN_FLIGHT * (pauses + 1)
    assert alpha.stop() == 0 and beta.stop() == 0
    with db(beta) as con:
        assert [s for (s,) in con.execute("SELECT seq FROM inbox WHERE peer='alpha' "
                                          "ORDER BY seq")] == list(range(1, len(ids) + 1))
        assert con.execute("SELECT COUNT(*) FROM refusals WHERE reason != 'rate_limited'"
                           ).fetchone()[0] == 0
    # No warning on our side for any of it (the peer logs its refusals, once a second).
    warnings = [line for line in alpha.log_path.read_text(errors="replace").splitlines()
                if "WARNING" in line or "ERROR" in line]
    assert warnings == []


def test_a_kept_connection_the_peer_closed_as_we_sent_is_sent_again_at_once(
        make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    _alpha, beta = make_nodes(delivery=Delivery())
    _limit(beta, Limits(idle_seconds=IDLE))
    beta.start()
    metrics = Metrics()

    def envelope(seq: int) -> Outgoing:
        # Not an envelope beta can read: it answers each with its signed refusal all the same.
        return Outgoing(peer="beta", seq=seq, digest=bytes([seq]) * 32, data=b"not one %d" % seq)

    async def main() -> list[Carried]:
        courier = HttpCourier(url=beta.url, request_timeout=30, metrics=metrics)
        try:
            await courier.send([envelope(1)])
            first = await courier.receive()
            # The loop is held past the peer's idle timer: beta closes the kept connection, and
            # the courier has not seen it yet when it takes that connection for the next POST
            # (the closing and the sending cross, as they do on a busy loop).
            time.sleep(IDLE * 10)
            await courier.send([envelope(2)])
            second = await courier.receive()
            return [first.result, second.result]
        finally:
            await courier.close()

    assert asyncio.run(main()) == [Carried.ANSWERED, Carried.ANSWERED]
    assert metrics.count("delivery_resent_kept_closed") == 1
