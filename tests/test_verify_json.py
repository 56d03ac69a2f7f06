"""``bridge verify --json``: the list written a file at a time, a whole document's statuses
spooled a part at a time (``bridge.cli.verify_json``): the same JSON as the list made whole in
memory, no more than a part's statuses handed over at once, and nothing left on disk."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import verify as verify_cli
from bridge.cli.main import main
from bridge.cli.verify_json import JsonResults, StatusSpool
from bridge.core.printable import json_text
from bridge.core.receipts import items as steps_in_parts

VECTORS = Path(__file__).resolve().parent.parent / "schemas" / "vectors"
RECEIPTS = VECTORS / "receipts"
KEY_FILES = (VECTORS / "keys" / "alpha-test.pub", VECTORS / "keys" / "beta-test.pub")
KEYS = [arg for path in KEY_FILES for arg in ("--keys", str(path))]
FILES = [RECEIPTS / "valid" / "item-pow-0003-disputed.receipt",
         sorted((RECEIPTS / "invalid").glob("*.receipt"))[0],
         RECEIPTS / "valid" / "document-man-test-0003.receipt",
         RECEIPTS / "valid" / "document-undeclared-item-changes-status.receipt"]


def _made_whole(files: list[Path]) -> list[dict[str, Any]]:
    """The list as it was made before: every record, each document's statuses in memory."""
    keys = verify_cli._load_keys(KEY_FILES)
    return [{"file": str(path), **verify_cli._check_file(path, keys, statuses=True)[2]}
            for path in files]


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the command's temporary files go, and statuses checked two ids a pass."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setattr(steps_in_parts, "PART_ITEMS", 2)
    return folder


def test_the_list_written_as_it_goes_is_the_list_made_whole(spool_dir: Path) -> None:
    result = CliRunner().invoke(main, ["verify", *map(str, FILES), *KEYS, "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 1  # the invalid vector
    out = json.loads(result.output)
    assert out == _made_whole(FILES)
    assert [len(r.get("statuses", ())) for r in out] == [0, 0, 8, 8]
    assert list(spool_dir.iterdir()) == []  # the spool had no name, and is gone


def test_statuses_are_handed_over_a_part_at_a_time(spool_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[int] = []
    add = StatusSpool.add

    def counted(self: StatusSpool, statuses: Any) -> None:
        pairs = list(statuses)
        handed.append(len(pairs))
        add(self, pairs)

    monkeypatch.setattr(StatusSpool, "add", counted)
    result = CliRunner().invoke(main, ["verify", str(FILES[2]), *KEYS, "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0
    assert sum(handed) == len(json.loads(result.output)[0]["statuses"]) == 8
    # Four passes of about two ids each (ids go to a pass by their hash): each pass hands
    # over its declared items, then its undeclared ones, never all of them at once.
    assert len(handed) == 2 * 4 and max(handed) < 8


def test_the_written_list_reads_as_json_text_of_the_whole_list(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bridge.cli.verify_json._WRITE_BATCH", 2)  # several batches a part
    statuses = {"P-1": "RECEIVED", "P-2": "DISPUTED", "P-\u00e9": "RECEIVED"}
    records = [{"file": "a", "ok": False, "checks": []},
               {"file": "b", "ok": True, "kind": "document", "statuses": statuses},
               {"file": "c", "ok": True, "kind": "document", "statuses": {}}]
    written: list[str] = []
    results = JsonResults(written.append)
    for record in records:
        if "statuses" not in record:
            results.add(record)
            continue
        spool = StatusSpool()
        try:
            spool.add(iter(record["statuses"].items()))
            results.add({**record, "statuses": {}}, spool)
        finally:
            spool.close()
    results.end()
    text = "".join(written)
    assert json.loads(text) == records
    moved = [{k: v for k, v in r.items() if k != "statuses"} | (
        {"statuses": r["statuses"]} if "statuses" in r else {}) for r in records]
    assert text == json_text(moved) + "\n"  # byte for byte, but statuses last in a record


def test_no_records_is_an_empty_list() -> None:
    written: list[str] = []
    JsonResults(written.append).end()
    assert "".join(written) == "[]\n"
