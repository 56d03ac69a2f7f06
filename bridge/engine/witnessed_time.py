"""The clock that judges deadlines (PROTOCOL.md §13.9): our own, corrected by our skew against a
witness's time where a recent cosignature gives one.

Two parties whose clocks disagree would otherwise disagree on whether a deadline has passed
(one side a year ahead raised ``acknowledgement_overdue`` alone). Each side learns its skew
from its latest cosignature: our clock when we signed the checkpoint minus the witness's time
in its cosignature (the request's delay is in it: a bound to within seconds, which is what a
deadline needs). Both sides against one witness's time judge alike.

A reading older than ``MAX_AGE_MS`` by our clock (a log that has not been cosigned for that
long, or a clock set back since) says little of our clock now: then our own clock judges,
and everything that shows a verdict says which clock gave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.engine.context import Engine

MAX_AGE_MS = 7 * 86_400_000
OWN, WITNESSED = "own", "witnessed"


@dataclass(frozen=True, kw_only=True)
class JudgingClock:
    now: int  # milliseconds since the epoch, UTC
    witness: str | None = None  # whose time it is, when witnessed
    skew_ms: int | None = None  # our clock minus the witness's

    @property
    def source(self) -> str:
        return WITNESSED if self.witness is not None else OWN

    def to_json(self) -> dict[str, Any]:
        """For an event: which clock judged, and by how much ours was corrected."""
        if self.witness is None:
            return {"clock": OWN}
        assert self.skew_ms is not None
        return {"clock": WITNESSED, "witness": self.witness,
                "skew_seconds": round(self.skew_ms / 1000, 1)}


def judging_clock(e: Engine) -> JudgingClock:
    """Now, by the most recently cosigned witness's time if that reading is recent; by our
    own clock otherwise. Runs on the database thread."""
    own = e.now()
    best: tuple[int, str, int] | None = None
    for name in sorted(e.config.witnesses):
        reading = e.store.latest_clock_reading(name)
        if reading is None or abs(own - reading[0]) > MAX_AGE_MS:
            continue
        ours, theirs = reading
        if best is None or ours > best[0]:
            best = (ours, name, ours - theirs * 1000)
    if best is None:
        return JudgingClock(now=own)
    _, name, skew = best
    return JudgingClock(now=own - skew, witness=name, skew_ms=skew)


__all__ = ["MAX_AGE_MS", "OWN", "WITNESSED", "JudgingClock", "judging_clock"]
