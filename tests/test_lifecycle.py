"""The acknowledgement lifecycle table: enforced, documented, and consistent."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core import lifecycle
from bridge.core.documents import ACK_STATUSES
from bridge.core.errors import InputError

ROOT = Path(__file__).resolve().parent.parent


def test_published_table_matches_the_code() -> None:
    assert (ROOT / "schemas" / "LIFECYCLE.md").read_text() == lifecycle.markdown()


def test_every_status_has_a_row() -> None:
    assert set(lifecycle.TRANSITIONS) == set(ACK_STATUSES)


@pytest.mark.parametrize("status", [s for s in ACK_STATUSES if s != lifecycle.UNDECLARED])
def test_declared_item_may_start_anywhere_but_undeclared(status: str) -> None:
    assert lifecycle.allowed(None, status, declared=True)


def test_declared_item_never_becomes_undeclared() -> None:
    assert not lifecycle.allowed(None, lifecycle.UNDECLARED, declared=True)
    for status in ACK_STATUSES:
        assert not lifecycle.allowed(status, lifecycle.UNDECLARED, declared=True)


def test_undeclared_item_must_start_as_received_undeclared() -> None:
    assert lifecycle.allowed(None, lifecycle.UNDECLARED, declared=False)
    assert not lifecycle.allowed(None, "RECEIVED", declared=False)


@pytest.mark.parametrize(("before", "after"), [
    ("RECEIVED", "PENDING_IDENTIFICATION"),
    ("PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED"),
    ("NOT_RECEIVED", "RECEIVED"),
    ("DISPUTED", "IDENTITY_CONFIRMED"),
    ("RECEIVED_UNDECLARED", "PENDING_IDENTIFICATION"),
    ("POSTPONED", "POSTPONED"),
])
def test_realistic_changes_allowed(before: str, after: str) -> None:
    assert lifecycle.allowed(before, after, declared=True)


@pytest.mark.parametrize(("before", "after"), [
    ("IDENTITY_CONFIRMED", "PENDING_IDENTIFICATION"),  # no silent un-confirming
    ("ALREADY_EXCHANGED", "RECEIVED"),  # only through a dispute
    ("RECEIVED", "RECEIVED"),  # a plain repeat says nothing new
    ("IDENTITY_CONFIRMED", "NOT_RECEIVED"),
])
def test_rewriting_history_refused(before: str, after: str) -> None:
    assert not lifecycle.allowed(before, after, declared=True)


def test_refusal_names_the_item_and_field() -> None:
    with pytest.raises(InputError) as info:
        lifecycle.check("IDENTITY_CONFIRMED", "NOT_RECEIVED", declared=True, item_id="BAG-7",
                        field="items[3].status")
    assert info.value.field == "items[3].status"
    assert info.value.code == "transition_not_allowed"
    assert "BAG-7" in str(info.value) and "IDENTITY_CONFIRMED" in str(info.value)


def test_dispute_is_always_reachable_from_an_acknowledged_status() -> None:
    # A party must always be able to contest what it said before.
    for status in ACK_STATUSES:
        assert "DISPUTED" in lifecycle.TRANSITIONS[status]
