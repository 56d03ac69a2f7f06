"""Reconciliation between two real daemons, through the CLI in a subprocess: a roster and a
manifest (with meta.declared) from alpha, a manifest from beta, acknowledged with a mix of
statuses (three NOT_RECEIVED, one undeclared item); ``bridge reconcile`` on each side counts
what the items' statuses say, and each side's outbound is the other's inbound.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.client import ApiError
from bridge.daemon.pair import Node

from .conftest import wait_for

ROSTER_META = {"category": "pow", "agreement": "AGR-TEST-RECON"}
MANIFEST_META = {"category": "remains", "batch": 4, "declared": 10, "agreement": "AGR-TEST-RECON"}
BETA_META = {"category": "civilian_detainee", "batch": 1, "declared": 4, "quota": 4}


def pow_record(n: int) -> dict[str, Any]:
    """A synthetic prisoner-of-war roster record (invented, no real person)."""
    return {"id": f"P-{n:05d}", "category": "pow", "surname": f"Testname{n}",
            "first_names": "Sample Person", "rank": "private",
            "date_of_birth": f"{1980 + n}-01-1{n % 10}", "service_number": f"SN-{n:07d}"}


def bridge(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--home", str(node.home.path), "reconcile", *args],
        capture_output=True, text=True, timeout=120, check=False)


def reconcile_json(node: Node, *args: str) -> dict[str, Any]:
    done = bridge(node, "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    value: dict[str, Any] = json.loads(done.stdout)
    return value


def categories(report: dict[str, Any], side: str) -> dict[str | None, dict[str, Any]]:
    (s,) = [s for s in report["sides"] if s["side"] == side]
    return {c["category"]: c for c in s["categories"]}


def acked(node: Node, doc_id: str, direction: str) -> int:
    return int(node.client.document(doc_id, direction=direction)["items"]["acknowledged"])


def exchange(alpha: Node, beta: Node) -> None:
    a, b = alpha.client, beta.client
    a.submit_document("roster", "beta", [pow_record(n) for n in range(1, 7)], id="R-REC-1",
                      meta=ROSTER_META)
    # Two persons of the roster (items of their own id that name their roster record, their
    # category given per item) and eight remains packages (category from the manifest's meta).
    persons = [{"id": f"MI-{n}", "kind": "person", "category": "pow",
                "roster_record": f"P-{n:05d}"} for n in (1, 2)]
    bags = [{"id": f"BAG-{n}", "kind": "remains_package", "body_tag": f"BT-{n}"}
            for n in range(1, 9)]
    a.submit_document("manifest", "beta", persons + bags, id="M-REC-1", meta=MANIFEST_META)
    b.submit_document("manifest", "alpha",
                      [{"id": f"CD-{n}", "kind": "person", "surname": f"Testname{n}"}
                       for n in range(1, 5)], id="M-REC-B1", meta=BETA_META)

    def received(node: Node, doc_id: str) -> bool:
        try:
            return node.client.document(doc_id, direction="in")["state"] == "received"
        except ApiError as err:  # not arrived yet
            if err.code != "not_found":
                raise
            return False

    wait_for(lambda: received(beta, "R-REC-1") and received(beta, "M-REC-1")
             and received(alpha, "M-REC-B1"), what="all three documents received")
    b.acknowledge("R-REC-1", items=[
        *({"id": f"P-{n:05d}", "status": "RECEIVED"} for n in range(1, 5)),
        {"id": "P-00005", "status": "ALREADY_EXCHANGED", "reason": "released on 2026-02-01"},
    ])  # P-00006: no acknowledgement yet
    b.acknowledge("M-REC-1", items=[
        {"id": "MI-1", "status": "RECEIVED"},
        {"id": "MI-2", "status": "NOT_RECEIVED", "reason": "not on the bus"},
        *({"id": f"BAG-{n}", "status": "RECEIVED"} for n in (1, 2, 3, 8)),
        {"id": "BAG-4", "status": "DISPUTED", "reason": "<b>tag</b> differs"},
        {"id": "BAG-5", "status": "PENDING_IDENTIFICATION"},
        {"id": "BAG-6", "status": "NOT_RECEIVED", "reason": "counted 8 bags, 10 declared"},
        {"id": "BAG-7", "status": "NOT_RECEIVED", "reason": "counted 8 bags, 10 declared"},
        {"id": "X-UNDECLARED-1", "status": "RECEIVED_UNDECLARED", "reason": "not listed"},
    ])
    a.acknowledge("M-REC-B1", items=[
        *({"id": f"CD-{n}", "status": "RECEIVED"} for n in (1, 2, 3)),
        {"id": "CD-4", "status": "WITHHELD", "reason": "medical hold"}])
    wait_for(lambda: acked(alpha, "R-REC-1", "out") == 5 and acked(alpha, "M-REC-1", "out") == 10
             and acked(beta, "M-REC-B1", "out") == 4,
             what="every acknowledgement back at the sender")
    wait_for(lambda: alpha.client.document("R-REC-1", direction="out")["state"] == "delivered",
             what="alpha's roster delivered")


def test_reconcile_counts_match_the_statuses_on_both_sides(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    beta.start()
    exchange(alpha, beta)

    ra = reconcile_json(alpha, "--quota", "5")
    rb = reconcile_json(beta, "--quota", "5")
    assert (ra["party"], rb["party"], ra["quota"]) == ("alpha", "beta", 5)

    # -- alpha's outbound, item by item as acknowledged by beta
    out = categories(ra, "outbound")
    assert set(out) == {"pow", "remains"}
    pow_ = out["pow"]
    assert (pow_["items"], pow_["listed"], pow_["manifested"], pow_["delivered"],
            pow_["received"]) == (6, 6, 2, 2, 1)
    # P-1 received in the manifest (as MI-1); P-3 and P-4 received on the roster; P-5 already
    # exchanged; P-2 not received in the manifest (MI-2: its roster RECEIVED is superseded);
    # P-6 has no acknowledgement
    assert (pow_["confirmed"], pow_["disputed"], pow_["outstanding"]) == (3, 1, 2)
    assert pow_["by_status"] == {"RECEIVED": 3, "NOT_RECEIVED": 1, "ALREADY_EXCHANGED": 1,
                                 "none": 1}
    remains = out["remains"]
    assert (remains["items"], remains["manifested"], remains["delivered"],
            remains["received"]) == (8, 8, 8, 6)
    assert (remains["confirmed"], remains["unconfirmed"], remains["disputed"],
            remains["outstanding"], remains["undeclared"]) == (0, 4, 1, 3, 1)

    # -- the manifest: declared 10, counted 7 declared + 1 undeclared = 8, difference -2
    (m,) = [m for m in ra["manifests"] if m["id"] == "M-REC-1"]
    assert (m["side"], m["declared"], m["entries"], m["acknowledged"], m["received"],
            m["not_received"], m["undeclared"], m["counted"], m["difference"],
            m["complete"]) == ("outbound", 10, 10, 10, 7, 3, 1, 8, -2, True)
    assert m["by_status"]["NOT_RECEIVED"] == 3

    # -- alpha's inbound: beta's four civilian detainees, as alpha acknowledged them
    inbound = categories(ra, "inbound")
    cd = inbound["civilian_detainee"]
    assert (cd["items"], cd["received"], cd["confirmed"], cd["outstanding"]) == (4, 3, 3, 1)

    # -- parity and quotas
    (p,) = ra["parity"]
    assert (p["handed_over"], p["received_by_peer"], p["peer_handed_over"],
            p["received_by_us"], p["difference"]) == (2, 1, 4, 3, -2)
    quotas = {(q["source"], q["side"]): (q["quota"], q["progress"]) for q in ra["quotas"]}
    assert quotas == {("agreement", "outbound"): (5, 1), ("agreement", "inbound"): (5, 3),
                      ("manifest", "inbound"): (4, 3)}

    # -- each side's outbound is the other side's inbound (same items, same statuses)
    assert categories(ra, "outbound") == categories(rb, "inbound")
    assert categories(ra, "inbound") == categories(rb, "outbound")
    (p_b,) = rb["parity"]
    assert (p_b["received_by_peer"], p_b["received_by_us"], p_b["difference"]) == (3, 1, 2)
    mine = {m["id"]: {k: v for k, v in m.items() if k not in ("side", "peer")}
            for m in ra["manifests"]}
    theirs = {m["id"]: {k: v for k, v in m.items() if k not in ("side", "peer")}
              for m in rb["manifests"]}
    assert mine == theirs

    # -- the counts agree with the items' statuses as the API lists them
    statuses = [i["status"] for i in alpha.client.iter_items("M-REC-1", direction="out")]
    assert statuses.count("NOT_RECEIVED") == m["not_received"]
    assert len(statuses) == m["entries"]

    # -- the peer filter: only beta, the same numbers
    assert categories(reconcile_json(alpha, "--peer", "beta"), "outbound") == out

    # -- CSV and HTML written with -o
    csv_path, html_path = tmp_path / "reconcile.csv", tmp_path / "out" / "reconcile.html"
    html_path.parent.mkdir()
    done = bridge(alpha, "--format", "csv", "-o", str(csv_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and str(csv_path) in done.stderr
    rows = list(csv.DictReader(io.StringIO(csv_path.read_bytes().decode("utf-8"))))
    mrow = {r["field"]: r["value"] for r in rows
            if r["section"] == "manifests" and r["document"] == "M-REC-1"}
    assert (mrow["declared"], mrow["counted"], mrow["difference"]) == ("10", "8", "-2")
    done = bridge(alpha, "--format", "html", "--quota", "5", "-o", str(html_path))
    assert done.returncode == 0, done.stderr
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 4
    assert "M-REC-1" in page and "&lt;b&gt;tag&lt;/b&gt; differs" in page
    # Provenance for the meeting: both parties' fingerprints and the audit head.
    assert alpha.home.public_identity().fingerprint in page
    assert beta.home.public_identity().fingerprint in page and "Audit log head" in page
    assert "<b>tag</b>" not in page
    assert not re.search(r"https?://", page)

    # -- text on standard output (not a terminal: plain)
    done = bridge(alpha)
    assert done.returncode == 0, done.stderr
    assert "M-REC-1" in done.stdout and "Parity" in done.stdout
    assert "\x1b[" not in done.stdout


def test_reconcile_errors(make_nodes: Callable[..., tuple[Node, Node]]) -> None:
    alpha, _beta = make_nodes()
    done = bridge(alpha)
    assert done.returncode == 3 and "no Bridge daemon" in done.stderr  # not started yet
    alpha.start()
    done = bridge(alpha, "--peer", "nobody")
    assert done.returncode == 1 and "nobody" in done.stderr
    assert bridge(alpha, "--quota", "0").returncode == 2  # click refuses it
    try:
        alpha.client.reconcile(quota=0)
    except ApiError as err:
        assert (err.status, err.field) == (400, "quota")
    else:
        raise AssertionError("quota=0 was accepted")
    empty = reconcile_json(alpha)
    assert empty["manifests"] == [] and empty["parity"] == []
    assert all(s["categories"] == [] and s["total"]["items"] == 0 for s in empty["sides"])
