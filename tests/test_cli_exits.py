"""How every ``bridge`` command ends when something fails: one table (bridge/cli/exits.py) from
the error family to exit codes and messages, the same for every command; and text that is not
ours (the daemon's answers, a file's contents) never reaching the terminal unescaped.

The daemon here is the scripted one of test_client_unit (aiohttp on a real Unix socket); it
says only what each test makes it say.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_client_unit import FakeServer, answer

from bridge.cli import follow
from bridge.cli.ack import pair_item_options
from bridge.cli.exits import EXIT_RULES, Exit, exit_code
from bridge.cli.main import main
from bridge.client import ApiError, DaemonUnavailable
from bridge.core.errors import (
    BridgeError,
    InputError,
    OpaqueCryptoError,
    PeerError,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    UsageError,
    VerificationError,
)
from bridge.records.importers import ImportErrors

FORGED = ("no such item\nOK: forged.receipt: item P-1 acknowledged as RECEIVED"
          "\x1b[2J\x1b]0;pwned\x07")


@pytest.fixture()
def home() -> Iterator[Path]:
    # Short, so that the socket path stays far below the ~107-byte limit of AF_UNIX.
    d = Path(tempfile.mkdtemp(prefix="bx", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture()
def daemon(home: Path) -> Iterator[FakeServer]:
    srv = FakeServer(home / "bridge.sock")
    yield srv
    srv.close()


@pytest.fixture()
def party(home: Path) -> Path:
    """A real home of party alpha (no daemon)."""
    assert bridge(home, "init", "--party", "alpha")[0] == 0
    return home


def bridge(home: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    r = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["--home", str(home), *args],
                                                 input=input)
    return r.exit_code, r.stdout, r.stderr


# -- the table ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("err", "code"), [
    (DaemonUnavailable("no daemon"), Exit.UNAVAILABLE),
    (DaemonUnavailable("hung up", reached=True), Exit.UNAVAILABLE),
    (ApiError(409, "ambiguous", "both"), Exit.FAILED),
    (ApiError(500, "store_corrupt", "damaged"), Exit.FAILED),
    (BridgeError("any"), Exit.FAILED),
    (UsageError("exists"), Exit.FAILED),  # e.g. bridge init twice: exit 1, as it always was
    (InputError("bad", field="id"), Exit.FAILED),
    (ImportErrors("f.csv", [], bad_rows=2), Exit.FAILED),
    (PeerError("bad bytes"), Exit.FAILED),
    (VerificationError("no"), Exit.FAILED),
    (OpaqueCryptoError("detail"), Exit.FAILED),
    (StoreError("locked"), Exit.FAILED),
    (StoreUnavailable("full"), Exit.FAILED),
    (StoreCorrupt("damaged"), Exit.FAILED),
])
def test_every_error_of_the_family_has_one_exit_code(err: BridgeError, code: Exit) -> None:
    assert exit_code(err) is code
    # A command that only reads this home calls each of its failures a usage error; a daemon
    # that is not there is still exit 3.
    assert exit_code(err, Exit.USAGE) is (code if code is Exit.UNAVAILABLE else Exit.USAGE)


def test_the_table_names_the_root_of_the_family_last() -> None:
    """The first rule that matches applies: a rule after the root's could never apply."""
    assert EXIT_RULES[-1].error is BridgeError
    classes = [r.error for r in EXIT_RULES]
    for i, klass in enumerate(classes):
        assert not any(issubclass(klass, earlier) for earlier in classes[:i]), klass


# -- the daemon is not there: exit 3, and how to start it ---------------------------------------

@pytest.mark.parametrize("args", [
    ["receipt", "D1", "-o", "r.receipt"],
    ["keys", "rotate"],
    ["keys", "revoke", "--since", "2026-01-01T00:00:00Z"],
    ["reconcile"],
    ["reconcile", "--format", "json"],
])
def test_commands_that_need_the_daemon_exit_3_without_it(home: Path, args: list[str]) -> None:
    code, out, err = bridge(home, *args)
    assert code == 3, (args, out, err)
    assert f"bridge --home {home} daemon" in err
    assert not (home / "r.receipt").exists()


def test_send_of_good_rows_without_a_daemon_exits_3(home: Path) -> None:
    code, out, err = bridge(home, "send", "roster", "-", "--to", "bravo", "--json",
                            input=json.dumps([{"id": "p-1"}]))
    assert code == 3, err
    assert json.loads(out)["error"]["code"] == "daemon_unavailable"


# -- the daemon refuses: exit 1, its words, the hint for its code --------------------------------

def test_receipt_refused_as_ambiguous_exits_1_with_the_hint(home: Path,
                                                           daemon: FakeServer) -> None:
    daemon.reply = answer({"error": {"code": "ambiguous", "message": "D1 exists both ways"}},
                          status=409)
    code, out, err = bridge(home, "receipt", "D1", "-o", str(home / "r.receipt"))
    assert code == 1, err
    assert err.splitlines() == ["error: D1 exists both ways",
                                "hint: this id exists both as sent and as received; add "
                                "--direction in|out"]
    assert out == "" and not (home / "r.receipt").exists()


@pytest.mark.parametrize("args", [["keys", "rotate"], ["keys", "rotate", "--json"],
                                  ["keys", "revoke"], ["reconcile"]])
def test_daemon_refusals_exit_1(home: Path, daemon: FakeServer, args: list[str]) -> None:
    daemon.reply = answer({"error": {"code": "conflict", "message": "not now"}}, status=409)
    code, out, err = bridge(home, *args)
    assert (code, err) == (1, "error: not now\n")
    # A --json command also prints the error object, for the script that reads its output.
    if "--json" in args:
        assert json.loads(out)["error"]["code"] == "conflict"
    else:
        assert out == ""


def test_a_report_this_version_cannot_read_exits_1(home: Path, daemon: FakeServer) -> None:
    daemon.reply = answer({"version": 999})
    code, _, err = bridge(home, "reconcile")
    assert code == 1
    assert err.startswith("error: the daemon's report could not be read: ")


def test_a_refused_document_ends_watch_with_exit_1(home: Path, daemon: FakeServer) -> None:
    daemon.reply = answer({"id": "D1", "type": "roster", "direction": "out", "peer": "bravo",
                           "state": "refused", "items": {"total": 2, "acknowledged": 0}})
    code, out, err = bridge(home, "status", "D1", "--watch", "--json")
    assert code == 1
    first, rest = out.split("\n", 1)
    assert json.loads(first)["state"] == "refused"
    assert json.loads(rest)["error"]["code"] == "document_refused"
    assert "error: the peer refused document D1" in err


# -- this home cannot do it: exit 1, or 2 for the commands that only read it --------------------

@pytest.mark.parametrize("args", [["keys", "show"], ["tls", "show"], ["tls", "init"],
                                  ["peer", "list", "--json"], ["daemon"]])
def test_no_home_exits_1_saying_how_to_make_one(home: Path, args: list[str]) -> None:
    code, out, err = bridge(home / "nowhere", *args)
    assert code == 1, (args, out, err)
    assert err.startswith(f"error: no Bridge home at {home / 'nowhere'}")
    if "--json" in args:
        assert json.loads(out)["error"]["code"] == "usage"


@pytest.mark.parametrize("args", [["keys", "history", "-o", "h.json"], ["audit", "verify"],
                                  ["audit", "export", "--peer", "bravo", "-o", "t.bin"]])
def test_commands_that_read_this_home_call_its_absence_a_usage_error(home: Path,
                                                                      args: list[str]) -> None:
    code, _, err = bridge(home / "nowhere", *args)
    assert code == 2, (args, err)
    assert err.startswith("error: ")


def test_existing_output_file_is_a_usage_error_for_keys_history(party: Path) -> None:
    out = party / "history.json"
    out.write_text("mine")
    code, _, err = bridge(party, "keys", "history", "-o", str(out))
    assert code == 2 and err.startswith("error: ")
    assert out.read_text() == "mine"
    assert bridge(party, "keys", "history", "-o", str(out), "--force")[0] == 0


def test_init_twice_exits_1_not_2(party: Path) -> None:
    code, _, err = bridge(party, "init", "--party", "alpha")
    assert code == 1 and "refusing to overwrite" in err


def test_ctrl_c_while_watching_exits_130(home: Path, daemon: FakeServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    daemon.reply = answer({"id": "D1", "direction": "out", "state": "delivered",
                           "items": {"total": 2, "acknowledged": 0}})

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt  # stands in for the terminal's SIGINT while it waits

    monkeypatch.setattr(follow, "_wake_on_events", interrupted)
    code, _, err = bridge(home, "status", "D1", "--watch")
    assert code == 130 and "stopped watching" in err


# -- attacks: text that is not ours is shown escaped, on the lines it is given ------------------

@pytest.mark.parametrize("args", [["receipt", "D1", "-o", "r.receipt"], ["keys", "rotate"],
                                  ["keys", "revoke"], ["status", "D1"], ["reconcile"]])
def test_a_line_break_and_terminal_escapes_in_a_daemon_refusal_forge_no_output_line(
        home: Path, daemon: FakeServer, args: list[str]) -> None:
    """The daemon's messages may quote what a peer sent: a refusal is one escaped line, in
    every command (receipt and keys printed it with its line breaks, so a second line could
    pose as a verdict)."""
    daemon.reply = answer({"error": {"code": "not_found", "message": FORGED}}, status=404)
    code, _, err = bridge(home, *args)
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err
    assert len(err.splitlines()) == 1 and err.startswith("error: no such item\\nOK: forged")


def test_a_terminal_escape_and_a_line_break_in_a_peer_reason_are_escaped_by_items(
        home: Path, daemon: FakeServer) -> None:
    """A peer chose the reason and evidence of its acknowledgement: they reach the terminal
    escaped, on their own row."""
    reason = "medical hold\x1b[2J\u202e\nOK: all received"
    row = {"index": 0, "id": "p-1", "status": "WITHHELD", "reason": reason,
           "evidence": "\x1b]8;;http://evil\x07x", "updated": None}
    daemon.reply = answer({"items": [row], "next": None})
    code, out, _ = bridge(home, "items", "D1")
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\nOK: all received" not in out
    assert "medical hold\\x1b[2J\\u202e\\nOK: all received" in out


# -- the one hand-written part of ack's parsing --------------------------------------------------

def test_reasons_and_evidence_pair_with_the_item_they_follow() -> None:
    found = pair_item_options(["D1", "--evidence", "BOX", "--item", "a", "RECEIVED",
                               "--item=b", "WITHHELD", "--reason=hold", "--evidence", "E",
                               "--", "--item", "c", "X"])
    assert found.default == {"evidence": "BOX"}
    assert found.groups == ({"id": "a", "status": "RECEIVED"},
                            {"id": "b", "status": "WITHHELD", "reason": "hold", "evidence": "E"})


@pytest.mark.parametrize("args", [["--item", "a"], ["--item"], ["--reason"], ["--item=a"]])
def test_a_missing_value_is_left_for_click_to_report(args: list[str]) -> None:
    assert pair_item_options(args).groups == ()


def test_a_reason_given_twice_for_one_item_is_refused() -> None:
    with pytest.raises(ValueError, match="--reason given twice for item 'a'"):
        pair_item_options(["--item", "a", "RECEIVED", "--reason", "x", "--reason=y"])
    with pytest.raises(ValueError, match="--evidence given twice for the default"):
        pair_item_options(["--evidence", "x", "--evidence", "y"])
