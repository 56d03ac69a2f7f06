"""A home restored from a backup, until its operator has confirmed the links.

A backup is a moment. Whatever this bridge sealed for a peer after it (envelopes with later
sequence numbers) the peer holds and the restored store does not: sealing new envelopes from
the backup's last sequence number would give the peer two envelopes with one number, a fork,
which it refuses with a security alarm (PROTOCOL.md §8). So ``bridge restore`` leaves this
marker with each link's last sequence number in the backup, the daemon refuses to start while
it is there, and ``bridge restore --confirm PEER=SEQ`` (SEQ: the last sequence number the
peer's operator reads as received from us) removes it only when no peer holds more than the
backup has. (A witness of the peer's log is the other way such a rollback is caught.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge.core.errors import UsageError
from bridge.home.files import write_file
from bridge.home.folder import Home

MARKER_NAME = "restored.json"


def marker_path(home: Home) -> Path:
    return home.path / MARKER_NAME


def mark_restored(home: Home, *, created: str, links: Mapping[str, Mapping[str, int]]) -> None:
    body = {"backup_created": created, "links": {p: dict(v) for p, v in links.items()}}
    write_file(marker_path(home), json.dumps(body, indent=2) + "\n", replace=True)


def restored_links(home: Home) -> dict[str, Any] | None:
    """The marker's content, or None when the home is not awaiting confirmation."""
    path = marker_path(home)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} cannot be read ({exc}); it marks a restored home: check the "
                         "links with the peers, then delete it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("links"), dict):
        raise UsageError(f"{path} is not a restore marker; check the links, then delete it")
    return data


def refuse_unconfirmed(home: Home) -> None:
    """The daemon's start: refused while the restore is not confirmed."""
    data = restored_links(home)
    if data is None:
        return
    links = data["links"]
    told = ", ".join(f"{p} (sent up to {v.get('sent_seq', 0)})" for p, v in sorted(links.items()))
    example = " ".join(f"--confirm {p}=SEQ" for p in sorted(links)) or "--confirm"
    raise UsageError(
        f"{home.path} was restored from a backup taken at {data.get('backup_created')}; "
        f"its links: {told or 'none'}. If this bridge sent more after the backup, sealing "
        "anew would reuse sequence numbers the peer has seen (a fork, refused with a security "
        "alarm). Ask each peer's operator for the last sequence number they received from you "
        "(`received_seq` in their `bridge status --json` or /v1/peers), then run: bridge "
        f"--home {home.path} restore {example}")


def confirm(home: Home, held: Mapping[str, int]) -> dict[str, int]:
    """Remove the marker if no peer holds more than the backup has (``held``: what each peer's
    operator read). Returns the backup's sent sequence numbers; refuses, changing nothing,
    when a peer is not named or holds more."""
    data = restored_links(home)
    if data is None:
        raise UsageError(f"{home.path} is not awaiting a restore confirmation")
    sent = {p: int(v.get("sent_seq", 0)) for p, v in data["links"].items()}
    missing = sorted(set(sent) - set(held))
    if missing:
        raise UsageError(f"name every peer of the backup: {', '.join(missing)} not confirmed "
                         "(--confirm PEER=SEQ)")
    ahead = {p: seq for p, seq in held.items() if seq > sent.get(p, 0)}
    if ahead:
        lost = "; ".join(f"{p} holds up to {seq}, this backup only {sent.get(p, 0)}"
                         for p, seq in sorted(ahead.items()))
        raise UsageError(
            f"this backup is older than what the peers hold ({lost}). Starting from it would "
            "fork the link. Restore a newer backup (one whose links reach those numbers); "
            "Bridge cannot rebuild the envelopes the backup lost.")
    marker_path(home).unlink()
    return sent


__all__ = ["MARKER_NAME", "confirm", "mark_restored", "refuse_unconfirmed", "restored_links"]
