"""Identity and private key files on disk (PROTOCOL.md §4.3, §4.4): reading them boundedly,
refusing a private key file that others can read, and writing one 0600 from birth.

The core reads and writes their text (``PublicIdentity.loads``, ``PrivateIdentity.dumps``);
this module only moves the bytes, so that the core touches no file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
from bridge.core.crypto.key_file_json import MAX_KEY_FILE_BYTES
from bridge.core.errors import UsageError
from bridge.home.files import write_file


def read_key_file(path: Path, what: str) -> bytes:
    """At most MAX_KEY_FILE_BYTES + 1 bytes: a larger file is refused without being held."""
    try:
        with path.open("rb") as f:
            return f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from exc


def load_public(path: str | os.PathLike[str]) -> PublicIdentity:
    p = Path(path)
    return PublicIdentity.loads(read_key_file(p, "identity file"), source=str(p))


def keyring_from_files(paths: Iterable[str | os.PathLike[str]]) -> Keyring:
    return Keyring.of(load_public(p) for p in paths)


def check_private_file_mode(path: Path) -> None:
    """Refuse a private key file that group or others can read, as ssh does."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise UsageError(f"cannot read private key file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise UsageError(
            f"Permissions {mode:04o} for '{path}' are too open: a private key file must not be "
            f"accessible by group or others. Bridge refuses to use it. "
            f"Fix: chmod 600 '{path}'"
        )


def load_private(path: str | os.PathLike[str], *,
                 passphrase: bytes | None = None) -> PrivateIdentity:
    p = Path(path)
    check_private_file_mode(p)
    return PrivateIdentity.loads(read_key_file(p, "private key file"), passphrase=passphrase,
                                 source=str(p))


def write_private(path: Path, identity: PrivateIdentity, *,
                  passphrase: bytes | None = None) -> None:
    """Create the key file with mode 0600 from the start (no window where it is readable), and
    never over an existing one."""
    write_file(path, identity.dumps(passphrase=passphrase))


__all__ = ["check_private_file_mode", "keyring_from_files", "load_private", "load_public",
           "read_key_file", "write_private"]
