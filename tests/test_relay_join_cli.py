"""``bridge relay join`` and ``bridge peer add --via relay``: a party's side of the relay in its
home, through the real CLI. Bad input is refused, naming the field, and changes nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli.main import main
from bridge.core.errors import UsageError
from bridge.home.config import Config, PeerConfig, RelayTable
from bridge.home.folder import Home
from bridge.home.key_files import load_public
from bridge.transports.relay.nkeys import UserKey

RELAY = "nats://127.0.0.1:4222"


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    return result.exit_code, result.output


def snapshot(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file()}


@pytest.fixture()
def homes(tmp_path: Path) -> tuple[Path, Path, str, Path]:
    alpha, bravo = tmp_path / "alpha", tmp_path / "bravo"
    for home, party in ((alpha, "alpha"), (bravo, "bravo")):
        assert run(home, "init", "--party", party)[0] == 0
    creds = tmp_path / "alpha.creds"
    creds.write_text(UserKey.generate().seed_block())
    return alpha, bravo, load_public(bravo / "keys" / "bravo.pub").fingerprint, creds


def test_init_without_listen_has_no_peer_endpoint(homes) -> None:
    alpha, *_ = homes
    assert Home(alpha).config().listen is None
    assert "listen" not in (alpha / "bridge.toml").read_text()


def test_join_copies_the_credentials_private_and_writes_the_relay_table(homes) -> None:
    alpha, _, _, creds = homes
    code, out = run(alpha, "relay", "join", RELAY, "--creds", str(creds))
    assert code == 0, out
    copied = alpha / "relay.creds"
    assert copied.read_bytes() == creds.read_bytes()
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    relay = Home(alpha).config().relay
    assert relay is not None and relay.url == RELAY and relay.creds == "relay.creds"
    assert UserKey.generate().seed not in out  # the public key is shown, never a seed
    assert creds.read_text().splitlines()[1] not in out


@pytest.mark.parametrize(("args", "named"), [
    (["http://127.0.0.1:4222"], "nats://HOST:PORT or tls://HOST:PORT"),
    (["nats://user:pw@127.0.0.1:4222"], "nats://HOST:PORT"),
    (["tls://127.0.0.1:4222"], "needs --tls-ca"),
])
def test_join_refuses_a_url_that_is_not_a_relay_and_changes_nothing(homes, args, named) -> None:
    alpha, _, _, creds = homes
    before = snapshot(alpha)
    code, out = run(alpha, "relay", "join", *args, "--creds", str(creds))
    assert code != 0 and named in out
    assert snapshot(alpha) == before


def test_join_refuses_a_file_that_holds_no_seed_and_never_quotes_it(homes, tmp_path) -> None:
    alpha, *_ = homes
    bad = tmp_path / "bad.creds"
    bad.write_text("SECRET-LOOKING-TEXT not a seed\n")
    before = snapshot(alpha)
    code, out = run(alpha, "relay", "join", RELAY, "--creds", str(bad))
    assert code != 0 and "no user nkey seed" in out and "SECRET-LOOKING" not in out
    assert snapshot(alpha) == before


def test_peer_via_relay_needs_a_joined_relay_and_no_url(homes) -> None:
    alpha, bravo, fp, creds = homes
    pub = str(bravo / "keys" / "bravo.pub")
    before = snapshot(alpha)
    code, out = run(alpha, "peer", "add", pub, "--fingerprint", fp, "--via", "relay")
    assert code != 0 and "bridge relay join" in out
    code, out = run(alpha, "peer", "add", pub, "--fingerprint", fp)
    assert code != 0 and "needs --url" in out
    assert snapshot(alpha) == before
    assert run(alpha, "relay", "join", RELAY, "--creds", str(creds))[0] == 0
    code, out = run(alpha, "peer", "add", pub, "--fingerprint", fp, "--via", "relay",
                    "--url", "http://127.0.0.1:7443")
    assert code != 0 and "no URL" in out
    code, out = run(alpha, "peer", "add", pub, "--fingerprint", fp, "--via", "relay")
    assert code == 0, out
    assert "via:           relay" in out
    peer = Home(alpha).config().peers["bravo"]
    assert peer.via == "relay" and peer.url is None
    assert 'via = "relay"' in (alpha / "bridge.toml").read_text()
    code, out = run(alpha, "peer", "list")
    assert code == 0 and "via relay" in out


def test_config_refuses_a_peer_that_no_way_reaches() -> None:
    with pytest.raises(ValueError, match="url is missing"):
        PeerConfig(name="bravo", fingerprint="AB")
    with pytest.raises(ValueError, match="no url or tls_fingerprint"):
        PeerConfig(name="bravo", fingerprint="AB", via="relay", url="http://127.0.0.1:7443")
    with pytest.raises(ValueError, match="no \\[relay\\] table"):
        Config(party="alpha", peers={"bravo": PeerConfig(name="bravo", fingerprint="AB",
                                                         via="relay")})
    with pytest.raises(ValueError, match="needs tls_ca"):
        RelayTable(url="tls://relay.example:4222")


def test_an_http_peer_is_written_as_before_the_relay_existed(tmp_path: Path) -> None:
    cfg = Config(party="alpha", listen="127.0.0.1:7443", peers={"bravo": PeerConfig(
        name="bravo", url="http://127.0.0.1:7444", fingerprint="AB")})
    assert "via" not in cfg.to_toml() and "[relay]" not in cfg.to_toml()
    home = Home(tmp_path / "h")
    home.path.mkdir()
    home.write_config(cfg)
    assert home.config() == cfg
    with pytest.raises(UsageError):
        (home.path / "bridge.toml").write_text(cfg.to_toml() + '\n[relay]\nurl = "x"\n')
        home.config()
