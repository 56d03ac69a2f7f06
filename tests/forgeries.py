"""Forged transcripts: every header field of every envelope changed (PROTOCOL.md §11.5 step 5),
shared by the unit tests and the test on a transcript exported by real daemons."""

from __future__ import annotations

from typing import Any

from bridge.core import codec, envelope
from bridge.core.crypto import identity
from bridge.core.crypto.identity import Keyring, PrivateIdentity
from bridge.core.transcript import TRANSCRIPT_LIMITS


def header_mutations(header: dict[str, Any], keyring: Keyring) -> list[tuple[str, Any]]:
    """Every header field changed to another plausible value of its type."""
    other_keys = [k for k in keyring.by_id if k not in (header["from_key"], header["to_key"])]
    year = 365 * 24 * 3600 * 1000
    return [
        ("v", 2), ("suite", [32, 1, 2]),
        ("from", header["to"]), ("to", header["from"]), ("from", "mallory"),
        ("from_key", header["to_key"]), ("to_key", header["from_key"]),
        ("from_key", other_keys[0] if other_keys else bytes(32)), ("to_key", bytes(32)),
        ("id", bytes(16)), ("seq", header["seq"] + 1), ("prev", bytes([1]) * 32),
        ("at", header["at"] + year), ("at", header["at"] - 1), ("at", 0),
        ("kind", "key-rotation" if header["kind"] == "chunk" else "chunk"), ("kind", "test"),
    ]


def envelope_forgeries(data: bytes, keyring: Keyring,
               signer: dict[str, PrivateIdentity]) -> list[tuple[str, bytes]]:
    """Each header field of each envelope changed: once as is, and once re-signed by the
    sender when the forger holds that key (an exporter re-signing its own envelopes)."""
    out = []
    value = codec.decode(data, TRANSCRIPT_LIMITS)
    for li, link in enumerate(value["links"]):
        for ei, env in enumerate(link["envelopes"]):
            header = codec.decode(env["header"], codec.SMALL_LIMITS)
            for key, new in header_mutations(header, keyring):
                forged_header = codec.encode({**header, key: new})
                for resign in (False, True):
                    forged = codec.decode(data, TRANSCRIPT_LIMITS)
                    target = forged["links"][li]["envelopes"][ei]
                    target["header"] = forged_header
                    if resign:
                        key_holder = signer.get(link["from"])
                        if key_holder is None:
                            continue
                        target["sig"] = key_holder.sign(
                            identity.TAG_ENVELOPE,
                            envelope.signed_body(forged_header, target["ct_hash"]))
                    out.append((f"{link['from']}→{link['to']} #{ei + 1} {key}={new!r}"
                                f"{' re-signed' if resign else ''}", codec.encode(forged)))
    return out
