"""The two receipt bundle forms: their names, version, size bounds and decoding limits
(PROTOCOL.md §7.2). Shared by the builder and the verifier, so that both speak one format."""

from __future__ import annotations

from bridge.core import codec

RECEIPT_VERSION = 1
ITEM_RECEIPT = "bridge.receipt.item"
DOCUMENT_RECEIPT = "bridge.receipt.document"
UNDECLARED = "RECEIVED_UNDECLARED"

MAX_PROOF = 64
"""An audit path has at most one hash per tree level, and a tree of 2**64 leaves has 64 levels."""
MAX_ACKS_PER_ITEM = 256
"""Acknowledgement history carried by a per-item bundle (a handful in practice)."""
MAX_ACK_DOCUMENTS = 4096
"""Acknowledgement documents carried by a whole-document bundle."""

RECEIPT_LIMITS = codec.Limits(
    # What a bundle decoded whole may span (``witnessed.with_witnessed``): the check reads a
    # file a piece at a time, each piece within these limits but at most ``pieces.SMALL_PIECE``
    # bytes, and the file has no size limit of its own (PROTOCOL.md §7.2). The decoded objects
    # take at most twice the size of what is decoded (§2.4).
    max_bytes=256 * 1024 * 1024,
    max_expansion=2,
    # Deepest container in either form: bundle → acks → ack → signed header (depth 3).
    max_depth=4,
    max_items=1_000_000,
    max_str=1024,
    # A header or an entry is decoded with SMALL_LIMITS, so none can be longer than this.
    max_bin=codec.SMALL_LIMITS.max_bytes,
)
"""Decoding limits of a receipt bundle (PROTOCOL.md §7.2), less the depth a piece is at when it
is decoded on its own. Headers and entries inside are decoded again with
``codec.SMALL_LIMITS``."""

ITEM_KEYS = frozenset({"v", "type", "document", "entry", "proof", "acks"})
ITEM_ACK_KEYS = frozenset({"ack", "entry", "proof"})
DOCUMENT_KEYS = frozenset({"v", "type", "document", "acks"})
