"""``bridge backup`` and ``bridge restore``: a home in one file, and back.

The archive (a gzip'd tar, mode 0600) holds ``MANIFEST.json`` (what it is, when it was taken,
each link's last sequence numbers, the SHA-256 of every file), ``bridge.toml``, the public key
files, the TLS certificate, and ``data/bridge.db``: a consistent copy taken with SQLite's
online backup while the daemon runs. Private keys (``keys/*.key``, ``tls/key.pem``) only with
``--include-keys``: a key file not sealed with a passphrase is then in the archive as it is on
disk, and the command says so. A restore goes into a new or empty home only, checks every file
against the manifest and the store against its signatures, and leaves the home marked as
restored (``bridge.home.restored``) until the links are confirmed with the peers.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import click

from bridge import __version__
from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.core import times
from bridge.core.crypto.hashes import sha256
from bridge.core.errors import InputError, UsageError
from bridge.core.printable import quoted
from bridge.engine.ports import system_clock
from bridge.engine.store_check import check_all
from bridge.home.files import create_private, write_file
from bridge.home.folder import Home
from bridge.home.restored import confirm, mark_restored
from bridge.store.sqlite.backup import link_positions, online_copy
from bridge.store.sqlite.store import Store

BACKUP_VERSION = 1
MANIFEST = "MANIFEST.json"
DB_NAME = "data/bridge.db"
# Never in a backup: what a running daemon makes for itself, and the store's own files (the
# store goes in as its online copy).
SKIPPED = ("bridge.sock", "peer.port", "restored.json", "data/")
MAX_MEMBER = 1 << 40  # what a restore reads of one member at most (a tar bomb stays a refusal)


def _home_files(home: Home, include_keys: bool) -> tuple[list[str], list[str]]:
    """(the files to copy, the private ones left out or put in), as paths in the home."""
    chosen, private = [], []
    for path in sorted(p for p in home.path.rglob("*") if p.is_file() and not p.is_symlink()):
        name = path.relative_to(home.path).as_posix()
        if name.startswith(SKIPPED) or name in SKIPPED:
            continue
        if _is_private(name):
            private.append(name)
            if not include_keys:
                continue
        chosen.append(name)
    return chosen, private


def _is_private(name: str) -> bool:
    return name.endswith((".key", ".key.next")) or name == "tls/key.pem"


def _unsealed(home: Home, names: list[str]) -> list[str]:
    """The private key files among ``names`` that no passphrase seals."""
    out = []
    for name in names:
        if name.endswith((".key", ".key.next")):
            try:
                sealed = json.loads((home.path / name).read_text()).get("protection") != "none"
            except (OSError, ValueError, AttributeError):
                sealed = False
            if not sealed:
                out.append(name)
        elif name == "tls/key.pem":
            out.append(name)  # a PEM key written by bridge tls init is never sealed
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, 0
    tar.addfile(info, io.BytesIO(data))


def _write_archive(home: Home, out: Path, names: list[str], include_keys: bool) -> str:
    """The archive at ``out`` (0600, written to a private temporary file and renamed)."""
    cfg = home.config()
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".bridge-backup-") as tmp:
        db_copy = Path(tmp) / "bridge.db"
        online_copy(home.db_path, db_copy)
        links = {p: {"sent_seq": 0, "received_seq": 0} for p in cfg.peers}
        links.update(link_positions(db_copy))
        files = {name: (home.path / name).read_bytes() for name in names}
        files[DB_NAME] = db_copy.read_bytes()
        manifest = {"bridge_backup": BACKUP_VERSION, "bridge_version": __version__,
                    "party": cfg.party, "created": times.format_ms(system_clock()),
                    "includes_keys": include_keys, "links": links,
                    "files": {n: sha256(d).hex() for n, d in files.items()}}
        part = Path(tmp) / "archive"
        create_private(part)
        with tarfile.open(part, "w:gz") as tar:
            _add(tar, MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
            for name, data in files.items():
                _add(tar, name, data)
        os.replace(part, out)
    return str(manifest["created"])


@click.command()
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="The archive to write (must not exist; written mode 0600).")
@click.option("--include-keys", is_flag=True,
              help="Put the private keys in too. Without it, keep keys/*.key and tls/key.pem "
                   "safe yourself: a restore without them cannot sign or open anything.")
@click.pass_obj
def backup(obj: Ctx, output: Path, include_keys: bool) -> None:
    """Write a backup of this home to FILE: a consistent copy of the store (safe while the
    daemon runs), the configuration and the public key files."""
    home = obj.home
    with reporting():
        if output.exists():
            raise UsageError(f"{output} exists; give a new file name")
        names, private = _home_files(home, include_keys)
        created = _write_archive(home, output, names, include_keys)
    click.echo(f"Wrote {output} (mode 0600), taken at {created}: the store, "
               f"{len(names)} file(s) of {home.path}.")
    click.echo("It holds every record in clear: keep it as you keep the home.")
    if not include_keys:
        click.echo(f"Not in it: {', '.join(private) or 'no private key'} (keep them apart; "
                   "run again with --include-keys to add them).")
    else:
        for name in _unsealed(home, private):
            click.echo(f"WARNING: {name} is in the backup unencrypted; anyone who reads the "
                       "file can sign as this party. Encrypt the file or keep it offline.",
                       err=True)


def _safe_name(name: str, expected: dict[str, str]) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name not in expected:
        raise InputError(f"the archive holds {quoted(name)}, which its manifest does not list",
                         field="archive", code="bad_backup")
    return name


def _read_archive(archive: Path) -> tuple[dict[str, object], dict[str, bytes]]:
    """The manifest and every file, each checked against the manifest's SHA-256."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            man = members.get(MANIFEST)
            if man is None or not man.isfile():
                raise InputError(f"{archive} is not a Bridge backup (no {MANIFEST})",
                                 field="archive", code="bad_backup")
            manifest = json.loads(_member(tar, man))
            expected = manifest.get("files") if isinstance(manifest, dict) else None
            if manifest.get("bridge_backup") != BACKUP_VERSION or not isinstance(expected, dict):
                raise InputError(f"{archive}: not a backup this Bridge can read",
                                 field="archive", code="bad_backup")
            files = {}
            for name, member in members.items():
                if name == MANIFEST:
                    continue
                if not member.isfile():
                    raise InputError(f"{quoted(name)} in the archive is not a file",
                                     field="archive", code="bad_backup")
                files[_safe_name(name, expected)] = _member(tar, member)
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise InputError(f"cannot read {archive}: {exc}", field="archive",
                         code="bad_backup") from exc
    for name, digest in expected.items():
        if name not in files or sha256(files[name]).hex() != digest:
            raise InputError(f"{archive}: {name} is missing or not what was backed up",
                             field="archive", code="bad_backup")
    return manifest, files


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > MAX_MEMBER:
        raise InputError(f"{member.name} is too large", field="archive", code="bad_backup")
    fh = tar.extractfile(member)
    assert fh is not None  # a regular file
    return fh.read()


def _restore_into(home: Home, files: dict[str, bytes]) -> None:
    if home.path.exists() and any(home.path.iterdir()):
        raise UsageError(f"{home.path} is not empty; a restore goes into a new or empty folder")
    home.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home.path, 0o700)
    for name, data in files.items():
        target = home.path / name
        for folder in reversed(target.relative_to(home.path).parents[:-1]):
            (home.path / folder).mkdir(mode=0o700, exist_ok=True)
        write_file(target, data)


def _check_store(home: Home) -> list[str]:
    """The whole store check (as at the daemon's start): what is not what was signed."""
    store = Store(home.db_path)
    try:
        return [str(f) for f in check_all(store.check_rows())]
    finally:
        store.close()


def _parse_held(pairs: tuple[str, ...]) -> dict[str, int]:
    held = {}
    for pair in pairs:
        peer, _, seq = pair.partition("=")
        if not peer or not (seq.isascii() and seq.isdigit()):
            raise InputError(f"{quoted(pair)}: give PEER=SEQ (SEQ a whole number)",
                             field="--confirm")
        held[peer] = int(seq)
    return held


@click.command()
@click.argument("archive", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--home", "into", type=click.Path(path_type=Path), default=None,
              help="The home to restore into (new or empty); default: bridge --home.")
@click.option("--confirm", "held", multiple=True, metavar="PEER=SEQ",
              help="After a restore: the last sequence number each peer's operator reads as "
                   "received from you. Starts the home again if no peer holds more.")
@click.pass_obj
def restore(obj: Ctx, archive: Path | None, into: Path | None, held: tuple[str, ...]) -> None:
    """Restore the backup ARCHIVE into a new or empty home, check it, and mark it restored;
    with --confirm, confirm its links with the peers so that its daemon may start."""
    home = Home(into) if into is not None else obj.home
    with reporting():
        if held or archive is None:
            if archive is not None or not held:
                raise UsageError("give ARCHIVE to restore, or --confirm PEER=SEQ after one")
            sent = confirm(home, _parse_held(held))
            click.echo(f"Confirmed: no peer holds more than this backup ({json.dumps(sent)}). "
                       "The daemon may start.")
            return
        manifest, files = _read_archive(archive)
        _restore_into(home, files)
        faults = _check_store(home)
        links = manifest.get("links")
        mark_restored(home, created=str(manifest.get("created")),
                      links=links if isinstance(links, dict) else {})
    _report_restore(home, manifest, faults)


def _report_restore(home: Home, manifest: dict[str, object], faults: list[str]) -> None:
    click.echo(f"Restored {home.path} from the backup taken at {manifest.get('created')}.")
    if faults:
        for fault in faults:
            click.echo(f"store check: {fault}", err=True)
        raise SystemExit(1)
    click.echo("Store check: sound (every stored document is what was signed).")
    party = manifest.get("party")
    if not manifest.get("includes_keys"):
        click.echo(f"No private key in this backup: copy keys/{party}.key (and tls/key.pem "
                   "with TLS) into the home from where you keep them, mode 0600.")
    click.echo("Before its daemon starts, confirm each link: ask each peer's operator for the "
               "last sequence number they received from you (received_seq in `bridge status "
               f"--json`), then: bridge --home {home.path} restore --confirm PEER=SEQ")


__all__ = ["backup", "restore"]
