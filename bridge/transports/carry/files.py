"""Carrier files on disk: written mode 0600 through ``bridge.home.files`` (never over an
existing file unless asked), read as a stream that the daemon applies record by record.

The daemon does the work (it holds the store): an export is its stream, checked here as it
arrives (a stream cut short leaves no file behind); an import is this file streamed to it.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.client import BridgeClient
from bridge.core import carry
from bridge.core.carry import CarryLimits, Feeder, FileKind, Reader
from bridge.core.errors import UsageError
from bridge.home.files import check_writable, write_file, write_file_streamed

LIMITS = CarryLimits()
# Our own daemon's stream is checked for being whole, not bounded for hostility: a record may
# be as long as its daemon's envelope limit, whatever that is set to.
EXPORT_CHECK = CarryLimits(max_file_bytes=LIMITS.max_file_bytes,
                           max_records=LIMITS.max_records,
                           max_record_bytes=LIMITS.max_file_bytes)


@dataclass(frozen=True, kw_only=True)
class Exported:
    path: Path | None  # None: nothing was pending, no file was written
    count: int  # envelopes in the file
    pending: int  # envelopes to the peer not yet answered (more than count past the cap)
    size: int


@dataclass(frozen=True, kw_only=True)
class Imported:
    kind: FileKind
    report: dict[str, Any]
    receipts: Path | None = None
    receipt_count: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


def export_file(client: BridgeClient, peer: str, path: Path, *, force: bool) -> Exported:
    """Write our unanswered envelopes to ``peer`` into a new carrier file at ``path``."""
    check_writable(path, replace=force)  # before the daemon counts an attempt for any of them
    feeder = Feeder(Reader(EXPORT_CHECK, FileKind.ENVELOPES))
    events: list[carry.Event] = []
    got = {"pending": 0, "size": 0}

    def produce(append: Any) -> None:
        def piece(data: bytes) -> None:
            append(data)
            got["size"] += len(data)
            events.extend(feeder.push(data))

        got["pending"] = client.carry_export(peer, piece)
        events.extend(feeder.close())
        broken = [e for e in events if isinstance(e, carry.Broken)]
        if broken or not any(isinstance(e, carry.Finished) for e in events):
            why = broken[0].detail if broken else "no footer"
            raise UsageError(f"the daemon's carrier file did not arrive whole ({why}); "
                             f"nothing was written to {path}: export again",
                             code="export_incomplete")
        if got["pending"] == 0:
            raise _NothingPending

    try:
        write_file_streamed(path, produce, replace=force)
    except _NothingPending:
        return Exported(path=None, count=0, pending=0, size=0)
    count = sum(isinstance(e, carry.RecordRead) for e in events)
    return Exported(path=path, count=count, pending=got["pending"], size=got["size"])


class _NothingPending(Exception):
    """Nothing to carry: the file is not written at all."""


def file_kind(path: Path) -> FileKind | None:
    """The kind a carrier file's prefix names, or None when it names none (the daemon then
    says what is wrong with it)."""
    with path.open("rb") as f:
        prefix = f.read(len(carry.MAGIC) + 2)
    if len(prefix) < len(carry.MAGIC) + 2 or not prefix.startswith(carry.MAGIC):
        return None
    kind = prefix[len(carry.MAGIC) + 1]
    return FileKind(kind) if kind in tuple(FileKind) else None


def import_file(client: BridgeClient, path: Path, *, receipts: Path | None,
                force: bool) -> Imported:
    """Stream the carrier file at ``path`` to the daemon; for envelopes, write the receipts
    file it answers with at ``receipts``."""
    kind = file_kind(path) or FileKind.ENVELOPES
    if kind is FileKind.ENVELOPES:
        if receipts is None:
            raise UsageError("give -o RECEIPTS: the receipts of these envelopes are what "
                             "travels back to their sender", code="usage")
        check_writable(receipts, replace=force)  # before anything is applied
    elif receipts is not None:
        raise UsageError(f"{path} holds answers to our envelopes: importing it writes no "
                         "receipts file (drop -o)", code="usage")
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path} is not a regular file", code="usage")
        if st.st_size > LIMITS.max_file_bytes:
            raise UsageError(f"{path} is over {LIMITS.max_file_bytes} bytes: no carrier file "
                             "is that large", code="too_large")
        report = client.carry_import(f, st.st_size, kind.label)
    written, count = _write_receipts(report, receipts, force=force)
    return Imported(kind=kind, report=report, receipts=written, receipt_count=count,
                    records=list(report.get("records") or []))


def _write_receipts(report: dict[str, Any], path: Path | None, *, force: bool
                    ) -> tuple[Path | None, int]:
    raw = report.get("receipts")
    if path is None or not isinstance(raw, str):
        return None, 0
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UsageError("the daemon's receipts are not base64", code="invalid_response") \
            from exc
    write_file(path, data, replace=force)
    return path, sum(isinstance(e, carry.RecordRead) for e in carry.read_all(data))
