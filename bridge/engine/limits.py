"""Bounds on what a hostile peer can make a bridge do: the pure parts (no I/O, no clock of its
own): a token bucket per sender, the claimed sender of an envelope read without trusting it,
and the gate that decides which refusals are written to the store.

The HTTP side (connection cap, body deadline, header limits) is in
``bridge/transports/http/limits.py``;
the numbers are ``[limits]`` in bridge.toml (``bridge.home.config.Limits``; README, "Security
limits").
"""

from __future__ import annotations

import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from bridge.core import codec
from bridge.core.errors import PeerError
from bridge.engine.metrics import Metrics

Clock = Callable[[], float]


class RateLimiter:
    """One token bucket per key (RFC 2697's single-rate idea, without colours): ``rate`` tokens
    a second, at most ``burst`` saved up; a request takes one token or is refused.

    Keys are few in practice (the pinned peers, and the addresses that sent something no
    envelope parser could read), but an attacker chooses addresses: at most ``max_keys``
    buckets are kept, the least recently used forgotten first. Used from the event loop only.
    """

    def __init__(self, *, rate: float, burst: int, max_keys: int = 4096,
                 clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self) -> int:
        """Whole seconds after which one token is certainly back (for ``Retry-After``)."""
        return max(1, int(1.0 / self.rate + 0.999))


def _bin_at(data: bytes, pos: int) -> tuple[int, int] | None:
    """Length and start of the MessagePack bin that begins at ``pos``, or None."""
    if pos >= len(data):
        return None
    tag = data[pos]
    sizes = {0xC4: (1, ">B"), 0xC5: (2, ">H"), 0xC6: (4, ">I")}
    if tag not in sizes:
        return None
    width, fmt = sizes[tag]
    if pos + 1 + width > len(data):
        return None
    (length,) = struct.unpack_from(fmt, data, pos + 1)
    start = pos + 1 + width
    if start + length > len(data):
        return None
    return length, start


def claimed_sender(body: bytes) -> str | None:
    """The party an envelope says it comes from (header ``from``), or None.

    Authenticates NOTHING: it only chooses which rate-limit bucket a request is charged to,
    before the envelope costs any cryptography or a database transaction. It reads only the
    canonical layout (PROTOCOL.md §5.1: a map of three whose keys ``c``, ``h``, ``s`` come in
    that order, each a bin), skipping the ciphertext by its length, so a 64 MiB body costs no
    more than a small one; anything else is "unparseable" and charged to its address.
    """
    return claimed(body)[0]


def claimed(body: bytes) -> tuple[str | None, int | None]:
    """The sender and the seq an envelope claims (``claimed_sender``), each None when absent or
    malformed. As unauthenticated: the seq only lets the peer endpoint tell which waiting
    envelopes a refused one was due before (``bridge.transports.http.reorder``)."""
    header = _claimed_header(body)
    if not isinstance(header, dict):
        return None, None
    sender, seq = header.get("from"), header.get("seq")
    return (sender if isinstance(sender, str) and 0 < len(sender) <= 64 else None,
            seq if type(seq) is int else None)


def _claimed_header(body: bytes) -> object:
    if len(body) < 3 or body[:3] != b"\x83\xa1c":
        return None
    found = _bin_at(body, 3)
    if found is None:
        return None
    c_len, c_start = found
    pos = c_start + c_len
    if body[pos:pos + 2] != b"\xa1h":
        return None
    found = _bin_at(body, pos + 2)
    if found is None or found[0] > codec.SMALL_LIMITS.max_bytes:
        return None
    h_len, h_start = found
    try:
        return codec.decode(body[h_start:h_start + h_len], codec.SMALL_LIMITS)
    except PeerError:
        return None


@dataclass(frozen=True, kw_only=True)
class Admission:
    """Record this refusal: it stands for ``count`` refusals (itself and those of its key left
    out before it); add ``note`` (may be empty) to its detail."""

    count: int
    note: str = ""


class RefusalGate:
    """Which refusals are written to the store (refusals table and audit log), so that a
    flood of hostile requests costs a bounded number of writes. Two rules, in this order:

    1. **Coalescing.** A refusal of a key recorded less than ``window`` seconds ago (who, why
       and, for envelopes of a pinned peer, the same bytes) is not written; the next write of
       that key counts it.
    2. **A cap per minute** on all writes together (``per_minute``). What is over it is
       counted against its key and written with the next write of that key.

    Why both: coalescing keeps a replay flood (the same bytes again and again) to one write a
    second without losing distinct evidence; the cap bounds what no key can (every garbage
    body is different). The store then bounds the rows (``Store.record_refusal``: refusals no
    peer is accountable for are one row per source, reason and hour, with a count). Nothing
    is lost from view: every refusal still gets its answer and a metrics count
    (``refusals_coalesced``, ``refusals_not_recorded``); only written ones are logged, so the
    log is bounded the same way. Thread-safe: the event loop and the database thread both ask.
    """

    def __init__(self, *, per_minute: int, window: float = 1.0, max_keys: int = 4096,
                 metrics: Metrics | None = None, clock: Clock = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.window = window
        self.max_keys = max_keys
        self.metrics = metrics or Metrics()
        self.clock = clock
        self._lock = threading.Lock()
        self._recent: OrderedDict[Hashable, list[float]] = OrderedDict()  # key -> [at, left out]
        self._minute_start = clock()
        self._minute_count = 0
        self._over_cap = 0  # left out in the current minute
        self._carried = 0  # left out in an earlier minute, not yet reported in a record

    def admit(self, key: Hashable, *, window: float | None = None) -> Admission | None:
        """None: do not write this refusal (it is counted against ``key``). ``window``: this
        key's coalescing window, if not the gate's (0: every refusal of it is written, the
        store coalescing them)."""
        now = self.clock()
        window = self.window if window is None else window
        with self._lock:
            if now - self._minute_start >= 60.0:
                self._carried += self._over_cap
                self._minute_start, self._minute_count, self._over_cap = now, 0, 0
            entry = self._recent.get(key)
            if entry is not None and now - entry[0] < window:
                entry[1] += 1
                self.metrics.inc("refusals_coalesced")
                return None
            if self._minute_count >= self.per_minute:
                self._over_cap += 1
                self.metrics.inc("refusals_not_recorded")
                self._remember(key, entry or [float("-inf"), 0])[1] += 1
                return None
            self._minute_count += 1
            note = ""
            if self._carried:
                note = (f"{self._carried} refusals over the cap of {self.per_minute} writes a "
                        "minute were counted against their own kinds")
                self._carried = 0
            left = int(entry[1]) if entry is not None else 0
            self._remember(key, [now, 0])
            return Admission(count=1 + left, note=note)

    def _remember(self, key: Hashable, entry: list[float]) -> list[float]:
        self._recent.pop(key, None)
        self._recent[key] = entry
        while len(self._recent) > self.max_keys:
            self._recent.popitem(last=False)
        return entry


__all__ = ["Admission", "RateLimiter", "RefusalGate", "claimed", "claimed_sender"]
