"""bridge.home.key_files: identity and private key files on disk, read boundedly, private ones
refused when others can read them and written 0600 from birth."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import UsageError
from bridge.home.key_files import (
    check_private_file_mode,
    keyring_from_files,
    load_private,
    load_public,
    write_private,
)


def test_load_public_from_file(tmp_path: Path, alpha: PrivateIdentity) -> None:
    path = tmp_path / "alpha.pub"
    path.write_text(alpha.public.dumps())
    assert load_public(path) == alpha.public


def test_load_public_missing_file_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nothing\.pub"):
        load_public(tmp_path / "nothing.pub")


def test_write_private_creates_mode_0600_and_loads(tmp_path: Path,
                                                   alpha: PrivateIdentity) -> None:
    path = tmp_path / "alpha.key"
    write_private(path, alpha)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_private(path).public == alpha.public


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o610, 0o601])
def test_private_key_readable_by_others_refused(tmp_path: Path, alpha: PrivateIdentity,
                                                mode: int) -> None:
    path = tmp_path / "alpha.key"
    write_private(path, alpha)
    os.chmod(path, mode)
    with pytest.raises(UsageError) as exc:
        load_private(path)
    message = str(exc.value)
    assert str(path) in message
    assert "chmod 600" in message
    assert f"{mode:04o}" in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_key_owner_only_modes_accepted(tmp_path: Path, alpha: PrivateIdentity,
                                               mode: int) -> None:
    path = tmp_path / "alpha.key"
    write_private(path, alpha)
    os.chmod(path, mode)
    check_private_file_mode(path)
    assert load_private(path).key_id == alpha.key_id


def test_missing_private_key_file_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"absent\.key"):
        load_private(tmp_path / "absent.key")


def test_keyring_from_files(tmp_path: Path, alpha: PrivateIdentity,
                            beta: PrivateIdentity) -> None:
    paths = []
    for ident in (alpha, beta):
        p = tmp_path / f"{ident.party}.pub"
        p.write_text(ident.public.dumps())
        paths.append(p)
    assert keyring_from_files(paths).get(beta.key_id) == beta.public
