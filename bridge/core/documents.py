"""Signed documents: rosters, manifests and acknowledgements.

A document is a signed *header* that commits to its *entries* through an RFC 9162 Merkle root
(PROTOCOL.md §6); the entries, and the one decoder of each, are in ``bridge.core.entries``.
An acknowledgement is a document of the same shape whose header names the hash of the document
it answers and whose entries carry one status per item.

The header is signed with ``"bridge/v1/document"``; the document's hash is SHA-256 of the header
bytes as signed. Everything is checked over the bytes received.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeGuard

from bridge.core import codec, deadlines, merkle, times
from bridge.core.beside import Beside, Pending, Then, inline
from bridge.core.crypto.hashes import sha256, shake256
from bridge.core.crypto.identity import (
    TAG_DOCUMENT,
    Keyring,
    PrivateIdentity,
    PublicIdentity,
    check_party,
)
from bridge.core.entries import (
    ACK_STATUSES,
    ITEM_ID_RE,
    MAX_TEXT,
    SALT_SIZE,
    AckEntry,
    AckItem,
    DeclaredEntry,
    Item,
    decode_ack_entry,
    decode_declared_entry,
    encode_ack_entry,
    encode_declared_entry,
    encode_declared_record,
)
from bridge.core.errors import DecodeError, InputError, VerificationError
from bridge.core.json_data import json_data_problem

# The entries' names are part of this module's face: a document is read and written with them.
__all__ = [
    "ACK",
    "ACK_STATUSES",
    "DOCUMENT_TYPES",
    "DOC_ID_RE",
    "ITEM_ID_RE",
    "MAX_TEXT",
    "SALT_SIZE",
    "TAG_LEAF_SALT",
    "AckEntry",
    "AckItem",
    "DeclaredEntry",
    "DocumentHeader",
    "Item",
    "SignedDocument",
    "SignedHeader",
    "check_entries_tree",
    "check_meta_encodable",
    "declared_leaf",
    "declared_record_leaf",
    "decode_ack_entry",
    "decode_declared_entry",
    "encode_ack_entry",
    "encode_declared_entry",
    "is_document_map",
    "is_signed_header_map",
    "json_data_problem",
    "leaf_salts",
    "sign_ack",
    "sign_document",
    "sign_header",
]

DOCUMENT_TYPES = ("roster", "manifest")
ACK = "ack"
TAG_LEAF_SALT = b"bridge/v1/leaf-salt"
DOC_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
_HEADER_KEYS = frozenset({"v", "type", "id", "issuer", "issuer_key", "recipient", "created",
                          "count", "root", "meta"})
_ACK_HEADER_KEYS = _HEADER_KEYS | {"answers", "answers_id"}


def salt_stream(salt_key: bytes, size: int) -> bytes:
    """``size`` bytes of the document's salts: SHAKE256(tag || 0x00 || salt_key) (§6.4)."""
    return shake256(TAG_LEAF_SALT + b"\x00" + salt_key, size)


def leaf_salts(salt_key: bytes, count: int) -> list[bytes]:
    """Per-entry salts: entry ``i`` gets bytes ``[16 i, 16 i + 16)`` of
    SHAKE256(tag || 0x00 || salt_key) (FIPS 202).

    Derived rather than drawn per entry so that one random ``salt_key`` per document makes the
    whole document reproducible for known-answer tests; the key itself never leaves the issuer,
    and a verifier never needs it (each salt travels inside its entry). One XOF call for the
    whole document costs far less than a MAC per entry.
    """
    stream = salt_stream(salt_key, SALT_SIZE * count)
    return [stream[i : i + SALT_SIZE] for i in range(0, SALT_SIZE * count, SALT_SIZE)]


@dataclass(frozen=True, kw_only=True)
class DocumentHeader:
    type: str
    id: str
    issuer: str
    issuer_key: bytes
    recipient: str
    created: int  # milliseconds since the Unix epoch, UTC
    count: int
    root: bytes
    meta: Mapping[str, Any]
    answers: bytes | None = None  # ack only: hash of the answered document
    answers_id: str | None = None  # ack only: its id, for people

    def __post_init__(self) -> None:
        if self.type not in (*DOCUMENT_TYPES, ACK):
            # Not quoted: a peer's header or a caller's request may hold anything here.
            raise InputError(f"unknown document type; one of: {', '.join((*DOCUMENT_TYPES, ACK))}",
                             field="type")
        if not isinstance(self.id, str) or not DOC_ID_RE.match(self.id):
            raise InputError("a document id is 1-128 letters, digits or . _ : -", field="id")
        check_party(self.issuer, field_name="issuer")
        check_party(self.recipient, field_name="recipient")
        if not isinstance(self.issuer_key, bytes) or len(self.issuer_key) != 32:
            raise InputError("must be a 32-byte key id", field="issuer_key")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise InputError("must be a 32-byte hash", field="root")
        # Ranges where they are parsed (PROTOCOL.md §3 "Ranges", §6.2): a stored value must
        # fit SQLite's INTEGER and print as a date, or every read of it would fail.
        problem = times.check_time(self.created)
        if problem is not None:
            raise InputError(problem, field="created", code="bad_time")
        problem = times.check_int(self.count, minimum=0, maximum=times.MAX_SEQ)
        if problem is not None:
            raise InputError(problem, field="count")
        if not isinstance(self.meta, Mapping):
            raise InputError("must be a map", field="meta")
        problem_at = json_data_problem(self.meta, "meta")
        if problem_at is not None:
            raise InputError(problem_at[1], field=problem_at[0])
        deadlines.check_meta(self.meta, self.created)
        is_ack = self.type == ACK
        if is_ack != (self.answers is not None) or is_ack != (self.answers_id is not None):
            raise InputError("answers and answers_id are set on acknowledgements only",
                             field="answers")
        if self.answers is not None and (not isinstance(self.answers, bytes)
                                         or len(self.answers) != 32):
            raise InputError("must be a 32-byte document hash", field="answers")
        if self.answers_id is not None and (not isinstance(self.answers_id, str)
                                            or not DOC_ID_RE.match(self.answers_id)):
            raise InputError("a document id is 1-128 letters, digits or . _ : -",
                             field="answers_id")

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {"v": 1, "type": self.type, "id": self.id, "issuer": self.issuer,
                             "issuer_key": self.issuer_key, "recipient": self.recipient,
                             "created": self.created, "count": self.count, "root": self.root,
                             "meta": dict(self.meta)}
        if self.type == ACK:
            m["answers"] = self.answers
            m["answers_id"] = self.answers_id
        return m

    @classmethod
    def from_bytes(cls, data: bytes) -> DocumentHeader:
        try:
            value = codec.decode(data, codec.SMALL_LIMITS)
        except DecodeError as exc:
            raise VerificationError(f"document header: {exc}", reason="bad_header") from exc
        if not isinstance(value, dict) or type(value.get("v")) is not int or value["v"] != 1:
            raise VerificationError("document header has no version 1", reason="bad_header")
        keys = _ACK_HEADER_KEYS if value.get("type") == ACK else _HEADER_KEYS
        if set(value) != keys:
            raise VerificationError("document header has the wrong fields", reason="bad_header")
        try:
            return cls(type=value["type"], id=value["id"], issuer=value["issuer"],
                       issuer_key=value["issuer_key"], recipient=value["recipient"],
                       created=value["created"], count=value["count"], root=value["root"],
                       meta=value["meta"], answers=value.get("answers"),
                       answers_id=value.get("answers_id"))
        except InputError as exc:
            # Every failure of §6.2, ranges included, is bad_header: a verifier needs no
            # clock for these. (A time ahead of the receiver's clock is refused at intake
            # with bad_time, PROTOCOL.md §8.1.)
            raise VerificationError(f"document header: {exc}", reason="bad_header") from exc


def is_signed_header_map(value: object) -> TypeGuard[dict[str, bytes]]:
    """The wire form of a signed header, ``{"header": bin, "sig": bin}`` (PROTOCOL.md §6.1)."""
    return (isinstance(value, dict) and set(value) == {"header", "sig"}
            and isinstance(value["header"], bytes) and isinstance(value["sig"], bytes))


def is_document_map(value: object) -> TypeGuard[dict[str, Any]]:
    """The wire form of a whole document, ``{"doc": …, "entries": [bin]}``; the signed header
    in ``doc`` is checked by ``SignedHeader.parse``."""
    return (isinstance(value, dict) and set(value) == {"doc", "entries"}
            and isinstance(value["entries"], list)
            and all(isinstance(e, bytes) for e in value["entries"]))


@dataclass(frozen=True, kw_only=True)
class SignedHeader:
    """A document header as signed bytes, with its signature. ``digest`` is the document hash."""

    header: DocumentHeader
    data: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    @cached_property
    def digest(self) -> bytes:
        return sha256(self.data)

    def to_map(self) -> dict[str, Any]:
        return {"header": self.data, "sig": self.signature}

    @classmethod
    def parse(cls, value: object) -> SignedHeader:
        """From the wire map ``{"header": bin, "sig": bin}``; checks form, not the signature."""
        if not is_signed_header_map(value):
            raise VerificationError("a signed header is {header: bin, sig: bin}",
                                    reason="bad_header")
        return cls(header=DocumentHeader.from_bytes(value["header"]), data=value["header"],
                   signature=value["sig"])

    def check_signature(self, keys: Keyring) -> PublicIdentity:
        """Return the issuer's identity if the signature holds; raise otherwise."""
        issuer = keys.get(self.header.issuer_key)
        if issuer is None:
            raise VerificationError(
                f"{self.header.type} {self.header.id} is signed by a key that is not among the "
                f"given keys (issuer {self.header.issuer!r})", reason="unknown_key")
        if issuer.party != self.header.issuer:
            raise VerificationError(
                f"{self.header.type} {self.header.id} names issuer {self.header.issuer!r} but "
                f"its key belongs to {issuer.party!r}", reason="wrong_issuer")
        if not issuer.verify(TAG_DOCUMENT, self.data, self.signature):
            raise VerificationError(
                f"signature on {self.header.type} {self.header.id} does not verify",
                reason="bad_signature")
        return issuer


# ---------------------------------------------------------------- whole documents


@dataclass(frozen=True, kw_only=True)
class SignedDocument:
    """A signed header and all its entries (leaf bytes), consistent with each other."""

    signed: SignedHeader
    leaves: tuple[bytes, ...] = field(repr=False)

    @property
    def header(self) -> DocumentHeader:
        return self.signed.header

    @property
    def digest(self) -> bytes:
        return self.signed.digest

    @cached_property
    def tree(self) -> merkle.MerkleTree:
        return merkle.MerkleTree.from_leaves(self.leaves)

    def proof(self, index: int) -> list[bytes]:
        return self.tree.inclusion_proof(index)

    def declared_entries(self) -> list[DeclaredEntry]:
        return [decode_declared_entry(leaf, i) for i, leaf in enumerate(self.leaves)]

    def ack_entries(self) -> list[AckEntry]:
        return [decode_ack_entry(leaf, i) for i, leaf in enumerate(self.leaves)]

    def check(self, keys: Keyring) -> PublicIdentity:
        """Signature, count and root; raises ``VerificationError``. Entries are not decoded."""
        issuer = self.signed.check_signature(keys)
        # The tree is built only for the right number of entries.
        whole = len(self.leaves) == self.header.count
        check_entries_tree(self.header, len(self.leaves), self.tree.root if whole else b"")
        return issuer

    def to_map(self) -> dict[str, Any]:
        return {"doc": self.signed.to_map(), "entries": list(self.leaves)}

    @classmethod
    def parse(cls, value: object) -> SignedDocument:
        if not is_document_map(value):
            raise VerificationError("a document is {doc: signed header, entries: [bin]}",
                                    reason="bad_document")
        return cls(signed=SignedHeader.parse(value["doc"]), leaves=tuple(value["entries"]))


def check_entries_tree(header: DocumentHeader, present: int, root: bytes) -> None:
    """The entries present, ``present`` of them with Merkle root ``root`` (RFC 9162 §2.1),
    are the ones ``header`` signs (PROTOCOL.md §6.3); raises ``VerificationError``. For entries
    held whole (``SignedDocument.check``) or hashed as they stream past."""
    if present != header.count:
        raise VerificationError(
            f"{header.type} {header.id} declares {header.count} entries but {present} are "
            "present", reason="count_mismatch")
    if not hmac.compare_digest(root, header.root):
        raise VerificationError(
            f"entries of {header.type} {header.id} do not match its signed root",
            reason="root_mismatch")


def _sign(issuer: PrivateIdentity, header: DocumentHeader, leaves: tuple[bytes, ...],
          tree: merkle.MerkleTree) -> SignedDocument:
    doc = SignedDocument(signed=sign_header(issuer, header), leaves=leaves)
    doc.__dict__["tree"] = tree  # already built; cached_property reads it from here
    return doc


def _unique_ids(ids: Iterable[str], where: str) -> None:
    seen: set[str] = set()
    for n, item_id in enumerate(ids):
        if item_id in seen:
            raise InputError(f"duplicate item id {item_id!r}", field=f"{where}[{n}].id")
        seen.add(item_id)


def _unencodable_path(value: Any, path: str) -> str:
    """Where in ``value`` the first value without a canonical encoding sits (for messages)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            try:
                codec.encode(inner)
            except DecodeError:
                return _unencodable_path(inner, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for n, inner in enumerate(value):
            try:
                codec.encode(inner)
            except DecodeError:
                return _unencodable_path(inner, f"{path}[{n}]")
    return path


def check_meta_encodable(meta: Mapping[str, Any]) -> None:
    """``InputError`` naming the first value of ``meta`` with no canonical encoding."""
    try:
        codec.encode(dict(meta))
    except DecodeError as exc:
        raise InputError(f"not encodable ({exc}); numbers with a fraction must be written as "
                         "text", field=_unencodable_path(meta, "meta")) from exc


def declared_leaf(n: int, salt: bytes, item: Item) -> bytes:
    """Entry ``n`` of a roster or manifest, as signed; ``InputError`` naming ``items[n]`` for
    a record the peer's bridge would refuse at intake or one with no canonical encoding."""
    return declared_record_leaf(n, salt, item.id, item.data)


def declared_record_leaf(n: int, salt: bytes, item_id: str, data: Mapping[str, Any]) -> bytes:
    """``declared_leaf`` of the item (``item_id``, ``data``), which ``check_item`` passed."""
    problem = json_data_problem(data, f"items[{n}]")
    if problem is not None:  # what the peer's bridge would refuse at intake
        raise InputError(problem[1], field=problem[0])
    try:
        return encode_declared_record(n, salt, item_id, data)
    except DecodeError as exc:
        raise InputError(
            f"not encodable ({exc}); numbers with a fraction must be written as text",
            field=_unencodable_path(dict(data), f"items[{n}]")) from exc


def sign_header(issuer: PrivateIdentity, header: DocumentHeader) -> SignedHeader:
    """The issuer's signature over a header (its root computed by the caller)."""
    return start_sign_header(issuer, header, inline).result()


def start_sign_header(issuer: PrivateIdentity, header: DocumentHeader, beside: Beside
                      ) -> Pending[SignedHeader]:
    """``sign_header``, the slow half of the signature made ``beside``."""
    data = codec.encode(header.to_map())
    return Then(issuer.start_sign(TAG_DOCUMENT, data, beside),
                lambda signature: SignedHeader(header=header, data=data, signature=signature))


def sign_document(issuer: PrivateIdentity, *, doc_type: str, doc_id: str, recipient: str,
                  created: int, meta: Mapping[str, Any], items: Iterable[Item],
                  salt_key: bytes, count: int | None = None) -> SignedDocument:
    """Build and sign a roster or manifest. ``salt_key`` (32 random bytes) and ``created``
    are parameters so that known-answer vectors can be made.

    ``items`` may be an iterator (then ``count`` is required): each item is encoded and then
    dropped, so a caller can hand over a 100,000-item list without holding it twice.
    """
    if doc_type not in DOCUMENT_TYPES:
        raise InputError(f"must be one of {', '.join(DOCUMENT_TYPES)}", field="type")
    if count is None:
        if not isinstance(items, Sequence):
            raise TypeError("count is required when items is an iterator")
        count = len(items)
    if count == 0:
        raise InputError("a document needs at least one item", field="items")
    check_meta_encodable(meta)
    salts = leaf_salts(salt_key, count)
    leaves: list[bytes] = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        if n >= count:
            raise InputError(f"more than the {count} items announced", field="items")
        if item.id in seen:
            raise InputError(f"duplicate item id {item.id!r}", field=f"items[{n}].id")
        seen.add(item.id)
        leaves.append(declared_leaf(n, salts[n], item))
    if len(leaves) != count:
        raise InputError(f"{len(leaves)} items, {count} announced", field="items")
    tree = merkle.MerkleTree.from_leaves(leaves)
    header = DocumentHeader(type=doc_type, id=doc_id, issuer=issuer.party,
                            issuer_key=issuer.key_id, recipient=recipient, created=created,
                            count=count, root=tree.root, meta=meta)
    return _sign(issuer, header, tuple(leaves), tree)


def sign_ack(issuer: PrivateIdentity, *, answers: SignedHeader, ack_id: str, created: int,
             items: Sequence[AckItem], declared_leaf_hashes: Mapping[str, bytes],
             salt_key: bytes, meta: Mapping[str, Any] | None = None,
             undeclared_known: Collection[str] = ()) -> SignedDocument:
    """Acknowledge items of ``answers``. Each item names the leaf hash of the declared entry
    it acknowledges, except items that were never declared, which by definition have none:
    those enter as RECEIVED_UNDECLARED and, once in ``undeclared_known``, may change status."""
    if not items:
        raise InputError("an acknowledgement needs at least one item", field="items")
    _unique_ids((i.id for i in items), "items")
    leaves = []
    salts = leaf_salts(salt_key, len(items))
    for n, item in enumerate(items):
        leaf = declared_leaf_hashes.get(item.id)
        if item.status == "RECEIVED_UNDECLARED":
            if leaf is not None:
                raise InputError(f"item {item.id!r} was declared; RECEIVED_UNDECLARED is for "
                                 "items that were not", field=f"items[{n}].status")
        elif leaf is None and item.id not in undeclared_known:
            raise InputError(f"item {item.id!r} is not in document {answers.header.id}",
                             field=f"items[{n}].id")
        leaves.append(encode_ack_entry(n, salts[n], item, leaf))
    tree = merkle.MerkleTree.from_leaves(leaves)
    header = DocumentHeader(type=ACK, id=ack_id, issuer=issuer.party, issuer_key=issuer.key_id,
                            recipient=answers.header.issuer, created=created, count=len(leaves),
                            root=tree.root, meta=meta or {}, answers=answers.digest,
                            answers_id=answers.header.id)
    return _sign(issuer, header, tuple(leaves), tree)
