"""The acknowledgement lifecycle: which status an item may move to from which.

One table, in one place. The receiver's bridge refuses a change the table does not allow (its
local systems get a 4xx naming the item), and the sender's bridge refuses an acknowledgement
document that contains one (the peer's fault, recorded and alarmed). ``schemas/LIFECYCLE.md``
is generated from this table (``python -m bridge.core.lifecycle``) and a test keeps them equal.

The first status of a declared item may be anything except RECEIVED_UNDECLARED; the first
status of an item that was never declared must be RECEIVED_UNDECLARED. History is never
rewritten: every change is a new entry in a new signed acknowledgement.

Whether an entry binds a leaf hash follows from ``declared``, never from the status
(PROTOCOL.md §6.6): an undeclared item's entries all have a nil leaf, its later statuses
included (RECEIVED_UNDECLARED, then e.g. PENDING_IDENTIFICATION).
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.core.documents import ACK_STATUSES
from bridge.core.errors import InputError

UNDECLARED = "RECEIVED_UNDECLARED"

# status -> the statuses it may change to. A status listed in its own row may be repeated
# (with a new reason or evidence): a dispute, a pending identification or a postponement can
# be restated as it develops; the others cannot.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "RECEIVED": frozenset({
        "PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED", "IDENTITY_MISMATCH", "NOT_OWN_NATIONAL",
        "COMMINGLED", "ALREADY_EXCHANGED", "CATEGORY_INELIGIBLE", "DECLINED_REPATRIATION",
        "DISPUTED"}),
    "NOT_RECEIVED": frozenset({"RECEIVED", "WITHHELD", "POSTPONED", "DISPUTED"}),
    UNDECLARED: frozenset({
        "PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED", "IDENTITY_MISMATCH", "NOT_OWN_NATIONAL",
        "COMMINGLED", "DISPUTED"}),
    "PENDING_IDENTIFICATION": frozenset({
        "PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED", "IDENTITY_MISMATCH", "NOT_OWN_NATIONAL",
        "COMMINGLED", "DISPUTED"}),
    "IDENTITY_CONFIRMED": frozenset({"COMMINGLED", "DISPUTED"}),
    "IDENTITY_MISMATCH": frozenset({
        "PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED", "NOT_OWN_NATIONAL", "DISPUTED"}),
    "NOT_OWN_NATIONAL": frozenset({"PENDING_IDENTIFICATION", "DISPUTED"}),
    "COMMINGLED": frozenset({"PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED", "DISPUTED"}),
    "ALREADY_EXCHANGED": frozenset({"DISPUTED"}),
    "CATEGORY_INELIGIBLE": frozenset({"RECEIVED", "DISPUTED"}),
    "DECLINED_REPATRIATION": frozenset({"RECEIVED", "DISPUTED"}),
    "WITHHELD": frozenset({"RECEIVED", "NOT_RECEIVED", "POSTPONED", "DISPUTED"}),
    "POSTPONED": frozenset({"POSTPONED", "RECEIVED", "NOT_RECEIVED", "WITHHELD", "DISPUTED"}),
    "DISPUTED": frozenset({
        "DISPUTED", "RECEIVED", "NOT_RECEIVED", "PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED",
        "IDENTITY_MISMATCH", "NOT_OWN_NATIONAL", "COMMINGLED", "ALREADY_EXCHANGED",
        "CATEGORY_INELIGIBLE", "DECLINED_REPATRIATION", "WITHHELD", "POSTPONED"}),
}

assert set(TRANSITIONS) == set(ACK_STATUSES)
assert all(targets <= set(ACK_STATUSES) - {UNDECLARED} for targets in TRANSITIONS.values())


def allowed(previous: str | None, new: str, *, declared: bool) -> bool:
    """May an item with status ``previous`` (None: no status yet) move to ``new``?"""
    if previous is None:
        return (new == UNDECLARED) != declared
    return new in TRANSITIONS.get(previous, frozenset())


def check(previous: str | None, new: str, *, declared: bool, item_id: str, field: str) -> None:
    """Raise ``InputError`` naming the item when the table does not allow the change."""
    if allowed(previous, new, declared=declared):
        return
    if previous is None:
        why = ("an item that was declared is never RECEIVED_UNDECLARED" if declared
               else "an item that was not declared must first be RECEIVED_UNDECLARED")
    else:
        targets = ", ".join(sorted(TRANSITIONS[previous])) or "nothing"
        why = f"{previous} may change only to: {targets}"
    raise InputError(f"item {item_id!r} cannot change to {new}: {why}", field=field,
                     code="transition_not_allowed")


def markdown() -> str:
    """The table for people (schemas/LIFECYCLE.md)."""
    lines = [
        "# Acknowledgement lifecycle",
        "",
        "Generated from `bridge/core/lifecycle.py` (`python -m bridge.core.lifecycle > "
        "schemas/LIFECYCLE.md`); a test keeps the two equal.",
        "",
        "- The first status of a declared item may be any status except `RECEIVED_UNDECLARED`.",
        "- The first status of an item that was never declared must be "
        "`RECEIVED_UNDECLARED`.",
        "- A status that appears in its own row may be restated (with a new reason or "
        "evidence reference).",
        "- Every change is a new entry in a new signed acknowledgement; history is never "
        "rewritten.",
        "",
        "| from | may change to |",
        "| --- | --- |",
    ]
    for status in ACK_STATUSES:
        targets = [t for t in ACK_STATUSES if t in TRANSITIONS[status]]
        lines.append(f"| `{status}` | {', '.join(f'`{t}`' for t in targets)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
