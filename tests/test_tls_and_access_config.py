"""TLS certificates, TLS pins and local-access settings in a home, without daemons."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli.main import main
from bridge.core.errors import InputError, UsageError
from bridge.home.folder import Home
from bridge.home.tls import (
    TlsFiles,
    check_peer_transport,
    create_certificate,
    file_fingerprint,
    format_tls_fingerprint,
    normalise_tls_fingerprint,
    server_context,
)
from bridge.local.access import allowed_uids, check_home, check_private_folder

HEX = "ce7b6822016696667" + "50f29c477a43a40838af4e160a5b86b05ab5743d11f3f09"


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("typed", [
    HEX, HEX.upper(), format_tls_fingerprint(HEX), f"SHA256:{HEX}",
    f"sha256 Fingerprint={format_tls_fingerprint(HEX)}", " ".join(HEX[i:i + 4]
                                                                 for i in range(0, 64, 4)),
])
def test_tls_fingerprint_typed_any_usual_way(typed: str) -> None:
    assert normalise_tls_fingerprint(typed) == HEX


@pytest.mark.parametrize("bad", ["", HEX[:-2], HEX + "00", "g" * 64, "md5:" + HEX[:32]])
def test_tls_fingerprint_refused(bad: str) -> None:
    with pytest.raises(InputError):
        normalise_tls_fingerprint(bad)


def test_certificate_made_once_key_private(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    fp = create_certificate(folder, "alpha")
    files = TlsFiles.of(folder)
    assert file_fingerprint(files) == fp
    assert (files.key.stat().st_mode & 0o777) == 0o600
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert b"PRIVATE KEY" in files.key.read_bytes()
    with pytest.raises(UsageError, match="refusing to overwrite"):
        create_certificate(folder, "alpha")
    assert file_fingerprint(files) == fp
    server_context(files)  # loads
    os.chmod(files.key, 0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        server_context(files)


def test_pin_needs_https_and_https_needs_a_pin() -> None:
    check_peer_transport("beta", "http://127.0.0.1:1", None)
    check_peer_transport("beta", "https://127.0.0.1:1", HEX)
    with pytest.raises(UsageError, match="no TLS certificate fingerprint"):
        check_peer_transport("beta", "https://127.0.0.1:1", None)
    with pytest.raises(UsageError, match="not https"):
        check_peer_transport("beta", "http://127.0.0.1:1", HEX)


def test_config_round_trip(tmp_path: Path) -> None:
    home = Home(tmp_path / "a")
    home.init("alpha", tls=True)
    cfg = home.config()
    assert cfg.tls_enabled and cfg.allowed_uids is None
    assert TlsFiles.of(home.tls_dir).exist()
    home.write_config(dataclasses.replace(cfg, allowed_uids=(0, 1000)))
    assert home.config().allowed_uids == (0, 1000)
    assert allowed_uids(None) == {os.geteuid(), 0}
    assert allowed_uids((1000,)) == {1000}  # an explicit list is exact: root not added
    text = home.config_path.read_text()
    home.config_path.write_text(re.sub(r"allowed_uids = \[[^]]*\]", 'allowed_uids = ["root"]',
                                       text))
    with pytest.raises(UsageError, match="allowed_uids"):
        home.config()
    home.config_path.write_text(text.replace("enabled = true", 'enabled = "yes"'))
    with pytest.raises(UsageError, match="enabled"):
        home.config()


def test_init_without_tls_makes_no_certificate(tmp_path: Path) -> None:
    home = Home(tmp_path / "a")
    home.init("alpha")
    assert not home.config().tls_enabled
    assert not home.tls_dir.exists()
    code, out, _ = run(home.path, "keys", "show", "--json")
    assert code == 0 and "tls_fingerprint" not in json.loads(out)
    code, out, _ = run(home.path, "tls", "init", "--json")
    assert code == 0
    made = json.loads(out)
    assert made["created"] and home.config().tls_enabled
    code, out, _ = run(home.path, "keys", "show", "--json")
    assert json.loads(out)["tls_fingerprint"] == made["tls_fingerprint"]
    code, out, _ = run(home.path, "tls", "init", "--json")  # again: kept, not replaced
    assert json.loads(out) == {**made, "created": False}


def test_peer_add_with_tls_fingerprint(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(a, "init", "--party", "alpha")[0] == 0
    assert run(b, "init", "--party", "beta", "--tls")[0] == 0
    pub = str(b / "keys" / "beta.pub")
    fp = Home(b).public_identity().fingerprint
    tls_fp = file_fingerprint(TlsFiles.of(Home(b).tls_dir))

    code, _, err = run(a, "peer", "add", pub, "--url", "http://127.0.0.1:7444",
                       "--fingerprint", fp, "--tls-fingerprint", tls_fp)
    assert code != 0 and "not https" in err
    assert "beta" not in Home(a).config().peers

    code, out, _ = run(a, "peer", "add", pub, "--url", "https://127.0.0.1:7444",
                       "--fingerprint", fp, "--tls-fingerprint", format_tls_fingerprint(tls_fp),
                       "--json")
    assert code == 0, out
    assert json.loads(out)["tls_fingerprint"] == tls_fp
    assert Home(a).config().peers["beta"].tls_fingerprint == tls_fp

    # Re-pinning without it keeps the pin (the URL is still https).
    code, out, _ = run(a, "peer", "add", pub, "--url", "https://127.0.0.1:7445",
                       "--fingerprint", fp, "--json")
    assert code == 0 and json.loads(out)["action"] == "updated"
    assert Home(a).config().peers["beta"].tls_fingerprint == tls_fp

    # Another certificate is a key change: refused without --replace.
    code, _, err = run(a, "peer", "add", pub, "--url", "https://127.0.0.1:7445",
                       "--fingerprint", fp, "--tls-fingerprint", HEX)
    assert code != 0 and "another TLS certificate" in err
    assert Home(a).config().peers["beta"].tls_fingerprint == tls_fp
    code, out, _ = run(a, "peer", "add", pub, "--url", "https://127.0.0.1:7445",
                       "--fingerprint", fp, "--tls-fingerprint", HEX, "--replace", "--json")
    assert code == 0 and json.loads(out)["action"] == "replaced"
    assert Home(a).config().peers["beta"].tls_fingerprint == HEX
    code, out, _ = run(a, "peer", "list", "--json")
    assert json.loads(out)[0]["tls_fingerprint"] == HEX


def test_private_folder_checks(tmp_path: Path) -> None:
    home = Home(tmp_path / "a")
    home.init("alpha")
    check_home(home)
    for mode in (0o710, 0o701, 0o770, 0o755):
        os.chmod(home.keys_dir, mode)
        with pytest.raises(UsageError, match=r"too open.*chmod 700") as err:
            check_home(home)
        assert str(home.keys_dir) in str(err.value)
    os.chmod(home.keys_dir, 0o700)
    check_private_folder(tmp_path / "missing", what="folder")  # made later, 0700
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        check_private_folder(tmp_path / "file", what="folder")


def test_replacing_a_tls_peer_url_with_http_is_no_silent_downgrade(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(a, "init", "--party", "alpha")[0] == 0
    assert run(b, "init", "--party", "beta", "--tls")[0] == 0
    pub = str(b / "keys" / "beta.pub")
    fp = Home(b).public_identity().fingerprint
    tls_fp = file_fingerprint(TlsFiles.of(Home(b).tls_dir))
    assert run(a, "peer", "add", pub, "--url", "https://127.0.0.1:7444", "--fingerprint", fp,
               "--tls-fingerprint", tls_fp)[0] == 0

    for extra in ((), ("--replace",)):  # a key change is not a consent to drop TLS
        code, _, err = run(a, "peer", "add", pub, "--url", "http://127.0.0.1:7444",
                           "--fingerprint", fp, *extra)
        assert code != 0 and "--drop-tls" in err and "without TLS" in err
        peer = Home(a).config().peers["beta"]
        assert (peer.url, peer.tls_fingerprint) == ("https://127.0.0.1:7444", tls_fp)

    code, out, _ = run(a, "peer", "add", pub, "--url", "http://127.0.0.1:7444",
                       "--fingerprint", fp, "--drop-tls", "--json")
    assert code == 0 and json.loads(out)["action"] == "replaced"
    peer = Home(a).config().peers["beta"]
    assert (peer.url, peer.tls_fingerprint) == ("http://127.0.0.1:7444", None)
