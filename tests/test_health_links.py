"""The links' verdict in health (bridge/engine/health.py): a link is stuck only when something
has waited for the peer, and the peer has decided on nothing, for longer than its threshold; a
long transfer that keeps being answered, a peer carried by hand, and a blip shorter than the
threshold are not alarms. The real daemons' side is in tests/daemon/test_peer_down.py."""

from __future__ import annotations

from typing import Any

from bridge.core import times
from bridge.engine.health import link_stuck, links_verdict, stuck_after
from bridge.home.config import Delivery

NOW = 1_767_225_600_000
AFTER = 60.0


def peer(*, queued: int = 3, age: int | None = 120, success_ago: float | None = None,
         reachable: bool | None = False, error: str | None = "unreachable") -> dict[str, Any]:
    return {"queued": queued, "oldest_queued_age_seconds": age, "reachable": reachable,
            "last_success": None if success_ago is None
            else times.format_ms(NOW - int(success_ago * 1000)),
            "last_error": None if error is None else {"reason": error}}


def test_threshold_is_two_rounds_of_the_longest_backoff_and_a_timed_out_request() -> None:
    assert stuck_after(Delivery(max_backoff=30.0, request_timeout=30.0)) == 120.0


def test_a_peer_down_longer_than_the_threshold_with_something_waiting_is_stuck() -> None:
    assert link_stuck(peer(), now=NOW, after=AFTER)
    assert link_stuck(peer(success_ago=61), now=NOW, after=AFTER)


def test_a_peer_refusing_everything_is_stuck_although_reachable() -> None:
    assert link_stuck(peer(reachable=True, error="refused", success_ago=600), now=NOW,
                      after=AFTER)


def test_a_blip_shorter_than_the_threshold_is_not_stuck() -> None:
    assert not link_stuck(peer(age=59), now=NOW, after=AFTER)


def test_a_long_transfer_the_peer_keeps_answering_is_not_stuck() -> None:
    assert not link_stuck(peer(age=3600, reachable=True, error=None, success_ago=1),
                          now=NOW, after=AFTER)


def test_nothing_waiting_is_never_stuck_whatever_the_link_saw() -> None:
    assert not link_stuck(peer(queued=0, age=None), now=NOW, after=AFTER)


def test_a_peer_carried_by_hand_is_never_stuck() -> None:
    carried = peer(reachable=None, error=None, age=86_400)
    assert not link_stuck(carried, now=NOW, after=AFTER)


def test_the_verdict_names_the_stuck_peers_and_marks_each_entry() -> None:
    peers = {"beta": peer(), "gamma": peer(age=5), "delta": peer(queued=0, age=None)}
    assert links_verdict(peers, now=NOW, after=AFTER) == {
        "status": "degraded", "stuck": ["beta"], "stuck_after_seconds": AFTER}
    assert [p["stuck"] for p in peers.values()] == [True, False, False]
    assert links_verdict({"gamma": peer(age=5)}, now=NOW, after=AFTER)["status"] == "ok"
