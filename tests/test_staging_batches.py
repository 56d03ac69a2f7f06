"""A streamed submission's stage, many rows a statement: a refused batch leaves the stage as
the batches before it left it, and a duplicate id is named by its later place."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core.errors import InputError
from bridge.store.sqlite.bulk import ROWS_PER_STATEMENT
from bridge.store.sqlite.staging import StagedRow
from bridge.store.sqlite.store import Store


def _rows(first: int, ids: list[str]) -> list[StagedRow]:
    return [(first + k, i, b"entry-%d" % (first + k), bytes(32), None, None)
            for k, i in enumerate(ids)]


def test_a_duplicate_past_the_first_statement_of_a_batch_rolls_back_the_whole_batch(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    stage = store.open_stage()
    store.stage_items(stage, _rows(0, ["a", "b"]))
    later = [f"x{k}" for k in range(ROWS_PER_STATEMENT + 10)]
    later[-1] = "x3"  # in the batch's second statement, a twin of its first statement's
    with pytest.raises(InputError) as err:
        store.stage_items(stage, _rows(2, later))
    assert (err.value.field, err.value.detail) == (
        f"items[{2 + len(later) - 1}].id", "duplicate item id 'x3'")
    assert store.staged_count(stage) == 2  # the first statement's rows went with the rest
    assert store.staged_leaves(stage, 0, 10) == [b"entry-0", b"entry-1"]


def test_an_id_of_an_earlier_batch_is_named_at_its_later_place(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    stage = store.open_stage()
    store.stage_items(stage, _rows(0, [f"p{k}" for k in range(ROWS_PER_STATEMENT * 2)]))
    with pytest.raises(InputError) as err:
        store.stage_items(stage, _rows(512, ["q0", "q1", "p300"]))
    assert err.value.field == "items[514].id"
    assert store.staged_count(stage) == 512
    store.drop_stage(stage)
