"""An independent receipt verifier, written only from schemas/PROTOCOL.md.

It imports nothing from ``bridge``: only hashlib, msgpack (to parse), PyNaCl's Ed25519 and the
standard library. If it and bridge.core.receipts ever disagree on a vector, PROTOCOL.md is
incomplete
or one of the two is wrong. Section numbers below are PROTOCOL.md's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import nacl.exceptions
import nacl.signing
import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "schemas" / "vectors"
RECEIPTS = VECTORS / "receipts"
EXPECTED: dict[str, Any] = json.loads((RECEIPTS / "expected.json").read_text())


class Fail(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- §1 identifiers

PARTY = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")


def is_id(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def is_int(value: object) -> bool:
    return type(value) is int


# ---------------------------------------------------------------- §2 canonical encoding


def _length(n: int, fix_base: int | None, fix_max: int, forms: list[tuple[int, int]]) -> bytes:
    if fix_base is not None and n <= fix_max:
        return bytes([fix_base + n])
    for marker, size in forms:
        if n < 1 << (8 * size):
            return bytes([marker]) + n.to_bytes(size, "big")
    raise Fail("too_large")


def encode(value: Any) -> bytes:
    """§2.1–2.3, written out: the one canonical encoding of a value."""
    if value is None:
        return b"\xc0"
    if value is False:
        return b"\xc2"
    if value is True:
        return b"\xc3"
    if type(value) is int:
        if 0 <= value <= 0x7F:
            return bytes([value])
        if value > 0:
            for marker, size in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
                if value < 1 << (8 * size):
                    return bytes([marker]) + value.to_bytes(size, "big")
            raise Fail("malformed")
        if value >= -32:
            return struct.pack(">b", value)
        for marker, size in ((0xD0, 1), (0xD1, 2), (0xD2, 4), (0xD3, 8)):
            if value >= -(1 << (8 * size - 1)):
                return bytes([marker]) + value.to_bytes(size, "big", signed=True)
        raise Fail("malformed")
    if type(value) is str:
        raw = value.encode("utf-8")
        return _length(len(raw), 0xA0, 31, [(0xD9, 1), (0xDA, 2), (0xDB, 4)]) + raw
    if type(value) is bytes:
        return _length(len(value), None, -1, [(0xC4, 1), (0xC5, 2), (0xC6, 4)]) + value
    if type(value) is list:
        return (_length(len(value), 0x90, 15, [(0xDC, 2), (0xDD, 4)])
                + b"".join(encode(v) for v in value))
    if type(value) is dict:
        if not all(type(k) is str for k in value):
            raise Fail("map_key")
        pairs = sorted(value.items(), key=lambda kv: kv[0].encode("utf-8"))
        return (_length(len(value), 0x80, 15, [(0xDE, 2), (0xDF, 4)])
                + b"".join(encode(k) + encode(v) for k, v in pairs))
    if type(value) is float:
        raise Fail("float")
    raise Fail("malformed")


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_depth: int
    max_items: int
    max_str: int
    max_bin: int


SMALL = Limits(64 * 1024, 16, 4096, 16 * 1024, 16 * 1024)
RECEIPT = Limits(256 * 1024 * 1024, 4, 1_000_000, 1024, 64 * 1024)


def _no_ext(code: int, data: bytes) -> Any:
    raise Fail("ext")


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)
    return True


def _has_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode(data: bytes, limits: Limits) -> Any:
    """§2.4 steps 1–4."""
    if len(data) > limits.max_bytes:
        raise Fail("too_large")
    if not data:
        raise Fail("truncated")
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_no_ext,
                                max_str_len=limits.max_str, max_bin_len=limits.max_bin,
                                max_array_len=limits.max_items, max_map_len=limits.max_items)
    except Fail:
        raise
    except msgpack.ExtraData as exc:
        raise Fail("trailing") from exc
    except UnicodeDecodeError as exc:
        raise Fail("utf8") from exc
    except Exception as exc:
        text = str(exc)
        if isinstance(exc, msgpack.OutOfData) or "incomplete" in text:
            raise Fail("truncated") from exc
        if "exceeds max" in text:
            raise Fail("too_large") from exc
        raise Fail("malformed") from exc
    if _has_float(value):
        raise Fail("float")
    if not _depth_ok(value, limits.max_depth):
        raise Fail("too_deep")
    if encode(value) != data:
        raise Fail("not_canonical")
    return value


# ---------------------------------------------------------------- §3 signatures

TAG_IDENTITY = b"bridge/v1/identity"
TAG_FINGERPRINT = b"bridge/v1/fingerprint"
TAG_DOCUMENT = b"bridge/v1/document"


def ed25519_ok(public: bytes, tag: bytes, body: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public).verify(tag + b"\x00" + body, signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


# ---------------------------------------------------------------- §4 identities


@dataclass(frozen=True)
class Identity:
    party: str
    sign_key: bytes
    key_id: bytes
    fingerprint: str


def fingerprint(key_id: bytes) -> str:
    text = base64.b32encode(key_id[:20]).decode()
    return " ".join(text[i : i + 4] for i in range(0, 32, 4))


def load_identity(path: Path) -> Identity:
    raw = path.read_bytes()
    # §4.3 rules 1-6: UTF-8 without a BOM, 64 KiB, an object with no key twice and exactly
    # these keys, the integer 1, canonical base64.
    assert not raw.startswith(b"\xef\xbb\xbf") and len(raw) <= 65536

    def once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        assert len({k for k, _ in pairs}) == len(pairs)
        return dict(pairs)

    doc = json.loads(raw.decode("utf-8"), object_pairs_hook=once)
    assert isinstance(doc, dict)
    assert set(doc) == {"bridge_identity", "party", "fingerprint", "statement", "signature"}
    assert is_int(doc["bridge_identity"]) and doc["bridge_identity"] == 1
    statement = base64.b64decode(doc["statement"], validate=True)
    signature = base64.b64decode(doc["signature"], validate=True)
    assert base64.b64encode(statement).decode() == doc["statement"]
    assert base64.b64encode(signature).decode() == doc["signature"]
    v = decode(statement, SMALL)
    assert set(v) == {"v", "type", "party", "sign_alg", "sign_key", "suite", "enc_key",
                      "created"}
    assert is_int(v["v"]) and v["v"] == 1 and v["type"] == "bridge.identity"
    assert is_id(PARTY, v["party"]) and v["sign_alg"] == "ed25519"
    assert v["suite"] == [32, 1, 3] and all(is_int(x) for x in v["suite"])
    assert isinstance(v["enc_key"], bytes) and len(v["enc_key"]) == 32
    assert is_int(v["created"])
    assert ed25519_ok(v["sign_key"], TAG_IDENTITY, statement, signature)
    key_id = hashlib.sha256(TAG_FINGERPRINT + b"\x00" + statement).digest()
    fp = fingerprint(key_id)
    # §4.3: the readable copies must agree with the signed statement.
    assert doc["party"] == v["party"]
    assert doc["fingerprint"] == fp
    return Identity(party=v["party"], sign_key=v["sign_key"], key_id=key_id, fingerprint=fp)


# ---------------------------------------------------------------- §6 documents


def leaf_hash(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """§6.3, the recursive definition."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_ok(lh: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """§6.3 steps 1–5 (RFC 9162 §2.1.3.2)."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = lh
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


HEADER_KEYS = {"v", "type", "id", "issuer", "issuer_key", "recipient", "created", "count",
               "root", "meta"}
STATUSES = {"RECEIVED", "NOT_RECEIVED", "RECEIVED_UNDECLARED", "PENDING_IDENTIFICATION",
            "IDENTITY_CONFIRMED", "IDENTITY_MISMATCH", "NOT_OWN_NATIONAL", "COMMINGLED",
            "ALREADY_EXCHANGED", "CATEGORY_INELIGIBLE", "DECLINED_REPATRIATION", "WITHHELD",
            "POSTPONED", "DISPUTED"}


@dataclass(frozen=True)
class Header:
    raw: bytes
    sig: bytes
    fields: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


TIME_MIN, TIME_MAX = 946_684_800_000, 253_402_300_799_999  # §3 Ranges


def json_data(value: Any) -> bool:
    """§6.2: maps, arrays, str, booleans, nil, integers within ±(2^53 − 1); never bin."""
    if isinstance(value, dict):
        return all(json_data(v) for v in value.values())
    if isinstance(value, list):
        return all(json_data(v) for v in value)
    if is_int(value):
        return bool(abs(value) <= 2**53 - 1)
    return value is None or isinstance(value, (str, bool))


def deadline_ms(text: Any) -> int | None:
    """§3 Ranges: a date (the end of that day, UTC) or a date-time with an offset within
    ±14:00; the instant in UTC, in milliseconds, must be a time. None if not."""
    import datetime as dt

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    if not isinstance(text, str):
        return None
    try:
        if len(text) == 10:
            day = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0), tzinfo=dt.UTC)
            ms = (day - epoch) // dt.timedelta(milliseconds=1) + 86_400_000
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            offset = moment.utcoffset()
            if offset is None or abs(offset) > dt.timedelta(hours=14):
                return None
            ms = (moment - epoch) // dt.timedelta(milliseconds=1)
    except ValueError:
        return None
    return ms if TIME_MIN <= ms <= TIME_MAX else None


def parse_header(signed: dict[str, bytes]) -> Header:
    """§6.2, every failure bad_header."""
    try:
        h = decode(signed["header"], SMALL)
    except Fail as exc:
        raise Fail("bad_header") from exc
    ok = isinstance(h, dict) and is_int(h.get("v")) and h["v"] == 1
    ok = ok and h.get("type") in ("roster", "manifest", "ack")
    ok = ok and set(h) == (HEADER_KEYS | {"answers", "answers_id"} if h["type"] == "ack"
                           else HEADER_KEYS)
    ok = ok and is_id(DOC_ID, h["id"]) and is_id(PARTY, h["issuer"])
    ok = ok and is_id(PARTY, h["recipient"])
    ok = ok and all(isinstance(h[k], bytes) and len(h[k]) == 32 for k in ("issuer_key", "root"))
    # §3 Ranges: a time in [2000-01-01, 9999-12-31], a count within SQLite's INTEGER.
    ok = ok and is_int(h["created"]) and TIME_MIN <= h["created"] <= TIME_MAX
    ok = ok and is_int(h["count"]) and 0 <= h["count"] <= 2**63 - 1
    ok = ok and isinstance(h["meta"], dict) and json_data(h["meta"])
    if ok and "ack_deadline" in h["meta"]:
        at = deadline_ms(h["meta"]["ack_deadline"])
        ok = at is not None and at <= h["created"] + 3660 * 86_400_000
    if ok and h["type"] == "ack":
        ok = (isinstance(h["answers"], bytes) and len(h["answers"]) == 32
              and is_id(DOC_ID, h["answers_id"]))
    if not ok:
        raise Fail("bad_header")
    return Header(raw=signed["header"], sig=signed["sig"], fields=h)


def check_signature(h: Header, keyring: dict[bytes, Identity]) -> Identity:
    who = keyring.get(h["issuer_key"])
    if who is None:
        raise Fail("unknown_key")
    if who.party != h["issuer"]:
        raise Fail("wrong_issuer")
    if not ed25519_ok(who.sign_key, TAG_DOCUMENT, h.raw, h.sig):
        raise Fail("bad_signature")
    return who


def _entry_common(v: Any, keys: set[str], position: int) -> None:
    if not isinstance(v, dict) or set(v) != keys:
        raise Fail("bad_entry")
    if not is_int(v["i"]) or v["i"] != position:
        raise Fail("bad_entry")
    if not isinstance(v["salt"], bytes) or len(v["salt"]) != 16:
        raise Fail("bad_entry")
    if not is_id(ITEM_ID, v["id"]):
        raise Fail("bad_entry")


def declared_entry(leaf: bytes, position: int | None) -> dict[str, Any]:
    """§6.4; with position None, at the position the entry names (§7.3 step 4)."""
    try:
        v = decode(leaf, SMALL)
    except Fail as exc:
        raise Fail("bad_entry") from exc
    if position is None:
        if not isinstance(v, dict) or not is_int(v.get("i")) or v["i"] < 0:
            raise Fail("bad_entry")
        position = v["i"]
    _entry_common(v, {"data", "i", "id", "salt"}, position)
    if not isinstance(v["data"], dict):
        raise Fail("bad_entry")
    return dict(v)


def ack_entry(leaf: bytes, position: int | None) -> dict[str, Any]:
    """§6.6."""
    try:
        v = decode(leaf, SMALL)
    except Fail as exc:
        raise Fail("bad_entry") from exc
    if position is None:
        if not isinstance(v, dict) or not is_int(v.get("i")) or v["i"] < 0:
            raise Fail("bad_entry")
        position = v["i"]
    _entry_common(v, {"evidence", "i", "id", "leaf", "reason", "salt", "status"}, position)
    if v["status"] not in STATUSES:
        raise Fail("bad_entry")
    for text in (v["reason"], v["evidence"]):
        if text is not None and (not isinstance(text, str) or len(text) > 2000):
            raise Fail("bad_entry")
    if v["leaf"] is not None and (not isinstance(v["leaf"], bytes) or len(v["leaf"]) != 32):
        raise Fail("bad_entry")
    return dict(v)


# ---------------------------------------------------------------- §7 receipts


@dataclass
class Outcome:
    kind: str
    item_id: str | None = None
    history: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    unacknowledged: int | None = None


def _signed_header_map(v: Any) -> bool:
    return (isinstance(v, dict) and set(v) == {"header", "sig"}
            and isinstance(v["header"], bytes) and isinstance(v["sig"], bytes))


def _proof(v: Any) -> bool:
    return (isinstance(v, list) and len(v) <= 64
            and all(isinstance(h, bytes) and len(h) == 32 for h in v))


def _answers_and_parties(ack: Header, doc: Header) -> None:
    # §7.3 steps 8 and 9.
    if ack["answers"] != hashlib.sha256(doc.raw).digest() or ack["answers_id"] != doc["id"]:
        raise Fail("wrong_document")
    if ack["issuer"] != doc["recipient"] or ack["recipient"] != doc["issuer"]:
        raise Fail("wrong_party")


def verify(data: bytes, keyring: dict[bytes, Identity]) -> Outcome:
    # §7.3 / §7.4 step 1.
    b = decode(data, RECEIPT)
    if not isinstance(b, dict) or not is_int(b.get("v")) or b["v"] != 1:
        raise Fail("bad_bundle")
    if b.get("type") == "bridge.receipt.item":
        return verify_item(b, keyring)
    if b.get("type") == "bridge.receipt.document":
        return verify_document(b, keyring)
    raise Fail("bad_bundle")


def verify_item(b: dict[str, Any], keyring: dict[bytes, Identity]) -> Outcome:
    # Step 1, continued.
    if set(b) != {"acks", "document", "entry", "proof", "type", "v"}:
        raise Fail("bad_bundle")
    if (not _signed_header_map(b["document"]) or not isinstance(b["entry"], bytes)
            or not _proof(b["proof"])):
        raise Fail("bad_bundle")
    if not isinstance(b["acks"], list) or not 1 <= len(b["acks"]) <= 256:
        raise Fail("bad_bundle")
    for a in b["acks"]:
        if (not isinstance(a, dict) or set(a) != {"ack", "entry", "proof"}
                or not _signed_header_map(a["ack"]) or not isinstance(a["entry"], bytes)
                or not _proof(a["proof"])):
            raise Fail("bad_bundle")
    # Step 2.
    doc = parse_header(b["document"])
    if doc["type"] not in ("roster", "manifest"):
        raise Fail("wrong_type")
    # Step 3.
    check_signature(doc, keyring)
    # Step 4.
    entry = declared_entry(b["entry"], None)
    # Step 5.
    declared_leaf = leaf_hash(b["entry"])
    if not inclusion_ok(declared_leaf, entry["i"], doc["count"], b["proof"], doc["root"]):
        raise Fail("bad_proof")
    history: list[str] = []
    previous: int | None = None
    for a in b["acks"]:
        # Step 6.
        ack = parse_header(a["ack"])
        if ack["type"] != "ack":
            raise Fail("wrong_type")
        # Step 7.
        check_signature(ack, keyring)
        # Steps 8 and 9.
        _answers_and_parties(ack, doc)
        # Step 10.
        e = ack_entry(a["entry"], None)
        if e["id"] != entry["id"]:
            raise Fail("wrong_item")
        if e["leaf"] is None:
            raise Fail("undeclared")
        if e["status"] == "RECEIVED_UNDECLARED":
            raise Fail("bad_entry")
        if e["leaf"] != declared_leaf:
            raise Fail("wrong_leaf")
        # Step 11.
        if not inclusion_ok(leaf_hash(a["entry"]), e["i"], ack["count"], a["proof"],
                            ack["root"]):
            raise Fail("bad_proof")
        # Step 12.
        if previous is not None and ack["created"] <= previous:
            raise Fail("ack_order")
        previous = ack["created"]
        history.append(e["status"])
    return Outcome(kind="item", item_id=entry["id"], history=history)


def _document_form(v: Any) -> bool:
    return (isinstance(v, dict) and set(v) == {"doc", "entries"} and _signed_header_map(v["doc"])
            and isinstance(v["entries"], list)
            and all(isinstance(e, bytes) for e in v["entries"]))


def _tree(h: Header, entries: list[bytes]) -> None:
    if len(entries) != h["count"]:
        raise Fail("count_mismatch")
    if mth(entries) != h["root"]:
        raise Fail("root_mismatch")


def verify_document(b: dict[str, Any], keyring: dict[bytes, Identity]) -> Outcome:
    # §7.4 step 1, continued.
    if set(b) != {"acks", "document", "type", "v"} or not _document_form(b["document"]):
        raise Fail("bad_bundle")
    if (not isinstance(b["acks"], list) or not 1 <= len(b["acks"]) <= 4096
            or not all(_document_form(a) for a in b["acks"])):
        raise Fail("bad_bundle")
    # Steps 2 and 3.
    doc = parse_header(b["document"]["doc"])
    if doc["type"] not in ("roster", "manifest"):
        raise Fail("wrong_type")
    check_signature(doc, keyring)
    # Step 4.
    entries = b["document"]["entries"]
    _tree(doc, entries)
    # Step 5.
    declared = [declared_entry(leaf, n) for n, leaf in enumerate(entries)]
    ids = [e["id"] for e in declared]
    if len(set(ids)) != len(ids):
        raise Fail("duplicate_item")
    leaf_of = {e["id"]: leaf_hash(leaf) for e, leaf in zip(declared, entries, strict=True)}
    final: dict[str, str] = {}
    previous: int | None = None
    for a in b["acks"]:
        # Steps 6–9.
        ack = parse_header(a["doc"])
        if ack["type"] != "ack":
            raise Fail("wrong_type")
        check_signature(ack, keyring)
        _answers_and_parties(ack, doc)
        # Step 10.
        _tree(ack, a["entries"])
        # Step 11.
        acked = [ack_entry(leaf, n) for n, leaf in enumerate(a["entries"])]
        if len({e["id"] for e in acked}) != len(acked):
            raise Fail("duplicate_item")
        for e in acked:
            if e["leaf"] is None:
                if e["id"] in leaf_of:
                    raise Fail("wrong_item")
                if e["status"] != "RECEIVED_UNDECLARED" and e["id"] not in final:
                    raise Fail("bad_entry")
            else:
                if e["status"] == "RECEIVED_UNDECLARED":
                    raise Fail("bad_entry")
                if e["id"] not in leaf_of:
                    raise Fail("wrong_item")
                if e["leaf"] != leaf_of[e["id"]]:
                    raise Fail("wrong_leaf")
            final[e["id"]] = e["status"]
        # Step 12.
        if previous is not None and ack["created"] <= previous:
            raise Fail("ack_order")
        previous = ack["created"]
    counts: dict[str, int] = {}
    for status in final.values():
        counts[status] = counts.get(status, 0) + 1
    return Outcome(kind="document", counts=counts,
                   unacknowledged=sum(1 for i in ids if i not in final))


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def keyring() -> dict[bytes, Identity]:
    identities = [load_identity(RECEIPTS / p) for p in EXPECTED["keys"]]
    return {i.key_id: i for i in identities}


def test_written_without_the_implementation() -> None:
    source = Path(__file__).read_text()
    assert not re.search(r"^\s*(from|import)\s+bridge\b", source, re.MULTILINE)


def test_canonical_encoding_example_of_section_2() -> None:
    value = {"b": 1, "a": [True, None, -1, 200, b"\x01"], "c": "é"}
    assert encode(value).hex() == "83a16195c3c0ffccc8c40101a16201a163a2c3a9"
    assert decode(bytes.fromhex("83a16195c3c0ffccc8c40101a16201a163a2c3a9"), SMALL) == value


@pytest.mark.parametrize(("hex_bytes", "reason"), [
    ("d005", "not_canonical"),       # 5 as int 8
    ("cc05", "not_canonical"),       # 5 as uint 8
    ("82a16201a16101", "not_canonical"),  # keys out of order
    ("cb3ff8000000000000", "float"),
    ("c1", "malformed"),
    ("92", "truncated"),
    ("c0c0", "trailing"),
])
def test_strict_decoding_rules(hex_bytes: str, reason: str) -> None:
    with pytest.raises(Fail) as info:
        decode(bytes.fromhex(hex_bytes), SMALL)
    assert info.value.reason == reason


def test_identity_example_of_section_4(keyring: dict[bytes, Identity]) -> None:
    alpha = next(i for i in keyring.values() if i.party == "alpha-test")
    assert alpha.key_id.hex() == (
        "e3f13ec620cfa4352e2e5687eb49e6b9ae4f8f3c252d2a26fc414d4d954ade43")
    assert alpha.fingerprint == "4PYT 5RRA Z6SD KLRO K2D6 WSPG XGXE 7DZ4"


def test_tag_bytes_of_section_3() -> None:
    assert (TAG_DOCUMENT + b"\x00").hex() == "6272696467652f76312f646f63756d656e7400"


def test_merkle_definitions_agree() -> None:
    leaves = [bytes([n]) * n for n in range(11)]
    for size in range(1, 12):
        root = mth(leaves[:size])
        for index in range(size):
            path = _path(leaves[:size], index)
            assert inclusion_ok(leaf_hash(leaves[index]), index, size, path, root)
            if size > 1:
                other = (index + 1) % size
                assert not inclusion_ok(leaf_hash(leaves[other]), index, size, path, root)


def _path(leaves: list[bytes], m: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), for the test only."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*_path(leaves[:k], m), mth(leaves[k:])]
    return [*_path(leaves[k:], m - k), mth(leaves[:k])]


VALID = [v for v in EXPECTED["vectors"] if v["ok"]]
INVALID = [v for v in EXPECTED["vectors"] if not v["ok"]]


@pytest.mark.parametrize("vector", VALID, ids=[v["file"] for v in VALID])
def test_independent_verifier_accepts_valid_vector(vector: dict[str, Any],
                                                   keyring: dict[bytes, Identity]) -> None:
    outcome = verify((RECEIPTS / vector["file"]).read_bytes(), keyring)
    assert outcome.kind == vector["kind"]
    if outcome.kind == "item":
        assert outcome.item_id == vector["item_id"]
        assert outcome.history == vector["history"]
        assert outcome.history[-1] == vector["status"]
    else:
        assert outcome.counts == vector["counts"]
        assert outcome.unacknowledged == vector["unacknowledged"]


@pytest.mark.parametrize("vector", INVALID, ids=[v["file"] for v in INVALID])
def test_independent_verifier_rejects_invalid_vector(vector: dict[str, Any],
                                                     keyring: dict[bytes, Identity]) -> None:
    with pytest.raises(Fail) as info:
        verify((RECEIPTS / vector["file"]).read_bytes(), keyring)
    assert info.value.reason == vector["reason"]


# ---------------------------------------------------------------- §11.4–11.5 transcripts
#
# Steps 1, 2, 3.1–3.2 and 5 of §11.5, independently: the shape, each document header, and
# what binds each envelope (§5.3 signature, §5.1/§5.4 hash, §8.3 receipt) and what it carries.
# Steps 3.3–4 are the checks of a whole-document receipt, done above for the receipt vectors.

TRANSCRIPTS = VECTORS / "transcripts"
TRANSCRIPT_VECTORS: list[dict[str, Any]] = json.loads(
    (TRANSCRIPTS / "expected.json").read_text())["vectors"]
TRANSCRIPT = Limits(256 * 1024 * 1024, 6, 1_000_000, 1024, 256 * 1024 * 1024)
TAG_ENVELOPE = b"bridge/v1/envelope"
TAG_TRANSPORT_RECEIPT = b"bridge/v1/transport-receipt"
ENVELOPE_HEADER_KEYS = {"v", "suite", "from", "from_key", "to", "to_key", "id", "seq", "prev",
                        "at", "kind"}
RECEIPT_KEYS = {"v", "type", "from", "to", "by_key", "envelope", "id", "seq", "at", "result",
                "reason", "expected_seq"}


def key_of(keyring: dict[bytes, Identity], key_id: object, party: str) -> Identity:
    who = keyring.get(key_id) if isinstance(key_id, bytes) else None
    if who is None:
        raise Fail("unknown_key")
    if who.party != party:
        raise Fail("wrong_issuer")
    return who


def envelope_header(raw: bytes) -> dict[str, Any]:
    """§5.1."""
    try:
        h = decode(raw, SMALL)
    except Fail as exc:
        raise Fail("bad_header") from exc
    ok = isinstance(h, dict) and set(h) == ENVELOPE_HEADER_KEYS and is_int(h["v"]) and h["v"] == 1
    ok = ok and h["suite"] == [32, 1, 3] and all(is_int(x) for x in h["suite"])
    ok = ok and is_id(PARTY, h["from"]) and is_id(PARTY, h["to"])
    ok = ok and all(isinstance(h[k], bytes) and len(h[k]) == n
                    for k, n in (("from_key", 32), ("to_key", 32), ("id", 16), ("prev", 32)))
    ok = ok and is_int(h["seq"]) and h["seq"] >= 1 and is_int(h["at"]) and h["at"] >= 0
    ok = ok and isinstance(h["kind"], str) and 0 < len(h["kind"]) <= 32
    if not ok:
        raise Fail("bad_header")
    return h


def transport_receipt(raw: bytes, keyring: dict[bytes, Identity], party: str) -> dict[str, Any]:
    """§8.3, as §11.5 step 5.7 checks it."""
    try:
        outer = decode(raw, SMALL)
        ok = isinstance(outer, dict) and set(outer) == {"r", "s"}
        ok = ok and all(isinstance(outer[k], bytes) for k in ("r", "s"))
        if not ok:
            raise Fail("bad_receipt")
        r = decode(outer["r"], SMALL)
    except Fail as exc:
        raise Fail("bad_receipt") from exc
    if not isinstance(r, dict):
        raise Fail("bad_receipt")
    who = key_of(keyring, r.get("by_key"), party)
    if not ed25519_ok(who.sign_key, TAG_TRANSPORT_RECEIPT, outer["r"], outer["s"]):
        raise Fail("bad_signature")
    if set(r) != RECEIPT_KEYS:
        raise Fail("bad_receipt")
    return r


def verify_transcript(data: bytes, keyring: dict[bytes, Identity]) -> list[str]:
    """The envelopes whose content is not accounted for; raises Fail with the reason."""
    t = decode(data, TRANSCRIPT)
    # 1, 2.
    keys = {"v", "type", "parties", "exported_at", "documents", "links"}
    if (not isinstance(t, dict) or set(t) != keys or not is_int(t["v"]) or t["v"] != 2
            or t["type"] != "bridge.transcript"):
        raise Fail("bad_transcript")
    a, b = t["parties"]
    if [(x["from"], x["to"]) for x in t["links"]] != [(a, b), (b, a)]:
        raise Fail("bad_transcript")
    # 3.1, 3.2: documents by hash (§6.5: SHA-256 of the header bytes).
    counts: dict[bytes, tuple[str, int]] = {}
    for d in t["documents"]:
        if not (isinstance(d, dict) and set(d) == {"doc", "entries"}
                and _signed_header_map(d["doc"])):
            raise Fail("bad_transcript")
        h = parse_header(d["doc"])
        check_signature(h, keyring)
        counts[hashlib.sha256(h.raw).digest()] = (h["issuer"], h["count"])
    unaccounted = []
    for link in t["links"]:
        x, y = link["from"], link["to"]
        prev, carried, size = bytes(32), dict.fromkeys(counts, 0), dict.fromkeys(counts, 0)
        for k, e in enumerate(link["envelopes"], 1):
            # 5.1
            if not (isinstance(e, dict) and set(e) == {"header", "sig", "ct_hash", "ct", "hash",
                                                       "receipt", "carries"}
                    and len(e["hash"]) == 32 and len(e["ct_hash"]) == 32):
                raise Fail("bad_transcript")
            # 5.2–5.4
            h = envelope_header(e["header"])
            if (h["from"], h["to"]) != (x, y):
                raise Fail("wrong_party")
            sender = key_of(keyring, h["from_key"], x)
            key_of(keyring, h["to_key"], y)
            if h["seq"] != k:
                raise Fail("missing_envelope")
            if h["prev"] != prev:
                raise Fail("chain_broken")
            # 5.5: §5.3 with the ciphertext's hash as given.
            body = struct.pack(">I", len(e["header"])) + e["header"] + e["ct_hash"]
            if not ed25519_ok(sender.sign_key, TAG_ENVELOPE, body, e["sig"]):
                raise Fail("bad_signature")
            # 5.6: the wire form {c, h, s} (§5.1), whose SHA-256 is the envelope hash (§5.4).
            if e["ct"] is not None:
                if hashlib.sha256(e["ct"]).digest() != e["ct_hash"]:
                    raise Fail("ciphertext_mismatch")
                wire = encode({"c": e["ct"], "h": e["header"], "s": e["sig"]})
                if hashlib.sha256(wire).digest() != e["hash"]:
                    raise Fail("hash_mismatch")
            # 5.7–5.9
            r = transport_receipt(e["receipt"], keyring, y)
            if r["result"] not in ("accepted", "refused"):
                raise Fail("not_delivered")
            if (r["envelope"], r["seq"], r["id"], r["from"], r["to"]) != (
                    e["hash"], h["seq"], h["id"], x, y):
                raise Fail("receipt_mismatch")
            # 5.10
            c = e["carries"]
            if h["kind"] != "chunk":
                if c is not None:
                    raise Fail("bad_transcript")
            elif c is None or (c["doc"] not in counts and r["result"] == "refused"):
                unaccounted.append(f"envelope {k} {x}→{y}")
            else:
                if c["doc"] not in counts:
                    raise Fail("unknown_document")
                issuer, count = counts[c["doc"]]
                if issuer != x:
                    raise Fail("wrong_party")
                first, n, doc = c["first"], c["n"], c["doc"]
                if first != carried[doc] or n < 1 or first + n > count:
                    raise Fail("bad_chunk")
                # §8.1: one power-of-two size C per document, the last chunk shorter.
                ends = first + n == count
                if not (ends or n & (n - 1) == 0) or (size[doc] and not (
                        n == size[doc] or (ends and n < size[doc]))):
                    raise Fail("bad_chunk")
                size[doc] = size[doc] or n
                carried[doc] += n  # refused envelopes count too
            prev = e["hash"]
    return unaccounted


@pytest.mark.parametrize("vector", TRANSCRIPT_VECTORS,
                         ids=[v["file"] for v in TRANSCRIPT_VECTORS])
def test_independent_transcript_check_agrees_with_the_vector(
        vector: dict[str, Any], keyring: dict[bytes, Identity]) -> None:
    data = (TRANSCRIPTS / vector["file"]).read_bytes()
    if vector["ok"]:
        assert verify_transcript(data, keyring) == vector["unaccounted"]
    else:
        with pytest.raises(Fail) as info:
            verify_transcript(data, keyring)
        assert info.value.reason == vector["reason"]
@pytest.mark.parametrize("name", sorted(p.name for p in (VECTORS / "keys" / "invalid").glob(
    "*.pub")))
def test_independent_loader_refuses_every_invalid_identity_file(name: str) -> None:
    """The rules of §4.3 as written are enough to refuse each vector."""
    with pytest.raises((AssertionError, ValueError, KeyError, TypeError)):
        load_identity(VECTORS / "keys" / "invalid" / name)
