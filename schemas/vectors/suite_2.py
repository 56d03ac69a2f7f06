"""Suite-2 test vectors (PROTOCOL.md §9.2), written by ``generate.py`` under ``suite-2/``.

The same synthetic exchange as suite 1's vectors, signed and sealed in suite 2 (Ed25519 and
ML-DSA-65 signatures, X-Wing HPKE), and the forgeries only a hybrid has: an Ed25519 signature
alone, an ML-DSA-65 signature alone, the two halves of two signatures swapped, a suite-1
signature for a suite-2 key. Each is refused, for the reason its ``expected.json`` says.

ML-DSA signing is hedged (FIPS 204 §3.4) and HPKE draws an ephemeral key for every seal, so no
suite-2 signature or envelope can be made again byte for byte. Its keys can (fixed seeds), and
so can every ``expected.json``, sidecar and README: ``generate.py`` writes this folder when it is
missing (or with ``--suite-2``), and ``--check`` compares those files with a fresh generation
byte for byte and then checks every committed vector against them with the implementation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from bridge.core import codec, envelope
from bridge.core.crypto import suites
from bridge.core.crypto.identity import TAG_DOCUMENT, TAG_ENVELOPE, Keyring, PrivateIdentity
from bridge.core.errors import PeerError, VerificationError

FOLDER = "suite-2"
ED = suites.ED25519_SIGNATURE_SIZE
DETERMINISTIC_SUFFIXES = (".json", ".md")

README = """\
# Suite-2 test keys: public knowledge, never use them for anything real

Suite-2 (post-quantum) identities derived from fixed seed strings by
`schemas/vectors/generate.py`, as the suite-1 keys in `../../keys` are. Anyone can recompute the
private keys; the `-test` in every party name and file name says so. The seeds, and so the
keys, statements and fingerprints (`expected.json`), are the same on every run; the
self-signatures are not (ML-DSA signing is hedged), so the `.pub` files are written once.

- `alpha-test.pub`, `alpha-test.key`: the sender of the synthetic manifest.
- `beta-test.pub`, `beta-test.key`: the receiver, who acknowledges it.
- `mallory-test.pub`, `mallory-test.key`: a key nobody pins; it signs forgeries.

After a checkout, `chmod 600 schemas/vectors/suite-2/keys/*.key` before a Bridge command that
refuses looser permissions loads one.
"""


def _resigned(value: dict[str, Any], signature: bytes) -> dict[str, Any]:
    return {**value, "sig": signature}


def receipt_forgeries(g: ModuleType, w: Any, w1: Any) -> list[Any]:
    """Per-item receipts of REM-TEST-0001 whose manifest or acknowledgement signature is one
    a forger of one half could make (PROTOCOL.md §3.1)."""
    receipt = codec.decode(g.build_item_receipt(w.manifest, "REM-TEST-0001", list(w.acks)))
    man, other = w.manifest.signed.signature, w.reissue.signed.signature
    ack = w.acks[0].signed.signature
    suite_1 = w1.alpha.sign(TAG_DOCUMENT, w.manifest.signed.data)

    def with_document_sig(signature: bytes) -> bytes:
        return codec.encode({**receipt, "document": _resigned(receipt["document"], signature)})

    def with_ack_sig(signature: bytes) -> bytes:
        acks = [{**receipt["acks"][0], "ack": _resigned(receipt["acks"][0]["ack"], signature)},
                *receipt["acks"][1:]]
        return codec.encode({**receipt, "acks": acks})

    cases = [
        ("manifest-ed25519-only", with_document_sig(man[:ED]),
         "the manifest's Ed25519 half alone: what a quantum forger of Ed25519 can make"),
        ("manifest-ml-dsa-only", with_document_sig(man[ED:]),
         "the manifest's ML-DSA-65 half alone"),
        ("manifest-halves-swapped", with_document_sig(man[:ED] + other[ED:]),
         "the manifest's Ed25519 half with the ML-DSA-65 half of the reissue's signature"),
        ("manifest-halves-reversed", with_document_sig(man[ED:] + man[:ED]),
         "both halves, in the wrong order"),
        ("manifest-suite-1-signature", with_document_sig(suite_1),
         "a suite-1 signature (alpha-test's suite-1 key) for the suite-2 key the header names"),
        ("ack-ed25519-only", with_ack_sig(ack[:ED]),
         "the first acknowledgement's Ed25519 half alone"),
        ("ack-ml-dsa-only", with_ack_sig(ack[ED:]),
         "the first acknowledgement's ML-DSA-65 half alone"),
    ]
    return [g.Vector(name=f"hybrid-{name}", data=data, ok=False, tries=tries,
                     reason="bad_signature") for name, data, tries in cases]


def transcript_forgeries(g: ModuleType, w: Any) -> list[Any]:
    """alpha-test's transcript with one envelope signature or one transport receipt (beta's
    answer) cut to a single half."""
    groups = g.transcript_vectors(w)
    whole = next(v.data for _, vs in groups for v in vs if v.ok)

    def edit(change: Callable[[dict[str, Any]], None]) -> bytes:
        return bytes(g.transcript_edit(whole, change))

    def cut_sig(half: slice) -> Callable[[dict[str, Any]], None]:
        def change(v: dict[str, Any]) -> None:
            env = v["links"][0]["envelopes"][0]
            env["sig"] = env["sig"][half]
        return change

    def cut_receipt(half: slice) -> Callable[[dict[str, Any]], None]:
        def change(v: dict[str, Any]) -> None:
            env = v["links"][0]["envelopes"][0]
            outer = codec.decode(env["receipt"], codec.SMALL_LIMITS)
            env["receipt"] = codec.encode({**outer, "s": outer["s"][half]})
        return change

    first, rest = slice(0, ED), slice(ED, None)
    return [
        g.case("hybrid-envelope-ed25519-only", edit(cut_sig(first)), False, "bad_signature",
               "alpha-test's first envelope signed by its Ed25519 half alone"),
        g.case("hybrid-envelope-ml-dsa-only", edit(cut_sig(rest)), False, "bad_signature",
               "alpha-test's first envelope signed by its ML-DSA-65 half alone"),
        g.case("hybrid-transport-receipt-ed25519-only", edit(cut_receipt(first)), False,
               "bad_signature", "beta-test's receipt for it with the Ed25519 half alone"),
        g.case("hybrid-transport-receipt-ml-dsa-only", edit(cut_receipt(rest)), False,
               "bad_signature", "beta-test's receipt for it with the ML-DSA-65 half alone"),
    ]


def identity_forgeries(w: Any, w1: Any) -> list[tuple[str, bytes, str, str]]:
    """alpha-test's suite-2 identity file with its self-signature forged: (name, bytes, what
    it tries, reason)."""
    good = w.alpha.public.to_json()
    sig = w.alpha.public.signature
    other = w.beta.public.signature

    def signed(signature: bytes) -> bytes:
        import base64

        text = base64.b64encode(signature).decode("ascii")
        return (json.dumps({**good, "signature": text}, indent=2) + "\n").encode()

    return [
        ("self-signature-ed25519-only", signed(sig[:ED]), "the Ed25519 half alone",
         "bad_signature"),
        ("self-signature-ml-dsa-only", signed(sig[ED:]), "the ML-DSA-65 half alone",
         "bad_signature"),
        ("self-signature-halves-swapped", signed(sig[:ED] + other[ED:]),
         "its Ed25519 half with the ML-DSA-65 half of beta-test's self-signature",
         "bad_signature"),
        ("self-signature-suite-1", signed(w1.alpha.public.signature),
         "the self-signature of alpha-test's suite-1 identity", "bad_signature"),
    ]


def envelope_forgeries(w: Any, root: Path) -> list[tuple[str, bytes, str, str]]:
    """The first committed envelope with its signature cut or mixed."""
    parts = envelope.parse((root / "envelopes" / "001-manifest.env").read_bytes())
    _, header_bytes, ciphertext, sig = parts
    other = envelope.parse((root / "envelopes" / "002-test-text.env").read_bytes())[3]
    body = envelope.signed_body(header_bytes, suites.sha256(ciphertext))
    suite_1 = make_suite_1_signature(w, body)

    def wire(signature: bytes) -> bytes:
        return envelope.wire_bytes(header_bytes, ciphertext, signature)

    return [
        ("ed25519-only", wire(sig[:ED]), "the Ed25519 half alone: a downgrade to suite 1",
         "suite_downgrade"),
        ("suite-1-signature", wire(suite_1), "a suite-1 signature by another Ed25519 key",
         "suite_downgrade"),
        ("ml-dsa-only", wire(sig[ED:]), "the ML-DSA-65 half alone", "unauthenticated"),
        ("halves-swapped", wire(sig[:ED] + other[ED:]),
         "its Ed25519 half with the ML-DSA-65 half of envelope 002's signature",
         "unauthenticated"),
    ]


def make_suite_1_signature(w: Any, body: bytes) -> bytes:
    signer = PrivateIdentity.generate("alpha-test", created=w.alpha.public.created,
                                      random_bytes=lambda n: bytes(n))
    return signer.sign(TAG_ENVELOPE, body)


def _open_reason(w: Any, data: bytes) -> str | None:
    try:
        envelope.open_envelope(w.beta, Keyring.of([w.alpha.public]), data)
    except PeerError as err:
        return err.reason
    return None


def _identity_reason(data: bytes) -> str | None:
    from bridge.core.crypto.identity import PublicIdentity

    try:
        PublicIdentity.loads(data)
    except VerificationError as err:
        return err.reason
    return None


def write_invalid(folder: Path, cases: list[tuple[str, bytes, str, str]], suffix: str,
                  judge: Callable[[bytes], str | None], g: ModuleType) -> None:
    """Each case, after the implementation refused it for its reason, and ``expected.json``."""
    listed = []
    for name, data, tries, reason in cases:
        got = judge(data)
        if got != reason:
            raise SystemExit(f"{folder.name}/{name}{suffix}: reason {got}, not {reason}")
        g.write_bytes(folder / f"{name}{suffix}", data)
        listed.append({"file": f"{name}{suffix}", "tries": tries, "reason": reason})
    g.write_bytes(folder / "expected.json", g.dump_json({"cases": listed}))


def write_keys(root: Path, g: ModuleType, w: Any, w1: Any) -> None:
    keys = root / "keys"
    for ident in (w.alpha, w.beta, w.mallory):
        g.write_bytes(keys / f"{ident.party}.pub", ident.public.dumps().encode())
        g.write_bytes(keys / f"{ident.party}.key", ident.dumps().encode(), private=True)
    g.write_bytes(keys / "README.md", README.encode())
    g.write_bytes(keys / "expected.json", g.dump_json({
        "suite": list(suites.SUITE_2.id),
        "fingerprints": {i.party: i.public.fingerprint for i in (w.alpha, w.beta, w.mallory)}}))
    write_invalid(keys / "invalid", identity_forgeries(w, w1), ".pub", _identity_reason, g)


def write(out: Path, g: ModuleType) -> None:
    """The whole suite-2 folder under ``out``, every vector checked as it is written."""
    root = out / FOLDER
    w, w1 = g.make_world(suites.SUITE_2), g.make_world()
    write_keys(root, g, w, w1)
    g.write_checked(root / "receipts", ".receipt",
                    (("valid", g.valid_vectors(w)),
                     ("invalid", [*g.invalid_vectors(w), *receipt_forgeries(g, w, w1)])),
                    g.check_receipt, g.receipt_details, w)
    g.write_checked(root / "transcripts", ".transcript", transcript_groups(g, w),
                    g.check_transcript, g.transcript_details, w)
    # A suite-1 beta-test moves to suite 2 (PROTOCOL.md §4.5): suite 1's keys, a suite-2 next.
    g.write_key_history(root, w1, next_suite=suites.SUITE_2, keys_dir="../../keys")
    g.write_sidecars(root, w)
    g.seal_envelopes(root, w)
    write_invalid(root / "envelopes" / "invalid", envelope_forgeries(w, root), ".env",
                  lambda data: _open_reason(w, data), g)


def transcript_groups(g: ModuleType, w: Any) -> list[tuple[str, list[Any]]]:
    groups: list[tuple[str, list[Any]]] = g.transcript_vectors(w)
    return [*groups, ("invalid-hybrid", transcript_forgeries(g, w))]


# ---------------------------------------------------------------- --check


def compare(committed: Path, fresh: Path) -> list[str]:
    """The same files, and the deterministic ones byte for byte."""
    left = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
    right = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    problems = [f"{FOLDER}/{p}: committed but no longer generated" for p in sorted(left - right)]
    problems += [f"{FOLDER}/{p}: generated but not committed" for p in sorted(right - left)]
    for p in sorted(left & right):
        if p.suffix not in DETERMINISTIC_SUFFIXES:
            continue
        mine, theirs = (committed / p).read_bytes(), (fresh / p).read_bytes()
        if p.parent == Path("envelopes"):  # a sidecar: its payload holds a signed document
            mine, theirs = _without_payload(mine), _without_payload(theirs)
        if mine != theirs:
            problems.append(f"{FOLDER}/{p}: differs from a fresh generation")
    return problems


def _without_payload(sidecar: bytes) -> bytes:
    value = json.loads(sidecar)
    return json.dumps({k: v for k, v in value.items() if not k.startswith("payload_")}).encode()


def check_sidecars(root: Path, w: Any) -> list[str]:
    """Open every committed envelope with beta-test's key; compare it with its committed
    sidecar (whose payload fields are its own: the manifest inside is signed afresh by each
    generation)."""
    import base64
    import hashlib

    problems = []
    for sidecar in sorted((root / "envelopes").glob("*.json")):
        spec = json.loads(sidecar.read_text())
        data = (root / "envelopes" / spec["file"]).read_bytes()
        try:
            opened = envelope.open_envelope(w.beta, Keyring.of([w.alpha.public]), data)
        except PeerError as exc:
            problems.append(f"{FOLDER}/envelopes/{spec['file']}: does not open: {exc}")
            continue
        h = opened.header
        prev = spec["prev"]
        want_prev = prev if isinstance(prev, str) else envelope.envelope_hash(
            (root / "envelopes" / prev["sha256_of"]).read_bytes()).hex()
        got = {"from": h.sender, "from_key": h.sender_key.hex(), "to": h.recipient,
               "to_key": h.recipient_key.hex(), "id": h.message_id.hex(), "seq": h.seq,
               "prev": h.prev.hex(), "at": h.sent_at, "kind": h.kind, "suite": list(h.suite),
               "payload_sha256": hashlib.sha256(opened.payload).hexdigest()}
        payload = base64.b64decode(spec["payload_base64"])
        if got != {k: spec[k] for k in got} | {"prev": want_prev} or hashlib.sha256(
                payload).hexdigest() != spec["payload_sha256"]:
            problems.append(f"{FOLDER}/envelopes/{spec['file']}: differs from its sidecar")
    return problems


def check_keys(root: Path, w: Any) -> list[str]:
    from bridge.core.crypto.identity import PublicIdentity

    problems = []
    keys = root / "keys"
    want = json.loads((keys / "expected.json").read_text())["fingerprints"]
    for ident in (w.alpha, w.beta, w.mallory):
        try:
            public = PublicIdentity.loads((keys / f"{ident.party}.pub").read_bytes())
            private = PrivateIdentity.loads((keys / f"{ident.party}.key").read_bytes())
        except Exception as exc:  # report every problem, do not stop at the first
            problems.append(f"{FOLDER}/keys/{ident.party}: does not load: {exc}")
            continue
        if not public.fingerprint == private.public.fingerprint == want[ident.party]:
            problems.append(f"{FOLDER}/keys/{ident.party}: fingerprint differs")
    return problems + check_invalid(keys / "invalid", _identity_reason)


def check_invalid(folder: Path, judge: Callable[[bytes], str | None]) -> list[str]:
    cases = json.loads((folder / "expected.json").read_text())["cases"]
    return [f"{FOLDER}/{folder.name}/{c['file']}: not refused as {c['reason']}"
            for c in cases if judge((folder / c["file"]).read_bytes()) != c["reason"]]


def check_checked(folder: Path, check: Callable[[bytes, Keyring], Any],
                  details: Callable[[Any], dict[str, Any]], keys: Keyring) -> list[str]:
    """Each vector of ``expected.json`` judged now as the record says."""
    problems = []
    for record in json.loads((folder / "expected.json").read_text())["vectors"]:
        result = check((folder / record["file"]).read_bytes(), keys)
        got = {"file": record["file"], "ok": result.ok, **details(result)}
        if not result.ok:
            got["reason"] = result.reason
        if got != {k: v for k, v in record.items() if k != "tries"}:
            problems.append(f"{FOLDER}/{folder.name}/{record['file']}: judged {got}")
    return problems


def check(out: Path, g: ModuleType, fresh: Path) -> list[str]:
    """Everything ``--check`` says of the committed suite-2 folder."""
    root = out / FOLDER
    if not root.is_dir():
        return [f"{FOLDER}: missing (run generate.py)"]
    write(fresh, g)
    problems = compare(root, fresh / FOLDER)
    if problems:
        return problems
    w = g.make_world(suites.SUITE_2)
    problems += check_keys(root, w)
    problems += check_checked(root / "receipts", g.check_receipt, g.receipt_details, w.keys)
    problems += check_checked(root / "transcripts", g.check_transcript, g.transcript_details,
                              w.keys)
    folder = root / "key-history"
    for case in json.loads((folder / "expected.json").read_text())["cases"]:
        if g.check_key_case(folder, case) != (case["ok"], case["reason"], case["caveats"]):
            problems.append(f"{FOLDER}/key-history/{case['file']} with {case['keys']}")
    problems += check_sidecars(root, w)
    problems += check_invalid(root / "envelopes" / "invalid", lambda d: _open_reason(w, d))
    return problems


__all__ = ["FOLDER", "check", "write"]
