"""``bridge status`` and ``bridge inbox``: documents and how far their acknowledgement has got,
as the daemon reports them."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import Exit, reporting
from bridge.cli.follow import watch_document
from bridge.cli.options import json_option
from bridge.cli.output import Fitted, console, echo_json, safe_text, table
from bridge.cli.progress import by_status_order, cosigned_text, counts, items_of
from bridge.client import BridgeClient
from bridge.core.errors import BridgeError


def _documents_table(docs: list[dict[str, Any]]) -> Fitted:
    def row(d: Mapping[str, Any]) -> tuple[object, ...]:
        total, acked, by_status = items_of(d)
        return (d.get("id"), d.get("type"), d.get("direction"), d.get("peer"), d.get("state"),
                total, acked, counts(by_status))

    return table(("ID", "TYPE", "DIR", "PEER", "STATE", "TOTAL", "ACKED", "BY STATUS"),
                 (row(d) for d in docs))


def _print_document(doc: Mapping[str, Any]) -> None:
    from rich.text import Text  # rich only when a table or a document is printed

    total, acked, by_status = items_of(doc)
    arrow = "→" if doc.get("direction") == "out" else "←"
    out = console()
    out.print(Text.assemble(safe_text(doc.get("id"), style="bold"),
                            safe_text(f"  {doc.get('type')}  {doc.get('direction')} {arrow} "
                                      f"{doc.get('peer')}")))
    out.print(safe_text(f"state:   {doc.get('state')}"))
    out.print(safe_text(f"created: {doc.get('created')}"))
    out.print(safe_text(f"digest:  {doc.get('digest')}"))
    out.print(safe_text(f"acknowledged {acked} of {total} items"))
    if doc.get("deadline"):
        overdue = int((doc.get("items") or {}).get("overdue") or 0)
        # Which clock judged (PROTOCOL.md §13.9): witnessed time where a witness gives it.
        judged = " by witnessed time" if doc.get("deadline_clock") == "witnessed" else ""
        out.print(safe_text(f"deadline: {doc.get('deadline')}"
                            + (f" ({overdue} items overdue{judged})" if overdue
                               else f" (not passed{judged})" if judged else ""),
                            style="red" if overdue else ""))
    out.print(table(("STATUS", "ITEMS"), ((k, by_status[k]) for k in by_status_order(by_status))))
    acks = doc.get("acks") or []
    if acks:
        out.print(table(("ACK", "CREATED", "ITEMS"),
                        ((a.get("id"), a.get("created"), a.get("items")) for a in acks)))


def _link(p: Mapping[str, Any]) -> str:
    if p.get("reachable") is None:
        return "not tried yet"
    return f"{'up' if p['reachable'] else 'DOWN'} since {p.get('since')}"


def _queue(p: Mapping[str, Any]) -> str:
    queued = int(p.get("queued") or 0)
    age = p.get("oldest_queued_age_seconds")
    return f"{queued} (oldest {age} s)" if queued and age is not None else str(queued)


def _last_error(p: Mapping[str, Any]) -> str:
    err = p.get("last_error")
    if not err:
        return ""
    return f"{err.get('reason')} at {err.get('at')}: {err.get('detail')}"


def _peers_table(peers: list[dict[str, Any]]) -> Fitted:
    """Each peer's link: trouble (the peer down, a TLS pin mismatch, the peer refusing us)
    is seen here, not only in the log."""
    return table(("PEER", "LINK", "LAST SUCCESS", "QUEUED", "SEQ SENT/RECEIVED", "LAST ERROR"),
                 ((p.get("name"), _link(p), p.get("last_success") or "never", _queue(p),
                   f"{p.get('sent_seq', 0)}/{p.get('received_seq', 0)}", _last_error(p))
                  for p in peers))


def _list_documents(client: BridgeClient, direction: str | None, as_json: bool) -> None:
    docs = client.documents(direction=direction)
    peers = client.peers()
    if as_json:
        # The witnesses' view of the log and any fault (a witness's refusal is a security
        # alarm), as /v1/health has them: scripts need not ask twice.
        try:
            health = client.health()
        except BridgeError:  # an older daemon, or one that went away: the lists are the answer
            health = {}
        echo_json({"peers": peers, "documents": docs,
                   "witnesses": health.get("witnesses") or {},
                   "peer_logs": health.get("peer_logs") or {},
                   "faults": health.get("faults") or {}})
        return
    if peers:
        console().print(_peers_table(peers))
        click.echo()
    if not docs:
        click.echo("No documents.")
    else:
        console().print(_documents_table(docs))
    try:
        health = client.health()
    except BridgeError:  # an older daemon, or one that went away: the table is the answer
        return
    _print_witnessing(health)


def _print_witnessing(health: Mapping[str, Any]) -> None:
    """The witnesses' view of our audit log, and any fault (a witness that refused the log is
    a security alarm: it must be seen where people look, not only in the event log)."""
    out = console()
    for name, w in (health.get("witnesses") or {}).items():
        shown = f"{name} (via relay)" if w.get("via") == "relay" else name
        out.print(safe_text(f"witness {shown}: {cosigned_text(w)}"))
    for peer, seen in (health.get("peer_logs") or {}).items():
        out.print(safe_text(_peer_log_text(peer, seen),
                            style="bold red" if seen.get("split_views") else ""))
    for code, detail in (health.get("faults") or {}).items():
        out.print(safe_text(f"fault {code}: {detail}", style="bold red"))


def _peer_log_text(peer: str, seen: Mapping[str, Any]) -> str:
    """What we hold of the peer's own log (PROTOCOL.md §13.7): its last checkpoint kept, who
    cosigned it, and any split view of it caught."""
    if not seen.get("size"):
        text = f"log of {peer}: no checkpoint of it yet"
    else:
        by = ", ".join(seen.get("witnessed_by") or []) or "no witness we pin"
        text = f"log of {peer}: size {seen['size']}, cosigned by {by}, at {seen.get('at')}"
    views = int(seen.get("split_views") or 0)
    return text + (f"; {views} split view(s) caught: bridge audit split-views" if views else "")


def _watch(client: BridgeClient, doc: str, direction: str | None, as_json: bool) -> None:
    try:
        watch_document(client, doc, direction, as_json)
    except KeyboardInterrupt:
        click.echo("stopped watching", err=True)
        sys.exit(int(Exit.INTERRUPTED))


@click.command()
@click.argument("doc", required=False)
@click.option("--direction", type=click.Choice(["in", "out"]),
              help="Only sent (out) or received (in) documents.")
@click.option("--watch", is_flag=True,
              help="Follow DOC live until every item is acknowledged.")
@json_option
@click.pass_obj
def status(obj: Ctx, doc: str | None, direction: str | None, watch: bool,
           as_json: bool) -> None:
    """Each peer's link and the documents with their acknowledgement progress; with DOC, that
    document's counts."""
    if watch and doc is None:
        raise click.UsageError("--watch follows one document: give its id")
    client = obj.client()
    with reporting(as_json=as_json):
        if doc is None:
            _list_documents(client, direction, as_json)
        elif watch:
            _watch(client, doc, direction, as_json)
        else:
            answer = client.document(doc, direction=direction)
            if as_json:
                echo_json(answer)
            else:
                _print_document(answer)


def _inbox_row(d: Mapping[str, Any]) -> tuple[object, ...]:
    total, acked, _ = items_of(d)
    pct = f" ({100 * acked // total}%)" if total else ""
    overdue = int((d.get("items") or {}).get("overdue") or 0)
    deadline = str(d.get("deadline") or "") + (f" ({overdue} overdue)" if overdue else "")
    return (d.get("id"), d.get("type"), d.get("peer"), d.get("created"), d.get("state"),
            f"{acked}/{total}{pct}", max(total - acked, 0), deadline)


@click.command()
@json_option
@click.pass_obj
def inbox(obj: Ctx, as_json: bool) -> None:
    """Received documents and how far their acknowledgement has got."""
    with reporting(as_json=as_json):
        docs = obj.client().documents(direction="in")
    if as_json:
        echo_json({"documents": docs})
        return
    if not docs:
        click.echo("Inbox is empty.")
        return
    console().print(table(("ID", "TYPE", "FROM", "RECEIVED", "STATE", "ACKED", "OUTSTANDING",
                           "DEADLINE"), (_inbox_row(d) for d in docs)))


__all__ = ["inbox", "status"]
