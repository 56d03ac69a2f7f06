"""Identity and key files read strictly (PROTOCOL §4.3, §4.4): one spelling of each file.

A JSON ``true`` is ``== 1`` in Python (the trap of PROTOCOL §2.1), ``1.0`` too; json.loads
takes a byte-order mark, UTF-16 and UTF-32 from bytes and keeps the last of a repeated key;
``str.upper`` folds "ſ" to "S". Each of these let a file that no Bridge wrote be accepted, or
be read differently by another reader. Each case here is one rule.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.core.crypto import suites
from bridge.core.crypto.identity import (
    PrivateIdentity,
    PublicIdentity,
    normalise_fingerprint,
)
from bridge.core.errors import UsageError, VerificationError
from bridge.home.key_files import load_private, load_public

MAX_KEY_FILE_BYTES = 64 * 1024  # bridge.core.crypto.identity's, written out so the test predates it


def public_json(ident: PrivateIdentity, **changes: Any) -> dict[str, Any]:
    data = ident.public.to_json()
    data.update(changes)
    return data


def refused_public(text: str | bytes, match: str) -> None:
    with pytest.raises(VerificationError, match=match) as err:
        PublicIdentity.loads(text)
    assert err.value.reason == "not_identity"


def test_identity_file_with_bridge_identity_true_is_refused(alpha: PrivateIdentity) -> None:
    refused_public(json.dumps(public_json(alpha, bridge_identity=True)), "not a Bridge identity")


def test_identity_file_with_bridge_identity_1_0_is_refused(alpha: PrivateIdentity) -> None:
    refused_public(json.dumps(public_json(alpha, bridge_identity=1.0)), "not a Bridge identity")


def test_identity_file_with_a_byte_order_mark_is_refused(
        tmp_path: Path, alpha: PrivateIdentity) -> None:
    text = alpha.public.dumps()
    refused_public(b"\xef\xbb\xbf" + text.encode(), "byte-order mark")
    refused_public("\ufeff" + text, "byte-order mark")
    path = tmp_path / "alpha.pub"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    with pytest.raises(VerificationError, match="byte-order mark"):
        load_public(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_identity_file_in_utf16_or_utf32_is_refused(alpha: PrivateIdentity,
                                                    encoding: str) -> None:
    refused_public(alpha.public.dumps().encode(encoding), "not an identity file")


def test_identity_file_with_an_extra_key_is_refused(alpha: PrivateIdentity) -> None:
    """An extra key ("comment", "valid_until", ...) is refused, not ignored: a reader must
    not be told anything by a file that the signature does not cover."""
    refused_public(json.dumps(public_json(alpha, valid_until="2027-01-01")), "exactly the keys")


def test_identity_file_with_a_key_missing_is_refused(alpha: PrivateIdentity) -> None:
    data = public_json(alpha)
    del data["fingerprint"]
    refused_public(json.dumps(data), "exactly the keys")


def test_identity_file_with_a_key_given_twice_is_refused(
        alpha: PrivateIdentity, mallory: PrivateIdentity) -> None:
    """json.loads keeps the last "party"; a reader that keeps the first would see mallory."""
    text = alpha.public.dumps().replace('"party": "alpha"',
                                        '"party": "mallory", "party": "alpha"', 1)
    assert text.count('"party"') == 2
    refused_public(text, "given twice")


def test_identity_file_with_non_canonical_base64_is_refused(alpha: PrivateIdentity) -> None:
    """The last base64 character of the 64-byte signature carries 4 unused bits: setting one
    decodes to the same bytes, but is a second spelling of the file."""
    sig = public_json(alpha)["signature"]
    assert sig.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(sig[-3])
    other = sig[:-3] + alphabet[last ^ 1] + "=="
    assert base64.b64decode(other) == base64.b64decode(sig)
    refused_public(json.dumps(public_json(alpha, signature=other)), "not canonical base64")


def test_identity_file_larger_than_the_limit_is_refused_without_reading_it_whole(
        tmp_path: Path, alpha: PrivateIdentity) -> None:
    path = tmp_path / "big.pub"
    text = alpha.public.dumps()
    path.write_text(text[:-2] + " " * MAX_KEY_FILE_BYTES + "}\n")
    with pytest.raises(VerificationError, match="larger than"):
        load_public(path)


def test_fingerprint_normalisation_folds_ascii_only(alpha: PrivateIdentity) -> None:
    """§4.2: typed spacing and case are forgiven, in ASCII; "ſ".upper() == "S" and a
    no-break space are not a fingerprint's characters."""
    fp = alpha.public.fingerprint
    assert normalise_fingerprint(fp.lower().replace(" ", ":")) == fp.replace(" ", "")
    assert normalise_fingerprint(fp.replace(" ", "\u00a0")) != fp.replace(" ", "")
    assert "S" in fp
    assert normalise_fingerprint(fp.replace("S", "\u017f")) != fp.replace(" ", "")


# ---------------------------------------------------------------- private key files


def key_json(ident: PrivateIdentity, **changes: Any) -> str:
    data = json.loads(ident.dumps())
    data.update(changes)
    return json.dumps(data)


def refused_private(text: str | bytes, match: str, passphrase: bytes | None = None) -> None:
    with pytest.raises(UsageError, match=match):
        PrivateIdentity.loads(text, passphrase=passphrase)


def test_key_file_with_bridge_private_key_true_is_refused(alpha: PrivateIdentity) -> None:
    refused_private(key_json(alpha, bridge_private_key=True), "not a Bridge private key file")


def test_key_file_with_a_byte_order_mark_is_refused(
        tmp_path: Path, alpha: PrivateIdentity) -> None:
    refused_private(b"\xef\xbb\xbf" + alpha.dumps().encode(), "byte-order mark")
    path = tmp_path / "alpha.key"
    path.write_bytes(b"\xef\xbb\xbf" + alpha.dumps().encode())
    path.chmod(0o600)
    with pytest.raises(UsageError, match="byte-order mark"):
        load_private(path)


def test_key_file_with_an_extra_key_is_refused(alpha: PrivateIdentity) -> None:
    refused_private(key_json(alpha, note="laptop"), "exactly the keys")
    # kdf belongs to a sealed file only
    refused_private(key_json(alpha, kdf={"salt": "", "opslimit": 1, "memlimit": 8192}),
                    "exactly the keys")


def test_key_file_whose_party_differs_from_its_public_identity_is_refused(
        alpha: PrivateIdentity) -> None:
    refused_private(key_json(alpha, party="beta"), "party differs")


def test_key_file_whose_public_identity_has_version_true_is_refused(
        alpha: PrivateIdentity) -> None:
    refused_private(key_json(alpha, public=public_json(alpha, bridge_identity=True)),
                    "not a Bridge identity file")


@pytest.mark.usefixtures("fast_argon2")
@pytest.mark.parametrize("opslimit, memlimit", [
    (True, 8192),          # the bool trap: int(True) == 1 was accepted
    (1, 2 ** 40),          # a terabyte for Argon2id: refused, not attempted
    (10 ** 6, 8192),       # a million passes
    ("1", 8192),           # int("1") was accepted
])
def test_key_file_with_bad_argon2_parameters_is_refused_before_deriving(
        alpha: PrivateIdentity, opslimit: Any, memlimit: Any) -> None:
    sealed = json.loads(alpha.dumps(passphrase=b"pw"))
    sealed["kdf"].update(opslimit=opslimit, memlimit=memlimit)
    refused_private(json.dumps(sealed), "damaged passphrase parameters", passphrase=b"pw")


@pytest.mark.usefixtures("fast_argon2")
def test_sealed_key_file_still_loads(alpha: PrivateIdentity) -> None:
    loaded = PrivateIdentity.loads(alpha.dumps(passphrase=b"pw"), passphrase=b"pw")
    assert loaded.public == alpha.public


# Private key files sealed by 0.1.0 (the vectors' alpha-test key, PyNaCl's Argon2id and
# SecretBox, before the algorithms moved into bridge.core.crypto.suites): they keep opening.
FIXTURES = Path(__file__).parent / "fixtures"
VECTOR_KEYS = Path(__file__).parent.parent / "schemas" / "vectors" / "keys"
SEALED_0_1_0 = {"alpha-test-sealed-min-0.1.0.key": (1, 8192),
                "alpha-test-sealed-interactive-0.1.0.key": (2, 64 * 1024 * 1024)}
PASSPHRASE_0_1_0 = b"correct horse battery staple"


@pytest.mark.parametrize("name", sorted(SEALED_0_1_0))
def test_key_file_sealed_by_0_1_0_opens(name: str) -> None:
    text = (FIXTURES / name).read_bytes()
    doc = json.loads(text)
    assert (doc["kdf"]["opslimit"], doc["kdf"]["memlimit"]) == SEALED_0_1_0[name]
    unsealed = PrivateIdentity.loads((VECTOR_KEYS / "alpha-test.key").read_bytes())
    opened = PrivateIdentity.loads(text, passphrase=PASSPHRASE_0_1_0)
    assert opened.public == unsealed.public
    body = b"a body"
    assert opened.sign(b"bridge/v1/document", body) == unsealed.sign(b"bridge/v1/document", body)
    with pytest.raises(UsageError, match="wrong passphrase"):
        PrivateIdentity.loads(text, passphrase=b"Correct horse battery staple")


def test_key_file_sealed_now_is_byte_for_byte_what_0_1_0_wrote(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same salt, nonce and cost give the very file 0.1.0 wrote (PROTOCOL.md §4.4)."""
    fixture = FIXTURES / "alpha-test-sealed-min-0.1.0.key"
    doc = json.loads(fixture.read_bytes())
    salt_and_nonce = iter([base64.b64decode(doc["kdf"]["salt"]),
                           base64.b64decode(doc["secrets"])[:24]])
    monkeypatch.setattr(suites, "ARGON2ID_COST", SEALED_0_1_0[fixture.name])
    ident = PrivateIdentity.loads((VECTOR_KEYS / "alpha-test.key").read_bytes())
    text = ident.dumps(passphrase=PASSPHRASE_0_1_0, random_bytes=lambda n: next(salt_and_nonce))
    assert text == fixture.read_text()
