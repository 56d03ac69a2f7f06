"""The one place the harness touches the engine: how an engine is built on a home, what is
asked of it, and what its answers mean. Everything else in ``tests/harness`` and every test
that uses it speaks only the small types below (``Pending``, ``Answer``, ``Outcome``).

Today's engine is ``bridge.engine.exchange.Exchange``: synchronous, one store transaction a
call, HTTP status codes on its peer answers. The daemon wires it as ``bridge/daemon/run.py``
and ``bridge/transports/http/endpoint.py`` do: ``next_pending`` gives the lowest pending
envelope of a peer, ``count_attempt`` marks it tried, ``receive_envelope`` answers the bytes
on the other side, and ``delivery_answer`` pairs that answer with the outbox row it was sent
for. When the engine moves behind ports (a Courier, a Clock, outcome enums), this file is the
one to adapt.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
from bridge.core.documents import DocumentHeader, SignedHeader
from bridge.core.notes.checkpoint import witness_key_name
from bridge.core.notes.cosignature import cosign
from bridge.core.receipts import check_receipt
from bridge.core.receipts.witnessed import check_witnessed
from bridge.engine.exchange import Exchange
from bridge.engine.limits import RefusalGate
from bridge.engine.outbound import queue_envelope
from bridge.engine.witnessing import COSIGNED, Reading
from bridge.home.config import Config, Delivery
from bridge.home.files import write_file
from bridge.home.folder import Home as Home  # the parties' homes, for pair.py
from bridge.home.key_files import write_private
from bridge.home.keystore import KeyStore
from bridge.home.peers import pin_peer, pinned_identities
from bridge.reports.render import render as render_report
from bridge.reports.render.json import from_json as report_from_json
from bridge.store.sqlite.store import Store
from bridge.transports.http.endpoint import HTTP_STATUS

from .clock import FakeClock

Engine = Exchange
# The peer URL is never dialled: the in-memory courier carries every envelope.
UNUSED_URL = "http://127.0.0.1:9"
# What the engine answers once the peer decided on an envelope (the outbox moves on).
PROGRESS = frozenset({"delivered", "refused"})
# Reason codes inside a DeliveryOutcome's detail: "... (bad_receipt): ..." or "rejected: gap".
_REASON = re.compile(r"\((?P<a>[a-z][a-z0-9_]*)\)|^rejected: (?P<b>[a-z][a-z0-9_]*)")


@dataclass(frozen=True)
class Pending:
    """An envelope waiting in a sender's outbox."""

    peer: str
    seq: int
    digest: bytes
    data: bytes
    row: Any  # the engine's own record, handed back with its answer


@dataclass(frozen=True)
class Answer:
    """What a receiving engine says to one envelope's bytes."""

    body: bytes
    outcome: str  # accepted | duplicate | refused | rejected | unavailable
    status: int = 200  # the HTTP binding's status (PROTOCOL.md §8.4); senders act on body


@dataclass(frozen=True)
class Outcome:
    """What a sending engine made of an answer."""

    state: str  # delivered | refused | rewound | unavailable | failed
    reason: str | None
    detail: str

    @property
    def progress(self) -> bool:
        return self.state in PROGRESS


# ---------------------------------------------------------------- homes and engines

def make_home(path: Path, identity: PrivateIdentity, *, chunk_items: int = 4) -> Home:
    """A home as ``bridge init`` leaves it (folders 0700, key files 0600, a config), holding
    the given identity instead of a fresh one."""
    home = Home(path)
    for folder in (home.path, home.keys_dir, home.peers_dir, home.db_path.parent):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    write_private(home.private_key_path(identity.party), identity)
    write_file(home.public_key_path(identity.party), identity.public.dumps(), replace=True)
    home.write_config(Config(party=identity.party, listen="127.0.0.1:9",
                             delivery=Delivery(chunk_items=chunk_items)))
    return home


def pin(home: Home, other: Home) -> None:
    """``bridge peer add``: pin ``other``'s identity file with its fingerprint."""
    pub = other.public_identity()
    pin_peer(home, other.public_key_path(pub.party), url=UNUSED_URL,
             fingerprint=pub.fingerprint)


def sql(engine: Exchange) -> sqlite3.Connection:
    """The store's own connection, for what the tests inspect: the store keeps SQLite to
    itself, and only this adapter file of the harness reaches into it."""
    conn: sqlite3.Connection = engine.store._conn
    return conn


def build_engine(home: Home, clock: FakeClock) -> Engine:
    """The engine as the daemon builds it (``Daemon.run``): its store file, its current and
    retired keys, its pinned peers with their key history, on the test's clock."""
    keystore = KeyStore(home)
    config = home.config()
    own = keystore.own_identities()
    engine = Exchange(store=Store(home.db_path), identity=own[0],
                      peers=pinned_identities(home, config), config=config, clock=clock,
                      keystore=keystore, retired=own[1:])
    # What the harness shows is what the engine decides, not what survives a power cut
    # (tests/daemon/test_kill9.py shows that): its commits need not wait for the disk.
    sql(engine).execute("PRAGMA synchronous=OFF")
    # The one place the engine reads a clock of its own: the refusal gate (time.monotonic).
    engine.refusal_gate = engine.inbound.refusal_gate = RefusalGate(
        per_minute=config.limits.refusal_records_per_minute, metrics=engine.metrics,
        clock=clock.monotonic)
    return engine


def close(engine: Engine) -> None:
    engine.store.close()


def backup(engine: Engine, path: Path) -> None:
    """A consistent copy of the store file (SQLite's online backup, as SECURITY.md asks)."""
    target = sqlite3.connect(path)
    try:
        sql(engine).backup(target)
    finally:
        target.close()


def restore(home: Home, path: Path) -> None:
    """Put a backup in place of the store (the engine on it must be closed first)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home.db_path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, home.db_path)


def identity(engine: Engine) -> PrivateIdentity:
    return engine.me


def pinned(engine: Engine, peer: str) -> PublicIdentity:
    return engine.peers[peer]


# ---------------------------------------------------------------- what local callers do

def submit(engine: Engine, doc_type: str, to: str, items: list[dict[str, Any]], *,
           doc_id: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": doc_type, "to": to, "id": doc_id,
                            "items": [dict(i) for i in items]}
    if meta is not None:
        body["meta"] = meta
    return engine.submit_document(body)


def acknowledge(engine: Engine, doc_id: str, **body: Any) -> dict[str, Any]:
    """``items=[{id, status, reason?, evidence?}]`` or ``all=STATUS``."""
    return engine.acknowledge(doc_id, body)


def rotate_key(engine: Engine) -> dict[str, Any]:
    return engine.rotate_key()


# ---------------------------------------------------------------- delivery

def next_pending(engine: Engine, peer: str) -> Pending | None:
    row = engine.next_pending(peer)
    if row is None:
        return None
    return Pending(peer=row.peer, seq=row.seq, digest=row.digest, data=row.envelope, row=row)


def pending_batch(engine: Engine, peer: str, n: int) -> list[Pending]:
    """The ``n`` lowest pending envelopes, as a courier with several in flight takes them."""
    return [Pending(peer=row.peer, seq=row.seq, digest=row.digest, data=row.envelope, row=row)
            for row in engine.store.pending_rows(peer, 0, n)]


def receive(engine: Engine, data: bytes) -> Answer:
    answer = engine.receive_envelope(data)
    # The engine answers with an outcome; the HTTP binding's status is the endpoint's table.
    return Answer(body=answer.body, outcome=answer.outcome.counted_as,
                  status=HTTP_STATUS[answer.outcome])


def deliver_answer(engine: Engine, pending: Pending, answer: Answer) -> Outcome:
    """One delivery attempt as the delivery loop makes it (``DeliveryLoop._attempt``): the
    attempt counted, the answer paired with its outbox row, a failure counted by state."""
    engine.count_attempt(pending.row)
    outcome = engine.delivery_answer(pending.row, answer.status, answer.body)
    if outcome.state not in PROGRESS:
        engine.metrics.inc(f"delivery_{outcome.state}")
    match = _REASON.search(outcome.detail)
    reason = (match.group("a") or match.group("b")) if match else None
    if outcome.state == "rewound":
        reason = "gap"  # the one answer that rewinds (PROTOCOL.md §8.2 step 3)
    return Outcome(state=outcome.state, reason=reason, detail=outcome.detail)


# ---------------------------------------------------------------- what can be seen

def document(engine: Engine, doc_id: str, direction: str | None = None) -> dict[str, Any]:
    return engine.document_detail(doc_id, direction)


def documents(engine: Engine, direction: str | None = None) -> list[dict[str, Any]]:
    return engine.list_documents(direction=direction, type=None, peer=None, limit=1000)


def acks(engine: Engine) -> list[dict[str, Any]]:
    return engine.list_documents(direction=None, type="ack", peer=None, limit=1000)


def items(engine: Engine, doc_id: str, direction: str | None = None) -> list[dict[str, Any]]:
    page = engine.items(doc_id, direction=direction, status=None, after=None, limit=10_000)
    return list(page["items"])


def item(engine: Engine, doc_id: str, item_id: str, direction: str | None = None
         ) -> dict[str, Any]:
    return engine.item(doc_id, item_id, direction)


def reconcile(engine: Engine) -> dict[str, Any]:
    return engine.reconcile()


def rendered_reports(engine: Engine) -> dict[str, str]:
    """The reconciliation report in every form the CLI prints it."""
    report = report_from_json(engine.reconcile())
    return {fmt: render_report(report, fmt) for fmt in ("text", "json", "csv", "html")}


def receipt_summary(engine: Engine, doc_id: str, item_id: str | None = None,
                    direction: str | None = None) -> str:
    """The line ``bridge verify`` prints for the receipt of ``doc_id`` (or one item of it)."""
    return check_receipt(engine.receipt(doc_id, item_id, direction), engine.keyring).summary()


def health(engine: Engine) -> dict[str, Any]:
    return engine.health()


def metric(engine: Engine, name: str) -> int:
    return engine.metrics.count(name)


def refusals(engine: Engine) -> list[dict[str, Any]]:
    names = ("at", "peer", "seq", "reason", "detail", "alarm", "count", "last_at", "source")
    return [dict(zip(names, r, strict=True)) for r in engine.store.refusals()]


def events(engine: Engine, kind: str) -> list[dict[str, Any]]:
    return engine.store.event_data(kind)


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    state: str  # pending | delivered | refused
    attempts: int
    receipt: bytes | None


def outbox(engine: Engine, peer: str) -> list[OutboxEntry]:
    rows = sql(engine).execute(
        "SELECT seq, state, attempts, receipt FROM outbox WHERE peer=? ORDER BY seq", (peer,))
    return [OutboxEntry(*r) for r in rows]


def inbox_receipt(engine: Engine, peer: str, seq: int) -> bytes | None:
    entry = engine.store.inbox_entry(peer, seq)
    return entry[1] if entry else None


def envelope_bytes(engine: Engine, peer: str, seq: int) -> bytes:
    """The sealed bytes of our envelope ``seq`` to ``peer``, whatever its state."""
    data = engine.store.envelope_bytes(peer, seq)
    assert data is not None, f"no envelope {seq} to {peer}"
    return data


def inbox_digest(engine: Engine, peer: str, seq: int) -> bytes:
    entry = engine.store.inbox_entry(peer, seq)
    assert entry is not None
    return bytes(entry[0])


def inbox_seqs(engine: Engine, peer: str) -> list[int]:
    return [r[0] for r in sql(engine).execute(
        "SELECT seq FROM inbox WHERE peer=? ORDER BY seq", (peer,))]


# ---------------------------------------------------------------- a hostile peer's tools

def enqueue_raw(engine: Engine, kind: str, payload: bytes) -> None:
    """Seal ``payload`` as an envelope of ``kind`` to every peer, with the next sequence
    number and chain hash, into the outbox: how a peer that bypasses its own checks sends
    content an honest engine would never build."""
    core = engine.engine
    with engine.store.transaction():
        for peer in core.trust.peers:
            queue_envelope(core, peer, engine.store.outbound_state(peer), kind=kind,
                           payload=payload, sender=core.trust.me, now=engine.now())


def received_document(engine: Engine, doc_id: str
                      ) -> tuple[SignedHeader, dict[str, bytes]]:
    """A document the peer sent us, as signed, and the leaf hash of each of its items: what
    an acknowledgement of it names."""
    (row,) = engine.store.documents_by_id(doc_id, "in")
    signed = SignedHeader(header=DocumentHeader.from_bytes(row.header), data=row.header,
                          signature=row.sig)
    return signed, {item_id: leaf for item_id, (_, leaf) in
                    engine.store.item_index(row.rowid).items()}


# ---------------------------------------------------------------- witnessing (PROTOCOL §13)

def pin_witness_key(engine: Engine, witness: PublicIdentity) -> None:
    """The witness pinned, as the daemon hands its pinned witnesses to the engine."""
    engine.engine.witnesses[witness.party] = witness


def witness_cosigns(engine: Engine, witness: PrivateIdentity, timestamp: int) -> int:
    """The log's checkpoint signed, cosigned by ``witness`` as the witness service does
    (``cosignature/v1`` at ``timestamp``) and kept: what the witnessing loop does on a 200.
    Returns the size cosigned."""
    sub = engine.witnessing.prepare(0, 0, force=True)
    assert sub is not None
    text = sub.note.split(b"\n\n")[0].decode() + "\n"
    line = cosign(text, name=witness_key_name(witness.party, witness.public.fingerprint),
                  public=witness.public.note_key, timestamp=timestamp,
                  sign=witness.sign_note).line.line()
    engine.witnessing.keep(witness.party, Reading(
        kind=COSIGNED, reason="cosigned", detail="", size=sub.size, timestamp=timestamp,
        line=line, signed_at=sub.signed_at))
    return sub.size


def forget_kind(engine: Engine, kind: str) -> None:
    """The engine as a Bridge that predates envelope ``kind``: it refuses it as unknown."""
    del engine.inbound.kinds[kind]


def outbox_kinds(engine: Engine, peer: str) -> list[tuple[str, str]]:
    """(kind, state) of each of our envelopes to ``peer``, in sequence order."""
    return [(k, s) for k, s in sql(engine).execute(
        "SELECT kind, state FROM outbox WHERE peer=? ORDER BY seq", (peer,))]


def peer_checkpoints(engine: Engine, peer: str) -> list[tuple[int, str]]:
    """(size, witnessed_by) of each checkpoint of ``peer``'s log kept."""
    return [(n, w) for n, w in sql(engine).execute(
        "SELECT size, witnessed_by FROM peer_checkpoints WHERE peer=? ORDER BY size", (peer,))]


def witnessed_lines(engine: Engine, doc_id: str, item_id: str, keys: list[PublicIdentity],
                    witnesses: list[PublicIdentity]) -> list[str]:
    """What ``bridge verify --keys … --witness …`` says of the receipt's witnessed records
    (none: the receipt carries none)."""
    report = check_witnessed(engine.receipt(doc_id, item_id, None), Keyring.of(keys),
                             witnesses)
    if report is None:
        return []
    assert report.ok, report
    return report.lines()


def offer_checkpoints(engine: Engine) -> int:
    """What follows a cosignature, without one: checkpoint envelopes queued to the peers that
    have one due (the witness down since the last cosignature)."""
    return engine.witnessing.peer_checkpoints.offer_all()


def peer_record_indexes(engine: Engine, peer: str) -> list[int]:
    return [i for (i,) in sql(engine).execute(
        "SELECT idx FROM peer_log_records WHERE peer=? ORDER BY idx", (peer,))]


def alter_kept_peer_root(engine: Engine, peer: str) -> None:
    """The last checkpoint of ``peer``'s log kept here given another root: as if ``peer`` had
    shown this bridge another log before (what a split view looks like from here)."""
    with engine.store.transaction():
        sql(engine).execute(
            "UPDATE peer_checkpoints SET root = zeroblob(32) WHERE peer=? AND size = "
            "(SELECT MAX(size) FROM peer_checkpoints WHERE peer=?)", (peer, peer))
