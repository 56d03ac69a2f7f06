"""What a receipt check found: the checks carried out, who signed, and what the receipt proves
(or the stable reason code of the check that failed). Frozen values; no verification here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.core.crypto.identity import PublicIdentity, iso_time
from bridge.core.printable import printable as _printable


@dataclass(frozen=True, kw_only=True)
class Check:
    """One verification step that was carried out, numbered in the order it ran."""

    number: int
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class Signer:
    """Who signed: the party named in the header, whose key the keyring holds."""

    party: str
    fingerprint: str
    key_id: bytes = field(repr=False)

    @classmethod
    def of(cls, identity: PublicIdentity) -> Signer:
        return cls(party=identity.party, fingerprint=identity.fingerprint,
                   key_id=identity.key_id)

    def __str__(self) -> str:
        return f"{self.party} [{self.fingerprint}]"


@dataclass(frozen=True, kw_only=True)
class StatusChange:
    """One acknowledgement of the item, as signed by the receiver."""

    status: str
    reason: str | None
    evidence: str | None
    created: int  # milliseconds since the Unix epoch, UTC, from the ack header
    ack_id: str

    @property
    def time(self) -> str:
        return iso_time(self.created)


@dataclass(frozen=True, kw_only=True)
class ReceiptResult:
    """What a receipt proves, or why it proves nothing.

    ``reason`` is the stable code of the failed check (``None`` when ``ok``) and ``diagnosis``
    says it for people. ``status_reason`` and ``evidence`` are the receiver's words about the
    item. For a per-item bundle the item fields are set; for a whole-document bundle the counts
    and ``statuses`` (every declared item's final status; an unacknowledged item has none).
    """

    ok: bool
    kind: str  # "item", "document", or "unknown" when the bundle did not decode
    checks: tuple[Check, ...]
    reason: str | None = None
    diagnosis: str | None = None
    doc_type: str | None = None
    doc_id: str | None = None
    batch: str | None = None
    declared_by: Signer | None = None
    acknowledged_by: Signer | None = None
    time: str | None = None  # ISO 8601 UTC of the last acknowledgement
    # per-item bundle
    item_id: str | None = None
    status: str | None = None
    status_reason: str | None = None
    evidence: str | None = None
    history: tuple[StatusChange, ...] = ()
    # whole-document bundle
    item_count: int | None = None
    ack_count: int | None = None
    unacknowledged: int | None = None
    undeclared: int | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict, repr=False)
    # What the signatures cannot prove by themselves: a signature by a key later revoked,
    # dated before the revocation's ``since`` (PROTOCOL.md §4.5). The receipt holds; these say
    # how far.
    caveats: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line a person can read. Every text that came from the bundle is escaped, so a
        signer cannot forge extra output lines (or terminal controls) through a reason."""
        if not self.ok:
            return f"{_printable(self.diagnosis or 'receipt does not verify')} [{self.reason}]"
        where = f"{self.doc_type} {self.doc_id}"
        if self.batch is not None:
            where += f" (batch {_printable(self.batch)})"
        if self.kind == "item":
            status = str(self.status)
            if self.status_reason:
                status += f" (reason: {_printable(self.status_reason)})"
            if self.evidence:
                status += f" (evidence: {_printable(self.evidence)})"
            line = (f"item {self.item_id} declared by {self.declared_by} in {where}; "
                    f"acknowledged by {self.acknowledged_by} as {status} at {self.time}")
            if len(self.history) > 1:
                line += "; history: " + " → ".join(c.status for c in self.history)
            return line + self._caveat_text()
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items(),
                                                         key=lambda kv: (-kv[1], kv[0])))
        return (f"{where}: {self.item_count} items declared by {self.declared_by}; "
                f"{self.ack_count} acknowledgement(s) by {self.acknowledged_by}, last at "
                f"{self.time}: {counts}; {self.unacknowledged} unacknowledged"
                + self._caveat_text())

    def _caveat_text(self) -> str:
        return "".join(f"; CAUTION: {_printable(c)}" for c in self.caveats)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``bridge verify --json``)."""
        out: dict[str, Any] = {
            "ok": self.ok, "kind": self.kind, "reason": self.reason,
            "diagnosis": self.diagnosis,
            "checks": [{"number": c.number, "name": c.name, "passed": c.passed,
                        "detail": c.detail} for c in self.checks],
        }
        if not self.ok:
            return out

        def signer(s: Signer | None) -> dict[str, str] | None:
            return None if s is None else {"party": s.party, "fingerprint": s.fingerprint,
                                           "key_id": s.key_id.hex()}

        out.update({"doc_type": self.doc_type, "doc_id": self.doc_id, "batch": self.batch,
                    "declared_by": signer(self.declared_by),
                    "acknowledged_by": signer(self.acknowledged_by), "time": self.time,
                    "caveats": list(self.caveats)})
        if self.kind == "item":
            out.update({
                "item_id": self.item_id, "status": self.status,
                "status_reason": self.status_reason, "evidence": self.evidence,
                "history": [{"status": c.status, "reason": c.reason, "evidence": c.evidence,
                             "time": c.time, "created": c.created, "ack_id": c.ack_id}
                            for c in self.history],
            })
        else:
            out.update({"item_count": self.item_count, "ack_count": self.ack_count,
                        "unacknowledged": self.unacknowledged, "undeclared": self.undeclared,
                        "counts": dict(self.counts), "statuses": dict(self.statuses)})
        return out
