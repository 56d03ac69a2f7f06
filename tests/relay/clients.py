"""Raw NATS clients of a test relay, as a party's or the mediator's credentials allow: no
Bridge code between the test and the server but the credential file's reader."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import nats
from nats.aio.client import Client

from bridge.transports.relay import binding
from bridge.transports.relay.nkeys import read_seed


class Errors:
    """What the server said went wrong on one connection (``-ERR`` lines, such as
    ``Permissions Violation for Publish to "…"``), as nats-py's error callback hears them.
    Pass ``errors.record`` as the ``error_cb``."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def record(self, exc: Exception) -> None:  # nats-py's error_cb
        self.seen.append(str(exc))

    def __iter__(self) -> Iterator[str]:
        return iter(self.seen)

    def __repr__(self) -> str:
        return repr(self.seen)

    async def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """The first error that contains ``text`` (case-insensitively), once it has come."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for error in self:
                if text.lower() in error.lower():
                    return error
            await asyncio.sleep(0.02)
        raise AssertionError(f"no error containing {text!r}; errors: {list(self)}")


async def connect(url: str, creds: Path, *, party: str | None, errors: Errors | None = None,
                  ca: Path | None = None) -> Client:
    """A connection with ``creds``; a party's sets its own inbox prefix, as its courier does.
    ``ca``: the certificate to trust for a tls:// URL (the relay's own, pinned)."""
    options: dict[str, object] = {}
    if ca is not None:
        options["tls"] = ssl.create_default_context(cafile=str(ca))
    if party is not None:
        options["inbox_prefix"] = binding.inbox_prefix(party)
    return await nats.connect(url, nkeys_seed_str=read_seed(creds), allow_reconnect=False,
                              connect_timeout=5, error_cb=(errors or Errors()).record,
                              name=f"test-{party or 'admin'}", **options)
