"""The addresses a configuration names, each checked before it is written or used: where the
peer endpoint listens, a peer's URL, the mediator's broker."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from bridge.core.errors import InputError, UsageError
from bridge.core.printable import quoted

# A host name or IPv4 literal, or a bracketed IPv6 literal. Deliberately narrow: the URL is
# written into bridge.toml and shown to people, so it holds no quotes, spaces or user info.
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")
# How a peer is reached: its HTTP endpoint, the mediator's relay, or envelopes in a file that
# someone carries across (README, "Three ways to connect"). Here, not beside the configuration
# model: a command names them in its options without loading pydantic.
Via = Literal["http", "relay", "carry"]
VIA_HTTP: Via = "http"
VIA_RELAY: Via = "relay"
VIA_CARRY: Via = "carry"
# How a witness is reached: its HTTP URL, or the mediator's relay (PROTOCOL.md §13.8); a
# witness answers at once, so it is never carried.
WitnessVia = Literal["http", "relay"]
PEER_SCHEMES = ("http", "https")
URL_SHOWN = 300  # a scheme, a host name of up to 253 characters and a port: no URL is longer
RELAY_SCHEMES = ("nats", "tls")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of the peer endpoint. Port 0 asks the kernel for a free port; the daemon
    then reports the one it got (``Home.port_path`` and the local health answer)."""
    host, sep, port = text.rpartition(":")
    if (not sep or not host or not (port.isascii() and port.isdigit())
            or not 0 <= int(port) < 65536):
        raise UsageError(f"listen address must be HOST:PORT, got {quoted(text)}")
    return host, int(port)


def _scheme_host_port(url: str, schemes: tuple[str, ...], wanted: str) -> str:
    """``SCHEME://HOST:PORT`` with one of ``schemes`` (an optional trailing slash is dropped);
    anything else (a path, a query, user info, port 0) is refused, saying ``wanted``."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"not a valid URL ({exc}): {quoted(url, URL_SHOWN)}", field="url") from exc
    host = parts.netloc.rpartition(":")[0]
    if (parts.scheme not in schemes or not host or not _HOST_RE.match(host)
            or port is None or port == 0 or parts.path not in ("", "/") or parts.query
            or parts.fragment or text.endswith(("?", "#"))):
        raise InputError(f"{wanted}, got {quoted(url, URL_SHOWN)}", field="url")
    return f"{parts.scheme}://{host}:{port}"


def check_peer_url(url: str) -> str:
    """A peer's endpoint: ``http(s)://HOST:PORT``."""
    return _scheme_host_port(url, PEER_SCHEMES, "a peer URL must be http(s)://HOST:PORT")


def check_relay_url(url: str) -> str:
    """The mediator's broker: ``nats://HOST:PORT`` or ``tls://HOST:PORT`` (``tls://`` checks
    it against a pinned CA). User info is refused with the rest: the credentials are the creds
    file, never the URL."""
    return _scheme_host_port(url, RELAY_SCHEMES,
                             "a relay URL must be nats://HOST:PORT or tls://HOST:PORT")


__all__ = ["PEER_SCHEMES", "RELAY_SCHEMES", "VIA_CARRY", "VIA_HTTP", "VIA_RELAY", "Via",
           "WitnessVia", "check_peer_url", "check_relay_url", "parse_listen"]
