"""A hostile peer, written for the adversarial suite: it forges envelopes with real keys (the
worst case: a compromised or buggy peer), with keys nobody pinned, and bytes that are no
envelope at all; it speaks raw HTTP to a real daemon on 127.0.0.1 and reads the daemon's store
(read-only, while it runs) to check that nothing changed but the record of the refusal.

Everything here is synthetic: invented parties (alpha, beta, gamma, mallory) and records.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import json
import os
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from bridge.core import answers as transport
from bridge.core import chunks, codec, documents, envelope
from bridge.core.crypto.identity import (
    TAG_ENVELOPE,
    TAG_HPKE_INFO,
    PrivateIdentity,
    PublicIdentity,
    signed_message,
)
from bridge.core.documents import AckItem, Item, SignedDocument, SignedHeader
from bridge.daemon.pair import LOOPBACK, Node
from bridge.home.folder import Home

ZERO = bytes(32)
ENVELOPE_TYPE = "application/vnd.bridge.envelope"
ANSWER_TYPE = "application/vnd.bridge.transport-answer"
_ids = itertools.count(1)


def now_ms() -> int:
    return int(time.time() * 1000)


def unique(prefix: str) -> str:
    """A document id no other case uses (cases share one daemon)."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


# ------------------------------------------------------------------ raw HTTP


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]


def request(port: int, body: bytes | None = None, *, method: str = "POST",
            path: str = "/v1/envelopes", content_type: str | None = ENVELOPE_TYPE,
            headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes, *, timeout: float = 15) -> bytes:
    """Send raw bytes, read until the daemon closes the connection (or ``timeout``)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        return out


def status_of(raw: bytes) -> int | None:
    line = raw.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def peer_health(node: Node) -> dict[str, Any]:
    reply = request(node.port, method="GET", path="/v1/health", content_type=None)
    assert reply.status == 200, f"peer /v1/health answered {reply.status}"
    return dict(json.loads(reply.body))


def serving(node: Node) -> None:
    """The daemon still answers on both doors: the peer endpoint and the local socket."""
    assert peer_health(node)["status"] == "ok"
    assert node.client.health()["status"] == "ok"


def metric(node: Node, name: str) -> int:
    for line in node.client.metrics().splitlines():
        if line.startswith(f"bridge_{name}{{"):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


# ------------------------------------------------------------------ documents and envelopes


def manifest(issuer: PrivateIdentity, doc_id: str, n: int = 3, *, recipient: str = "beta",
             prefix: str = "X") -> SignedDocument:
    items = [Item(id=f"{prefix}-{i:04d}", data={"kind": "document", "note": f"sample {i}"})
             for i in range(1, n + 1)]
    return documents.sign_document(issuer, doc_type="manifest", doc_id=doc_id,
                                   recipient=recipient, created=now_ms(), meta={}, items=items,
                                   salt_key=os.urandom(32))


def ack(issuer: PrivateIdentity, answers: SignedHeader, statuses: dict[str, str],
        leaf_hashes: dict[str, bytes], *, created: int | None = None) -> SignedDocument:
    return documents.sign_ack(issuer, answers=answers, ack_id=unique("A"),
                              created=created or now_ms(),
                              items=[AckItem(id=i, status=s) for i, s in statuses.items()],
                              declared_leaf_hashes=leaf_hashes, salt_key=os.urandom(32))


def one_chunk(doc: SignedDocument) -> bytes:
    (chunk,) = chunks.split(doc, 1024)
    return chunk.payload


def chunk_payloads(doc: SignedDocument, size: int) -> list[bytes]:
    return [c.payload for c in chunks.split(doc, size)]


def parts(data: bytes) -> dict[str, Any]:
    value = codec.decode(data, codec.Limits(max_bytes=1 << 30, max_bin=1 << 30))
    assert isinstance(value, dict)
    return value


def reassemble(data: bytes, **replace: Any) -> bytes:
    return codec.encode(parts(data) | replace)


def flip(b: bytes, at: int, mask: int = 0x01) -> bytes:
    return b[:at] + bytes([b[at] ^ mask]) + b[at + 1:]


def sign_as_envelope(signer: PrivateIdentity, h: bytes, c: bytes, tag: bytes = TAG_ENVELOPE
                     ) -> bytes:
    """``{c, h, s}`` with ``s`` over h and c as PROTOCOL.md §5.3 says, under ``tag``."""
    s = signer.sign(tag, envelope._signed_body(h, c))
    return codec.encode({"c": c, "h": h, "s": s})


def header_bytes(sender: PrivateIdentity, recipient: PublicIdentity, *, seq: int,
                 prev: bytes = ZERO, kind: str = "chunk", **override: Any) -> bytes:
    header = envelope.EnvelopeHeader(
        sender=sender.party, sender_key=sender.key_id, recipient=recipient.party,
        recipient_key=recipient.key_id, message_id=os.urandom(16), seq=seq, prev=prev,
        sent_at=now_ms(), kind=kind)
    return codec.encode(header.to_map() | override)


def hpke_seal(payload: bytes, to_x25519: Any, h: bytes) -> bytes:
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    return suite.encrypt(payload, to_x25519, signed_message(TAG_HPKE_INFO, h))


def x25519_of(identity: PublicIdentity) -> Any:
    return X25519PublicKey.from_public_bytes(identity.enc_key)


class Forger:
    """A sender that keeps its own view of its link to the daemon (sequence number, chain
    hash), and can re-read it from the daemon's store when a case left it unsure."""

    def __init__(self, me: PrivateIdentity, to: PublicIdentity, view: StoreView) -> None:
        self.me = me
        self.to = to
        self.view = view
        self.seq = 0
        self.prev = ZERO

    def sync(self) -> None:
        rows = self.view.q("SELECT seq, digest FROM inbox WHERE peer=? ORDER BY seq DESC "
                           "LIMIT 1", (self.me.party,))
        self.seq, self.prev = (rows[0][0], rows[0][1]) if rows else (0, ZERO)

    def seal(self, payload: bytes, *, seq: int | None = None, prev: bytes | None = None,
             kind: str = "chunk", me: PrivateIdentity | None = None,
             to: PublicIdentity | None = None) -> envelope.Envelope:
        return envelope.seal(me or self.me, to or self.to, message_id=os.urandom(16),
                             seq=self.seq + 1 if seq is None else seq,
                             prev=self.prev if prev is None else prev, sent_at=now_ms(),
                             kind=kind, payload=payload)

    def taken(self, env: envelope.Envelope) -> None:
        """``env`` took its place in the chain (accepted, or its content refused)."""
        self.seq, self.prev = env.header.seq, env.digest


# ------------------------------------------------------------------ the daemon's store


class StoreView:
    """What a daemon's store holds, read with a read-only connection while it runs (WAL)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def q(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(f"file:{self.node.home.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql, tuple(args)).fetchall()
        finally:
            con.close()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """The rows a refusal must not change. (Delivery attempts of the daemon's own outbox
        change its attempt counts and items' transport state: not compared.)"""
        return {
            "documents": self.q("SELECT rowid, id, direction, peer, state, stored, count "
                                "FROM documents ORDER BY rowid"),
            "items": self.q("SELECT doc, idx, item_id, status FROM items ORDER BY doc, idx"),
            "ack_entries": self.q("SELECT COUNT(*) FROM ack_entries"),
            "inbox": self.q("SELECT peer, seq, digest, result FROM inbox ORDER BY peer, seq"),
            "outbox": self.q("SELECT peer, seq FROM outbox ORDER BY peer, seq"),
        }

    def refusals(self) -> Counter[tuple[Any, ...]]:
        """Refusals by (peer, seq, reason, alarm), each row as many times as its count. A
        refusal no pinned peer answers for is coalesced (one row per source, reason and hour),
        so its seq is the first one's: not compared."""
        out: Counter[tuple[Any, ...]] = Counter()
        for peer, seq, reason, alarm, count in self.q(
                "SELECT peer, seq, reason, alarm, count FROM refusals"):
            out[(peer, seq if peer else None, reason, alarm)] += count
        return out

    def counts(self) -> dict[str, int]:
        return {t: int(self.q(f"SELECT COUNT(*) FROM {t}")[0][0])
                for t in ("documents", "items", "inbox", "outbox", "refusals", "audit")}


@dataclass
class Check:
    """What a case expects of the store: unchanged, except for these refusal rows (peer, seq,
    reason, alarm) and these inbox rows (an envelope whose content was refused still takes its
    place in the chain). ``limit_refusal``: a refusal at the HTTP limits, recorded at most
    once a second per source (so 0 or 1 row of it)."""

    refusals: list[tuple[Any, ...]] = field(default_factory=list)
    inbox: list[tuple[Any, ...]] = field(default_factory=list)
    limit_refusal: str | None = None


@contextlib.contextmanager
def store_holds(node: Node, view: StoreView, check: Check | None = None) -> Iterator[Check]:
    check = check or Check()
    before, refusals_before = view.snapshot(), view.refusals()
    yield check
    serving(node)
    after, refusals_after = view.snapshot(), view.refusals()
    for table in ("documents", "items", "ack_entries", "outbox"):
        assert after[table] == before[table], f"{table} changed"
    added_inbox = [r for r in after["inbox"] if r not in before["inbox"]]
    assert all(r in after["inbox"] for r in before["inbox"]), "inbox rows changed"
    assert [r[:2] + r[3:] for r in added_inbox] == check.inbox, f"inbox rows {added_inbox}"
    assert not refusals_before - refusals_after, "refusal counts went down"
    new = refusals_after - refusals_before
    if check.limit_refusal is not None:
        assert set(new) <= {(None, None, check.limit_refusal, 0)}, f"refusals {new}"
    else:
        assert new == Counter(check.refusals), f"refusals {new}, expected {check.refusals}"


def read_signed_document(view: StoreView, doc_id: str, direction: str = "out"
                         ) -> tuple[SignedHeader, dict[str, bytes]]:
    """A document from the daemon's store: its signed header and its items' leaf hashes."""
    ((rowid, header, sig),) = view.q("SELECT rowid, header, sig FROM documents WHERE id=? AND "
                                     "direction=?", (doc_id, direction))
    signed = SignedHeader(header=documents.DocumentHeader.from_bytes(header), data=header,
                          signature=sig)
    leaves = {r[0]: r[1] for r in view.q("SELECT item_id, lh FROM items WHERE doc=?", (rowid,))}
    return signed, leaves


@dataclass
class World:
    """One running daemon (beta) and everything a hostile alpha needs to attack it."""

    beta: Node
    alpha: Node  # its home only: the tests speak for alpha
    gamma_home: Home
    view: StoreView
    alpha_key: PrivateIdentity
    gamma_key: PrivateIdentity
    mallory: PrivateIdentity
    beta_pub: PublicIdentity
    gamma_pub: PublicIdentity
    forger: Forger
    gforger: Forger

    @property
    def port(self) -> int:
        return self.beta.port

    def post(self, body: bytes, **kw: Any) -> Reply:
        return request(self.beta.port, body, **kw)

    def answer(self, reply: Reply) -> transport.TransportAnswer:
        """The signed transport answer in ``reply`` (this raises unless beta signed it)."""
        assert reply.headers.get("content-type") == ANSWER_TYPE, reply
        return transport.parse_answer(reply.body, self.beta_pub)

    def expect(self, data: bytes, *, status: int, result: str, reason: str | None,
               opaque: bool = False) -> transport.TransportAnswer:
        """POST ``data``; the answer must be beta's signed one with this status and reason.
        ``opaque``: an authentication failure, which says nothing the sender did not know."""
        reply = self.post(data)
        assert reply.status == status, f"HTTP {reply.status} {reply.body[:200]!r}"
        got = self.answer(reply)
        assert (got.result, got.reason) == (result, reason), got
        assert got.envelope == hashlib.sha256(data).digest()
        if opaque or (result == "rejected" and status in (400, 403)):
            # Nothing was authenticated: no claimed header is echoed.
            assert (got.sender, got.message_id, got.seq, got.expected_seq) == (
                None, None, None, None), got
        if opaque:
            assert (status, got.result, got.reason) == (403, "rejected", "unauthenticated")
            assert b"signature" not in reply.body and b"could not" not in reply.body
        return got

    def new_beta_manifest(self, n: int = 3) -> tuple[SignedHeader, dict[str, bytes]]:
        """A manifest beta sends to alpha (alpha's daemon is down: it stays queued), for the
        acknowledgement cases."""
        doc_id = unique("M-BETA")
        self.beta.client.submit_document(
            "manifest", "alpha", [{"id": f"B-{i:04d}"} for i in range(1, n + 1)], id=doc_id)
        return read_signed_document(self.view, doc_id)

    def accept(self, payload: bytes, *, kind: str = "chunk", forger: Forger | None = None
               ) -> tuple[envelope.Envelope, bytes]:
        """Send ``payload`` as the next envelope; it must be accepted. Returns the envelope
        and its receipt."""
        f = forger or self.forger
        env = f.seal(payload, kind=kind)
        reply = self.post(env.data)
        got = self.answer(reply)
        assert (reply.status, got.result, got.seq) == (200, "accepted", env.header.seq), got
        f.taken(env)
        return env, reply.body

    def refused_in_chain(self, payload: bytes, reason: str, *, kind: str = "chunk",
                         forger: Forger | None = None) -> None:
        """Send ``payload`` as the next envelope: authenticated and in sequence, its content
        refused with ``reason``; it takes its place in the chain, and nothing else changes."""
        f = forger or self.forger
        env = f.seal(payload, kind=kind)
        peer = f.me.party
        with store_holds(self.beta, self.view, Check(
                refusals=[(peer, env.header.seq, reason, 1)],
                inbox=[(peer, env.header.seq, "refused")])):
            reply = self.post(env.data)
            got = self.answer(reply)
            assert (reply.status, got.result, got.reason) == (200, "refused", reason), got
            transport.check_receipt_matches(got, digest=env.digest, seq=env.header.seq,
                                            message_id=env.header.message_id)
        f.taken(env)
