"""One peer's link as its delivery loop sees it: reachable or not and since when, the last
delivery the peer decided on, and the last trouble with its reason code (the peer down, a TLS
pin mismatch, the peer refusing us). Kept in memory: the trouble may be that nothing can be
written to the store. Shown per peer in health, ``/v1/peers``, ``bridge status`` and
``/metrics`` (README, "Seeing trouble")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.core import times
from bridge.engine.metrics import Metrics

# The reason codes of a try that went wrong (``Reaction.trouble``, bridge/engine/delivery.py):
# "unreachable" (no connection, or no answer in time), "tls_pin_mismatch" (the endpoint is not
# the one pinned: nothing was sent), "answer_too_large", "busy" (the peer's endpoint refused it
# over our rate, 429: no signed answer), and from the peer's signed answer
# "refused" (it refused our envelope), "rejected" (a signed rejection: it does not know our key,
# say; the detail names its reason), "failed" (no valid signed answer) and "unavailable" (its
# store cannot record now).


@dataclass(frozen=True)
class Trouble:
    at: int  # ms since the epoch
    reason: str
    detail: str


class LinkStatus:
    def __init__(self, peer: str, metrics: Metrics) -> None:
        self.peer = peer
        self.metrics = metrics
        self.reachable: bool | None = None
        self.since: int | None = None  # when ``reachable`` last changed
        self.last_success: int | None = None
        self.last_error: Trouble | None = None

    def tried(self, *, reachable: bool, trouble: str | None, detail: str, now: int) -> None:
        """One try's outcome: ``trouble`` is its reason code, None when the peer decided."""
        if reachable is not self.reachable:
            self.reachable, self.since = reachable, now
        if trouble is None:
            self.last_success = now
            self.metrics.set_gauge("peer_last_success_seconds", now // 1000, peer=self.peer)
        else:
            self.last_error = Trouble(at=now, reason=trouble, detail=detail)
            self.metrics.set_gauge("peer_last_error_seconds", now // 1000, peer=self.peer)
            self.metrics.inc("peer_errors", peer=self.peer, reason=trouble)
        self.metrics.set_gauge("peer_reachable", int(reachable), peer=self.peer)

    def view(self) -> dict[str, Any]:
        """As health and ``/v1/peers`` show it (times in the one format, RFC 3339 UTC)."""
        err = self.last_error
        return {"reachable": self.reachable, "since": times.format_optional(self.since),
                "last_success": times.format_optional(self.last_success),
                "last_error": None if err is None else {
                    "at": times.format_ms(err.at), "reason": err.reason,
                    "detail": err.detail}}


__all__ = ["LinkStatus", "Trouble"]
