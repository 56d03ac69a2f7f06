"""``bridge doctor``: check a home the way an operator would before trusting it, and say what to
fix. Every check runs even when an earlier one fails (one run lists every problem), and none of
them changes anything.

Checks: folder permissions, the configuration, the private key and identity file, each pinned
peer (identity file against its pin, reachable, the party it says it is, its TLS pin, its
clock), the local daemon, and free disk space.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import shutil
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from bridge.cli.context import Ctx, daemon_client
from bridge.cli.exits import Exit
from bridge.core import times
from bridge.core.crypto.hashes import sha256
from bridge.core.errors import BridgeError
from bridge.core.printable import printable, quoted
from bridge.home.folder import Home
from bridge.home.key_files import check_private_file_mode
from bridge.home.tls import format_tls_fingerprint, normalise_tls_fingerprint

if TYPE_CHECKING:  # the configuration model (pydantic) loads when the home's config is read
    from bridge.home.config import Config, PeerConfig

OK, WARN, FAIL = "ok", "warn", "fail"
CLOCK_SKEW_WARN = 60.0  # seconds between our clock and a peer's before it is worth a look
FREE_FAIL, FREE_WARN = 200 * 1024 * 1024, 2 * 1024 * 1024 * 1024  # bytes free in data/
PEER_TIMEOUT = 5.0


@dataclass(frozen=True, kw_only=True)
class Finding:
    check: str
    status: str  # OK | WARN | FAIL
    detail: str
    fix: str | None = None

    def __post_init__(self) -> None:
        if self.status not in (OK, WARN, FAIL):
            raise ValueError(f"unknown status {self.status!r}")

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "detail": self.detail,
                "fix": self.fix}


def _guarded(check: str, fn: Callable[[], Finding]) -> Finding:
    """A check that raises names what it found as a failure (Bridge's messages carry the fix)."""
    try:
        return fn()
    except BridgeError as err:
        return Finding(check=check, status=FAIL, detail=str(err))


def check_folders(home: Home) -> Finding:
    # Imported here: bridge.local loads aiohttp, a second at start-up that no other command
    # should pay for (the command group imports this module).
    from bridge.local.access import check_home

    if not home.path.is_dir():
        # check_home lets a missing folder through (the daemon creates it 0700), so without
        # this a home that does not exist would be reported as private.
        return Finding(check="folders", status=FAIL, detail=f"{home.path} does not exist",
                       fix=f"bridge --home {home.path} init --party NAME")
    check_home(home)
    return Finding(check="folders", status=OK,
                   detail=f"{home.path} and its folders are private (0700)")


def check_config(home: Home) -> Finding:
    cfg = home.config()
    where = f"listening on {cfg.listen}" if cfg.listen else "not listening (no TCP port)"
    return Finding(check="config", status=OK,
                   detail=f"{home.config_path}: party {cfg.party}, {where}, "
                          f"{len(cfg.peers)} peer(s)")


def check_relay(home: Home, cfg: Config) -> Finding:
    """The relay this home joined: its credential file private, and what the daemon says of
    the connection (the broker itself is the mediator's: only the daemon speaks to it)."""
    assert cfg.relay is not None
    creds = home.path / cfg.relay.creds
    check_private_file_mode(creds)
    detail = f"{cfg.relay.url}, credentials {creds} (private)"
    if not home.socket_path.exists():
        return Finding(check="relay", status=OK, detail=detail)
    relay = daemon_client(home).health().get("relay") or {}
    state = relay.get("state")
    if state == "connected":
        return Finding(check="relay", status=OK, detail=f"{detail}; the daemon is connected")
    return Finding(check="relay", status=WARN,
                   detail=f"{detail}; the daemon is {state}: {relay.get('last_error')}",
                   fix="is the mediator's relay running, and the URL and credentials the "
                       "ones the mediator gave? Envelopes wait in the outbox meanwhile.")


def check_keys(home: Home, cfg: Config) -> Finding:
    key = home.private_key_path(cfg.party)
    check_private_file_mode(key)
    ident = home.public_identity()
    return Finding(check="keys", status=OK,
                   detail=f"{key} is private; identity {ident.party} {ident.fingerprint}")


def check_disk(home: Home) -> Finding:
    folder = home.db_path.parent
    free = shutil.disk_usage(folder if folder.exists() else home.path).free
    text = f"{free / 2**30:.1f} GiB free for {folder}"
    if free < FREE_FAIL:
        return Finding(check="disk", status=FAIL, detail=text,
                       fix="free disk space: with a full disk nothing can be received")
    if free < FREE_WARN:
        return Finding(check="disk", status=WARN, detail=text, fix="free some disk space soon")
    return Finding(check="disk", status=OK, detail=text)


def check_daemon(home: Home) -> Finding:
    if not home.socket_path.exists():
        return Finding(check="daemon", status=WARN, detail="the daemon is not running",
                       fix=f"start it: bridge --home {home.path} daemon (or its service)")
    health = daemon_client(home).health()
    status = str(health.get("status"))
    # While degraded, the faults' codes (their details are in health and the log).
    faults = health.get("faults") or {}
    named = f" ({', '.join(sorted(faults))})" if faults else ""
    return Finding(check="daemon", status=OK if status == "ok" else WARN,
                   detail=f"the daemon answers: status {status}{named}")


def check_witnesses(home: Home) -> list[Finding]:
    """Each pinned witness as the daemon sees it (PROTOCOL.md §13.4): how far it cosigned the
    log, our clock against the witness's, and a refusal of our log, which is never a mere
    warning."""
    if not home.socket_path.exists():
        return []
    health = daemon_client(home).health()
    faults = health.get("faults") or {}
    out = [Finding(check="witness", status=FAIL, detail=f"{code}: {detail}",
                   fix="the audit log was rolled back or rewritten: find out why before "
                       "anything else (SECURITY.md)")
           for code, detail in sorted(faults.items()) if code.startswith("witness_")]
    out += [Finding(check="witness", status=FAIL, detail=f"{code}: {detail}",
                    fix="the peer showed this bridge a log that does not extend the one it "
                        "showed before; both checkpoints are kept (PROTOCOL.md §13.7): ask "
                        "the peer and the mediator why")
            for code, detail in sorted(faults.items()) if code.startswith("peer_log_")]
    for name, w in sorted((health.get("witnesses") or {}).items()):
        skew = w.get("skew_seconds")
        if w.get("cosigned_size") is None:
            out.append(Finding(check=f"witness {name}", status=WARN,
                               detail="nothing cosigned yet", fix="is the witness running, "
                               "and has it added this party's identity (witness add-origin)?"))
        elif skew is not None and abs(skew) > CLOCK_SKEW_WARN:
            out.append(Finding(check=f"witness {name}", status=WARN,
                               detail=f"our clock is {skew:+.0f} s from the witness's",
                               fix="set this machine's clock (NTP)"))
        else:
            clock = f", our clock {skew:+} s from the witness's" if skew is not None else ""
            out.append(Finding(check=f"witness {name}", status=OK, detail=(
                f"cosigned size {w['cosigned_size']} of {w.get('log_size')} at "
                f"{w.get('cosigned_at')}{clock}")))
    return out


def _peer_health(peer: PeerConfig) -> tuple[int, dict[str, Any], str | None, str | None]:
    """GET the peer endpoint's /v1/health: (status, body, Date header, TLS SHA-256 seen)."""
    assert peer.url is not None  # asked of a peer reached over HTTP only
    parts = urlsplit(peer.url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        # The pin is the whole trust (no CA, no host name): look at the certificate, then
        # compare it with the pin ourselves, as the delivery loop does.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=PEER_TIMEOUT, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=PEER_TIMEOUT)
    try:
        conn.connect()
        seen = None
        if isinstance(conn.sock, ssl.SSLSocket):
            der = conn.sock.getpeercert(binary_form=True) or b""
            seen = sha256(der).hex()
            if peer.tls_fingerprint and seen != normalise_tls_fingerprint(peer.tls_fingerprint):
                return 0, {}, None, seen  # nothing is asked of an endpoint that is not it
        conn.request("GET", "/v1/health")
        resp = conn.getresponse()
        raw = resp.read(64 * 1024)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        return resp.status, body if isinstance(body, dict) else {}, resp.getheader("Date"), seen
    finally:
        conn.close()


def _peer_date(header: str | None) -> datetime | None:
    """The peer's ``Date`` header (RFC 9110 §6.6.1), or None when it is absent, does not
    parse, names no zone (``-0000``) or lies outside the window of every time (PROTOCOL.md
    §3, Ranges): a time from outside is checked where it is parsed, and the clock comparison
    is advice, never a reason for the doctor itself to fail."""
    if not header:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if parsed.tzinfo is None or times.check_time(times.from_datetime(parsed)) is not None:
        return None
    return parsed


def check_peer(name: str, peer: PeerConfig, now: float) -> Iterator[Finding]:
    check = f"peer {name}"
    if peer.url is None:  # carrier files or the relay: there is no endpoint of its to ask
        yield Finding(check=check, status=OK, detail=f"reached via {peer.via}: no endpoint to "
                      "check from here")
        return
    try:
        status, body, date, seen = _peer_health(peer)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        yield Finding(check=check, status=FAIL, detail=f"{peer.url} cannot be reached ({reason})",
                      fix="is the peer's daemon running, and the URL right? (bridge peer add "
                          "--replace to correct it)")
        return
    if peer.tls_fingerprint and seen != normalise_tls_fingerprint(peer.tls_fingerprint):
        yield Finding(check=check, status=FAIL,
                      detail=f"{peer.url} shows another TLS certificate: "
                             f"{format_tls_fingerprint(seen or '')}, pinned "
                             f"{format_tls_fingerprint(peer.tls_fingerprint)}",
                      fix="compare the certificate with the peer out of band; if it changed, "
                          "pin the new one with bridge peer add --replace --tls-fingerprint")
        return
    party = body.get("party")
    if status != 200 or party != name:
        yield Finding(check=check, status=FAIL,
                      detail=f"{peer.url} answers HTTP {status} as party {quoted(party)}, "
                             f"not {name!r}",
                      fix="the URL may point at another service or party")
        return
    yield Finding(check=check, status=OK, detail=f"{peer.url} answers as {name}"
                  + (" over the pinned TLS certificate" if seen else " (no TLS)"))
    parsed = _peer_date(date)
    if parsed is not None:
        skew = parsed.timestamp() - now
        if abs(skew) > CLOCK_SKEW_WARN:
            yield Finding(check=f"clock vs {name}", status=WARN,
                          detail=f"the peer's clock is {skew:+.0f} s from ours",
                          fix="run NTP on both machines: times in receipts are the parties' "
                              "own claims")


def diagnose(home: Home, *, now: Callable[[], float] = time.time) -> list[Finding]:
    findings = [_guarded("folders", lambda: check_folders(home)),
                _guarded("config", lambda: check_config(home))]
    if findings[-1].status == FAIL:
        return findings  # without a configuration there is nothing else to look at
    from bridge.home.peers import pinned_identities  # here: bridge --help loads no pydantic

    cfg = home.config()
    findings.append(_guarded("keys", lambda: check_keys(home, cfg)))
    try:
        pinned_identities(home, cfg)
        findings.append(Finding(check="pins", status=OK,
                                detail=f"every peer's identity file matches its pin "
                                       f"({', '.join(sorted(cfg.peers)) or 'no peers'})"))
    except BridgeError as err:
        findings.append(Finding(check="pins", status=FAIL, detail=str(err)))
    for name, peer in sorted(cfg.peers.items()):
        if peer.url is not None:  # the relay and the carrier have no endpoint to ask
            findings.extend(check_peer(name, peer, now()))
    if cfg.relay is not None:
        findings.append(_guarded("relay", lambda: check_relay(home, cfg)))
    findings.append(_guarded("daemon", lambda: check_daemon(home)))
    if cfg.witnesses:
        try:
            findings.extend(check_witnesses(home))
        except BridgeError as err:
            findings.append(Finding(check="witness", status=WARN, detail=str(err)))
    findings.append(check_disk(home))
    return findings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Findings as JSON.")
@click.pass_obj
def doctor(obj: Ctx, as_json: bool) -> None:
    """Check this home (permissions, configuration, keys, pins, peers reachable, their TLS
    certificates and clocks, the daemon, free disk) and say what to fix. Changes nothing.
    Exit 0 when nothing failed, 1 otherwise."""
    findings = diagnose(obj.home)
    if as_json:
        click.echo(json.dumps([f.to_json() for f in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"{f.status.upper():<4}  {f.check}: {printable(f.detail)}")
            if f.fix:
                click.echo(f"      fix: {printable(f.fix)}")
    failed = any(f.status == FAIL for f in findings)
    sys.exit(int(Exit.FAILED if failed else Exit.OK))


__all__ = ["FAIL", "OK", "WARN", "Finding", "diagnose", "doctor"]
