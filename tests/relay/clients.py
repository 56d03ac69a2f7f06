"""Raw NATS clients of a test relay, as a party's or the mediator's credentials allow: no
Bridge code between the test and the server but the credential file's reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
from nats.aio.client import Client

from bridge.transports.relay import binding
from bridge.transports.relay.nkeys import read_seed


class Errors(list[str]):
    """What the server said went wrong on one connection (``-ERR`` lines, such as
    ``Permissions Violation for Publish to "…"``), as nats-py's error callback hears them."""

    async def __call__(self, exc: Exception) -> None:
        self.append(str(exc))

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


async def connect(url: str, creds: Path, *, party: str | None, errors: Errors | None = None
                  ) -> Client:
    """A connection with ``creds``; a party's sets its own inbox prefix, as its courier does."""
    options: dict[str, object] = {}
    if party is not None:
        options["inbox_prefix"] = binding.inbox_prefix(party)
    return await nats.connect(url, nkeys_seed_str=read_seed(creds), allow_reconnect=False,
                              connect_timeout=5, error_cb=errors if errors is not None
                              else Errors(), name=f"test-{party or 'admin'}", **options)
