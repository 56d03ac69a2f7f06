"""``bridge peer add`` / ``bridge peer list``: pinning peers in a home, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli.main import main
from bridge.core.errors import InputError
from bridge.home.folder import Home
from bridge.home.key_files import load_public
from bridge.home.peers import check_peer_url

URL = "https://bravo.example:7443"


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["--home", str(home), *args],
                                                      catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def init(home: Path, party: str) -> str:
    code, out, err = run(home, "init", "--party", party)
    assert code == 0, out + err
    return load_public(home / "keys" / f"{party}.pub").fingerprint


def snapshot(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file()}


@pytest.fixture()
def homes(tmp_path: Path) -> tuple[Path, Path, str]:
    alpha, bravo = tmp_path / "alpha", tmp_path / "bravo"
    init(alpha, "alpha")
    fp = init(bravo, "bravo")
    return alpha, bravo, fp


def test_add_with_right_fingerprint_pins_file_and_config(homes: tuple[Path, Path, str]) -> None:
    alpha, bravo, fp = homes
    typed = fp.replace(" ", "").lower()  # as someone might type it from the phone
    code, out, err = run(alpha, "peer", "add", str(bravo / "keys" / "bravo.pub"),
                         "--url", URL, "--fingerprint", typed)
    assert code == 0, out + err
    assert "Pinned peer bravo" in out
    pinned = alpha / "keys" / "peers" / "bravo.pub"
    assert pinned.read_bytes() == (bravo / "keys" / "bravo.pub").read_bytes()
    cfg = Home(alpha).config()
    assert cfg.peers["bravo"].url == URL
    assert cfg.peers["bravo"].fingerprint == fp  # stored in the readable, grouped form
    assert cfg.party == "alpha"  # the rest of the configuration is kept
    assert len(Home(alpha).keyring()) == 2

    code, out, _ = run(alpha, "peer", "list", "--json")
    assert code == 0
    assert json.loads(out) == [{"name": "bravo", "url": URL, "fingerprint": fp}]
    code, out, _ = run(alpha, "peer", "list")
    assert code == 0 and "bravo" in out and URL in out


def test_wrong_fingerprint_refused_showing_both_and_changes_nothing(
        homes: tuple[Path, Path, str]) -> None:
    alpha, bravo, fp = homes
    before = snapshot(alpha)
    wrong = "AAAA " * 8
    code, out, err = run(alpha, "peer", "add", str(bravo / "keys" / "bravo.pub"),
                         "--url", URL, "--fingerprint", wrong)
    assert code == 1
    assert "fingerprint mismatch" in err
    assert "AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA" in err
    assert fp in err
    assert snapshot(alpha) == before
    code, out, _ = run(alpha, "peer", "list", "--json")
    assert json.loads(out) == []


def test_wrong_fingerprint_json_error(homes: tuple[Path, Path, str]) -> None:
    alpha, bravo, _fp = homes
    code, out, _ = run(alpha, "peer", "add", str(bravo / "keys" / "bravo.pub"),
                       "--url", URL, "--fingerprint", "BBBB", "--json")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "fingerprint_mismatch"


def test_refuses_own_identity(homes: tuple[Path, Path, str]) -> None:
    alpha, _bravo, _fp = homes
    own = alpha / "keys" / "alpha.pub"
    before = snapshot(alpha)
    code, _out, err = run(alpha, "peer", "add", str(own), "--url", URL,
                          "--fingerprint", load_public(own).fingerprint)
    assert code == 1
    assert "own party" in err
    assert snapshot(alpha) == before


@pytest.mark.parametrize("url", [
    "bravo.example:7443", "ftp://bravo.example:21", "https://bravo.example",
    "https://bravo.example:7443/path", "https://user@bravo.example:7443",
    "https://bravo.example:99999", "https://bravo.example:0", 'https://bra"vo:7443',
    "https://bravo.example:7443?x=1", "https://:7443",
])
def test_refuses_bad_url(homes: tuple[Path, Path, str], url: str) -> None:
    alpha, bravo, fp = homes
    before = snapshot(alpha)
    code, _out, err = run(alpha, "peer", "add", str(bravo / "keys" / "bravo.pub"),
                          "--url", url, "--fingerprint", fp)
    assert code == 2
    assert "http(s)://HOST:PORT" in err or "not a valid URL" in err
    assert snapshot(alpha) == before


@pytest.mark.parametrize(("url", "clean"), [
    ("https://bravo.example:7443", "https://bravo.example:7443"),
    ("http://127.0.0.1:7443/", "http://127.0.0.1:7443"),
    ("https://[::1]:8443", "https://[::1]:8443"),
])
def test_check_peer_url_accepts(url: str, clean: str) -> None:
    assert check_peer_url(url) == clean


def test_check_peer_url_names_field() -> None:
    with pytest.raises(InputError) as exc:
        check_peer_url("bravo:7443")
    assert exc.value.field == "url"


def test_readd_same_key_updates_url(homes: tuple[Path, Path, str]) -> None:
    alpha, bravo, fp = homes
    pub = str(bravo / "keys" / "bravo.pub")
    assert run(alpha, "peer", "add", pub, "--url", URL, "--fingerprint", fp)[0] == 0
    code, out, _ = run(alpha, "peer", "add", pub, "--url", "http://10.0.0.2:9000",
                       "--fingerprint", fp, "--json")
    assert code == 0
    assert json.loads(out)["action"] == "updated"
    assert Home(alpha).config().peers["bravo"].url == "http://10.0.0.2:9000"
    code, out, _ = run(alpha, "peer", "add", pub, "--url", "http://10.0.0.2:9000",
                       "--fingerprint", fp, "--json")
    assert json.loads(out)["action"] == "unchanged"


def test_new_key_for_known_peer_needs_replace(tmp_path: Path,
                                              homes: tuple[Path, Path, str]) -> None:
    alpha, bravo, fp = homes
    assert run(alpha, "peer", "add", str(bravo / "keys" / "bravo.pub"), "--url", URL,
               "--fingerprint", fp)[0] == 0
    other = tmp_path / "bravo2"
    fp2 = init(other, "bravo")  # the same party name, a different key
    pub2 = str(other / "keys" / "bravo.pub")
    before = snapshot(alpha)
    code, _out, err = run(alpha, "peer", "add", pub2, "--url", URL, "--fingerprint", fp2)
    assert code == 1
    assert "already pinned with another key" in err and fp in err and fp2 in err
    assert "--replace" in err
    assert snapshot(alpha) == before

    code, out, err = run(alpha, "peer", "add", pub2, "--url", URL, "--fingerprint", fp2,
                         "--replace")
    assert code == 0, err
    assert "Replaced" in out
    assert (alpha / "keys" / "peers" / "bravo.pub").read_bytes() == Path(pub2).read_bytes()
    assert Home(alpha).config().peers["bravo"].fingerprint == fp2


def test_not_an_identity_file(tmp_path: Path, homes: tuple[Path, Path, str]) -> None:
    alpha, _bravo, _fp = homes
    junk = tmp_path / "junk.pub"
    junk.write_text("{}")
    code, _out, err = run(alpha, "peer", "add", str(junk), "--url", URL, "--fingerprint", "AAAA")
    assert code == 1
    assert "not a Bridge identity file" in err


def test_no_home(tmp_path: Path, homes: tuple[Path, Path, str]) -> None:
    _alpha, bravo, fp = homes
    code, _out, err = run(tmp_path / "nowhere", "peer", "add", str(bravo / "keys" / "bravo.pub"),
                          "--url", URL, "--fingerprint", fp)
    assert code == 1
    assert "init --party" in err


def test_real_bridge_subprocess(homes: tuple[Path, Path, str]) -> None:
    alpha, bravo, fp = homes
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_HOME"}
    base = [sys.executable, "-m", "bridge", "--home", str(alpha), "peer"]
    done = subprocess.run([*base, "add", str(bravo / "keys" / "bravo.pub"), "--url", URL,
                           "--fingerprint", fp], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*base, "list", "--json"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"name": "bravo", "url": URL, "fingerprint": fp}]
