"""Acknowledgement deadlines: a document may say by when its items must be acknowledged.

``meta.ack_deadline`` is an ISO 8601 date-time with a UTC offset (``2026-12-01T12:00:00Z``) or a
date (``2026-12-01``, meaning the end of that day, UTC). It is part of the signed header, so
both parties hold the same deadline. An item still without an acknowledgement after it is
*overdue*: the document's summary counts them and the daemon raises one
``acknowledgement_overdue`` event per document, on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bridge.errors import InputError

FIELD = "ack_deadline"


def parse_deadline(text: object, *, field: str = f"meta.{FIELD}") -> int:
    """Milliseconds since the epoch (UTC) of the deadline; ``InputError`` if not valid."""
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        raise InputError("a deadline is an ISO 8601 date (2026-12-01) or date-time with a UTC "
                         "offset (2026-12-01T12:00:00Z)", field=field)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError("no UTC offset")
    except ValueError as exc:
        raise InputError(f"not a valid ISO 8601 deadline with a UTC offset ({exc})",
                         field=field) from exc
    return int(moment.timestamp() * 1000)


def deadline_of(meta: Mapping[str, Any]) -> int | None:
    """The deadline in a stored document's meta, or None (a malformed one is ignored: it was
    validated on the way in, or came from a peer whose document we could not refuse for it)."""
    if FIELD not in meta:
        return None
    try:
        return parse_deadline(meta[FIELD])
    except InputError:
        return None
