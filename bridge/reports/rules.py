"""Reconciliation rules: sides, categories, and how each acknowledgement status counts.

Words used throughout the reports:

- **side**: ``outbound`` is what this party sent (counted as the peer acknowledged it);
  ``inbound`` is what this party received (counted as this party acknowledged it).
- **category** of an item: a roster entry's is its roster's ``meta.category`` (the record
  schemas make each record's own category equal to it); a manifest item's is its own
  ``category`` field, else its manifest's ``meta.category``; ``None`` when none says (shown as
  "(no category)").
- **delivered** and **received** count handovers, that is items in manifests: delivered, its
  manifest reached the other bridge; received, acknowledged with a status that says it came
  over (``StatusRule.arrived``). The status groups (confirmed, disputed, outstanding, ...)
  count every item, listed or manifested.

``STATUS_RULES`` below is the one grouping table: every status belongs to exactly one group, so
the groups of a category add up to its items. Pure: data and small functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.core.documents import ACK_STATUSES

OUTBOUND = "outbound"
INBOUND = "inbound"
SIDES = (OUTBOUND, INBOUND)
SIDE_OF_DIRECTION = {"out": OUTBOUND, "in": INBOUND}

# Categories in the order a commission reads them; others follow alphabetically, then none.
KNOWN_CATEGORIES = ("pow", "civilian_detainee", "child_tracing", "remains")
# For persons, RECEIVED already confirms the handover of that person; remains (and anything
# of unknown category) are confirmed only by an identification (IDENTITY_CONFIRMED).
PERSON_CATEGORIES = frozenset({"pow", "civilian_detainee", "child_tracing"})
NO_STATUS = "none"  # the by_status key of items with no acknowledgement yet

# ---------------------------------------------------------------- the grouping table

CONFIRMED = "confirmed"
UNCONFIRMED = "unconfirmed"  # arrived, identity not (yet) confirmed
DISPUTED = "disputed"
DECLINED = "declined"
OUTSTANDING = "outstanding"
GROUPS = (CONFIRMED, UNCONFIRMED, DISPUTED, DECLINED, OUTSTANDING)
GROUP_LABELS = {CONFIRMED: "confirmed", UNCONFIRMED: "received, not confirmed",
                DISPUTED: "disputed", DECLINED: "declined", OUTSTANDING: "outstanding"}


@dataclass(frozen=True, kw_only=True)
class StatusRule:
    """How one acknowledgement status counts. ``arrived``: the item came over (it counts as
    received, and toward a manifest's counted total)."""

    status: str | None  # None: no acknowledgement yet
    persons: str  # group for items of a person category
    other: str  # group for remains and items of another or no category
    arrived: bool

    def group(self, category: str | None) -> str:
        return self.persons if category in PERSON_CATEGORIES else self.other


def _rule(status: str | None, persons: str, other: str, arrived: bool) -> StatusRule:
    return StatusRule(status=status, persons=persons, other=other, arrived=arrived)


STATUS_RULES: tuple[StatusRule, ...] = (
    #     status                    persons      other items  arrived
    _rule(None,                     OUTSTANDING, OUTSTANDING, False),
    _rule("RECEIVED",               CONFIRMED,   UNCONFIRMED, True),
    _rule("RECEIVED_UNDECLARED",    UNCONFIRMED, UNCONFIRMED, True),
    _rule("PENDING_IDENTIFICATION", OUTSTANDING, OUTSTANDING, True),
    _rule("IDENTITY_CONFIRMED",     CONFIRMED,   CONFIRMED,   True),
    _rule("IDENTITY_MISMATCH",      DISPUTED,    DISPUTED,    True),
    _rule("NOT_OWN_NATIONAL",       DISPUTED,    DISPUTED,    True),
    _rule("COMMINGLED",             DISPUTED,    DISPUTED,    True),
    # A dispute is about an item at hand (a count that differs is NOT_RECEIVED); a civilian on
    # a prisoner-of-war manifest stood at the crossing all the same.
    _rule("DISPUTED",               DISPUTED,    DISPUTED,    True),
    _rule("CATEGORY_INELIGIBLE",    DISPUTED,    DISPUTED,    True),
    _rule("ALREADY_EXCHANGED",      DISPUTED,    DISPUTED,    False),
    _rule("NOT_RECEIVED",           OUTSTANDING, OUTSTANDING, False),
    _rule("POSTPONED",              OUTSTANDING, OUTSTANDING, False),
    _rule("WITHHELD",               OUTSTANDING, OUTSTANDING, False),
    _rule("DECLINED_REPATRIATION",  DECLINED,    DECLINED,    False),
)
# Which entry's status an item takes when two entries of one document name one item (a bag
# and its papers, both of roster record R-1): later documents win first; within a document the
# status later in this list wins. A dispute is never hidden; an arrival beats an absence (the
# person or the remains came over; the missing papers stay listed under their own id);
# "declined" beats "not received"; no acknowledgement loses to any.
TIE_PRECEDENCE: tuple[str, ...] = (
    "WITHHELD", "POSTPONED", "NOT_RECEIVED", "DECLINED_REPATRIATION",
    "RECEIVED_UNDECLARED", "PENDING_IDENTIFICATION", "RECEIVED", "IDENTITY_CONFIRMED",
    "ALREADY_EXCHANGED", "CATEGORY_INELIGIBLE", "COMMINGLED", "NOT_OWN_NATIONAL",
    "IDENTITY_MISMATCH", "DISPUTED")
assert sorted(TIE_PRECEDENCE) == sorted(ACK_STATUSES), "every status needs a precedence"
RULE_BY_STATUS: Mapping[str | None, StatusRule] = {r.status: r for r in STATUS_RULES}
assert set(RULE_BY_STATUS) == {None, *ACK_STATUSES}, "every status needs exactly one rule"
ARRIVED_STATUSES = tuple(str(r.status) for r in STATUS_RULES if r.arrived)
# Statuses whose ids a report lists for the meeting (with the entries not yet acknowledged):
# disputed or outstanding whatever the category.
ATTENTION_STATUSES = tuple(str(r.status) for r in STATUS_RULES if r.status is not None
                           and r.persons == r.other and r.persons in (DISPUTED, OUTSTANDING))
# Reasons worth listing: those given with any status short of a plain confirmation.
REASON_STATUSES = tuple(s for s in ACK_STATUSES if s not in ("RECEIVED", "IDENTITY_CONFIRMED"))


def rule_of(status: str | None) -> StatusRule:
    """The rule of ``status``; an unknown status (a newer peer's) counts as disputed, never as
    confirmed: a reconciliation must not hide what it does not understand."""
    return RULE_BY_STATUS.get(status) or _rule(status, DISPUTED, DISPUTED, False)


def grouping_table() -> list[dict[str, Any]]:
    """The grouping table as data (it travels with every JSON report, and the docs show it)."""
    return [{"status": r.status, "persons": r.persons, "other": r.other, "received": r.arrived}
            for r in STATUS_RULES]


def category_order(category: str | None) -> tuple[int, str]:
    """Known categories in the order a commission reads them, others alphabetically, none last."""
    if category is None:
        return (len(KNOWN_CATEGORIES) + 1, "")
    if category in KNOWN_CATEGORIES:
        return (KNOWN_CATEGORIES.index(category), category)
    return (len(KNOWN_CATEGORIES), category)


_STATUS_POSITION = {s: i for i, s in enumerate(ACK_STATUSES)}


def status_order(status: str) -> tuple[int, str]:
    """Statuses in protocol order; unknown ones after, and "no acknowledgement yet" last."""
    return (_STATUS_POSITION.get(status, len(_STATUS_POSITION) + (status == NO_STATUS)), status)


def grouping_summary() -> list[tuple[str, str]]:
    """(group label, statuses) lines for legends."""
    out = []
    for g in GROUPS:
        names = []
        for r in STATUS_RULES:
            status = r.status or "no acknowledgement yet"
            if r.persons == g and r.other == g:
                names.append(status)
            elif r.persons == g:
                names.append(f"{status} (persons)")
            elif r.other == g:
                names.append(f"{status} (remains, other)")
        out.append((GROUP_LABELS[g], ", ".join(names)))
    return out
