"""What ``bridge.toml`` may hold: every section and key, its type, its default and what it does.

The whole file is checked against this table before anything is built from it, and every
problem is reported at once: a misspelled section (``[delivry]``) or key is an error naming the
closest known name, never silently ignored (a setting that is not read is worse than none: the
operator believes it is in force). ``CONFIGURATION.md`` is generated from this table
(``python -m bridge.home.config_schema > CONFIGURATION.md``) and a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.core.errors import UsageError

INT, NUMBER, BOOL, STRING = "whole number", "number", "true or false", "string"
UIDS = "list of uids"


@dataclass(frozen=True, kw_only=True)
class Key:
    name: str
    kind: str
    default: Any
    doc: str
    required: bool = False


def _type_problem(key: Key, value: object) -> str | None:
    # TOML has real types: a bool is never a number here (True == 1 in Python), a string
    # is never a number, and a whole number is a fine value for a number.
    if key.kind == INT:
        ok = type(value) is int
    elif key.kind == NUMBER:
        ok = type(value) in (int, float)
    elif key.kind == BOOL:
        ok = type(value) is bool
    elif key.kind == STRING:
        ok = type(value) is str
    else:
        ok = isinstance(value, list) and all(type(u) is int and u >= 0 for u in value)
    return None if ok else f"must be a {key.kind}, not {value!r}"


def _keys_of(cls: type, docs: Mapping[str, str]) -> tuple[Key, ...]:
    """The keys of a section that is a frozen dataclass of ``bridge.home.folder`` (its defaults and
    types are the code's own; only the explanations live here)."""
    out = []
    for f in dataclasses.fields(cls):
        kind = INT if f.type in ("int", int) else NUMBER
        out.append(Key(name=f.name, kind=kind, default=f.default, doc=docs[f.name]))
    return tuple(out)


DELIVERY_DOCS = {
    "initial_backoff": "Seconds before the first retry of a delivery that failed; each further "
                       "retry waits up to twice as long (full jitter).",
    "max_backoff": "The longest wait between two delivery attempts, in seconds "
                   "(at least initial_backoff).",
    "request_timeout": "Seconds a delivery request may take before it counts as failed.",
    "chunk_items": "Items per envelope when a large document is split into chunks.",
}
LIMITS_DOCS = {
    "max_connections": "Connections open to the peer endpoint at once.",
    "requests_per_second": "Envelopes a second accepted from one sender (token bucket) ...",
    "burst": "... with this many saved up.",
    "body_read_seconds": "A request body must arrive whole within this many seconds.",
    "idle_seconds": "A connection with no request in progress is closed after this many "
                    "seconds.",
    "max_header_bytes": "The longest request line, and header line, in bytes.",
    "max_headers": "The most header lines in one request.",
    "refusal_records_per_minute": "Refusals recorded a minute (the rest are only counted).",
}


def sections() -> dict[str, tuple[Key, ...]]:
    from bridge.home.folder import DEFAULT_LISTEN, Delivery, Limits

    return {
        "bridge": (
            Key(name="party", kind=STRING, default=None, required=True,
                doc="This party's name (lower case letters, digits, '-'), as its peers pin it."),
            Key(name="listen", kind=STRING, default=DEFAULT_LISTEN,
                doc="HOST:PORT of the peer endpoint, where the other party delivers."),
            Key(name="deadline_check_seconds", kind=NUMBER, default=5.0,
                doc="How often acknowledgement deadlines are checked, in seconds."),
            Key(name="max_body_bytes", kind=INT, default=None,
                doc="Older place of [limits] max_body_bytes (read when [limits] has none)."),
        ),
        "delivery": _keys_of(Delivery, DELIVERY_DOCS),
        "limits": (Key(name="max_body_bytes", kind=INT, default=64 * 1024 * 1024,
                       doc="The largest request body, in bytes, on the peer endpoint and the "
                           "local API."),
                   *_keys_of(Limits, LIMITS_DOCS)),
        "tls": (Key(name="enabled", kind=BOOL, default=False,
                    doc="Serve the peer endpoint over TLS (certificate in tls/; peers pin its "
                        "SHA-256)."),),
        "local": (Key(name="allowed_uids", kind=UIDS, default=None,
                      doc="User ids that may use the local API (default: the daemon's own user "
                          "and root)."),),
    }


PEER_KEYS = (
    Key(name="url", kind=STRING, default=None, required=True,
        doc="The peer's endpoint, http(s)://HOST:PORT."),
    Key(name="fingerprint", kind=STRING, default=None, required=True,
        doc="The fingerprint of the peer's identity, compared out of band."),
    Key(name="tls_fingerprint", kind=STRING, default=None,
        doc="SHA-256 of the peer endpoint's TLS certificate (needed for an https:// URL)."),
)


def _unknown(name: str, known: list[str], where: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
    return f"{where}{name!r} is not a known {'section' if not where else 'key'}{hint}"


def _check_table(table: object, keys: tuple[Key, ...], where: str) -> list[str]:
    if not isinstance(table, dict):
        return [f"{where} must be a table"]
    known = {k.name: k for k in keys}
    problems = [_unknown(name, list(known), f"{where} ") for name in table if name not in known]
    for key in keys:
        if key.name not in table:
            if key.required:
                problems.append(f"{where} {key.name} is missing")
            continue
        why = _type_problem(key, table[key.name])
        if why:
            problems.append(f"{where} {key.name} {why}")
    return problems


def check_toml(data: Mapping[str, Any], source: str) -> None:
    """Raise ``UsageError`` listing every unknown section or key and every value of the wrong
    type in a parsed ``bridge.toml``; value ranges are checked where the values are built."""
    table = sections()
    problems = [_unknown(name, [*table, "peers"], "") for name in data
                if name not in table and name != "peers"]
    if "bridge" not in data:
        problems.append("[bridge] is missing")
    for name, keys in table.items():
        if name in data:
            problems += _check_table(data[name], keys, f"[{name}]")
    peers = data.get("peers", {})
    if not isinstance(peers, dict):
        problems.append("[peers] must hold one table per peer")
    else:
        for peer, body in peers.items():
            problems += _check_table(body, PEER_KEYS, f"[peers.{peer}]")
    if problems:
        raise UsageError(f"{source}: invalid configuration:\n  " + "\n  ".join(problems))


def _default(key: Key) -> str:
    if key.required:
        return "required"
    if key.default is None:
        return "unset"
    if key.kind == BOOL:
        return "true" if key.default else "false"
    return f"`{key.default!r}`".replace("'", '"')


def reference_markdown() -> str:
    lines = ["# bridge.toml: the configuration reference", "",
             "Generated from `bridge/home/config_schema.py` "
             "(`python -m bridge.home.config_schema > CONFIGURATION.md`); a test keeps the two "
             "equal. Every section and key is checked "
             "when the file is read: an unknown one, or a value of the wrong type or out of "
             "range, is an error that names it (the daemon does not start). Times are in "
             "seconds.", ""]
    for name, keys in [*sections().items(), ("peers.NAME", PEER_KEYS)]:
        lines += [f"## [{name}]", "", "| key | type | default | what it does |",
                  "|---|---|---|---|"]
        lines += [f"| `{k.name}` | {k.kind} | {_default(k)} | {k.doc} |" for k in keys]
        lines.append("")
    lines += ["`bridge peer add` writes the `[peers.NAME]` tables; `bridge init` writes the "
              "others.", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the generator of CONFIGURATION.md
    sys.stdout.write(reference_markdown())
