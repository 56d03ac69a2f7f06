"""Acknowledgement deadlines: a document may say by when its items must be acknowledged.

``meta.ack_deadline`` is an ISO 8601 date-time with a UTC offset (``2026-12-01T12:00:00Z``) or a
date (``2026-12-01``, meaning the end of that day, UTC). It is part of the signed header, so
both parties hold the same deadline. An item still without an acknowledgement after it is
*overdue*: the document's summary counts them and the daemon raises one
``acknowledgement_overdue`` event per document, on both sides.

A deadline is checked where it is parsed (PROTOCOL.md §3, "Ranges"): its offset is within
±14:00, the instant it names (in UTC) lies in the window of every time (``bridge.core.times``), and
a document's deadline lies at most ``times.DEADLINE_HORIZON_MS`` after the document. One that
breaks these is refused at intake, from the local API (400 naming the field) and from a peer
(a signed refusal); one already stored is ignored, never an error on a read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from bridge.core import times
from bridge.core.errors import InputError

FIELD = "ack_deadline"
_FORMS = ("a deadline is an ISO 8601 date (2026-12-01) or date-time with a UTC offset "
          "(2026-12-01T12:00:00Z)")


def parse_deadline(text: object, *, field: str = f"meta.{FIELD}",
                   not_after: int | None = None) -> int:
    """Milliseconds since the epoch (UTC) of the deadline; ``InputError`` if not valid.

    ``not_after``: the latest instant allowed (a document's ``created`` plus the horizon)."""
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        raise InputError(_FORMS, field=field)
    try:
        if len(text) == 10:
            # The end of that day: the first instant of the next, counted in integers
            # (date + 1 day overflows on 9999-12-31).
            start = datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
            ms = times.from_datetime(start) + 86_400_000
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            offset = moment.utcoffset()
            if offset is None:
                raise ValueError("no UTC offset")
            if abs(offset) > times.MAX_UTC_OFFSET:
                raise ValueError("a UTC offset lies within -14:00 and +14:00")
            # In UTC, without converting the datetime itself (9999-12-31T20:00-14:00 is in
            # year 10000 in UTC, which datetime cannot hold): the window check below refuses it.
            ms = times.from_datetime(moment)
    except ValueError as exc:
        raise InputError(f"not a valid ISO 8601 deadline with a UTC offset ({exc})",
                         field=field) from exc
    problem = times.check_time(ms)
    if problem is None and not_after is not None and ms > not_after:
        problem = (f"must be at most {times.DEADLINE_HORIZON_MS // (366 * 86_400_000)} years "
                   f"after the document (latest {times.format_ms(not_after)})")
    if problem is not None:
        raise InputError(f"deadline {problem}", field=field, code="bad_time")
    return ms


def check_meta(meta: Mapping[str, Any], created: int) -> None:
    """Refuse a document whose ``meta`` states a deadline that is not valid (``InputError``)."""
    if FIELD in meta:
        parse_deadline(meta[FIELD], not_after=created + times.DEADLINE_HORIZON_MS)


def deadline_of(meta: Mapping[str, Any]) -> int | None:
    """The deadline in a stored document's meta, or None (a malformed one is ignored: it was
    validated on the way in, or came from a peer whose document we could not refuse for it)."""
    if not isinstance(meta, Mapping) or FIELD not in meta:
        return None
    try:
        return parse_deadline(meta[FIELD])
    except InputError:
        return None
