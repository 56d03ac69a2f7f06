"""A hostile peer, written here, POSTs to beta's peer endpoint directly: garbage, truncation,
tampering, unpinned and wrongly addressed envelopes, replays, gaps, equivocation, refused content
and an oversized body. Each gets its status and reason code; beta keeps serving, and nothing
changes in its store except the record of the refusal.

The forger uses alpha's real private key (the worst case: a compromised or buggy peer), or a
third identity (mallory) that beta never pinned.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bridge.core import answers as transport
from bridge.core import chunks, codec, documents, envelope, merkle
from bridge.core.crypto.identity import TAG_ENVELOPE, TAG_HPKE_INFO, PrivateIdentity, signed_message
from bridge.core.documents import Item
from bridge.daemon.pair import Node

from .conftest import EventLog, person

ZERO = bytes(32)
ANSWER_TYPE = "application/vnd.bridge.transport-answer"
MAX_BODY = 256 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


def post(node: Node, body: bytes) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        conn.request("POST", "/v1/envelopes", body=body,
                     headers={"Content-Type": "application/vnd.bridge.envelope"})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Type", "")
    finally:
        conn.close()


def peer_health(node: Node) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        conn.request("GET", "/v1/health")
        import json
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


def manifest_doc(issuer: PrivateIdentity, doc_id: str, n: int = 3,
                 recipient: str = "beta") -> documents.SignedDocument:
    items = [Item(id=p["id"], data={k: v for k, v in p.items() if k != "id"})
             for p in (person(i) for i in range(1, n + 1))]
    return documents.sign_document(issuer, doc_type="manifest", doc_id=doc_id,
                                   recipient=recipient, created=now_ms(), meta={}, items=items,
                                   salt_key=os.urandom(32))


def forged_ack(issuer: PrivateIdentity, doc: documents.SignedDocument) -> documents.SignedDocument:
    """A well-formed acknowledgement of ``doc``, which the acknowledgement's recipient never
    sent."""
    leaf_hashes = {e.item_id: merkle.leaf_hash(doc.leaves[e.index])
                   for e in doc.declared_entries()}
    return documents.sign_ack(issuer, answers=doc.signed, ack_id="A-FORGED-1", created=now_ms(),
                              items=[documents.AckItem(id=i, status="RECEIVED")
                                     for i in leaf_hashes],
                              declared_leaf_hashes=leaf_hashes, salt_key=os.urandom(32))


def one_chunk(doc: documents.SignedDocument) -> bytes:
    (chunk,) = chunks.split(doc, 1024)
    return chunk.payload


class Forger:
    """A sender that keeps its own view of the link (sequence number, chain hash)."""

    def __init__(self, me: PrivateIdentity, to: Any) -> None:
        self.me = me
        self.to = to
        self.seq = 0
        self.prev = ZERO

    def seal(self, payload: bytes, *, seq: int | None = None, prev: bytes | None = None,
             kind: str = "chunk", me: PrivateIdentity | None = None,
             to: Any = None) -> envelope.Envelope:
        return envelope.seal(me or self.me, to or self.to, message_id=os.urandom(16),
                             seq=self.seq + 1 if seq is None else seq,
                             prev=self.prev if prev is None else prev, sent_at=now_ms(),
                             kind=kind, payload=payload)

    def accepted(self, env: envelope.Envelope) -> None:
        self.seq, self.prev = env.header.seq, env.digest


def parts(data: bytes) -> dict[str, Any]:
    value = codec.decode(data)
    assert isinstance(value, dict)
    return value


def reassemble(data: bytes, **replace: bytes) -> bytes:
    return codec.encode(parts(data) | replace)


def flip(b: bytes, at: int) -> bytes:
    return b[:at] + bytes([b[at] ^ 0x01]) + b[at + 1:]


def sealed_to_other_key(sender: PrivateIdentity, recipient: Any, payload: bytes, *, seq: int,
                        prev: bytes) -> bytes:
    """A header that names the right recipient and key, signed by the right sender, but the
    ciphertext is HPKE-sealed to some other X25519 key (PROTOCOL.md §5)."""
    from cryptography.hazmat.primitives import hpke

    header = envelope.EnvelopeHeader(
        sender=sender.party, sender_key=sender.key_id, recipient=recipient.party,
        recipient_key=recipient.key_id, message_id=os.urandom(16), seq=seq, prev=prev,
        sent_at=now_ms(), kind="chunk")
    h = codec.encode(header.to_map())
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    c = suite.encrypt(payload, X25519PrivateKey.generate().public_key(),
                      signed_message(TAG_HPKE_INFO, h))
    s = sender.sign(TAG_ENVELOPE, envelope._signed_body(h, c))
    return codec.encode({"c": c, "h": h, "s": s})


class BetaView:
    """What beta's store holds, read with a read-only connection while it runs (WAL)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def _q(self, sql: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(f"file:{self.node.home.db_path}?mode=ro", uri=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def snapshot(self) -> dict[str, Any]:
        c = self.node.client
        docs = c.documents() + c.documents(type="ack")
        return {
            "documents": docs,
            "items": {d["id"]: c.items(d["id"])["items"] for d in docs if d["type"] != "ack"},
            "db_documents": self._q("SELECT rowid, id, direction, state, stored, count "
                                    "FROM documents ORDER BY rowid"),
            "db_items": self._q("SELECT doc, idx, item_id, status FROM items ORDER BY doc, idx"),
            "inbox": self._q("SELECT peer, seq, digest, result, receipt FROM inbox "
                             "ORDER BY peer, seq"),
            "outbox": self._q("SELECT peer, seq FROM outbox ORDER BY peer, seq"),
        }

    def refusals(self) -> list[tuple[Any, ...]]:
        return self._q("SELECT peer, seq, reason, alarm, digest FROM refusals ORDER BY rowid")

    def refusal_counts(self) -> Counter[tuple[Any, ...]]:
        """By (peer, seq, reason, alarm), counted; a coalesced row (no peer) has no seq."""
        out: Counter[tuple[Any, ...]] = Counter()
        for peer, seq, reason, alarm, count in self._q(
                "SELECT peer, seq, reason, alarm, count FROM refusals"):
            out[(peer, seq if peer else None, reason, alarm)] += count
        return out


def test_hostile_envelopes(make_nodes: Callable[..., tuple[Node, Node]],
                           events: Callable[[Node], EventLog]) -> None:
    # Suite 1: the forger below seals by hand with X25519 (suite 2's forgeries are in
    # tests/test_suite2_objects.py and the suite-2 vectors).
    alpha, beta = make_nodes(suites=(1, 1))
    cfg = beta.home.config()
    beta.home.write_config(dataclasses.replace(cfg, max_body_bytes=MAX_BODY))
    beta.start()  # alpha's daemon stays down: the test speaks for alpha
    beta_events = events(beta)
    view = BetaView(beta)
    alpha_key = alpha.home.identity()
    beta_pub = alpha.home.peer_identity("beta")
    mallory = PrivateIdentity.generate("mallory", created=now_ms())
    forger = Forger(alpha_key, beta_pub)

    def answer_of(body: bytes) -> transport.TransportAnswer:
        return transport.parse_answer(body, beta_pub)  # signed by beta, or this raises

    # -- an honest first envelope, accepted
    doc1 = manifest_doc(alpha_key, "M-H-1")
    env1 = forger.seal(one_chunk(doc1))
    status, receipt1, ctype = post(beta, env1.data)
    assert (status, ctype) == (200, ANSWER_TYPE)
    first = answer_of(receipt1)
    assert (first.result, first.reason, first.seq) == ("accepted", None, 1)
    transport.check_receipt_matches(first, digest=env1.digest, seq=1,
                                    message_id=env1.header.message_id)
    forger.accepted(env1)
    beta_events.wait("document_received", id="M-H-1")

    unauthenticated: list[transport.TransportAnswer] = []

    def attempt(name: str, data: bytes, *, status: int, result: str, reason: str | None,
                refusal: tuple[str | None, int | None, str, int] | None,
                unauth: bool = False) -> transport.TransportAnswer | None:
        """POST ``data``; check the answer, that beta still serves, and that the only change
        in its store is the ``refusal`` row (peer, seq, reason, alarm), if any."""
        before, refusals_before = view.snapshot(), view.refusal_counts()
        got_status, body, _ = post(beta, data)
        assert got_status == status, f"{name}: HTTP {got_status} {body[:200]!r}"
        answer = None
        if status != 413:
            answer = answer_of(body)
            assert (answer.result, answer.reason) == (result, reason), f"{name}: {answer}"
            assert answer.envelope == hashlib.sha256(data).digest(), name
            if unauth:
                # One opaque answer: nothing the sender did not already know, no detail.
                assert (answer.sender, answer.message_id, answer.seq,
                        answer.expected_seq) == (None, None, None, None), name
                assert b"could not" not in body and b"signature" not in body, name
                unauthenticated.append(answer)
        assert peer_health(beta)["status"] == "ok", name
        assert beta.client.health()["status"] == "ok", name
        assert view.snapshot() == before, f"{name}: beta's store changed"
        after = view.refusal_counts()
        assert not refusals_before - after, f"{name}: refusal counts went down"
        new = after - refusals_before
        assert new == Counter([refusal] if refusal else []), f"{name}: refusals {new}"
        return answer

    env2 = forger.seal(one_chunk(manifest_doc(alpha_key, "M-H-2")))  # valid, kept for later
    c2, h2, s2 = parts(env2.data)["c"], parts(env2.data)["h"], parts(env2.data)["s"]

    # -- bytes that are not an envelope: a signed rejection with a reason code
    attempt("garbage", b"\xc1 this is not an envelope \xff" * 4, status=400,
            result="rejected", reason="malformed", refusal=(None, None, "malformed", 0))
    attempt("trailing bytes", b"\x00 not an envelope either", status=400,
            result="rejected", reason="trailing", refusal=(None, None, "trailing", 0))
    attempt("empty body", b"", status=400, result="rejected", reason="truncated",
            refusal=(None, None, "truncated", 0))
    attempt("truncated", env2.data[: len(env2.data) // 2], status=400, result="rejected",
            reason="truncated", refusal=(None, None, "truncated", 0))
    attempt("not an envelope map", codec.encode({"c": c2, "h": h2}), status=400,
            result="rejected", reason="not_envelope", refusal=(None, None, "not_envelope", 0))

    # -- authentication failures: all the same opaque answer
    unauth = (None, None, "unauthenticated", 0)
    at = h2.find(env2.header.message_id)
    assert at > 0
    attempt("tampered header", reassemble(env2.data, h=flip(h2, at)), status=403,
            result="rejected", reason="unauthenticated", refusal=unauth, unauth=True)
    attempt("tampered ciphertext", reassemble(env2.data, c=flip(c2, len(c2) // 2)), status=403,
            result="rejected", reason="unauthenticated", refusal=unauth, unauth=True)
    attempt("tampered signature", reassemble(env2.data, s=flip(s2, 7)), status=403,
            result="rejected", reason="unauthenticated", refusal=unauth, unauth=True)
    attempt("signature of another envelope", reassemble(env2.data, s=parts(env1.data)["s"]),
            status=403, result="rejected", reason="unauthenticated", refusal=unauth,
            unauth=True)
    attempt("unpinned sender (mallory)",
            forger.seal(one_chunk(manifest_doc(mallory, "M-MAL-1")), me=mallory).data,
            status=403, result="rejected", reason="unauthenticated", refusal=unauth,
            unauth=True)
    impostor = PrivateIdentity.generate("alpha", created=now_ms())  # alpha's name, other keys
    attempt("impostor with alpha's name", forger.seal(
        one_chunk(manifest_doc(impostor, "M-IMP-1")), me=impostor).data, status=403,
        result="rejected", reason="unauthenticated", refusal=unauth, unauth=True)
    attempt("sealed to another key under beta's key id", sealed_to_other_key(
        alpha_key, beta_pub, one_chunk(manifest_doc(alpha_key, "M-H-X")), seq=2,
        prev=forger.prev), status=403, result="rejected", reason="unauthenticated",
        refusal=unauth, unauth=True)
    assert len(unauthenticated) == 7
    # Same statement in every field but the envelope hash and the time.
    same_at = unauthenticated[0].at  # any time in range: the times are not compared
    assert len({dataclasses.replace(a, envelope=bytes(32), at=same_at)
                for a in unauthenticated}) == 1

    # -- addressed to a key beta does not hold (e.g. an old one): refused before opening
    other_beta = PrivateIdentity.generate("beta", created=now_ms())
    wrong = attempt("sealed to another beta key", forger.seal(
        one_chunk(manifest_doc(alpha_key, "M-H-W")), to=other_beta.public).data, status=400,
        result="rejected", reason="wrong_recipient", refusal=(None, None, "wrong_recipient", 0))
    # Nothing was authenticated: the answer echoes no claimed sender, id or sequence number.
    assert wrong is not None and (wrong.sender, wrong.seq) == (None, None)

    # -- a replay of the accepted envelope: the very same receipt, nothing changes
    for _ in range(2):
        status, again, _ = post(beta, env1.data)
        assert (status, again) == (200, receipt1)
    attempt("replay", env1.data, status=200, result="accepted", reason=None, refusal=None)

    # -- a gap: seq too high; a signed rejection says which one is expected (nothing recorded)
    gap = attempt("gap", forger.seal(one_chunk(manifest_doc(alpha_key, "M-H-GAP")),
                                     seq=5).data,
                  status=409, result="rejected", reason="gap", refusal=None)
    assert gap is not None and (gap.expected_seq, gap.seq, gap.sender) == (2, 5, "alpha")

    # -- equivocation: same seq, other content; and a fork (next seq, wrong prev)
    alarms_before = len(beta_events.of_type("security_alarm"))
    equiv = attempt("equivocation", forger.seal(one_chunk(manifest_doc(alpha_key, "M-H-1B")),
                                                seq=1, prev=ZERO).data,
                    status=409, result="rejected", reason="equivocation",
                    refusal=("alpha", 1, "equivocation", 1))
    assert equiv is not None and equiv.seq == 1
    attempt("fork", forger.seal(one_chunk(manifest_doc(alpha_key, "M-H-FORK")),
                                prev=hashlib.sha256(b"another history").digest()).data,
            status=409, result="rejected", reason="equivocation",
            refusal=("alpha", 2, "equivocation", 1))
    beta_events.wait("security_alarm", reason="equivocation")
    assert len(beta_events.of_type("security_alarm")) >= alarms_before + 2

    # -- authenticated and in sequence, but the content is refused: the chain still advances
    doc3 = manifest_doc(alpha_key, "M-H-3")
    chunk3 = parts(one_chunk(doc3))
    entries = list(chunk3["entries"])
    entries[1] = flip(entries[1], len(entries[1]) - 3)
    tampered = codec.encode(chunk3 | {"entries": entries})
    before = view.snapshot()
    env_bad = forger.seal(tampered)
    status, body, _ = post(beta, env_bad.data)
    refused = answer_of(body)
    assert (status, refused.result, refused.reason, refused.seq) == (
        200, "refused", "root_mismatch", 2)
    transport.check_receipt_matches(refused, digest=env_bad.digest, seq=2,
                                    message_id=env_bad.header.message_id)
    forger.accepted(env_bad)
    after = view.snapshot()
    assert after["documents"] == before["documents"] and after["items"] == before["items"]
    assert after["inbox"][:-1] == before["inbox"]
    assert after["inbox"][-1][:4] == ("alpha", 2, env_bad.digest, "refused")
    assert view.refusals()[-1][:4] == ("alpha", 2, "root_mismatch", 1)
    beta_events.wait("document_refused", reason="root_mismatch")
    # Its replay gets the same refusal back, and changes nothing.
    assert post(beta, env_bad.data)[:2] == (200, body)

    # Other refused content, each taking its place in the chain.
    for name, payload, reason in [
        ("unknown kind", None, "unknown_kind"),
        ("document signed by an unpinned key", one_chunk(manifest_doc(mallory, "M-MAL-2")),
         "unknown_key"),
        ("document addressed to another party",
         one_chunk(manifest_doc(alpha_key, "M-H-G", recipient="gamma")), "wrong_recipient"),
        ("not a chunk", codec.encode({"hello": "beta"}), "bad_chunk"),
        ("an accepted document sent again", one_chunk(doc1), "bad_chunk"),
        ("another document under a used id", one_chunk(manifest_doc(alpha_key, "M-H-1", n=2)),
         "duplicate_document"),
        ("acknowledgement of a document beta never sent", one_chunk(forged_ack(
            alpha_key, manifest_doc(other_beta, "M-NEVER-SENT", recipient="alpha"))),
         "unknown_document"),
    ]:
        env = (forger.seal(one_chunk(doc3), kind="note") if payload is None
               else forger.seal(payload))
        status, body, _ = post(beta, env.data)
        got = answer_of(body)
        assert (status, got.result, got.reason, got.seq) == (
            200, "refused", reason, forger.seq + 1), name
        forger.accepted(env)
        assert view.refusals()[-1][:4] == ("alpha", forger.seq, reason, 1), name

    assert beta.client.document("M-H-1")["items"]["total"] == 3
    assert len(beta.client.items("M-H-1")["items"]) == 3
    assert [d["id"] for d in beta.client.documents()] == ["M-H-1"]

    # -- a body over the size limit: 413 before anything is decoded (recorded, unsigned)
    attempt("too large", env2.data + b"\x00" * MAX_BODY, status=413, result="", reason=None,
            refusal=(None, None, "too_large", 0))

    # -- after all that, the link still works: the next honest envelope is accepted
    env_ok = forger.seal(one_chunk(doc3))
    status, body, _ = post(beta, env_ok.data)
    ok = answer_of(body)
    assert (status, ok.result, ok.seq) == (200, "accepted", forger.seq + 1)
    beta_events.wait("document_received", id="M-H-3")
    assert [d["id"] for d in beta.client.documents(direction="in")] == ["M-H-3", "M-H-1"]
    assert beta.stop() == 0
