#!/usr/bin/env python3
"""Generate Bridge's test vectors from fixed test keys (PROTOCOL.md §9).

    python schemas/vectors/generate.py            write the vectors (envelopes only if missing)
    python schemas/vectors/generate.py --check    regenerate into a temporary folder and compare
                                                  byte for byte; open the committed envelopes
    python schemas/vectors/generate.py --envelopes   also seal fresh envelopes

Everything is deterministic except the envelopes: HPKE draws an ephemeral key for every seal
(RFC 9180 §5.1.1), so envelopes cannot be reproduced byte for byte; their JSON sidecars can, and
``--check`` opens each committed envelope and compares it with its sidecar instead.

Key material comes from SHAKE-256 of a seed string, so the "random" keys, salts and ids are the
same on every run. These keys are public knowledge: never use them for anything real.

All names and records below are synthetic.
"""

from __future__ import annotations

import argparse
import base64
import filecmp
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run from a checkout without installing

from bridge import chunks, codec, envelope, merkle  # noqa: E402
from bridge.documents import (  # noqa: E402
    ACK,
    AckItem,
    DocumentHeader,
    Item,
    SignedDocument,
    SignedHeader,
    encode_ack_entry,
    leaf_salts,
    sign_ack,
    sign_document,
)
from bridge.identity import (  # noqa: E402
    TAG_DOCUMENT,
    TAG_ENVELOPE,
    TAG_TRANSPORT_RECEIPT,
    Keyring,
    PrivateIdentity,
)
from bridge.receipts import (  # noqa: E402
    build_document_receipt,
    build_item_receipt,
    check_receipt,
)

DETERMINISTIC_DIRS = ("keys", "receipts")


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Milliseconds since the epoch of a UTC date and time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


KEYS_CREATED = ms(2026, 1, 1)
MANIFEST_CREATED = ms(2026, 3, 2, 8)
REISSUE_CREATED = ms(2026, 3, 2, 9)
ACK1_CREATED = ms(2026, 3, 2, 15)
ACK2_CREATED = ms(2026, 3, 5, 10)
ACK3_CREATED = ms(2026, 4, 20, 9, 30)
FORGED_CREATED = ms(2026, 5, 1, 12)


def fixed_random(seed: str) -> Callable[[int], bytes]:
    """A deterministic stand-in for os.urandom: SHAKE-256 of the seed, read in order."""
    stream = hashlib.shake_256(b"bridge-test-vectors/" + seed.encode()).digest(4096)
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        out = stream[pos : pos + n]
        pos += n
        if len(out) != n:
            raise RuntimeError("fixed random stream exhausted")
        return out

    return take


def salt_key(name: str) -> bytes:
    return fixed_random("salt-key/" + name)(32)


# ---------------------------------------------------------------- the synthetic exchange


def remains(n: int, **extra: Any) -> Item:
    data = {"kind": "remains_package", "category": "human_remains",
            "body_tag": f"BT-TEST-{n:04d}", "bag_id": f"BAG-TEST-{n:02d}",
            "recovered_on": "2026-01-14", "recovered_at": "TEST-SITE-A",
            "presumed_identity": "unknown", "presumed_affiliation": "beta-test",
            "estimated_individuals": 1, "seals": [f"SEAL-TEST-{n:04d}"]}
    data.update(extra)
    return Item(id=f"REM-TEST-{n:04d}", data=data)


def prisoner(n: int) -> Item:
    return Item(id=f"POW-TEST-{n:04d}", data={
        "kind": "person", "category": "prisoner_of_war", "surname": f"Testperson-{n:02d}",
        "first_names": "Synthetic Example", "rank": "private",
        "date_of_birth": f"2001-05-{n:02d}", "service_number": f"SN-TEST-{n:04d}",
        "exchange": {"eligibility": "seriously_wounded", "consent_to_repatriation": True}})


ITEMS = [
    remains(1),
    remains(2, presumed_identity="Testperson-02, Synthetic"),
    prisoner(3),
    remains(4),
    prisoner(5),
    prisoner(6),
    remains(7, estimated_individuals=2),
    Item(id="EFF-TEST-0008", data={"kind": "effects_packet", "category": "personal_effects",
                                   "packet": "PKT-TEST-0008", "belongs_to": "POW-TEST-0005",
                                   "seals": ["SEAL-TEST-0108"]}),
]
META = {"agreement": "AGR-TEST-2026-01", "batch": 3, "agreed_date": "2026-03-02",
        "handover_point": "TEST-CROSSING-1", "transport": "TEST-VEHICLE-7"}


@dataclass(frozen=True, kw_only=True)
class World:
    alpha: PrivateIdentity
    beta: PrivateIdentity
    mallory: PrivateIdentity
    manifest: SignedDocument
    reissue: SignedDocument  # same id, signed again an hour later: another document by hash
    acks: tuple[SignedDocument, SignedDocument, SignedDocument]

    @property
    def keys(self) -> Keyring:
        return Keyring.of([self.alpha.public, self.beta.public])

    def leaf_hashes(self, doc: SignedDocument) -> dict[str, bytes]:
        return {e.item_id: merkle.leaf_hash(doc.leaves[e.index])
                for e in doc.declared_entries()}


def identity(party: str) -> PrivateIdentity:
    return PrivateIdentity.generate(party, created=KEYS_CREATED,
                                    random_bytes=fixed_random("identity/" + party))


def make_world() -> World:
    alpha, beta, mallory = identity("alpha-test"), identity("beta-test"), identity("mallory-test")
    manifest = sign_document(alpha, doc_type="manifest", doc_id="MAN-TEST-0003",
                             recipient="beta-test", created=MANIFEST_CREATED, meta=META,
                             items=ITEMS, salt_key=salt_key("MAN-TEST-0003"))
    reissue = sign_document(alpha, doc_type="manifest", doc_id="MAN-TEST-0003",
                            recipient="beta-test", created=REISSUE_CREATED, meta=META,
                            items=ITEMS, salt_key=salt_key("MAN-TEST-0003/reissue"))
    hashes = {e.item_id: merkle.leaf_hash(manifest.leaves[e.index])
              for e in manifest.declared_entries()}

    def ack(ack_id: str, created: int, items: list[AckItem]) -> SignedDocument:
        return sign_ack(beta, answers=manifest.signed, ack_id=ack_id, created=created,
                        items=items, declared_leaf_hashes=hashes, salt_key=salt_key(ack_id))

    ack1 = ack("ACK-TEST-0003-1", ACK1_CREATED, [
        AckItem(id="REM-TEST-0001", status="RECEIVED"),
        AckItem(id="REM-TEST-0002", status="RECEIVED"),
        AckItem(id="POW-TEST-0003", status="RECEIVED"),
        AckItem(id="REM-TEST-0004", status="RECEIVED"),
        AckItem(id="POW-TEST-0005", status="RECEIVED"),
        AckItem(id="POW-TEST-0006", status="NOT_RECEIVED",
                reason="not present at the handover point"),
        AckItem(id="REM-TEST-0007", status="RECEIVED"),
        AckItem(id="REM-TEST-0099", status="RECEIVED_UNDECLARED",
                reason="bag found in the vehicle, not on the manifest"),
    ])
    ack2 = ack("ACK-TEST-0003-2", ACK2_CREATED, [
        AckItem(id="REM-TEST-0002", status="PENDING_IDENTIFICATION",
                evidence="sample barcode SMP-TEST-0002"),
        AckItem(id="POW-TEST-0003", status="DISPUTED",
                reason="date of birth does not match the declared record"),
        AckItem(id="REM-TEST-0004", status="NOT_OWN_NATIONAL",
                reason="DNA match to a person missing from the sender's own side",
                evidence="match report MR-TEST-0004"),
        AckItem(id="REM-TEST-0007", status="COMMINGLED",
                reason="bag holds remains of at least two individuals"),
    ])
    ack3 = ack("ACK-TEST-0003-3", ACK3_CREATED, [
        AckItem(id="REM-TEST-0002", status="IDENTITY_CONFIRMED",
                evidence="match report MR-TEST-0002"),
    ])
    return World(alpha=alpha, beta=beta, mallory=mallory, manifest=manifest, reissue=reissue,
                 acks=(ack1, ack2, ack3))


# ---------------------------------------------------------------- forgery helpers


def sign_header(signer: PrivateIdentity, header: DocumentHeader, *,
                tag: bytes = TAG_DOCUMENT) -> SignedHeader:
    data = codec.encode(header.to_map())
    return SignedHeader(header=header, data=data, signature=signer.sign(tag, data))


def raw_ack(signer: PrivateIdentity, answers: SignedHeader, ack_id: str, created: int,
            entries: Sequence[tuple[AckItem, bytes | None]]) -> SignedDocument:
    """An acknowledgement built without sign_ack's safety checks (leaf chosen freely)."""
    salts = leaf_salts(salt_key(ack_id), len(entries))
    leaves = tuple(encode_ack_entry(n, salts[n], item, leaf)
                   for n, (item, leaf) in enumerate(entries))
    tree = merkle.MerkleTree.from_leaves(leaves)
    header = DocumentHeader(type=ACK, id=ack_id, issuer=signer.party, issuer_key=signer.key_id,
                            recipient=answers.header.issuer, created=created,
                            count=len(leaves), root=tree.root, meta={}, answers=answers.digest,
                            answers_id=answers.header.id)
    return SignedDocument(signed=sign_header(signer, header), leaves=leaves)


def header_with(signed: SignedHeader, **changes: Any) -> DocumentHeader:
    fields = {k: getattr(signed.header, k) for k in
              ("type", "id", "issuer", "issuer_key", "recipient", "created", "count", "root",
               "meta", "answers", "answers_id")}
    fields.update(changes)
    return DocumentHeader(**fields)


def index_of(doc: SignedDocument, item_id: str) -> int:
    if doc.header.type == ACK:
        return next(e.index for e in doc.ack_entries() if e.item_id == item_id)
    return next(e.index for e in doc.declared_entries() if e.item_id == item_id)


def signed_map(signed: SignedHeader) -> dict[str, bytes]:
    return {"header": signed.data, "sig": signed.signature}


def ack_block(ack: SignedDocument, item_id: str) -> dict[str, Any]:
    i = index_of(ack, item_id)
    return {"ack": signed_map(ack.signed), "entry": ack.leaves[i], "proof": ack.proof(i)}


# ---------------------------------------------------------------- receipts


@dataclass(frozen=True, kw_only=True)
class Vector:
    name: str
    data: bytes
    ok: bool
    tries: str
    reason: str | None = None


def valid_vectors(w: World) -> list[Vector]:
    acks = list(w.acks)

    def item(name: str, item_id: str, what: str) -> Vector:
        return Vector(name=name, data=build_item_receipt(w.manifest, item_id, acks), ok=True,
                      tries=what)

    return [
        item("item-rem-0001-received", "REM-TEST-0001", "one acknowledgement: RECEIVED"),
        item("item-rem-0002-received-pending-confirmed", "REM-TEST-0002",
             "three acknowledgements: RECEIVED, PENDING_IDENTIFICATION, IDENTITY_CONFIRMED"),
        item("item-pow-0003-disputed", "POW-TEST-0003", "RECEIVED, then DISPUTED with a reason"),
        item("item-rem-0004-not-own-national", "REM-TEST-0004",
             "RECEIVED, then NOT_OWN_NATIONAL with a reason and evidence"),
        item("item-pow-0006-not-received", "POW-TEST-0006", "NOT_RECEIVED with a reason"),
        item("item-rem-0007-commingled", "REM-TEST-0007", "RECEIVED, then COMMINGLED"),
        Vector(name="document-man-test-0003", data=build_document_receipt(w.manifest, acks),
               ok=True, tries="the whole manifest and its three acknowledgements (one item "
               "unacknowledged, one received undeclared)"),
    ]


def invalid_vectors(w: World) -> list[Vector]:
    acks = list(w.acks)
    ack1, ack2, _ = acks
    man = w.manifest
    out: list[Vector] = []

    def base(item_id: str) -> dict[str, Any]:
        value = codec.decode(build_item_receipt(man, item_id, acks))
        assert isinstance(value, dict)
        return value

    def add(name: str, reason: str, tries: str, value: dict[str, Any] | bytes) -> None:
        data = value if isinstance(value, bytes) else codec.encode(value)
        out.append(Vector(name=name, data=data, ok=False, reason=reason, tries=tries))

    # -- the declared entry and its proof
    b = base("POW-TEST-0003")
    b["entry"] = b["entry"].replace(b"Testperson-03", b"Uestperson-03")  # 0x54 -> 0x55
    add("flipped-byte-in-entry", "bad_proof",
        "one bit of the declared entry changed (a surname): the leaf no longer hashes to the "
        "signed root", b)

    b = base("POW-TEST-0003")
    b["proof"] = man.proof(index_of(man, "REM-TEST-0002"))
    add("proof-for-another-item", "bad_proof",
        "the declared entry of one item with the audit path of another", b)

    b = base("POW-TEST-0003")
    b["proof"] = list(reversed(b["proof"]))
    add("reordered-proof", "bad_proof", "the audit path's hashes in another order", b)

    b = base("POW-TEST-0003")
    b["proof"] = b["proof"][:-1]
    add("truncated-proof", "bad_proof", "the audit path without its last hash", b)

    reissue_entry = w.reissue.leaves[index_of(w.reissue, "POW-TEST-0003")]
    b = base("POW-TEST-0003")
    b["entry"] = reissue_entry
    b["proof"] = w.reissue.proof(index_of(w.reissue, "POW-TEST-0003"))
    add("entry-from-reissued-document", "bad_proof",
        "the entry and proof of the same item from another signed version of the same "
        "manifest id, under this version's header", b)

    # -- the document header and its signature
    b = base("POW-TEST-0003")
    tampered = header_with(man.signed, meta={**META, "batch": 4})
    b["document"]["header"] = codec.encode(tampered.to_map())
    add("document-header-tampered", "bad_signature",
        "the signed header's batch number changed, the signature kept", b)

    b = base("POW-TEST-0003")
    inflated = sign_header(w.alpha, header_with(man.signed, count=man.header.count + 1))
    b["document"] = signed_map(inflated)
    add("count-inflated", "bad_proof",
        "the sender signs a header claiming one entry more than the tree has: the audit path "
        "has the wrong shape for the signed size (RFC 9162 §2.1.3.2)", b)

    b = base("POW-TEST-0003")
    forged = sign_header(w.beta, header_with(man.signed, issuer_key=w.beta.key_id))
    b["document"] = signed_map(forged)
    add("issuer-name-mismatch", "wrong_issuer",
        "the receiver signs a manifest that names the sender as its issuer", b)

    b = base("POW-TEST-0003")
    b["document"] = signed_map(ack1.signed)
    add("ack-as-document", "wrong_type",
        "an acknowledgement header presented as the declaring document", b)

    # -- acknowledgement signatures
    b = base("POW-TEST-0003")
    forged_ack = header_with(ack2.signed, issuer_key=w.mallory.key_id)
    b["acks"][1]["ack"] = signed_map(sign_header(w.mallory, forged_ack))
    add("signed-by-unknown-key", "unknown_key",
        "an acknowledgement in the receiver's name signed by a key nobody pinned (mallory)", b)

    b = base("POW-TEST-0003")
    b["acks"][1]["ack"]["sig"] = w.beta.sign(TAG_ENVELOPE, ack2.signed.data)
    add("envelope-signature-as-receipt-signature", "bad_signature",
        "the receiver's real key signed the acknowledgement header's bytes under the envelope "
        "tag bridge/v1/envelope, not bridge/v1/document", b)

    b = base("POW-TEST-0003")
    b["acks"][1]["ack"]["sig"] = w.beta.sign(TAG_TRANSPORT_RECEIPT, ack2.signed.data)
    add("transport-receipt-signature-as-ack-signature", "bad_signature",
        "the same bytes signed under the transport-receipt tag", b)

    # -- what the acknowledgement answers, and who gives it
    other = sign_ack(w.beta, answers=w.reissue.signed, ack_id="ACK-TEST-0003-R",
                     created=ACK2_CREATED, items=[AckItem(id="POW-TEST-0003", status="RECEIVED")],
                     declared_leaf_hashes=w.leaf_hashes(w.reissue),
                     salt_key=salt_key("ACK-TEST-0003-R"))
    b = base("POW-TEST-0003")
    b["acks"][1] = ack_block(other, "POW-TEST-0003")
    add("ack-of-different-document", "wrong_document",
        "an acknowledgement of another document with the same id (a re-signed version): "
        "only the hash tells them apart", b)

    self_ack = sign_ack(w.alpha, answers=man.signed, ack_id="ACK-TEST-0003-A",
                        created=ACK2_CREATED,
                        items=[AckItem(id="POW-TEST-0003", status="IDENTITY_CONFIRMED")],
                        declared_leaf_hashes=w.leaf_hashes(man),
                        salt_key=salt_key("ACK-TEST-0003-A"))
    b = base("POW-TEST-0003")
    b["acks"][1] = ack_block(self_ack, "POW-TEST-0003")
    add("ack-by-wrong-party", "wrong_party",
        "the sender acknowledges its own manifest", b)

    # -- the acknowledgement entry
    b = base("REM-TEST-0002")
    b["acks"][0] = ack_block(ack1, "POW-TEST-0003")
    add("ack-entry-for-other-item", "wrong_item",
        "a genuine acknowledgement entry and proof, but for another item", b)

    wrong_leaf = raw_ack(w.beta, man.signed, "ACK-TEST-0003-L", ACK2_CREATED, [
        (AckItem(id="POW-TEST-0003", status="IDENTITY_CONFIRMED"),
         merkle.leaf_hash(reissue_entry))])
    b = base("POW-TEST-0003")
    b["acks"][1] = ack_block(wrong_leaf, "POW-TEST-0003")
    add("ack-binds-other-entry-version", "wrong_leaf",
        "an acknowledgement of this document and item id that binds another entry (leaf hash "
        "of the re-signed version's entry)", b)

    undeclared = raw_ack(w.beta, man.signed, "ACK-TEST-0003-U", ACK2_CREATED, [
        (AckItem(id="REM-TEST-0002", status="RECEIVED_UNDECLARED"), None)])
    b = base("REM-TEST-0002")
    b["acks"] = [ack_block(undeclared, "REM-TEST-0002")]
    add("undeclared-ack-in-item-receipt", "undeclared",
        "an acknowledgement that says the item was never declared, in a per-item receipt "
        "that proves it was", b)

    b = base("POW-TEST-0003")
    b["acks"][1]["entry"] = b["acks"][1]["entry"].replace(b"\xa8DISPUTED", b"\xa8RECEIVED")
    add("status-changed-in-ack-entry", "bad_proof",
        "the acknowledged status changed from DISPUTED to RECEIVED in the entry", b)

    b = base("REM-TEST-0002")
    b["acks"][0]["ack"], b["acks"][1]["ack"] = b["acks"][1]["ack"], b["acks"][0]["ack"]
    add("swapped-ack-root", "bad_proof",
        "each acknowledgement entry paired with the other acknowledgement's signed header "
        "(and so its root)", b)

    b = base("REM-TEST-0002")
    b["acks"] = [b["acks"][1], b["acks"][0], b["acks"][2]]
    add("acks-out-of-order", "ack_order",
        "the status history reordered (PENDING_IDENTIFICATION before RECEIVED)", b)

    # -- the bundle's bytes
    good = build_item_receipt(man, "POW-TEST-0003", acks)
    add("truncated-bundle", "truncated", "the receipt cut in half", good[: len(good) // 2])
    add("trailing-garbage", "trailing", "one byte (nil) after the receipt", good + b"\xc0")
    assert good.endswith(b"\xa1v\x01")
    add("non-canonical-encoding", "not_canonical",
        'the receipt re-encoded with "v": 1 as a two-byte uint 8 (0xcc 0x01)',
        good[:-1] + b"\xcc\x01")
    b = base("POW-TEST-0003")
    b["v"] = 2
    add("unsupported-version", "bad_bundle", "a receipt of version 2", b)

    # -- whole-document bundles
    def doc_base() -> dict[str, Any]:
        value = codec.decode(build_document_receipt(man, acks))
        assert isinstance(value, dict)
        return value

    d = doc_base()
    del d["document"]["entries"][4]
    add("document-entry-dropped", "count_mismatch",
        "the whole-document receipt with one declared entry left out", d)

    d = doc_base()
    entries = d["document"]["entries"]
    entries[0], entries[1] = entries[1], entries[0]
    add("document-entries-swapped", "root_mismatch",
        "two declared entries swapped: the recomputed root differs", d)

    denial = raw_ack(w.beta, man.signed, "ACK-TEST-0003-D", FORGED_CREATED, [
        (AckItem(id="REM-TEST-0001", status="RECEIVED_UNDECLARED",
                 reason="never on the manifest"), None)])
    d = doc_base()
    d["acks"].append(denial.to_map())
    add("document-undeclared-claim-for-declared-item", "wrong_item",
        "the receiver claims an item was not declared although the manifest declares it", d)

    d = doc_base()
    d["acks"] = [d["acks"][1], d["acks"][0], d["acks"][2]]
    add("document-acks-out-of-order", "ack_order",
        "the acknowledgement documents out of chronological order", d)

    return out



# ---------------------------------------------------------------- writing


KEYS_README = """\
# Test keys: public knowledge, never use them for anything real

These identities are derived from fixed seed strings by `schemas/vectors/generate.py`
(SHAKE-256 in place of a random source), so that the test vectors can be regenerated byte for
byte. Anyone can recompute the private keys; the `-test` in every party name and file name says
so. They exist only to sign the synthetic vectors in `../receipts` and `../envelopes`.

- `alpha-test.pub`, `alpha-test.key`: the sender of the synthetic manifest.
- `beta-test.pub`, `beta-test.key`: the receiver, who acknowledges it.
- `mallory-test.pub`, `mallory-test.key`: a key nobody pins; it signs forgeries.

The private key files are written with mode 0600, but git does not keep that mode: after a
checkout, `chmod 600 schemas/vectors/keys/*.key` (or run the generator) before a Bridge command
that refuses looser permissions loads one.
"""


def write_bytes(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        path.chmod(0o600)
    else:
        path.write_bytes(data)


def dump_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def write_deterministic(out: Path, w: World) -> None:
    """Keys and receipts, byte for byte the same on every run."""
    keys = out / "keys"
    for ident in (w.alpha, w.beta, w.mallory):
        write_bytes(keys / f"{ident.party}.pub", ident.public.dumps().encode())
        write_bytes(keys / f"{ident.party}.key", ident.dumps().encode(), private=True)
    write_bytes(keys / "README.md", KEYS_README.encode())

    receipts = out / "receipts"
    expected: list[dict[str, Any]] = []
    for folder, vectors in (("valid", valid_vectors(w)), ("invalid", invalid_vectors(w))):
        for v in vectors:
            rel = f"{folder}/{v.name}.receipt"
            # The generator states what it expects; the implementation must agree, or the
            # vectors are not written at all.
            result = check_receipt(v.data, w.keys)
            if result.ok != v.ok or result.reason != v.reason:
                raise SystemExit(f"{rel}: expected ok={v.ok} reason={v.reason}, bridge.receipts "
                                 f"says ok={result.ok} reason={result.reason}: "
                                 f"{result.diagnosis}")
            write_bytes(receipts / rel, v.data)
            record: dict[str, Any] = {"file": rel, "ok": v.ok, "kind": result.kind}
            if v.ok:
                record["summary"] = result.summary()
                if result.kind == "item":
                    record.update({"item_id": result.item_id, "status": result.status,
                                   "history": [c.status for c in result.history]})
                else:
                    record.update({"counts": dict(sorted(result.counts.items())),
                                   "unacknowledged": result.unacknowledged})
            else:
                record["reason"] = v.reason
            record["tries"] = v.tries
            expected.append(record)
    write_bytes(receipts / "expected.json", dump_json({
        "keys": ["../keys/alpha-test.pub", "../keys/beta-test.pub"],
        "vectors": expected}))


# ---------------------------------------------------------------- envelopes

ENVELOPE_DIR = "envelopes"


def envelope_specs(w: World) -> list[dict[str, Any]]:
    """The sidecars (deterministic) of the envelopes; each names its predecessor by file."""
    # The manifest as one chunk (its eight entries, PROTOCOL §8.1); then two envelopes of a
    # kind version 1 does not define, which a receiver refuses in the chain (§8.1).
    manifest_payload = chunks.split(w.manifest, chunks.chunk_size(8))[0].payload
    text_payload = b"synthetic test payload: no real data"
    unknown = {"result": "refused", "reason": "unknown_kind"}
    specs = []
    prev: str | None = None
    for seq, (name, kind, payload, expect) in enumerate([
        ("001-manifest", "chunk", manifest_payload, {"result": "accepted", "reason": None}),
        ("002-test-text", "test", text_payload, unknown),
        ("003-empty", "test", b"", unknown),
    ], 1):
        specs.append({
            "file": f"{name}.env",
            "v": 1,
            "suite": list(w.beta.public.suite),
            "from": w.alpha.party, "from_key": w.alpha.key_id.hex(),
            "to": w.beta.party, "to_key": w.beta.key_id.hex(),
            "id": fixed_random(f"message-id/{name}")(envelope.MESSAGE_ID_SIZE).hex(),
            "seq": seq,
            # The first envelope of a direction names the zero hash; later ones the SHA-256 of
            # the previous envelope's bytes, which are not reproducible: named by file here.
            "prev": envelope.ZERO_HASH.hex() if prev is None else {"sha256_of": prev},
            "at": MANIFEST_CREATED + seq * 1000,
            "kind": kind,
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "payload_base64": base64.b64encode(payload).decode("ascii"),
            # What beta-test answers when the envelopes arrive in order (§8.2, §8.3).
            "expect": expect,
        })
        prev = f"{name}.env"
    return specs


def write_sidecars(out: Path, w: World) -> None:
    for spec in envelope_specs(w):
        write_bytes(out / ENVELOPE_DIR / spec["file"].replace(".env", ".json"), dump_json(spec))


def seal_envelopes(out: Path, w: World) -> None:
    for spec in envelope_specs(w):
        prev = spec["prev"]
        prev_hash = (bytes.fromhex(prev) if isinstance(prev, str) else
                     envelope.envelope_hash((out / ENVELOPE_DIR / prev["sha256_of"]).read_bytes()))
        env = envelope.seal(w.alpha, w.beta.public, message_id=bytes.fromhex(spec["id"]),
                            seq=spec["seq"], prev=prev_hash, sent_at=spec["at"],
                            kind=spec["kind"], payload=base64.b64decode(spec["payload_base64"]))
        write_bytes(out / ENVELOPE_DIR / spec["file"], env.data)


def check_envelopes(root: Path, w: World) -> list[str]:
    """Open every committed envelope with beta-test's key; compare with its sidecar."""
    problems = []
    senders = Keyring.of([w.alpha.public])
    for spec in envelope_specs(w):
        path = root / ENVELOPE_DIR / spec["file"]
        try:
            opened = envelope.open_envelope(w.beta, senders, path.read_bytes())
        except Exception as exc:  # report every problem, do not stop at the first
            problems.append(f"{path}: does not open: {exc}")
            continue
        h = opened.header
        prev = spec["prev"]
        want_prev = (prev if isinstance(prev, str) else
                     envelope.envelope_hash((root / ENVELOPE_DIR / prev["sha256_of"])
                                            .read_bytes()).hex())
        got = {"from": h.sender, "from_key": h.sender_key.hex(), "to": h.recipient,
               "to_key": h.recipient_key.hex(), "id": h.message_id.hex(), "seq": h.seq,
               "prev": h.prev.hex(), "at": h.sent_at, "kind": h.kind, "suite": list(h.suite),
               "payload_sha256": hashlib.sha256(opened.payload).hexdigest()}
        want = {k: spec[k] for k in got} | {"prev": want_prev}
        if got != want:
            problems.append(f"{path}: header or payload differs from its sidecar")
    return problems


# ---------------------------------------------------------------- main


def compare_trees(committed: Path, fresh: Path) -> list[str]:
    problems = []
    for sub in (*DETERMINISTIC_DIRS, ENVELOPE_DIR):
        pattern = "*.json" if sub == ENVELOPE_DIR else "*"
        left = {p.relative_to(committed) for p in (committed / sub).rglob(pattern) if p.is_file()}
        right = {p.relative_to(fresh) for p in (fresh / sub).rglob(pattern) if p.is_file()}
        problems += [f"{p}: committed but no longer generated" for p in sorted(left - right)]
        problems += [f"{p}: generated but not committed" for p in sorted(right - left)]
        for p in sorted(left & right):
            if not filecmp.cmp(committed / p, fresh / p, shallow=False):
                problems.append(f"{p}: differs from a fresh generation")
    return problems


def generate(out: Path, w: World, *, envelopes: bool) -> None:
    for sub in DETERMINISTIC_DIRS:  # stale vectors must not survive a rename
        for p in sorted((out / sub).rglob("*"), reverse=True):
            if p.is_file() and p.suffix in {".receipt", ".json", ".pub", ".key", ".md"}:
                p.unlink()
    write_deterministic(out, w)
    write_sidecars(out, w)
    missing = any(not (out / ENVELOPE_DIR / s["file"]).exists() for s in envelope_specs(w))
    if envelopes or missing:
        seal_envelopes(out, w)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="compare a fresh generation with the committed vectors")
    parser.add_argument("--envelopes", action="store_true",
                        help="seal fresh envelopes even if they exist")
    parser.add_argument("--out", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    w = make_world()
    if not args.check:
        generate(args.out, w, envelopes=args.envelopes)
        print(f"wrote test vectors under {args.out}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        write_deterministic(fresh, w)
        write_sidecars(fresh, w)
        problems = compare_trees(args.out, fresh) + check_envelopes(args.out, w)
    for p in problems:
        print(f"CHANGED: {p}", file=sys.stderr)
    if problems:
        return 1
    print("test vectors are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
