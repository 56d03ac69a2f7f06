#!/usr/bin/env python3
"""Generate Bridge's test vectors from fixed test keys (PROTOCOL.md §9).

    python schemas/vectors/generate.py            write the vectors (envelopes only if missing)
    python schemas/vectors/generate.py --check    regenerate into a temporary folder and compare
                                                  byte for byte; open the committed envelopes
    python schemas/vectors/generate.py --envelopes   also seal fresh envelopes
    python schemas/vectors/generate.py --suite-2     also write the suite-2 vectors afresh

The suite-2 vectors (``suite-2/``, written by ``suite_2.py``) are like the envelopes: ML-DSA
signing is hedged, so only their keys and JSON are reproducible (see that module).

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
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from carry_vectors import write_carry  # noqa: E402 -- beside this script (PROTOCOL §12.6)

from bridge.core import answers as transport  # noqa: E402
from bridge.core import chunks, codec, envelope, keylife, merkle  # noqa: E402
from bridge.core.crypto import suites  # noqa: E402
from bridge.core.crypto.identity import (  # noqa: E402
    TAG_DOCUMENT,
    TAG_ENVELOPE,
    TAG_TRANSPORT_RECEIPT,
    Keyring,
    PrivateIdentity,
    PublicIdentity,
)
from bridge.core.documents import (  # noqa: E402
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
from bridge.core.errors import DecodeError, VerificationError  # noqa: E402
from bridge.core.receipts import (  # noqa: E402
    build_document_receipt,
    build_item_receipt,
    check_receipt,
)
from bridge.core.transcript import (  # noqa: E402
    TRANSCRIPT_LIMITS,
    TranscriptDocument,
    TranscriptEnvelope,
    build_transcript,
    check_transcript,
)
from schemas.vectors.witness_vectors import write_witness  # noqa: E402

DETERMINISTIC_DIRS = ("keys", "receipts", "key-history", "transcripts", "carry", "witness")


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


def identity(party: str, suite: suites.Suite = suites.SUITE_1) -> PrivateIdentity:
    # Suite 1's seeds keep their names, so that its keys stay byte for byte what they were.
    prefix = "identity/" if suite is suites.SUITE_1 else f"identity/suite-{suite.number}/"
    return PrivateIdentity.generate(party, created=KEYS_CREATED, suite=suite,
                                    random_bytes=fixed_random(prefix + party))


def make_world(suite: suites.Suite = suites.SUITE_1) -> World:
    alpha, beta, mallory = (identity(p, suite) for p in ("alpha-test", "beta-test",
                                                           "mallory-test"))
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
        Vector(name="document-undeclared-item-changes-status",
               data=build_document_receipt(w.manifest, [*acks, later_undeclared(w, [
                   (AckItem(id="REM-TEST-0099", status="PENDING_IDENTIFICATION",
                            evidence="sample barcode SMP-TEST-0099"), None)])]),
               ok=True, tries="a fourth acknowledgement moves the undeclared REM-TEST-0099 "
               "from RECEIVED_UNDECLARED to PENDING_IDENTIFICATION: its leaf stays nil "
               "(PROTOCOL.md §6.6: nil exactly when the item was not declared)"),
    ]


def later_undeclared(w: World, entries: Sequence[tuple[AckItem, bytes | None]]
                     ) -> SignedDocument:
    """A fourth acknowledgement by beta, after the three of the world (FORGED_CREATED)."""
    return raw_ack(w.beta, w.manifest.signed, "ACK-TEST-0003-4", FORGED_CREATED, entries)


def resigned_header(signer: PrivateIdentity, signed: SignedHeader, **fields: Any
                    ) -> dict[str, bytes]:
    """``signed`` with header fields replaced (no DocumentHeader checks) and signed again."""
    data = codec.encode(codec.decode(signed.data) | fields)
    return {"header": data, "sig": signer.sign(TAG_DOCUMENT, data)}


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

    # -- §6.6: leaf is nil exactly when the item was not declared
    d = doc_base()
    d["acks"].append(later_undeclared(w, [
        (AckItem(id="REM-TEST-0100", status="RECEIVED"), None)]).to_map())
    add("document-undeclared-item-first-not-received-undeclared", "bad_entry",
        "an item never declared (nil leaf) whose first status is RECEIVED, not "
        "RECEIVED_UNDECLARED", d)

    d = doc_base()
    d["acks"].append(later_undeclared(w, [
        (AckItem(id="EFF-TEST-0008", status="RECEIVED_UNDECLARED"),
         w.leaf_hashes(man)["EFF-TEST-0008"])]).to_map())
    add("document-received-undeclared-with-a-leaf", "bad_entry",
        "RECEIVED_UNDECLARED for a declared item, with its leaf hash bound", d)

    # -- §3 Ranges, in the signed headers
    b = base("POW-TEST-0003")
    b["acks"][1]["ack"] = resigned_header(w.beta, ack2.signed, created=2**62)
    add("ack-created-after-year-9999", "bad_header",
        "an acknowledgement dated 2**62 ms (year 146140482): outside the window of times", b)

    b = base("POW-TEST-0003")
    b["document"] = resigned_header(w.alpha, man.signed, meta={**META, "photo": b"\x89PNG"})
    add("document-meta-holds-bin", "bad_header",
        "the declaring document's meta holds a bin value: meta is JSON data", b)

    b = base("POW-TEST-0003")
    b["document"] = resigned_header(w.alpha, man.signed,
                                    meta={**META, "ack_deadline": "9999-12-31"})
    add("document-deadline-after-year-9999", "bad_header",
        "an ack_deadline of 9999-12-31, whose end is the first instant of year 10000", b)

    b = base("POW-TEST-0003")
    b["document"] = resigned_header(w.alpha, man.signed,
                                    meta={**META, "ack_deadline": "2026-03-10T12:00:00+14:30"})
    add("document-deadline-offset-beyond-14-hours", "bad_header",
        "an ack_deadline with a UTC offset of +14:30", b)

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


# ---------------------------------------------------------------- identity files (§4.3)


def identity_file_vectors(w: World) -> list[tuple[str, bytes, str, str]]:
    """One identity file per rule of PROTOCOL §4.3 that it breaks, all made from alpha-test's
    valid file: (name, bytes, what it tries, the reason a loader gives)."""
    good = w.alpha.public.to_json()
    text = w.alpha.public.dumps()

    def changed(**fields: Any) -> bytes:
        return (json.dumps({**good, **fields}, indent=2) + "\n").encode()

    missing = {k: v for k, v in good.items() if k != "fingerprint"}
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sig = good["signature"]  # 64 bytes: the last character before "==" has 4 unused bits
    loose = sig[:-3] + alphabet[alphabet.index(sig[-3]) ^ 1] + "=="
    return [
        ("byte-order-mark", b"\xef\xbb\xbf" + text.encode(),
         "the valid file after a UTF-8 byte-order mark", "not_identity"),
        ("utf-16", text.encode("utf-16"), "the valid file in UTF-16", "not_identity"),
        ("too-large", text.encode()[:-2] + b" " * 65536 + b"}\n",
         "the valid file padded past 65,536 bytes", "not_identity"),
        ("not-an-object", (json.dumps([good]) + "\n").encode(),
         "the valid object inside an array", "not_identity"),
        ("key-given-twice", text.replace('"party": "alpha-test"',
                                         '"party": "mallory-test", "party": "alpha-test"',
                                         1).encode(),
         "party given twice, the first naming another party", "not_identity"),
        ("extra-key", changed(valid_until="2027-01-01"),
         "a key the signature does not cover", "not_identity"),
        ("missing-key", (json.dumps(missing, indent=2) + "\n").encode(),
         "the fingerprint left out", "not_identity"),
        ("version-true", changed(bridge_identity=True),
         "bridge_identity true (== 1 in some languages)", "not_identity"),
        ("version-float", changed(bridge_identity=1.0),
         "bridge_identity 1.0", "not_identity"),
        ("version-2", changed(bridge_identity=2), "bridge_identity 2", "not_identity"),
        ("base64-non-canonical", changed(signature=loose),
         "the signature's base64 with a pad bit set (same bytes, another spelling)",
         "not_identity"),
        ("base64-unpadded", changed(signature=sig.rstrip("=")),
         "the signature's base64 without its padding", "not_identity"),
        ("fingerprint-as-typed", changed(fingerprint=good["fingerprint"].replace(" ", "")
                                         .lower()),
         "the fingerprint in lower case without spaces (the typed form)", "not_identity"),
        ("fingerprint-of-another-key", changed(fingerprint=w.beta.public.fingerprint),
         "beta-test's fingerprint", "not_identity"),
        ("party-differs", changed(party="beta-test"),
         "the readable party differs from the signed one", "not_identity"),
        ("signature-of-another-statement", changed(signature=w.beta.public.to_json()[
            "signature"]), "beta-test's self-signature", "bad_signature"),
    ]


def write_identity_files(keys: Path, w: World) -> None:
    """``keys/invalid/``: the identity-file vectors and ``expected.json``. As for receipts,
    the implementation must agree with what the generator states, or nothing is written."""
    cases = []
    for name, data, what, reason in identity_file_vectors(w):
        try:
            PublicIdentity.loads(data, source=name)
        except VerificationError as err:
            if err.reason != reason:
                raise SystemExit(f"identity file {name}: reason {err.reason}, not {reason}"
                                 ) from err
        else:
            raise SystemExit(f"identity file {name} loads: it must be refused")
        write_bytes(keys / "invalid" / f"{name}.pub", data)
        cases.append({"file": f"{name}.pub", "tries": what, "reason": reason})
    write_bytes(keys / "invalid" / "expected.json", dump_json({"cases": cases}))


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
    write_identity_files(keys, w)

    write_checked(out / "receipts", ".receipt",
                  (("valid", valid_vectors(w)), ("invalid", invalid_vectors(w))),
                  check_receipt, receipt_details, w)
    write_checked(out / "transcripts", ".transcript", transcript_vectors(w), check_transcript,
                  transcript_details, w)
    write_bytes(out / "decoding" / "expected.json", decoding_vectors())
    write_carry(out / "carry", stand_in_envelope, w.alpha, w.beta, w.mallory, write_bytes,
                dump_json)


def receipt_details(result: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": result.kind}
    if result.ok:
        record["summary"] = result.summary()
        if result.kind == "item":
            record.update({"item_id": result.item_id, "status": result.status,
                           "history": [c.status for c in result.history]})
        else:
            record.update({"counts": dict(sorted(result.counts.items())),
                           "unacknowledged": result.unacknowledged})
    return record


def transcript_details(result: Any) -> dict[str, Any]:
    if not result.ok:
        return {}
    return {"summary": result.summary(), "unaccounted": list(result.unaccounted),
            "unchecked": list(result.unchecked)}


def write_checked(folder: Path, suffix: str, groups: Sequence[tuple[str, Sequence[Vector]]],
                  check: Callable[[bytes, Keyring], Any],
                  details: Callable[[Any], dict[str, Any]], w: World) -> None:
    """Write each vector and ``expected.json``, after checking it with the implementation."""
    expected: list[dict[str, Any]] = []
    for sub, vectors in groups:
        for v in vectors:
            rel = f"{sub}/{v.name}{suffix}"
            # The generator states what it expects; the implementation must agree, or the
            # vectors are not written at all.
            result = check(v.data, w.keys)
            if result.ok != v.ok or result.reason != v.reason:
                raise SystemExit(f"{folder.name}/{rel}: expected ok={v.ok} reason={v.reason}, "
                                 f"the implementation says ok={result.ok} "
                                 f"reason={result.reason}: {result.diagnosis}")
            write_bytes(folder / rel, v.data)
            record: dict[str, Any] = {"file": rel, "ok": v.ok, **details(result)}
            if not v.ok:
                record["reason"] = v.reason
            record["tries"] = v.tries
            expected.append(record)
    write_bytes(folder / "expected.json", dump_json({
        "keys": ["../keys/alpha-test.pub", "../keys/beta-test.pub"], "vectors": expected}))


# ---------------------------------------------------------------- strict decoding (§2.4)

# (name, limit set, input as [hex, repeat] parts, expected reason or None for accepted, rule)
DECODING: list[tuple[str, str, list[tuple[str, int]], str | None, str]] = [
    ("canonical-example", "DEFAULT", [("83a16195c3c0ffccc8c40101a16201a163a2c3a9", 1)], None,
     "the example of §2.3"),
    ("max-depth-exactly", "SMALL", [("91", 17), ("c0", 1)], None,
     "17 nested arrays: depths 0 to 16, within max_depth 16"),
    ("empty", "DEFAULT", [], "truncated", "an empty input"),
    ("ends-inside", "DEFAULT", [("9201", 1)], "truncated", "an array of 2 with 1 element"),
    ("count-beyond-the-bytes-left", "DEFAULT", [("dcffff90", 1)], "truncated",
     "65,535 elements declared, 1 byte left: refused before anything is built"),
    ("trailing", "DEFAULT", [("0000", 1)], "trailing", "a byte after the value"),
    ("c1", "DEFAULT", [("c1", 1)], "malformed", "the never-used byte"),
    ("float-before-malformed", "DEFAULT", [("92ca00000000c1", 1)], "float",
     "a float, then c1: the first byte that cannot belong decides"),
    ("ext-before-truncated", "DEFAULT", [("d401", 1)], "ext",
     "a fixext with its data missing: the type byte comes first"),
    ("bin-key", "DEFAULT", [("81c4016101", 1)], "map_key", "{bin 'a': 1}: refused at the key"),
    ("int-key", "DEFAULT", [("810101", 1)], "map_key", "{1: 1}"),
    ("float-key", "DEFAULT", [("81ca0000000001", 1)], "map_key",
     "{1.0: 1}: where a key is due, a byte that begins no str is map_key"),
    ("not-utf8", "DEFAULT", [("a2c328", 1)], "utf8", "a str of invalid UTF-8"),
    ("too-deep", "SMALL", [("91", 18), ("c0", 1)], "too_deep", "18 nested arrays"),
    ("str-over-limit-before-truncated", "SMALL", [("da400161", 1)], "too_large",
     "a str of 16,385 bytes declared (max_str 16 KiB), one byte there: the limit comes first"),
    ("bin32-huge", "DEFAULT", [("c6ffffffff000000", 1)], "too_large",
     "a bin of 2^32-1 bytes declared"),
    ("array-over-limit", "SMALL", [("dd00001001", 1), ("00", 4097)], "too_large",
     "an array of 4,097 (max_items 4,096)"),
    ("over-max-bytes", "SMALL", [("c5ffff", 1), ("00", 65535)], "too_large",
     "65,538 bytes (max_bytes 64 KiB): refused before it is read"),
    ("int-not-shortest", "DEFAULT", [("cc01", 1)], "not_canonical", "1 as uint 8"),
    ("negative-int-not-shortest", "DEFAULT", [("d0ff", 1)], "not_canonical", "-1 as int 8"),
    ("non-negative-as-signed", "DEFAULT", [("d005", 1)], "not_canonical", "5 as int 8"),
    ("length-not-shortest", "DEFAULT", [("d90161", 1)], "not_canonical", "'a' as str 8"),
    ("keys-unsorted", "DEFAULT", [("82a16201a16102", 1)], "not_canonical", "{b: 1, a: 2}"),
    ("keys-repeated", "DEFAULT", [("82a16101a16102", 1)], "not_canonical", "{a: 1, a: 2}"),
    ("longer-key-first", "DEFAULT", [("82a2616101a16102", 1)], "not_canonical",
     "{aa: 1, a: 2}: a prefix sorts first"),
]
DECODING_LIMITS = {"DEFAULT": codec.DEFAULT_LIMITS, "SMALL": codec.SMALL_LIMITS}


def decoding_vectors() -> bytes:
    """decoding/expected.json: one input per rule of §2.4, checked against bridge.core.codec."""
    out = []
    for name, limits, parts, reason, rule in DECODING:
        data = b"".join(bytes.fromhex(h) * n for h, n in parts)
        try:
            codec.decode(data, DECODING_LIMITS[limits])
            got = None
        except DecodeError as exc:
            got = exc.reason
        if got != reason:
            raise SystemExit(f"decoding/{name}: expected {reason}, bridge.core.codec says {got}")
        out.append({"name": name, "limits": limits,
                    "input": [{"hex": h, "repeat": n} for h, n in parts],
                    "ok": reason is None, "reason": reason, "rule": rule})
    return dump_json({"about": "input = the concatenation of each hex part repeated; the "
                               "limit sets are those of PROTOCOL.md §2.4",
                      "vectors": out})


# ---------------------------------------------------------------- keys over time (§4.5, §4.6)

BETA_ROTATED = ms(2026, 3, 10)  # after ACK2, before ACK3
BETA_REVOKED_EARLY = ms(2026, 3, 3)  # after ACK1, before ACK2
BETA_REVOKED_LATE = ms(2026, 3, 9)  # after ACK2
BETA_REVOCATIONS_MADE = ms(2026, 3, 9, 12)


def key_history_cases(w: World, *, next_suite: suites.Suite = suites.SUITE_1,
                      keys_dir: str = "../keys") -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Files, and cases: a receipt checked with a set of ``--keys`` files (§4.6). The new
    key is of ``next_suite`` (suite 2: the upgrade of a suite-1 party, §4.5)."""
    seed = "identity/beta-test/next" + ("" if next_suite is suites.SUITE_1
                                         else f"/suite-{next_suite.number}")
    nxt = PrivateIdentity.generate("beta-test", created=BETA_ROTATED, suite=next_suite,
                                   random_bytes=fixed_random(seed))
    rotation = keylife.make_rotation(w.beta, nxt, at=BETA_ROTATED)
    history = keylife.History(identities=(nxt.public, w.beta.public), statements=(rotation,))
    hashes = w.leaf_hashes(w.manifest)

    def ack(signer: PrivateIdentity, ack_id: str, status: str, reason: str) -> SignedDocument:
        return sign_ack(signer, answers=w.manifest.signed, ack_id=ack_id, created=ACK3_CREATED,
                        items=[AckItem(id="REM-TEST-0002", status=status, reason=reason)],
                        declared_leaf_hashes=hashes, salt_key=salt_key(ack_id))

    retired = ack(w.beta, "ACK-TEST-0003-RETIRED", "DISPUTED",
                  "signed with the retired key after the rotation")
    current = ack(nxt, "ACK-TEST-0003-NEXT", "IDENTITY_CONFIRMED", "after the rotation")
    first_two = list(w.acks[:2])
    files = {
        "beta-test-next.pub": nxt.public.dumps().encode(),
        "beta-test.rotation": rotation,
        "beta-test.history": history.dumps().encode(),
        "beta-test-early.revocation": keylife.make_revocation(
            w.beta, since=BETA_REVOKED_EARLY, at=BETA_REVOCATIONS_MADE, reason="test: early"),
        "beta-test-late.revocation": keylife.make_revocation(
            w.beta, since=BETA_REVOKED_LATE, at=BETA_REVOCATIONS_MADE, reason="test: late"),
        "before-rotation.receipt": build_item_receipt(w.manifest, "REM-TEST-0002", first_two),
        "retired-key-after-rotation.receipt": build_item_receipt(
            w.manifest, "REM-TEST-0002", [*first_two, retired]),
        "new-key-after-rotation.receipt": build_item_receipt(
            w.manifest, "REM-TEST-0002", [*first_two, current]),
    }
    alpha, old = f"{keys_dir}/alpha-test.pub", f"{keys_dir}/beta-test.pub"
    new = "beta-test-next.pub"

    def case(file: str, keys: list[str], tries: str, *, reason: str | None = None,
             caveats: int = 0) -> dict[str, Any]:
        return {"file": file, "keys": keys, "ok": reason is None, "reason": reason,
                "caveats": caveats, "tries": tries}

    cases = [
        case("before-rotation.receipt", [alpha, new, "beta-test.history"],
             "signatures of the retired key dated before its rotation stand (§4.6 steps 2, 3)"),
        case("before-rotation.receipt", [alpha, old, new, "beta-test.rotation"],
             "the same with the rotation as a statement file and the old identity file"),
        case("new-key-after-rotation.receipt", [alpha, new, "beta-test.history"],
             "the chain of keys: old acknowledgements by the old key, the last by the new"),
        case("retired-key-after-rotation.receipt", [alpha, new, "beta-test.history"],
             "a retired key signs an acknowledgement dated after its rotation",
             reason="retired_key"),
        case("retired-key-after-rotation.receipt", [alpha, old, new],
             "two keys of one party without the rotation between them (§4.6 step 5)",
             reason="usage"),
        case("before-rotation.receipt", [alpha, old, "beta-test-late.revocation",
                                         "beta-test-early.revocation"],
             "two revocations: the earliest since wins (§4.5)", reason="revoked_key"),
        case("before-rotation.receipt", [alpha, old, "beta-test-early.revocation",
                                         "beta-test-late.revocation"],
             "the same in the other order", reason="revoked_key"),
        case("before-rotation.receipt", [alpha, old, "beta-test-late.revocation"],
             "signatures dated before since stand, each with a caveat (§4.5)", caveats=2),
    ]
    return files, cases


def check_key_case(root: Path, case: dict[str, Any]) -> tuple[bool, str | None, int]:
    """What ``bridge verify`` concludes for one case: (ok, reason, caveats); a keyring it
    refuses is reason ``usage``."""
    import click

    from bridge.cli.verify import _load_keys

    try:
        keys = _load_keys(tuple(root / k for k in case["keys"]))
    except click.UsageError:
        return False, "usage", 0
    result = check_receipt((root / case["file"]).read_bytes(), keys)
    return result.ok, result.reason, len(result.caveats)


def write_key_history(out: Path, w: World, *, next_suite: suites.Suite = suites.SUITE_1,
                      keys_dir: str = "../keys") -> None:
    folder = out / "key-history"
    files, cases = key_history_cases(w, next_suite=next_suite, keys_dir=keys_dir)
    for name, data in files.items():
        write_bytes(folder / name, data)
    for case in cases:
        got = check_key_case(folder, case)
        if got != (case["ok"], case["reason"], case["caveats"]):
            raise SystemExit(f"key-history/{case['file']} with {case['keys']}: expected "
                             f"{(case['ok'], case['reason'], case['caveats'])}, got {got}")
    write_bytes(folder / "expected.json", dump_json({"cases": cases}))


# ---------------------------------------------------------------- transcripts

TRANSCRIPT_CHUNK = 4  # the manifest and the first acknowledgement take two envelopes each
TRANSCRIPT_EXPORTED = ms(2026, 5, 1)
YEAR_MS = 365 * 24 * 3600 * 1000


def stand_in_envelope(sender: PrivateIdentity, recipient: PrivateIdentity, *, seq: int,
                      prev: bytes, at: int, kind: str, payload: bytes, result: str = "accepted",
                      carries: SignedDocument | None = None, first: int = 0,
                      whole: bool) -> TranscriptEnvelope:
    """An envelope as a transcript lists it, with the recipient's receipt. The ciphertext is a
    deterministic stand-in of the right length (HPKE is randomised, and a transcript verifier
    never opens it: it hashes it); header, signature and receipt are real."""
    header = envelope.EnvelopeHeader(
        sender=sender.party, sender_key=sender.key_id, recipient=recipient.party,
        recipient_key=recipient.key_id,
        message_id=fixed_random(f"transcript/id/{sender.party}/{seq}")(16), seq=seq, prev=prev,
        sent_at=at, kind=kind, suite=recipient.public.suite)
    header_bytes = codec.encode(header.to_map())
    ct = fixed_random(f"transcript/ct/{sender.party}/{seq}")(32) + hashlib.shake_256(
        payload).digest(len(payload) + 16)
    sig = sender.sign(TAG_ENVELOPE, envelope.signed_body(header_bytes,
                                                          hashlib.sha256(ct).digest()))
    digest = envelope.envelope_hash(envelope.wire_bytes(header_bytes, ct, sig))
    receipt = transport.sign_answer(recipient, transport.TransportAnswer(
        sender=sender.party, recipient=recipient.party, by_key=recipient.key_id,
        envelope=digest, message_id=header.message_id, seq=seq, at=at + 1000, result=result,
        reason=None if result == "accepted" else "invalid_content"))
    n = min(TRANSCRIPT_CHUNK, len(carries.leaves) - first) if carries is not None else None
    return TranscriptEnvelope(header=header_bytes, sig=sig, ct_hash=hashlib.sha256(ct).digest(),
                              ct=ct if whole else None, hash=digest, receipt=receipt,
                              doc=carries.digest if carries is not None else None,
                              first=first if carries is not None else None, n=n)


def stand_in_link(sender: PrivateIdentity, recipient: PrivateIdentity,
                  docs: Sequence[tuple[SignedDocument, str]], *,
                  whole: bool) -> list[TranscriptEnvelope]:
    """Each document (with the result of its envelopes) cut into chunks, sealed in order."""
    out: list[TranscriptEnvelope] = []
    for doc, result in docs:
        for chunk in chunks.split(doc, TRANSCRIPT_CHUNK):
            out.append(stand_in_envelope(
                sender, recipient, seq=len(out) + 1,
                prev=out[-1].hash if out else envelope.ZERO_HASH,
                at=doc.signed.header.created + len(out) * 1000, kind="chunk",
                payload=chunk.payload, result=result, carries=doc, first=chunk.first,
                whole=whole))
    return out


def alpha_transcript(w: World, outbound: Sequence[TranscriptEnvelope],
                     inbound: Sequence[TranscriptEnvelope], docs: Sequence[SignedDocument], *,
                     entries: bool = True) -> bytes:
    """alpha-test's export: its own envelopes whole, beta-test's without their ciphertext."""
    return build_transcript(
        parties=(w.alpha.party, w.beta.party), exported_at=TRANSCRIPT_EXPORTED,
        documents=[TranscriptDocument(signed=d.signed, entries=d.leaves if entries else None)
                   for d in docs], outbound=outbound, inbound=inbound)


def transcript_edit(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    value = codec.decode(data, TRANSCRIPT_LIMITS)
    change(value)
    return codec.encode(value)


def with_header(env: dict[str, Any], **changes: Any) -> None:
    env["header"] = codec.encode({**codec.decode(env["header"], codec.SMALL_LIMITS), **changes})


def case(name: str, data: bytes, ok: bool, reason: str | None, tries: str) -> Vector:
    return Vector(name=name, data=data, ok=ok, tries=tries, reason=reason)


def transcript_vectors(w: World) -> list[tuple[str, list[Vector]]]:
    out = stand_in_link(w.alpha, w.beta, [(w.manifest, "accepted")], whole=True)
    back = stand_in_link(w.beta, w.alpha, [(a, "accepted") for a in w.acks], whole=False)
    docs = [w.manifest, *w.acks]
    whole = alpha_transcript(w, out, back, docs)

    def edited(change: Callable[[dict[str, Any]], None]) -> bytes:
        return transcript_edit(whole, change)

    def omit_ack(v: dict[str, Any]) -> None:
        del v["documents"][2]  # ACK-TEST-0003-2, carried by beta-test's envelope 3
        v["links"][1]["envelopes"][2]["carries"] = None

    # The manifest's first chunk refused, its second (chained to it) accepted.
    refused = stand_in_link(w.alpha, w.beta, [(w.manifest, "refused")], whole=True)[0]
    accepted = stand_in_envelope(
        w.alpha, w.beta, seq=2, prev=refused.hash, at=MANIFEST_CREATED + 1000, kind="chunk",
        payload=b"chunk 2", carries=w.manifest, first=TRANSCRIPT_CHUNK, whole=True)
    counted = alpha_transcript(w, [refused, accepted], [], [w.manifest])

    def recut(v: dict[str, Any]) -> None:
        # ACK-TEST-0003-1 (8 entries, chunks 4 + 4) claimed as 4 + 2 + 2 so that the dropped
        # ACK-TEST-0003-2's envelope seems accounted for.
        del v["documents"][2]
        envs = v["links"][1]["envelopes"]
        envs[1]["carries"]["n"] = 2
        envs[2]["carries"] = {**envs[1]["carries"], "first": 6}

    def resign_own(v: dict[str, Any]) -> None:
        env = v["links"][0]["envelopes"][0]
        with_header(env, at=MANIFEST_CREATED - YEAR_MS)
        env["sig"] = w.alpha.sign(TAG_ENVELOPE, envelope.signed_body(env["header"],
                                                                      env["ct_hash"]))

    def swap(key: str) -> Callable[[dict[str, Any]], None]:
        def change(v: dict[str, Any]) -> None:
            envs = v["links"][0]["envelopes"]
            envs[0][key], envs[1][key] = envs[1][key], envs[0][key]
        return change

    key_statement = stand_in_envelope(w.alpha, w.beta, seq=1, prev=envelope.ZERO_HASH,
                                      at=MANIFEST_CREATED, kind="key-rotation",
                                      payload=b"statement", whole=True)

    valid = [
        case("whole-exchange", whole, True, None,
               "alpha-test's export: the manifest in two envelopes, three acknowledgements in "
               "four; its own envelopes with their ciphertext, beta-test's without"),
        case("headers-only", alpha_transcript(w, out, back, docs, entries=False), True, None,
               "the same exported without entries"),
        case("refused-chunk-counts-towards-first", counted, True, None,
               "the manifest's first envelope refused, the second accepted: the second "
               "carries entries from 4 (refused envelopes count towards first, §11.5 5.10)"),
        case("acknowledgement-entries-stripped",
             edited(lambda v: v["documents"][1].update(entries=None)), True, None,
             "the first acknowledgement's entries left out: the later two cannot be checked "
             "item by item against the manifest, and are named (§11.5 4, 6)"),
        case("acknowledgement-omitted-is-said", edited(omit_ack), True, None,
               "the DISPUTED acknowledgement dropped and its envelope's carries set to nil: "
               "verifies, naming the envelope whose content is not accounted for"),
    ]
    invalid = [
        case("doc-not-a-signed-header",
               edited(lambda v: v["documents"][0].update(doc=[b"", b""])), False,
               "bad_transcript", "a document's doc is an array, not {header, sig} (§11.5 3.1)"),
        case("doc-header-not-a-document-header",
               edited(lambda v: v["documents"][0]["doc"].update(header=b"\x90")), False,
               "bad_header", "a document's header bytes are an empty array (§11.5 3.2)"),
        case("refused-chunk-not-counted",
               transcript_edit(counted, lambda v: v["links"][0]["envelopes"][1]["carries"]
                               .update(first=0)), False, "bad_chunk",
               "after a refused first chunk, the next claims the document's entries from 0"),
        case("acknowledgement-hidden-by-recutting", edited(recut), False, "bad_chunk",
             "the DISPUTED acknowledgement dropped, and the first acknowledgement claimed in "
             "chunks of 4, 2 and 2 to cover its envelope: chunks are aligned runs of one size"),
        case("envelope-kind-changed",
               edited(lambda v: with_header(v["links"][1]["envelopes"][0],
                                            kind="key-rotation")), False, "bad_signature",
               "a peer's chunk envelope shown as a key rotation, signature kept"),
        case("envelope-time-changed",
               edited(lambda v: with_header(v["links"][1]["envelopes"][3],
                                            at=ACK3_CREATED + YEAR_MS)), False,
               "bad_signature", "a peer's envelope dated a year later, signature kept"),
        case("own-envelope-re-signed", edited(resign_own), False, "hash_mismatch",
               "the exporter re-dates its own envelope and signs the header again: the "
               "ciphertext no longer gives the hash the peer's receipt names"),
        case("envelope-signatures-swapped", edited(swap("sig")), False, "bad_signature",
               "the signatures of two envelopes swapped"),
        case("envelope-ciphertexts-swapped", edited(swap("ct")), False,
               "ciphertext_mismatch", "the ciphertexts of two envelopes swapped"),
        case("key-statement-claims-a-chunk", alpha_transcript(w, [
            replace(key_statement, doc=w.manifest.digest, first=0, n=4)], [],
            [w.manifest]), False, "bad_transcript",
               "a key-rotation envelope said to carry a chunk of the manifest"),
        case("version-1", edited(lambda v: v.update(v=1)), False, "bad_transcript",
               "a version 1 transcript, whose envelope headers nothing binds"),
    ]
    return [("valid", valid), ("invalid", invalid)]


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


def suite_2() -> ModuleType:
    """``suite_2.py`` beside this script (loaded by path: this is a script, not a package)."""
    import importlib.util

    name = "bridge_vectors_suite_2"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "suite_2.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def generate(out: Path, w: World, *, envelopes: bool, pq: bool = False) -> None:
    for sub in DETERMINISTIC_DIRS:  # stale vectors must not survive a rename
        for p in sorted((out / sub).rglob("*"), reverse=True):
            if p.is_file() and p.suffix in {".receipt", ".transcript", ".json", ".pub", ".key",
                                            ".md", ".rotation", ".revocation", ".history",
                                            ".carry", ".note", ".txt"}:
                p.unlink()
    write_deterministic(out, w)
    write_key_history(out, w)
    write_witness(out, w, write_bytes, dump_json, identity)
    write_sidecars(out, w)
    missing = any(not (out / ENVELOPE_DIR / s["file"]).exists() for s in envelope_specs(w))
    if envelopes or missing:
        seal_envelopes(out, w)
    s2 = suite_2()
    if pq or not (out / s2.FOLDER).exists():  # nothing in it is reproducible but its JSON
        shutil.rmtree(out / s2.FOLDER, ignore_errors=True)
        s2.write(out, sys.modules[__name__])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="compare a fresh generation with the committed vectors")
    parser.add_argument("--envelopes", action="store_true",
                        help="seal fresh envelopes even if they exist")
    parser.add_argument("--suite-2", dest="pq", action="store_true",
                        help="write the suite-2 vectors afresh even if they exist")
    parser.add_argument("--out", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    w = make_world()
    if not args.check:
        generate(args.out, w, envelopes=args.envelopes, pq=args.pq)
        print(f"wrote test vectors under {args.out}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        write_deterministic(fresh, w)
        write_key_history(fresh, w)
        write_witness(fresh, w, write_bytes, dump_json, identity)
        write_sidecars(fresh, w)
        problems = compare_trees(args.out, fresh) + check_envelopes(args.out, w)
        problems += suite_2().check(args.out, sys.modules[__name__], fresh)
    for p in problems:
        print(f"CHANGED: {p}", file=sys.stderr)
    if problems:
        return 1
    print("test vectors are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
