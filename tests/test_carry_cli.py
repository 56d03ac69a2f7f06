"""``bridge peer add --via carry`` and the ``bridge carry`` commands' refusals that need no
daemon: a peer carried by hand needs no URL, one reached over http does; a carrier file is
never written over an existing file, and a file of answers writes no receipts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli.main import main
from bridge.core import carry
from bridge.core.carry import CarryHeader, FileKind
from bridge.core.errors import UsageError
from bridge.home.config import Config
from bridge.home.folder import Home
from bridge.home.key_files import load_public


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["--home", str(home), *args],
                                                      catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def homes(tmp_path: Path) -> tuple[Path, Path, str]:
    alpha, bravo = tmp_path / "alpha", tmp_path / "bravo"
    for home, party in ((alpha, "alpha"), (bravo, "bravo")):
        code, out, err = run(home, "init", "--party", party)
        assert code == 0, out + err
    return alpha, bravo, load_public(bravo / "keys" / "bravo.pub").fingerprint


def test_a_peer_pinned_via_carry_needs_no_url(homes: tuple[Path, Path, str]) -> None:
    alpha, bravo, fp = homes
    code, out, err = run(alpha, "peer", "add", str(bravo / "keys" / "bravo.pub"),
                         "--fingerprint", fp, "--via", "carry")
    assert code == 0, out + err
    assert "via:           carry" in out and "url:" not in out
    peer = Home(alpha).config().peers["bravo"]
    assert (peer.via, peer.url) == ("carry", None)
    text = (alpha / "bridge.toml").read_text()
    assert 'via = "carry"' in text and "url" not in text.split("[peers.bravo]")[1]
    code, out, _ = run(alpha, "peer", "list")
    assert "via carry" in out
    code, out, _ = run(alpha, "peer", "list", "--json")
    assert json.loads(out) == [{"name": "bravo", "via": "carry",
                                "fingerprint": fp}]


def test_a_peer_over_http_without_a_url_is_refused_and_nothing_written(
        homes: tuple[Path, Path, str]) -> None:
    alpha, bravo, fp = homes
    before = (alpha / "bridge.toml").read_bytes()
    code, _, err = run(alpha, "peer", "add", str(bravo / "keys" / "bravo.pub"),
                       "--fingerprint", fp)
    assert code == 1
    assert "needs --url" in err
    assert (alpha / "bridge.toml").read_bytes() == before


def test_a_config_with_an_http_peer_and_no_url_names_the_problem() -> None:
    data = {"bridge": {"party": "alpha", "listen": "127.0.0.1:7443"},
            "peers": {"bravo": {"fingerprint": "AAAA"}}}
    with pytest.raises(UsageError, match=r"\[peers\.bravo\].*url is missing"):
        Config.from_toml(data, "bridge.toml")
    carried = Config.from_toml({**data, "peers": {"bravo": {"fingerprint": "AAAA",
                                                            "via": "carry"}}}, "bridge.toml")
    assert carried.peers["bravo"].via == "carry"
    with pytest.raises(UsageError, match="via"):
        Config.from_toml({**data, "peers": {"bravo": {"fingerprint": "AAAA",
                                                      "via": "pigeon"}}}, "bridge.toml")


def test_an_export_over_an_existing_file_is_refused_before_the_daemon_is_asked(
        homes: tuple[Path, Path, str], tmp_path: Path) -> None:
    alpha, _, _ = homes
    there = tmp_path / "out.carry"
    there.write_bytes(b"keep me")
    code, _, err = run(alpha, "carry", "export", "--to", "bravo", "-o", str(there))
    assert code == 1 and "already exists" in err and "--force" in err
    assert there.read_bytes() == b"keep me"
    code, _, err = run(alpha, "carry", "export", "--to", "bravo", "-o", str(there), "--force")
    assert code == 3 and "no Bridge daemon is running" in err  # asked only now
    assert there.read_bytes() == b"keep me"


def test_an_import_of_envelopes_without_a_receipts_file_is_refused(
        homes: tuple[Path, Path, str], tmp_path: Path) -> None:
    alpha, _, _ = homes
    file = tmp_path / "in.carry"
    file.write_bytes(carry.encode_file(CarryHeader(
        kind=FileKind.ENVELOPES, sender="bravo", sender_key=b"b" * 32, recipient="alpha",
        recipient_key=b"a" * 32, created=1), []))
    code, _, err = run(alpha, "carry", "import", str(file))
    assert code == 1 and "give -o RECEIPTS" in err
    answers = tmp_path / "answers.carry"
    answers.write_bytes(carry.encode_file(CarryHeader(
        kind=FileKind.ANSWERS, sender="bravo", sender_key=b"b" * 32, recipient="alpha",
        recipient_key=b"a" * 32, created=1), []))
    code, _, err = run(alpha, "carry", "import", str(answers), "-o", str(tmp_path / "r"))
    assert code == 1 and "writes no receipts file" in err
    assert not (tmp_path / "r").exists()


def test_a_bad_peer_name_is_refused_by_the_option() -> None:
    code, _, err = run(Path("/nonexistent-home"), "carry", "export", "--to", "Bad Name",
                       "-o", "x.carry")
    assert code == 2 and "party name" in err
