"""A clock the test moves: wall time in milliseconds (what the engine signs and stores) and a
monotonic reading in seconds (what its rate gates measure), both from one number."""

from __future__ import annotations

from dataclasses import dataclass

# 2026-03-02T15:00:00.000Z: after the fixed test identities were made (2026-01-01), inside
# every window of PROTOCOL.md §3 "Ranges".
START_MS = 1_772_463_600_000


@dataclass
class FakeClock:
    now_ms: int = START_MS

    def __call__(self) -> int:
        return self.now_ms

    def monotonic(self) -> float:
        return self.now_ms / 1000

    def advance(self, *, ms: int = 0, seconds: float = 0, days: float = 0) -> int:
        self.now_ms += ms + int(seconds * 1000) + int(days * 86_400_000)
        return self.now_ms

    def set(self, ms: int) -> None:
        self.now_ms = ms
