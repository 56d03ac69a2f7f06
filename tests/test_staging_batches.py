"""A streamed submission's stage, many rows a statement: a refused batch leaves the stage as
the batches before it left it, and a duplicate id is named by its later place."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core.errors import InputError
from bridge.store.sqlite import bulk
from bridge.store.sqlite.bulk import ROWS_PER_STATEMENT
from bridge.store.sqlite.staging import StagedColumns
from bridge.store.sqlite.store import Store


def _columns(first: int, ids: list[str]) -> StagedColumns:
    n = len(ids)
    return (ids, [b"entry-%d" % (first + k) for k in range(n)], [bytes(32)] * n, [None] * n,
            [None] * n)


def test_a_duplicate_past_the_first_statement_of_a_batch_rolls_back_the_whole_batch(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    stage = store.open_stage()
    store.stage_items(stage, 0, _columns(0, ["a", "b"]))
    later = [f"x{k}" for k in range(ROWS_PER_STATEMENT + 10)]
    later[-1] = "x3"  # in the batch's second statement, a twin of its first statement's
    with pytest.raises(InputError) as err:
        store.stage_items(stage, 2, _columns(2, later))
    assert (err.value.field, err.value.detail) == (
        f"items[{2 + len(later) - 1}].id", "duplicate item id 'x3'")
    assert store.staged_count(stage) == 2  # the first statement's rows went with the rest
    assert store.staged_leaves(stage, 0, 10) == [b"entry-0", b"entry-1"]


def test_an_id_of_an_earlier_batch_is_named_at_its_later_place(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    stage = store.open_stage()
    store.stage_items(stage, 0, _columns(0, [f"p{k}" for k in range(ROWS_PER_STATEMENT * 2)]))
    with pytest.raises(InputError) as err:
        store.stage_items(stage, 512, _columns(512, ["q0", "q1", "p300"]))
    assert err.value.field == "items[514].id"
    assert store.staged_count(stage) == 512
    store.drop_stage(stage)


def test_a_batch_given_as_columns_is_staged_row_by_row_across_statements(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bulk.insert_columns`` (7 rows a statement here, and a last statement of fewer): each
    entry in its place with its own values, None and bytes kept, none shifted by a column."""
    monkeypatch.setattr(bulk, "ROWS_PER_STATEMENT", 7)
    store = Store(tmp_path / "bridge.db")
    stage = store.open_stage()
    ids = [f"r{k}" for k in range(30)]
    columns = (ids, [bytes([k]) * (k + 1) for k in range(30)], [bytes([k]) * 32 for k in range(30)],
               [None if k % 3 else "pow" for k in range(30)],
               [f"POW-{k}" if k % 2 else None for k in range(30)])
    store.stage_items(stage, 5, columns)
    rows = store._conn.execute(
        f"SELECT idx, item_id, leaf, lh, category, roster_record FROM temp.stage_{stage} "
        "ORDER BY idx").fetchall()
    assert rows == list(zip(range(5, 35), *columns, strict=True))


def test_columns_of_different_lengths_stage_nothing(tmp_path: Path) -> None:
    """A column short of a value would misalign every row after it: refused before any
    statement runs."""
    store = Store(tmp_path / "bridge.db")
    stage = store.open_stage()
    with pytest.raises(ValueError, match="columns of one length"):
        store.stage_items(stage, 0, (["a", "b"], [b"x", b"y"], [bytes(32)], [None, None],
                                     [None, None]))
    assert store.staged_count(stage) == 0


def test_a_stage_does_not_turn_off_zeroing_of_deleted_rows_in_the_store_file(
        tmp_path: Path) -> None:
    """Only the TEMP database, where a stage lives, frees pages without zeroing them: what the
    store file deletes is overwritten as the SQLite build decides, stage or no stage."""
    store = Store(tmp_path / "bridge.db")
    conn = store._conn
    before = conn.execute("PRAGMA main.secure_delete").fetchone()[0]
    stage = store.open_stage()
    store.stage_items(stage, 0, _columns(0, ["a", "b"]))
    store.drop_stage(stage)
    ack_stage = store.open_ack_stage()
    store.drop_stage(ack_stage)
    assert conn.execute("PRAGMA main.secure_delete").fetchone()[0] == before
    assert conn.execute("PRAGMA temp.secure_delete").fetchone()[0] == 0


def test_a_column_short_of_a_value_is_refused_when_every_value_it_has_is_none(
        tmp_path: Path) -> None:
    """A roster's record columns (all None) are left out of the insert: their length is
    still checked against the others', so a short one cannot go unnoticed."""
    store = Store(tmp_path / "bridge.db")
    stage = store.open_stage()
    with pytest.raises(ValueError, match="columns of one length"):
        store.stage_items(stage, 0, (["a", "b"], [b"x", b"y"], [bytes(32)] * 2, [None],
                                     [None, None]))
    assert store.staged_count(stage) == 0


def test_a_roster_batch_is_staged_with_no_record_columns_of_its_own(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    stage = store.open_stage()
    store.stage_items(stage, 3, _columns(3, ["a", "b"]))
    assert store._conn.execute(
        f"SELECT idx, item_id, leaf, lh, category, roster_record FROM temp.stage_{stage} "
        "ORDER BY idx").fetchall() == [(3, "a", b"entry-3", bytes(32), None, None),
                                       (4, "b", b"entry-4", bytes(32), None, None)]
