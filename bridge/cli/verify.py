"""``bridge verify``: offline verification of receipts and transcripts (no daemon, no home).

Prints ``OK: FILE: …`` or ``FAIL: FILE: …`` per file, like sigstore's verifier. Exit status 0
when every receipt holds, 1 when any does not, 2 for a usage error (no files, a ``--keys`` file
that is missing, unreadable or not an identity file). A malformed receipt is never a traceback:
it is a FAIL line with the reason code of the check that failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bridge.cli.exits import Exit
from bridge.cli.readers import regular_file
from bridge.cli.verify_json import JsonResults, StatusSpool
from bridge.core import codec, keylife
from bridge.core.crypto.identity import Keyring, PublicIdentity
from bridge.core.errors import BridgeError
from bridge.core.receipts import ReceiptResult
from bridge.core.receipts.items import StatusSink
from bridge.core.receipts.verify import check_receipt_file
from bridge.core.receipts.witnessed import WitnessReport, check_witnessed_in
from bridge.core.transcript import (
    Opener,
    TranscriptResult,
    check_transcript_file,
    is_transcript_file,
    witnessed_view,
)

# An identity file, a statement, or a key history (identities and statements of SMALL size
# each, as text): room for a long history, and still a bound.
MAX_KEY_FILE_BYTES = 16 * codec.SMALL_LIMITS.max_bytes


def _load_keys(paths: tuple[Path, ...]) -> Keyring:
    """Identity files (trusted as given), key history files (``bridge keys history``: earlier
    keys, trusted through the rotations onto given keys) and key statement files (a rotation
    or revocation, each checked against the identities of the keys it names, which must be
    given too). PROTOCOL.md §4.6."""
    anchors: list[PublicIdentity] = []
    history: list[PublicIdentity] = []
    statements: list[bytes] = []
    loose: list[tuple[Path, bytes]] = []
    for path in paths:
        try:
            raw = _read_bounded(path, MAX_KEY_FILE_BYTES)
        except _TooLarge as exc:
            raise click.UsageError(f"--keys {path}: {exc}") from exc
        except OSError as exc:
            raise click.UsageError(f"--keys {path}: cannot read: {exc.strerror}") from exc
        try:
            if keylife.statement_type(raw) is not None:
                loose.append((path, raw))
            elif keylife.is_history_file(raw):
                h = keylife.History.loads(raw, source=str(path))
                history += h.identities
                statements += h.statements
            else:
                anchors.append(PublicIdentity.loads(raw, source=str(path)))
        except BridgeError as err:
            # UsageError (unreadable) or VerificationError (not a valid file of its kind):
            # either way the command cannot do what was asked.
            raise click.UsageError(f"--keys {path}: {err}") from err
    known = {i.key_id for i in (*anchors, *history)}
    for path, raw in loose:
        if keylife.statement_key_id(raw)[1] not in known:
            raise click.UsageError(f"--keys {path}: is about a key whose identity file was "
                                   "not given")
        statements.append(raw)
    try:
        return keylife.build_keyring(anchors, history, statements, strict=True)
    except BridgeError as err:
        raise click.UsageError(f"--keys: {err}") from err


def _check_file(path: Path, keys: Keyring, witnesses: tuple[PublicIdentity, ...] = (), *,
                statuses: bool | StatusSink = False) -> tuple[bool, str, dict[str, Any]]:
    """(ok, the line's text after the file name, the JSON record) for one file; with
    ``statuses``, a whole-document receipt's record lists every item's final status (or,
    a ``StatusSink``, they go there)."""
    try:
        with regular_file(path) as (open_file, _size):
            result, report = _checked(open_file, keys, witnesses, statuses)
    except OSError as exc:
        return _unreadable(f"cannot read: {exc.strerror or exc}", "unreadable")
    ok, text, record = result.ok, result.summary(), result.to_json()
    if not ok:
        return ok, text, record
    # The witnessed times (PROTOCOL.md §13.5), one line each under the file's line.
    if report is None:
        if witnesses:
            text += ("\n  no witnessed times in this receipt: the times are the parties' own "
                     "claims")
        return ok, text, record
    record["witnessed"] = report.to_json()
    if not report.ok:
        return False, f"{report.diagnosis} [{report.reason}]", {
            **record, "ok": False, "reason": report.reason, "diagnosis": report.diagnosis}
    return ok, text + "".join(f"\n  {line}" for line in report.lines()), record


def _checked(open_file: Opener, keys: Keyring, witnesses: tuple[PublicIdentity, ...],
             statuses: bool | StatusSink
             ) -> tuple[TranscriptResult | ReceiptResult, WitnessReport | None]:
    """The file's own check, and its witnessed times' when that passed. A transcript (type
    "bridge.transcript", PROTOCOL.md §11.4) or a receipt bundle (anything else, §7) is read a
    piece at a time, never whole, whatever its size; the witnessed times are those read by
    the check, not decoded again."""
    if is_transcript_file(open_file):
        transcript = check_transcript_file(open_file, keys)
        return transcript, (check_witnessed_in(witnessed_view(open_file), keys, witnesses)
                            if transcript.ok else None)
    receipt, bundle = check_receipt_file(open_file, keys, keep_statuses=statuses)
    return receipt, (check_witnessed_in(bundle, keys, witnesses)
                     if receipt.ok and bundle is not None else None)


def _load_witness(path: Path) -> PublicIdentity:
    try:
        return PublicIdentity.loads(_read_bounded(path, MAX_KEY_FILE_BYTES), source=str(path))
    except (_TooLarge, OSError, BridgeError) as exc:
        raise click.UsageError(f"--witness {path}: {exc}") from exc


class _TooLarge(Exception):
    pass


def _read_bounded(path: Path, limit: int) -> bytes:
    """The file's bytes, never more than ``limit`` read (``regular_file``, ``_read_whole``)."""
    with regular_file(path) as (open_file, size):
        return _read_whole(open_file, size, limit)


def _read_whole(open_file: Opener, size: int, limit: int) -> bytes:
    """All of a file of ``size`` bytes, refused past ``limit``: a file that grows while it is
    read is cut at the limit and refused, not read on."""
    if size > limit:
        raise _TooLarge(f"{size} bytes exceeds the limit of {limit}")
    data = open_file().read(limit + 1)
    if len(data) > limit:
        raise _TooLarge(f"more than {limit} bytes")
    return data


def _unreadable(diagnosis: str, reason: str) -> tuple[bool, str, dict[str, Any]]:
    return False, f"{diagnosis} [{reason}]", {"ok": False, "kind": "unknown", "reason": reason,
                                              "diagnosis": diagnosis, "checks": []}


@click.command()
@click.argument("files", nargs=-1, metavar="FILE...", type=click.Path(path_type=Path))
@click.option("--keys", "key_files", multiple=True, metavar="PUBFILE",
              type=click.Path(path_type=Path),
              help="A public identity file (.pub) to trust, a key history file (bridge keys "
                   "history) or a key statement (.rotation, .revocation); repeat for each.")
@click.option("--witness", "witness_files", multiple=True, metavar="PUBFILE",
              type=click.Path(path_type=Path),
              help="A witness's identity file: check its cosignatures on the receipt's "
                   "witnessed times and say what they bound; repeat for each.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
def verify(files: tuple[Path, ...], key_files: tuple[Path, ...], as_json: bool,
           witness_files: tuple[Path, ...] = ()) -> None:
    """Verify receipt bundles and transcripts offline against the parties' public identity
    files.

    Prints "OK: FILE: <what it proves>" or "FAIL: FILE: <why> [reason]" for each FILE.
    Exit status: 0 when every file holds, 1 when any fails, 2 for a usage error.
    """
    if not files:
        raise click.UsageError("give at least one receipt FILE")
    if not key_files:
        raise click.UsageError("give the parties' identity files with --keys PUBFILE")
    keys = _load_keys(key_files)
    witnesses = tuple(_load_witness(p) for p in witness_files)

    all_ok = True
    # JSON as each file is checked, a whole document's statuses spooled (verify_json): reasons,
    # evidence and item ids are the signer's text, escaped by json_text.
    results = JsonResults(lambda text: click.echo(text, nl=False)) if as_json else None
    for path in files:
        if results is None:
            ok, text, _ = _check_file(path, keys, witnesses)
            click.echo(f"{'OK' if ok else 'FAIL'}: {path}: {text}")
            all_ok &= ok
            continue
        spool = StatusSpool()
        try:
            ok, _, record = _check_file(path, keys, witnesses, statuses=spool.add)
            results.add({"file": str(path), **record},
                        spool if "statuses" in record else None)
        finally:
            spool.close()
        all_ok &= ok
    if results is not None:
        results.end()
    sys.exit(int(Exit.OK if all_ok else Exit.FAILED))
