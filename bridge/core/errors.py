"""One error family, split by who is at fault.

- ``UsageError``: the local operator or caller asked for something invalid (a bad CLI flag, a key
  file with loose permissions, an identity that already exists). Fix it locally.
- ``InputError``: data handed to us locally (a document, a CSV row, an API body) is invalid. It
  names the field (a JSON path or ``row N, column C``).
- ``PeerError``: bytes that came from outside (the other party, a bundle file, a network) are
  malformed or fail a check. Carries a stable ``reason`` code that can be sent back to a peer.
  ``OpaqueCryptoError`` is the one thing said to the outside when decryption or a signature
  fails; the detail goes only to the local log.
- ``StoreError``: the local database is not in a usable state. ``StoreCorrupt``: what it holds
  does not match what was signed, or SQLite cannot read it: the server's fault, never the
  caller's (the local API answers 500 ``store_corrupt``).
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of every error Bridge raises on purpose."""

    code: str = "bridge_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class UsageError(BridgeError):
    """The local operator asked for something that cannot be done as asked."""

    code = "usage"


class InputError(BridgeError):
    """Locally supplied data is invalid; ``field`` names where. ``problems`` lists every
    (field, message) found when there are several (the first is ``field`` and ``detail``), so
    a caller can fix them all in one go."""

    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 problems: tuple[tuple[str | None, str], ...] = ()) -> None:
        super().__init__(f"{field}: {message}" if field else message, code=code)
        self.field = field
        self.detail = message
        self.problems = problems


class QueueFull(InputError):
    """Backpressure: what waits for the peer is at its bound (``[delivery]``
    ``max_queued_envelopes``, ``max_queued_bytes``). Nothing was stored; the same request may
    succeed after ``retry_after`` seconds, an estimate from how fast the link drains."""

    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int, field: str | None = "to") -> None:
        super().__init__(message, field=field, code="queue_full")
        self.retry_after = retry_after


class PeerError(BridgeError):
    """Bytes from outside are malformed or fail a check. ``reason`` is a stable code."""

    code = "peer_error"

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message, code=reason)
        self.reason = reason


class DecodeError(PeerError):
    """The bytes are not canonical Bridge encoding, or exceed a decoding limit."""

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message, reason=reason)


class OpaqueCryptoError(PeerError):
    """Decryption or signature verification failed.

    Outside, only ``str(err)`` is shown: always the same words. ``detail`` is for the local log.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("envelope could not be authenticated", reason="unauthenticated")
        self.detail = detail


class VerificationError(PeerError):
    """A receipt, document or proof does not hold. ``reason`` says which check failed."""


class StoreError(BridgeError):
    """The local database is missing, locked, or from a newer version."""

    code = "store"


class StoreUnavailable(StoreError):
    """The store cannot take a write now: the disk (or the store's page limit) is full, or
    the file system failed. Nothing was recorded; the same request may succeed later. A peer
    is told ``unavailable`` (PROTOCOL §8.3), never blamed."""

    code = "store_unavailable"


class StoreCorrupt(StoreError):
    """The store holds something other than what was signed (an entry, a status, a header), or
    SQLite reports the file damaged. Raised instead of any caller- or peer-fault error."""

    code = "store_corrupt"
