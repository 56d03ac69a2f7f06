"""``bridge audit``: check this home's audit log, export a transcript for a mediator.

Both commands read the store directly and only read it (the daemon may be running or not).
Parse, call, print: the checks live in ``bridge/core/audit.py`` and ``bridge/core/transcript/``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from bridge.cli.audit_split import split_views
from bridge.cli.context import Ctx
from bridge.cli.exits import Exit, reporting
from bridge.cli.options import force_option
from bridge.cli.readers import regular_file
from bridge.core import audit, audit_tally
from bridge.core.crypto.identity import check_party
from bridge.core.errors import UsageError
from bridge.core.printable import json_text, printable, quoted
from bridge.core.transcript import check_transcript_file, stream_transcript
from bridge.engine import store_check
from bridge.home.files import write_file_streamed
from bridge.home.folder import Home
from bridge.store.sqlite import audit_db
from bridge.store.sqlite.audit_tree import AuditTree
from bridge.store.sqlite.peer_log import PeerLog

WRITE_BLOCK = 1 << 20  # bytes of a transcript written at once


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@click.group("audit")
def audit_group() -> None:
    """Check the hash-chained audit log; export a transcript a mediator can verify offline."""


audit_group.add_command(split_views)  # the split views caught, with their evidence (§13.7)


def _check_home_store(db_path: Path) -> tuple[audit.AuditResult, str | None, list[str]]:
    """(the chain's result, how the store disagrees with the log, what is damaged in it)."""
    with reporting(failed=Exit.USAGE):  # no store, or one that cannot be read: exit 2
        conn = audit_db.connect(db_path)
        with contextlib.closing(conn), audit_db.snapshot(conn):
            held = store_check.audit_held(audit_db.check_rows(conn))  # a record at a time
            if held is not None:
                result, mismatch = held, None
            else:  # read whole, to say what is wrong
                records = audit_db.read_audit(conn)
                result = audit.check_chain(records)
                mismatch = (audit.check_store(records, audit_db.store_facts(conn))
                            if result.ok else None)
            faults = store_check.check_store(audit_db.check_rows(conn)) if mismatch is None else []
    return result, mismatch, [str(f) for f in faults]


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def audit_verify(obj: Ctx, as_json: bool) -> None:
    """Check this home's audit log, record by record, and against the store; and the store
    itself: the file (SQLite's quick_check), every document's entries against its signed Merkle
    root, every item's status against its signed acknowledgement history.

    Prints "OK: DB: N records from T1 to T2, head HASH" or "FAIL: DB: record SEQ: <why>
    [reason]" naming the first bad record, or "FAIL: DB: <document>: <why> [store_corrupt]"
    naming each damaged document. Read-only; the daemon may be running.
    Exit status: 0 when the log holds, 1 when it does not, 2 for a usage error (no store).
    """
    db_path = obj.home.db_path
    result, mismatch, faults = _check_home_store(db_path)
    ok = result.ok and mismatch is None and not faults
    record: dict[str, Any] = {"file": str(db_path), **result.to_json()}
    if mismatch is not None:
        record.update(ok=False, reason="store_mismatch", diagnosis=mismatch)
        text = f"the store and the audit log disagree: {mismatch} [store_mismatch]"
    elif faults:
        record.update(ok=False, reason="store_corrupt", diagnosis=faults[0], faults=faults)
        text = "; ".join(f"{f} [store_corrupt]" for f in faults)
    else:
        text = result.summary()
    if as_json:
        click.echo(json_text(record))
    else:
        click.echo(f"{'OK' if ok else 'FAIL'}: {db_path}: {printable(text)}")
    sys.exit(int(Exit.OK if ok else Exit.FAILED))


@contextlib.contextmanager
def _exchange(home: Home, peer: str) -> Iterator[sqlite3.Connection]:
    """One read transaction on the store, whose audit log holds, that knows ``peer``."""
    with reporting(failed=Exit.USAGE):
        conn = audit_db.connect(home.db_path)
        with contextlib.closing(conn), audit_db.snapshot(conn):
            rows = audit_db.check_rows(conn)
            chain = audit_tally.walk_chain(rows.iter_audit_records()) or \
                audit.check_chain(rows.audit_records())  # read whole only to say what is wrong
            if not chain.ok:
                click.echo(f"FAIL: {home.db_path}: {printable(chain.summary())}; not exporting "
                           "from a broken audit log", err=True)
                sys.exit(int(Exit.FAILED))
            if peer not in home.config().peers and not audit_db.known_peer(conn, peer):
                raise UsageError(f"--peer: no exchange with {quoted(peer)} in this store")
            yield conn


def _write(output: Path, pieces: Iterable[bytes], *, replace: bool) -> int:
    """``pieces`` written to a new file at ``output`` a block at a time; its size."""
    size = 0

    def produce(append: Callable[[bytes], None]) -> None:
        nonlocal size
        block = bytearray()
        for piece in pieces:
            block += piece
            if len(block) >= WRITE_BLOCK:
                append(bytes(block))
                size += len(block)
                block.clear()
        append(bytes(block))
        size += len(block)

    write_file_streamed(output, produce, replace=replace)
    return size


def _witnessed(home: Home, parts: audit_db.TranscriptSource) -> list[dict[str, Any]]:
    """The witnessed times of the transcript's documents (PROTOCOL.md §13.5), if any."""
    with reporting(failed=Exit.USAGE):
        conn = audit_db.connect(home.db_path)
        with contextlib.closing(conn), audit_db.snapshot(conn):
            digests = {d.signed.digest for d in parts.documents}
            try:
                # Ours, then the peer's that came with its checkpoints (§13.7).
                return [*AuditTree(conn).witnessed_evidence(digests),
                        *PeerLog(conn).peer_witnessed_evidence(digests)]
            except sqlite3.OperationalError:  # a store not yet upgraded: nothing witnessed
                return []


def _say_exported(me: str, peer: str, output: Path, size: int,
                  parts: audit_db.TranscriptSource) -> None:
    n_acks = sum(d.signed.header.type == "ack" for d in parts.documents)
    click.echo(f"wrote the transcript {me}↔{peer} to {output} ({size} bytes): "
               f"{_count(len(parts.documents) - n_acks, 'document')}, "
               f"{_count(n_acks, 'acknowledgement')}, "
               f"{_count(parts.outbound, 'envelope')} {me}→{peer} and "
               f"{len(parts.inbound)} {peer}→{me} with signed receipts")
    if parts.pending:
        click.echo(f"left out: {_count(parts.pending, 'envelope')} to {peer} not delivered yet")
    if parts.unbound:
        click.echo(f"left out: {_count(parts.unbound, 'envelope')} from {peer} received before "
                   "their signatures were kept (nothing binds their headers)")
    if parts.incomplete:
        click.echo(f"entries left out (still arriving): {printable(', '.join(parts.incomplete))}")


@audit_group.command("export")
@click.option("--peer", required=True, help="The party whose exchange with us to export.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the transcript (a new file, mode 0600).")
@force_option
@click.option("--with-entries/--without-entries", default=True, show_default=True,
              help="Include every document's entries (what lets a mediator check each "
                   "acknowledgement against what was declared), or signed headers only.")
@click.pass_obj
def audit_export(obj: Ctx, peer: str, output: Path, with_entries: bool, force: bool) -> None:
    """Export the transcript of the exchange with PEER: every document and acknowledgement,
    and each direction's envelopes with the recipient's signed transport receipts.

    Anyone can check it offline: bridge verify FILE --keys A.pub --keys B.pub
    Exit status: 0 when written and it verifies against this home's keys, 1 when the audit log
    or the transcript does not hold, 2 for a usage error.
    """
    home = obj.home
    with reporting(failed=Exit.USAGE):
        check_party(peer, field_name="--peer")
        me = home.config().party
        # With every key's history: a transcript spans rotations, so it needs each retired
        # key and the rotation that bounds it, as a mediator's check does (PROTOCOL.md §4.6).
        keys = home.keyring()
    # Entries name persons: the file is the exporter's to hand over, not the machine's users'
    # (0600, never through a link, an existing file only with --force). Written as it is
    # read from the store: no whole document's entries, nor our envelopes, in memory at once.
    with _exchange(home, peer) as conn:
        parts = audit_db.transcript_source(conn, peer, with_entries=with_entries)
        pieces = stream_transcript(
            parties=(me, peer), exported_at=int(time.time() * 1000), documents=parts.documents,
            outbound=(parts.outbound, parts.envelopes()), inbound=parts.inbound,
            witnessed=_witnessed(home, parts) or None)
        size = _write(output, pieces, replace=force)
    _say_exported(me, peer, output, size, parts)
    # The exporter checks what it wrote, as a mediator will (with this home's pinned keys),
    # reading it a piece at a time as it was written.
    with reporting(failed=Exit.USAGE):
        try:
            with regular_file(output) as (open_file, _size):
                result = check_transcript_file(open_file, keys)
        except OSError as exc:
            raise UsageError(f"cannot read back {output}: {exc.strerror or exc}") from exc
    if not result.ok:
        click.echo(f"FAIL: {output}: {printable(result.summary())}", err=True)
        sys.exit(int(Exit.FAILED))
    sys.exit(int(Exit.OK))

