"""What a document summary from the daemon (``GET /v1/documents/{id}``) says about how far its
acknowledgement has got, for ``bridge status``, ``bridge inbox`` and ``--watch``; and what a
witness's entry in ``/v1/health`` says about how far it has cosigned our log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.core.entries import ACK_STATUSES
from bridge.core.printable import printable


def by_status_order(by_status: Mapping[str, int]) -> list[str]:
    """Acknowledgement statuses first, in their defined order; then the rest by name."""
    order = {s: i for i, s in enumerate(ACK_STATUSES)}
    return sorted(by_status, key=lambda k: (order.get(k, len(order)), k))


def counts(by_status: Mapping[str, int]) -> str:
    """``RECEIVED 3 · delivered 7``: the statuses that have items, in :func:`by_status_order`."""
    return " · ".join(f"{printable(k)} {by_status[k]}" for k in by_status_order(by_status)
                      if by_status[k])


def items_of(doc: Mapping[str, Any]) -> tuple[int, int, dict[str, int]]:
    """(items in all, items acknowledged, items by status) of one document summary."""
    items = doc.get("items") or {}
    by_status = {str(k): int(v) for k, v in (items.get("by_status") or {}).items()}
    total = int(items.get("total", 0))
    acked = items.get("acknowledged")
    if acked is None:
        acked = sum(v for k, v in by_status.items() if k in ACK_STATUSES)
    return total, int(acked), by_status


def is_complete(doc: Mapping[str, Any]) -> bool:
    total, acked, _ = items_of(doc)
    return doc.get("state") == "acknowledged" or (total > 0 and acked >= total)


def is_settled(doc: Mapping[str, Any]) -> bool:
    """Nothing more will change: every item acknowledged, or the peer refused the document."""
    return is_complete(doc) or doc.get("state") == "refused"


def cosigned_text(row: Mapping[str, Any]) -> str:
    """What a witness has cosigned of our log, from its entry in /v1/health."""
    if row.get("cosigned_size") is None:
        return f"nothing cosigned yet (log size {row.get('log_size')})"
    skew = row.get("skew_seconds")
    return (f"cosigned size {row['cosigned_size']} of {row.get('log_size')} at "
            f"{row.get('cosigned_at')}"
            + (f" (our clock {skew:+} s against the witness's)" if skew is not None else ""))


__all__ = ["by_status_order", "cosigned_text", "counts", "is_complete", "is_settled", "items_of"]
