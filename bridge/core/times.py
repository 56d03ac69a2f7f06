"""Times and counters from outside: the windows they must fall in, and how a time is printed.

Every time in signed data is an integer number of milliseconds since the Unix epoch, UTC
(PROTOCOL.md §3, "Time"). A peer, a file or a local caller can write any integer there, so each
one is checked against a window where it is parsed (PROTOCOL.md §3, "Ranges"):

- a time lies in [``EARLIEST_MS``, ``LATEST_MS``] (2000-01-01 to 9999-12-31, UTC): the years
  ISO 8601 writes with four digits, and no Bridge document predates 2000;
- a time the peer signs is not later than our clock plus ``MAX_SKEW_MS`` when it arrives;
- a deadline lies no more than ``DEADLINE_HORIZON_MS`` after the document that states it;
- a sequence number or count fits SQLite's signed 64-bit INTEGER (``MAX_SEQ``);
- an integer inside free-form data is one JSON readers agree on (``MAX_JSON_INT``, RFC 7493
  §2.2).

``format_ms`` is the one place a time becomes text. It is total: a value that got into the
store before these windows existed is shown as what it is, never an exception (a read must not
fail because of a value it reads).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00.000Z
LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_SKEW_MS = 24 * 3600 * 1000  # how far ahead of our clock a peer's clock may run
DEADLINE_HORIZON_MS = 10 * 366 * 24 * 3600 * 1000  # ten years after the document
MAX_SEQ = (1 << 63) - 1  # SQLite INTEGER is a signed 64-bit integer
MAX_JSON_INT = (1 << 53) - 1  # I-JSON (RFC 7493 §2.2): exact in every JSON reader
MAX_UTC_OFFSET = timedelta(hours=14)  # the widest offset in use (UTC+14, Line Islands)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_MS = 86_400_000
_CYCLE_DAYS = 146_097  # the Gregorian calendar repeats every 400 years, exactly this many days


def is_int(value: object) -> bool:
    """An integer and not a boolean (``True == 1`` in Python; msgpack ``true`` is no integer)."""
    return type(value) is int


def check_int(value: object, *, minimum: int, maximum: int) -> str | None:
    """Why ``value`` is not an integer in [minimum, maximum], or None if it is."""
    if not is_int(value):
        return "must be an integer"
    assert isinstance(value, int)
    if not minimum <= value <= maximum:
        return f"must be an integer from {minimum} to {maximum}"
    return None


def check_time(value: object) -> str | None:
    """Why ``value`` is not a time in the window every time must fall in, or None."""
    if not is_int(value):
        return "must be an integer number of milliseconds since 1970-01-01T00:00:00Z"
    assert isinstance(value, int)
    if not EARLIEST_MS <= value <= LATEST_MS:
        return (f"must be a time from {format_ms(EARLIEST_MS)} to {format_ms(LATEST_MS)} "
                f"(got {format_ms(value)})")
    return None


def check_not_ahead(value: int, now: int, skew_ms: int = MAX_SKEW_MS) -> str | None:
    """Why a time a peer signed is more than ``skew_ms`` ahead of our clock ``now``, or None."""
    if value > now + skew_ms:
        span = (f"{skew_ms // 3_600_000} hours" if skew_ms % 3_600_000 == 0
                else f"{skew_ms // 60_000} minutes")
        return (f"{format_ms(value)} is more than {span} ahead of this bridge's clock "
                f"({format_ms(now)})")
    return None


def from_datetime(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware ``datetime``, in integers (a float of a
    13-digit millisecond count can be off by one)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def format_ms(ms: object) -> str:
    """ISO 8601 UTC with milliseconds (``2026-03-02T15:00:00.000Z``), for any value.

    Years outside 0000-9999 use ISO 8601's expanded form (``+10000-01-01T...``), computed with
    the 400-year Gregorian cycle; a value that is not an integer is shown as it is."""
    if not is_int(ms):
        return repr(ms)
    assert isinstance(ms, int)
    days, rem = divmod(ms, _DAY_MS)
    cycles, day = divmod(days, _CYCLE_DAYS)
    moment = _EPOCH + timedelta(days=day, milliseconds=rem)  # 1970..2370: always representable
    year = moment.year + 400 * cycles
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"
    return f"{year_text}-{moment:%m-%dT%H:%M:%S}.{rem % 1000:03d}Z"


def format_optional(ms: object) -> str | None:
    """``format_ms``, with None kept as None (an absent time in the local API's JSON)."""
    return None if ms is None else format_ms(ms)
