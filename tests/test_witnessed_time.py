"""The clock that judges deadlines (bridge/engine/witnessed_time.py, PROTOCOL.md §13.9): our own
clock corrected by the latest witness reading, and our own clock alone, said so, when there
is no reading or the reading is too old to say anything of our clock now."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bridge.engine.witnessed_time import MAX_AGE_MS, judging_clock

NOW = 2_000_000_000_000  # our clock, ms
AHEAD = 365 * 86_400_000  # ... a year ahead of the witness's


def _engine(readings: dict[str, tuple[int, int] | None]) -> Any:
    return SimpleNamespace(now=lambda: NOW, config=SimpleNamespace(witnesses=readings),
                           store=SimpleNamespace(latest_clock_reading=readings.get))


def test_a_recent_reading_corrects_a_clock_a_year_ahead() -> None:
    signed = NOW - 60_000  # we signed a checkpoint a minute ago, by our clock
    clock = judging_clock(_engine({"mediator": (signed, (signed - AHEAD) // 1000)}))
    assert clock.now == NOW - AHEAD and clock.source == "witnessed"
    assert clock.to_json() == {"clock": "witnessed", "witness": "mediator",
                               "skew_seconds": AHEAD / 1000}


def test_no_witness_or_no_cosignature_is_our_own_clock_said_so() -> None:
    for readings in ({}, {"mediator": None}):
        clock = judging_clock(_engine(readings))
        assert clock.now == NOW and clock.to_json() == {"clock": "own"}


def test_a_stale_reading_or_one_from_our_future_is_not_used() -> None:
    for signed in (NOW - MAX_AGE_MS - 1, NOW + MAX_AGE_MS + 1):  # a clock set back since
        clock = judging_clock(_engine({"mediator": (signed, (signed - AHEAD) // 1000)}))
        assert clock.now == NOW and clock.source == "own"


def test_of_two_witnesses_the_latest_reading_judges() -> None:
    clock = judging_clock(_engine({"a": (NOW - 5_000, (NOW - 5_000) // 1000 - 10),
                                   "b": (NOW - 1_000, (NOW - 1_000) // 1000 - 20)}))
    assert clock.witness == "b" and clock.skew_ms == 20_000
