"""Core benchmark: seal/open, build and verify for one large manifest, next to the cost floor.

    .venv/bin/python bench/core.py                 # 100,000 entries, median of 5 runs
    .venv/bin/python bench/core.py --json          # the same figures as JSON
    .venv/bin/python bench/core.py --items 10000 --repeat 3
    .venv/bin/python bench/core.py --suites 2      # one key suite only (default: 1 and 2)

Every figure is measured for each key suite (PROTOCOL.md §3.1), and the two are printed side by
side with their costs: envelope overhead, sign and verify per document, per-item receipt size.

Pure core only (no daemon, no network, no database). All records are synthetic. See
bench/README.md for what each figure means. This is a measurement, never a test: nothing here
fails a build.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.core import codec, envelope, merkle
from bridge.core.crypto import suites
from bridge.core.crypto.identity import TAG_DOCUMENT, Keyring, PrivateIdentity
from bridge.core.documents import AckItem, Item, SignedDocument, sign_ack, sign_document

try:
    from bridge.core import receipts
except ImportError:  # receipts not built yet: measure its building blocks instead
    receipts = None  # type: ignore[assignment]

# Targets from the issue.
TARGET_SEAL_S = 0.5
TARGET_OPEN_S = 0.5
TARGET_BUILD_S = 0.5
TARGET_VERIFY_ITEMS_PER_S = 20_000

# ---------------------------------------------------------------- synthetic records

SURNAMES = ("Aldren", "Borovik", "Castellan", "Dravec", "Esterhaz", "Fenwick", "Gorodin",
            "Halloran", "Ivanek", "Jarosz", "Kestrel", "Lindqvist", "Moravec", "Nolander")
FIRST = ("Adrian", "Bohdan", "Cyril", "Danylo", "Emil", "Filip", "Gleb", "Hryhorii", "Ivo",
         "Jaromir", "Kyrylo", "Lev", "Marek", "Nazar", "Oleksa", "Pavlo")
RANKS = ("private", "senior private", "corporal", "junior sergeant", "sergeant", "lieutenant")
HEALTH = ("fit", "wounded, stable", "seriously ill", "heavily wounded")
STATUSES = ("RECEIVED", "IDENTITY_CONFIRMED", "PENDING_IDENTIFICATION", "RECEIVED",
            "NOT_RECEIVED", "RECEIVED", "DISPUTED", "RECEIVED")


def record(i: int) -> dict[str, Any]:
    """One manifest item for a prisoner of war (GCIII art. 17 fields), about 200 bytes."""
    return {
        "id": f"ITM-2026-03-{i:06d}",
        "kind": "person",
        "category": "pow",
        "roster_record": f"POW-B-{i * 7919 % 1_000_000:06d}",
        "surname": SURNAMES[i % len(SURNAMES)],
        "first_names": f"{FIRST[i % len(FIRST)]} {FIRST[(i // 16) % len(FIRST)]}",
        "rank": RANKS[i % len(RANKS)],
        "date_of_birth": f"{1975 + i % 30}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "service_number": f"SN{i * 104_729 % 100_000_000:08d}",
        "health": HEALTH[i % len(HEALTH)],
        "seals": [f"SEAL-{i:07d}"],
    }


def make_items(records: list[dict[str, Any]]) -> list[Item]:
    return [Item(id=r["id"], data={k: v for k, v in r.items() if k != "id"}) for r in records]


# ---------------------------------------------------------------- timing


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``fn`` over ``repeat`` runs (time.perf_counter), and its last result."""
    times = []
    result = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def per_signature(alpha: PrivateIdentity, header: bytes, rounds: int = 200) -> dict[str, float]:
    """Sign and verify of one document header, in microseconds (median of five batches)."""
    signature = alpha.sign(TAG_DOCUMENT, header)
    t_sign, _ = median_time(lambda: [alpha.sign(TAG_DOCUMENT, header) for _ in range(rounds)], 5)
    t_verify, _ = median_time(
        lambda: [alpha.public.verify(TAG_DOCUMENT, header, signature) for _ in range(rounds)], 5)
    return {"sign_us": t_sign / rounds * 1e6, "verify_us": t_verify / rounds * 1e6,
            "signature_bytes": len(signature)}


def envelope_overhead(alpha: PrivateIdentity, beta: PrivateIdentity) -> int:
    """Bytes an envelope adds to its payload: header, HPKE enc and tag, signature, framing."""
    payload = bytes(1000)
    env = envelope.seal(alpha, beta.public, message_id=os.urandom(16), seq=1,
                        prev=envelope.ZERO_HASH, sent_at=1_767_225_600_000, kind="chunk",
                        payload=payload)
    return len(env.data) - len(payload)


def run(n: int, repeat: int, suite: suites.Suite = suites.SUITE_1) -> dict[str, Any]:
    records = [record(i) for i in range(n)]
    items = make_items(records)
    alpha = PrivateIdentity.generate("alpha", created=1_767_225_600_000, suite=suite)
    beta = PrivateIdentity.generate("beta", created=1_767_225_600_000, suite=suite)
    keys = Keyring.of([alpha.public, beta.public])
    out: dict[str, Any] = {"items": n, "repeat": repeat, "python": platform.python_version(),
                           "machine": platform.machine(), "receipts_module": receipts is not None,
                           "suite": suite.number,
                           "envelope_overhead_bytes": envelope_overhead(alpha, beta)}

    # ---- the floor: plain msgpack + SHA-256 + ChaCha20-Poly1305 over the same records
    aead = ChaCha20Poly1305(os.urandom(32))
    nonce = os.urandom(12)
    packed = msgpack.packb(records, use_bin_type=True)
    t_pack, _ = median_time(lambda: msgpack.packb(records, use_bin_type=True), repeat)
    t_sha, _ = median_time(lambda: hashlib.sha256(packed).digest(), repeat)
    t_aead, _ = median_time(lambda: aead.encrypt(nonce, packed, None), repeat)
    floor = t_pack + t_sha + t_aead
    out["record_bytes_avg"] = len(packed) / n
    out["records_mb"] = len(packed) / 1e6
    out["floor"] = {"pack_s": t_pack, "sha256_s": t_sha, "chacha20poly1305_s": t_aead,
                    "total_s": floor}

    # ---- (b) build: a signed n-entry document with its Merkle tree
    def build() -> SignedDocument:
        return sign_document(alpha, doc_type="manifest", doc_id="M-2026-0003",
                             recipient="beta", created=1_767_225_600_000,
                             meta={"agreement": "AGR-2026-01", "batch": 3}, items=items,
                             salt_key=os.urandom(32))

    t_build, doc = median_time(build, repeat)

    # ---- (a) seal and open one envelope carrying the whole document
    def encode_doc() -> bytes:
        return codec.encode(doc.to_map())

    t_encode, payload = median_time(encode_doc, repeat)

    def seal_only() -> envelope.Envelope:
        return envelope.seal(alpha, beta.public, message_id=os.urandom(16), seq=1,
                             prev=envelope.ZERO_HASH, sent_at=1_767_225_600_000,
                             kind="document", payload=payload)

    t_seal_only, env = median_time(seal_only, repeat)

    def open_only() -> envelope.OpenedEnvelope:
        return envelope.open_envelope(beta, keys, env.data)

    t_open_only, opened = median_time(open_only, repeat)
    assert opened.payload == payload

    def parse_doc() -> SignedDocument:
        received = SignedDocument.parse(codec.decode(opened.payload))
        received.check(keys)
        return received

    t_parse, received = median_time(parse_doc, repeat)
    assert received.digest == doc.digest

    out["document_mb"] = len(payload) / 1e6
    out["envelope_mb"] = len(env.data) / 1e6
    out["seal"] = {"encode_s": t_encode, "seal_s": t_seal_only, "total_s": t_encode + t_seal_only}
    out["open"] = {"open_s": t_open_only, "decode_parse_check_s": t_parse,
                   "total_s": t_open_only + t_parse}
    out["build"] = {"sign_document_s": t_build}
    out["per_document"] = per_signature(alpha, doc.signed.data)

    # ---- (c) verify every item's receipt of one acknowledged manifest
    leaf_of = {e.item_id: merkle.leaf_hash(doc.leaves[e.index]) for e in doc.declared_entries()}
    ack_items = [AckItem(id=r["id"], status=STATUSES[i % len(STATUSES)],
                         reason="name differs from roster" if i % 8 == 6 else None)
                 for i, r in enumerate(records)]

    def build_ack() -> SignedDocument:
        return sign_ack(beta, answers=doc.signed, ack_id="A-2026-0003",
                        created=1_767_225_700_000, items=ack_items,
                        declared_leaf_hashes=leaf_of, salt_key=os.urandom(32))

    t_ack, ack = median_time(build_ack, repeat)
    verify: dict[str, Any] = {"sign_ack_s": t_ack}
    if receipts is not None:
        t_bundle, bundle = median_time(lambda: receipts.build_document_receipt(doc, [ack]),
                                       repeat)

        def check_bundle() -> Any:
            result = receipts.check_receipt(bundle, keys)
            assert result.ok, result.diagnosis
            assert result.item_count == n
            return result

        t_check, _ = median_time(check_bundle, repeat)
        verify.update({"method": "receipts.check_receipt(whole-document bundle)",
                       "bundle_mb": len(bundle) / 1e6, "build_bundle_s": t_bundle,
                       "check_s": t_check, "items_per_s": n / t_check})
        # Per-item bundles, on a sample: each checks two signatures and two proofs.
        sample = min(n, 2000)
        per_item = receipts.build_item_receipts(doc, [ack])
        chosen = [per_item[r["id"]] for r in records[:: max(1, n // sample)]][:sample]

        def check_items() -> None:
            for b in chosen:
                assert receipts.check_receipt(b, keys).ok

        t_items, _ = median_time(check_items, repeat)
        verify["per_item"] = {"sample": len(chosen), "check_s": t_items,
                              "items_per_s": len(chosen) / t_items,
                              "bundle_bytes_avg": sum(map(len, chosen)) / len(chosen)}
    else:
        # TODO(receipts): replace with receipts.check_receipt once bridge.core.receipts exists.
        ack_bytes = codec.encode(ack.to_map())
        doc_bytes = payload

        def check_parts() -> None:
            d = SignedDocument.parse(codec.decode(doc_bytes))
            d.check(keys)
            a = SignedDocument.parse(codec.decode(ack_bytes))
            a.check(keys)
            entries = a.ack_entries()
            assert len(entries) == n

        t_check, _ = median_time(check_parts, repeat)
        verify.update({"method": "SignedDocument.parse+check (doc and ack) + ack_entries()",
                       "check_s": t_check, "items_per_s": n / t_check})
    out["verify"] = verify

    out["targets"] = {
        "seal": {"value_s": out["seal"]["total_s"], "target_s": TARGET_SEAL_S,
                 "pass": out["seal"]["total_s"] < TARGET_SEAL_S},
        "open": {"value_s": out["open"]["total_s"], "target_s": TARGET_OPEN_S,
                 "pass": out["open"]["total_s"] < TARGET_OPEN_S},
        "build": {"value_s": t_build, "target_s": TARGET_BUILD_S,
                  "pass": t_build < TARGET_BUILD_S},
        "verify": {"value_items_per_s": verify["items_per_s"],
                   "target_items_per_s": TARGET_VERIFY_ITEMS_PER_S,
                   "pass": verify["items_per_s"] >= TARGET_VERIFY_ITEMS_PER_S},
    }
    return out


# ---------------------------------------------------------------- report


def report(r: dict[str, Any]) -> str:
    floor = r["floor"]["total_s"]
    n = r["items"]

    def ratio(t: float) -> str:
        return f"{t / floor:5.1f}x floor"

    def verdict(name: str) -> str:
        return "PASS" if r["targets"][name]["pass"] else "MISS"

    f = r["floor"]
    lines = [
        f"Bridge core benchmark: {n:,} entries, {r['record_bytes_avg']:.0f} B per record "
        f"({r['records_mb']:.1f} MB), median of {r['repeat']}, Python {r['python']} "
        f"({r['machine']})",
        f"floor  msgpack.packb + sha256 + ChaCha20-Poly1305 over the same records: "
        f"{floor:.3f} s  (pack {f['pack_s']:.3f}, sha256 {f['sha256_s']:.3f}, "
        f"aead {f['chacha20poly1305_s']:.3f})",
        "",
        f"{'figure':44} {'median':>14} {'vs floor':>14}  {'target':>18}  result",
    ]

    def row(label: str, seconds: float, target: str = "", result: str = "") -> None:
        lines.append(f"{label:44} {seconds:12.3f} s {ratio(seconds):>14}  {target:>18}  {result}")

    def sub(label: str, seconds: float) -> None:
        lines.append(f"  {label:42} {seconds:12.3f} s {ratio(seconds):>14}")

    s, o, v = r["seal"], r["open"], r["verify"]
    row("(a) seal: encode document + envelope.seal", s["total_s"], f"< {TARGET_SEAL_S} s",
        verdict("seal"))
    sub("codec.encode(doc.to_map())", s["encode_s"])
    sub(f"envelope.seal ({r['envelope_mb']:.1f} MB envelope)", s["seal_s"])
    row("(a) open: open_envelope + decode + check", o["total_s"], f"< {TARGET_OPEN_S} s",
        verdict("open"))
    sub("envelope.open_envelope", o["open_s"])
    sub("decode + SignedDocument.parse + check", o["decode_parse_check_s"])
    row("(b) build: sign_document (entries, Merkle)", r["build"]["sign_document_s"],
        f"< {TARGET_BUILD_S} s", verdict("build"))
    label = "(c) verify: " + ("whole-document receipt" if r["receipts_module"]
                              else "parse+check doc and ack")
    lines.append(f"{label:44} {v['items_per_s']:10,.0f} it/s "
                 f"{ratio(v['check_s']):>14}  {'>= ' + format(TARGET_VERIFY_ITEMS_PER_S, ','):>13}"
                 f" it/s  {verdict('verify')}")
    sub(f"check time for all {n:,} items", v["check_s"])
    if "build_bundle_s" in v:
        sub(f"build_document_receipt ({v['bundle_mb']:.1f} MB bundle)", v["build_bundle_s"])
    sub("sign_ack of all items", v["sign_ack_s"])
    if "per_item" in v:
        p = v["per_item"]
        lines.append(f"  {'per-item bundles (sample of ' + str(p['sample']) + ')':42} "
                     f"{p['items_per_s']:10,.0f} it/s  (avg {p['bundle_bytes_avg']:,.0f} B each;"
                     " informational)")
    if not r["receipts_module"]:
        lines.append("  (bridge.core.receipts missing: (c) measures document+ack parse/check only)")
    return "\n".join(lines)


def side_by_side(results: list[dict[str, Any]]) -> str:
    """The suites' costs in columns, and the last suite's against the first's."""
    rows: list[tuple[str, Callable[[dict[str, Any]], float], str]] = [
        ("envelope overhead (B, 1,000-byte payload)", lambda r: r["envelope_overhead_bytes"],
         ",.0f"),
        ("sign one document header (us)", lambda r: r["per_document"]["sign_us"], ",.0f"),
        ("verify one document header (us)", lambda r: r["per_document"]["verify_us"], ",.0f"),
        ("signature (B)", lambda r: r["per_document"]["signature_bytes"], ",.0f"),
        ("per-item receipt (B, average)",
         lambda r: r["verify"].get("per_item", {}).get("bundle_bytes_avg", 0.0), ",.0f"),
        ("seal: encode + envelope.seal (s)", lambda r: r["seal"]["total_s"], ".3f"),
        ("open: open_envelope + decode + check (s)", lambda r: r["open"]["total_s"], ".3f"),
        ("build: sign_document (s)", lambda r: r["build"]["sign_document_s"], ".3f"),
        ("verify whole-document receipt (items/s)", lambda r: r["verify"]["items_per_s"], ",.0f"),
    ]
    head = "".join(f"{'suite ' + str(r['suite']):>14}" for r in results)
    lines = [f"{'suites side by side (' + format(results[0]['items'], ',') + ' entries)':44}"
             f"{head}{'ratio':>10}"]
    for label, get, fmt in rows:
        values = [get(r) for r in results]
        ratio = f"{values[-1] / values[0]:9.2f}x" if values[0] else ""
        lines.append(f"{label:44}" + "".join(f"{v:>14{fmt}}" for v in values) + f"{ratio:>10}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="entries (default 100,000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--suites", default="1,2", help="key suites to measure (default 1,2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    chosen = [suites.by_number(int(x)) for x in args.suites.split(",")]
    if None in chosen:
        parser.error(f"--suites: each of {sorted(s.number for s in suites.SUITES.values())}")
    results = [run(args.items, args.repeat, s) for s in chosen if s is not None]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"== suite {r['suite']} ==")
        print(report(r))
        print()
    if len(results) > 1:
        print(side_by_side(results))


if __name__ == "__main__":
    main()
