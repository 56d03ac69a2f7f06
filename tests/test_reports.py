"""The reconciliation report (bridge/reports: rules, model, build, render/), pure: counts and
the grouping table, differences declared versus counted, parity, quotas, the JSON round trip,
CSV, text and a self-contained, escaped, well-formed HTML page. No store, no daemon, no
timings.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bridge.core.documents import ACK_STATUSES
from bridge.reports.build import build_reconciliation
from bridge.reports.model import DocumentCount, ItemCount, ReasonCount, Reconciliation
from bridge.reports.render import render
from bridge.reports.render.csv import HEADER as CSV_HEADER
from bridge.reports.render.csv import KEYS as CSV_KEYS
from bridge.reports.render.csv import render_csv
from bridge.reports.render.html import render_html
from bridge.reports.render.json import ReportFormatError, from_json, render_json, to_json
from bridge.reports.render.text import render_text
from bridge.reports.rules import (
    CONFIRMED,
    DECLINED,
    DISPUTED,
    GROUP_LABELS,
    GROUPS,
    OUTSTANDING,
    STATUS_RULES,
    UNCONFIRMED,
    rule_of,
)

GENERATED = "2026-11-26T13:47:32.372Z"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quoted" \'single\''


def item(direction: str, category: str | None, status: str | None, count: int, *,
         listed: bool = False, manifested: bool = True, reached: bool = True,
         peer: str = "beta") -> ItemCount:
    return ItemCount(direction=direction, peer=peer, category=category, listed=listed,
                     manifested=manifested, reached=reached, status=status, count=count)


def manifest(doc_id: str, by_status: dict[str | None, int], *, direction: str = "out",
             meta: dict[str, Any] | None = None, undeclared: dict[str, int] | None = None,
             peer: str = "beta", doc_type: str = "manifest") -> DocumentCount:
    return DocumentCount(direction=direction, peer=peer, id=doc_id, type=doc_type,
                         meta=meta or {}, created=1_767_225_600_000, by_status=by_status,
                         undeclared=undeclared or {})


def build(items: list[ItemCount] | None = None, docs: list[DocumentCount] | None = None,
          **kw: Any) -> Reconciliation:
    return build_reconciliation(party="alpha", peer=kw.pop("peer", None), generated=GENERATED,
                                items=items or [], documents=docs or [], **kw)


# ---------------------------------------------------------------- the grouping table


def test_every_status_has_exactly_one_rule_and_one_group() -> None:
    statuses = [r.status for r in STATUS_RULES]
    assert sorted(statuses, key=str) == sorted([None, *ACK_STATUSES], key=str)
    assert len(statuses) == len(set(statuses))
    for r in STATUS_RULES:
        assert r.persons in GROUPS and r.other in GROUPS


@pytest.mark.parametrize(("status", "person_group", "other_group"), [
    (None, OUTSTANDING, OUTSTANDING),
    ("RECEIVED", CONFIRMED, UNCONFIRMED),  # RECEIVED confirms a person, not remains
    ("IDENTITY_CONFIRMED", CONFIRMED, CONFIRMED),
    ("DISPUTED", DISPUTED, DISPUTED), ("IDENTITY_MISMATCH", DISPUTED, DISPUTED),
    ("NOT_OWN_NATIONAL", DISPUTED, DISPUTED), ("COMMINGLED", DISPUTED, DISPUTED),
    ("CATEGORY_INELIGIBLE", DISPUTED, DISPUTED), ("ALREADY_EXCHANGED", DISPUTED, DISPUTED),
    ("NOT_RECEIVED", OUTSTANDING, OUTSTANDING),
    ("PENDING_IDENTIFICATION", OUTSTANDING, OUTSTANDING),
    ("POSTPONED", OUTSTANDING, OUTSTANDING), ("WITHHELD", OUTSTANDING, OUTSTANDING),
    ("DECLINED_REPATRIATION", DECLINED, DECLINED),
])
def test_grouping_as_specified(status: str | None, person_group: str, other_group: str) -> None:
    rule = rule_of(status)
    assert rule.group("pow") == person_group
    assert rule.group("civilian_detainee") == person_group
    assert rule.group("child_tracing") == person_group
    assert rule.group("remains") == other_group
    assert rule.group(None) == other_group


def test_unknown_status_counts_as_disputed_never_confirmed() -> None:
    r = build([item("in", "pow", "SOMETHING_NEW", 2)])
    line = r.side("inbound").categories[0]
    assert (line.disputed, line.confirmed, line.received) == (2, 0, 0)


def test_grouping_table_travels_with_the_json() -> None:
    table = to_json(build())["grouping"]
    assert {row["status"] for row in table} == {None, *ACK_STATUSES}
    assert {"status": "RECEIVED", "persons": "confirmed", "other": "unconfirmed",
            "received": True} in table


# ---------------------------------------------------------------- counts per side and category


def demo_like() -> Reconciliation:
    """alpha's view after the demo's story (numbers from bridge/cli/demo.py)."""
    items = [
        # roster of 12: 10 then put into a manifest and received, 2 disputed on the list
        item("out", "pow", "RECEIVED", 10, listed=True, manifested=True),
        item("out", "pow", "ALREADY_EXCHANGED", 1, listed=True, manifested=False),
        item("out", "pow", "CATEGORY_INELIGIBLE", 1, listed=True, manifested=False),
        # 48 bags: 41 received, 3 not received, 2 not own nationals, 1 disputed, 1 identified
        item("out", "remains", "RECEIVED", 41), item("out", "remains", "NOT_RECEIVED", 3),
        item("out", "remains", "NOT_OWN_NATIONAL", 2), item("out", "remains", "DISPUTED", 1),
        item("out", "remains", "IDENTITY_CONFIRMED", 1),
        # beta handed over 9 persons: 8 received, 1 declined repatriation
        item("in", "pow", "RECEIVED", 8), item("in", "pow", "DECLINED_REPATRIATION", 1),
    ]
    docs = [
        manifest("ROSTER-POW-001", {"RECEIVED": 10, "ALREADY_EXCHANGED": 1,
                                    "CATEGORY_INELIGIBLE": 1},
                 meta={"category": "pow"}, doc_type="roster"),
        manifest("MANIFEST-REMAINS-B7", {"RECEIVED": 41, "NOT_RECEIVED": 3,
                                         "NOT_OWN_NATIONAL": 2, "DISPUTED": 1,
                                         "IDENTITY_CONFIRMED": 1},
                 meta={"batch": 7, "category": "remains", "declared": {"remains_package": 48}}),
        manifest("MANIFEST-POW-A1", {"RECEIVED": 10}, meta={"category": "pow", "declared": 10}),
        manifest("MANIFEST-POW-B1", {"RECEIVED": 8, "DECLINED_REPATRIATION": 1},
                 direction="in", meta={"category": "pow", "declared": 9}),
    ]
    reasons = [ReasonCount(direction="out", peer="beta", status="NOT_RECEIVED",
                           reason="counted 45 bags at the crossing, 48 declared", count=3)]
    return build(items, docs, reasons=reasons, quota=10, peers=["beta"])


def test_counts_per_side_and_category() -> None:
    r = demo_like()
    out = {c.category: c for c in r.side("outbound").categories}
    pow_, remains = out["pow"], out["remains"]
    assert (pow_.items, pow_.listed, pow_.manifested, pow_.delivered, pow_.received) == (
        12, 12, 10, 10, 10)
    assert (pow_.confirmed, pow_.disputed, pow_.outstanding) == (10, 2, 0)
    assert (remains.items, remains.listed, remains.manifested, remains.delivered,
            remains.received) == (48, 0, 48, 48, 45)
    # RECEIVED remains are received but not confirmed; only the DNA match confirms
    assert (remains.confirmed, remains.unconfirmed, remains.disputed,
            remains.outstanding) == (1, 41, 3, 3)
    assert remains.by_status == {"RECEIVED": 41, "NOT_RECEIVED": 3, "IDENTITY_CONFIRMED": 1,
                                 "NOT_OWN_NATIONAL": 2, "DISPUTED": 1}
    total = r.side("outbound").total
    assert (total.items, total.confirmed, total.disputed, total.outstanding) == (60, 11, 5, 3)
    inbound = r.side("inbound").categories
    assert [(c.category, c.received, c.confirmed, c.declined) for c in inbound] == [
        ("pow", 8, 8, 1)]


def test_groups_add_up_and_the_funnel_holds() -> None:
    r = demo_like()
    for side in r.sides:
        for c in (*side.categories, side.total):
            assert sum(c.group(g) for g in GROUPS) == c.items
            assert sum(c.by_status.values()) == c.items
            assert c.manifested >= c.delivered >= c.received


def test_unacknowledged_and_undelivered_items() -> None:
    r = build([item("out", "pow", None, 5, reached=False), item("out", "pow", None, 7),
               item("out", "pow", None, 3, listed=True, manifested=False)])
    c = r.side("outbound").categories[0]
    assert (c.items, c.manifested, c.delivered, c.listed, c.outstanding) == (15, 12, 7, 3, 15)
    assert c.by_status == {"none": 15}


def test_categories_in_reading_order_with_no_category_last() -> None:
    r = build([item("in", None, None, 1), item("in", "zeta", None, 1),
               item("in", "remains", None, 1), item("in", "pow", None, 1),
               item("in", "child_tracing", None, 1)])
    assert [c.category for c in r.side("inbound").categories] == [
        "pow", "child_tracing", "remains", "zeta", None]


def test_peers_are_summed_per_side() -> None:
    r = build([item("out", "pow", "RECEIVED", 2, peer="beta"),
               item("out", "pow", "RECEIVED", 3, peer="gamma")])
    assert r.side("outbound").categories[0].confirmed == 5


# ---------------------------------------------------------------- declared versus counted


def test_declared_versus_counted_difference() -> None:
    r = build(docs=[manifest("M-1", {"RECEIVED": 1245, "NOT_RECEIVED": 3},
                             meta={"declared": 1248, "batch": 3})])
    (m,) = r.manifests
    assert (m.declared, m.entries, m.acknowledged, m.received, m.not_received) == (
        1248, 1248, 1248, 1245, 3)
    assert (m.counted, m.difference, m.complete) == (1245, -3, True)
    assert m.batch == "3"
    row = to_json(r)["manifests"][0]
    assert (row["counted"], row["difference"], row["complete"]) == (1245, -3, True)
    assert "\u22123" in render_text(r)  # shown with a real minus sign


def test_declared_map_is_summed_and_undeclared_items_are_counted() -> None:
    r = build(docs=[manifest("M-2", {"RECEIVED": 40, None: 2},
                             meta={"declared": {"remains_package": 40, "effects_packet": "2"}},
                             undeclared={"RECEIVED_UNDECLARED": 1,
                                         "IDENTITY_CONFIRMED": 1})])
    (m,) = r.manifests
    assert m.declared == 42
    assert m.declared_detail == (("effects_packet", 2), ("remains_package", 40))
    assert (m.received, m.undeclared, m.counted, m.difference) == (40, 2, 42, 0)
    assert (m.unacknowledged, m.complete) == (2, False)  # provisional: two still open
    assert r.side("outbound").categories[0].undeclared == 2


def test_statuses_that_are_not_handed_over_are_not_counted() -> None:
    r = build(docs=[manifest("M-3", {"RECEIVED": 5, "WITHHELD": 1, "POSTPONED": 1,
                                     "ALREADY_EXCHANGED": 1, "DECLINED_REPATRIATION": 1,
                                     "DISPUTED": 1, "PENDING_IDENTIFICATION": 1},
                             meta={"declared": 11})])
    (m,) = r.manifests
    assert (m.received, m.difference) == (7, -4)


@pytest.mark.parametrize("value", ["many", {"bags": "lots"}, [1, 2], True, -4, {}])
def test_unreadable_declaration_is_noted_not_compared(value: object) -> None:
    r = build(docs=[manifest("M-4", {"RECEIVED": 1}, meta={"declared": value})])
    assert r.manifests[0].declared is None and r.manifests[0].difference is None
    assert any("M-4" in note and "meta.declared" in note for note in r.notes)


# ---------------------------------------------------------------- parity and quotas


def test_parity_counts_persons_handed_over_through_manifests() -> None:
    r = demo_like()
    (p,) = r.parity
    assert (p.peer, p.handed_over, p.received_by_peer, p.peer_handed_over,
            p.received_by_us) == ("beta", 10, 10, 9, 8)
    assert p.difference == 2
    # remains, roster-only persons and undelivered items are not persons handed over
    r2 = build([item("out", "remains", "RECEIVED", 40),
                item("out", "pow", "RECEIVED", 4, listed=True, manifested=False),
                item("out", "pow", None, 6, reached=False),
                item("out", "pow", "RECEIVED", 5), item("in", "civilian_detainee", "RECEIVED", 7),
                item("in", "pow", "NOT_RECEIVED", 2)])
    (p2,) = r2.parity
    assert (p2.handed_over, p2.received_by_peer, p2.peer_handed_over, p2.received_by_us) == (
        5, 5, 9, 7)
    assert p2.difference == -2


def test_parity_per_peer_and_peer_filter() -> None:
    items = [item("out", "pow", "RECEIVED", 3, peer="beta"),
             item("in", "pow", "RECEIVED", 4, peer="gamma")]
    assert [p.peer for p in build(items).parity] == ["beta", "gamma"]
    assert [p.peer for p in build(items, peer="gamma").parity] == ["gamma"]
    assert build([item("out", "remains", "RECEIVED", 3)]).parity == ()


def test_agreement_quota_a_side() -> None:
    r = demo_like()
    agreement = [(q.side, q.quota, q.progress, q.remaining) for q in r.quotas
                 if q.source == "agreement"]
    assert agreement == [("outbound", 10, 10, 0), ("inbound", 10, 8, 2)]
    # with a quota, pinned peers show even before anything was exchanged
    r2 = build(quota=1000, peers=["beta"])
    assert [(q.peer, q.progress, q.percent) for q in r2.quotas] == [
        ("beta", 0, 0.0), ("beta", 0, 0.0)]


def test_document_quotas() -> None:
    items = [item("out", "pow", "RECEIVED", 600), item("out", "pow", "NOT_RECEIVED", 10),
             item("out", "civilian_detainee", "RECEIVED", 50)]
    docs = [manifest("ROSTER-1", {"RECEIVED": 700}, doc_type="roster",
                     meta={"category": "pow", "quota": 1000}),
            manifest("ROSTER-2", {}, doc_type="roster", meta={"quota": "2000"}),
            manifest("M-1", {"RECEIVED": 600, "NOT_RECEIVED": 10},
                     meta={"quota": 500, "declared": 610}),
            manifest("M-2", {"RECEIVED": 1}, meta={"quota": "lots"})]
    r = build(items, docs)
    got = {q.document: (q.source, q.category, q.quota, q.progress) for q in r.quotas}
    assert got == {"ROSTER-1": ("roster", "pow", 1000, 600),
                   "ROSTER-2": ("roster", None, 2000, 650),  # all persons of that side
                   "M-1": ("manifest", None, 500, 600)}
    m1 = next(q for q in r.quotas if q.document == "M-1")
    assert (m1.remaining, m1.percent) == (0, 120.0)
    assert any("M-2" in n and "quota" in n for n in r.notes)


# ---------------------------------------------------------------- JSON, CSV, text


def test_json_round_trip() -> None:
    r = demo_like()
    data = json.loads(render_json(r))
    assert data["kind"] == "bridge.reconciliation" and data["version"] == 1
    assert from_json(data) == r


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(kind="something-else"),
    lambda d: d.update(version=99),
    lambda d: d["sides"][0]["total"].update(items="12"),
    lambda d: d["manifests"][0].pop("entries"),
    lambda d: d.update(parity="none"),
])
def test_from_json_refuses_what_it_cannot_read(mutate: Any) -> None:
    data = to_json(demo_like())
    mutate(data)
    with pytest.raises(ReportFormatError):
        from_json(data)


def csv_blocks(text: str) -> dict[str, list[dict[str, str]]]:
    """The long-form CSV pivoted back: per section, one row per subject (its key columns)
    with a column per field."""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and set(rows[0]) == set(CSV_HEADER)  # one header for the whole file
    subjects: dict[tuple[str, ...], dict[str, str]] = {}
    for row in rows:
        key = (row["section"], *(row[k] for k in CSV_KEYS))
        subject = subjects.setdefault(key, {"section": row["section"],
                                            **{k: row[k] for k in CSV_KEYS},
                                            "manifest": row["document"]})
        subject[row["field"]] = row["value"]
    blocks: dict[str, list[dict[str, str]]] = {}
    for subject in subjects.values():
        blocks.setdefault(subject["section"], []).append(subject)
    return blocks


def test_csv_blocks_and_numbers() -> None:
    blocks = csv_blocks(render_csv(demo_like()))
    assert set(blocks) == {"report", "categories", "manifests", "parity", "quotas", "reasons",
                           "grouping"}
    remains = next(r for r in blocks["categories"]
                   if r["side"] == "outbound" and r["category"] == "remains")
    assert (remains["received"], remains["confirmed"], remains["outstanding"]) == (
        "45", "1", "3")
    b7 = next(r for r in blocks["manifests"] if r["manifest"] == "MANIFEST-REMAINS-B7")
    assert (b7["declared"], b7["counted"], b7["difference"]) == ("48", "45", "-3")
    assert blocks["parity"][0]["difference"] == "2"
    assert len(blocks["grouping"]) == len(STATUS_RULES)


def test_csv_neutralises_formulas_from_data() -> None:
    r = build([item("in", "=HYPERLINK(\"x\")", "RECEIVED", 1)],
              reasons=[ReasonCount(direction="in", peer="beta", status="DISPUTED",
                                   reason="@SUM(1)", count=1)])
    text = render_csv(r)
    assert "'=HYPERLINK" in text and "'@SUM(1)" in text
    blocks = csv_blocks(text)
    inbound = [r for r in blocks["categories"] if r["side"] == "inbound"]
    assert inbound[0]["category"] == "'=HYPERLINK(\"x\")"


def test_text_tables_show_data_as_text_not_markup() -> None:
    r = build([item("in", "[red]pow[/red]", "RECEIVED", 3)],
              reasons=[ReasonCount(direction="in", peer="beta", status="DISPUTED",
                                   reason="[bold]tag[/bold] differs", count=1)])
    text = render_text(r, width=160)
    assert "[red]pow[/red]" in text and "[bold]tag[/bold] differs" in text
    assert "Inbound: what alpha received" in text


def test_text_of_the_demo() -> None:
    text = render_text(demo_like(), width=140)
    for needle in ("MANIFEST-REMAINS-B7", "Parity", "Progress against quotas",
                   "counted 45 bags at the crossing, 48 declared", "How statuses count"):
        assert needle in text


# ---------------------------------------------------------------- HTML


VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source",
        "track", "wbr"}


class Checker(HTMLParser):
    """Well-formedness as far as a report needs it: every element closed, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.doctype, "no <!DOCTYPE html>"
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed: {checker.stack}"
    return checker


def test_html_is_well_formed_with_svg_charts() -> None:
    page = render_html(demo_like())
    c = parse(page)
    # stacked bars per side, declared-vs-counted, one parity chart, two quota bars
    assert c.tags.count("svg") == 2 + 1 + 1 + 2
    assert c.tags.count("rect") > 10
    assert c.tags.count("table") >= 5
    text = " ".join(c.text)
    for needle in ("MANIFEST-REMAINS-B7", "45 counted of 48 declared", "\u22123",
                   "difference +2",
                   "How statuses count", "Parity (all-for-all)", "10 / 10 (100%)"):
        assert needle in text, needle


def test_html_has_no_external_references() -> None:
    page = render_html(demo_like())
    c = parse(page)
    assert not [v for k, v in c.attrs if k in ("src", "href", "xlink:href", "action")]
    assert not re.search(r"https?://", page)
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page  # nothing may be loaded even if something slipped in
    assert c.tags.count("style") == 1


def test_html_escapes_hostile_data() -> None:
    items = [item("in", HOSTILE, "DISPUTED", 2)]
    docs = [manifest("M-EVIL", {"DISPUTED": 2}, direction="in",
                     meta={"batch": HOSTILE, "agreement": HOSTILE,
                           "declared": {HOSTILE: 2}, "category": HOSTILE, "quota": 5})]
    reasons = [ReasonCount(direction="in", peer="beta", status="DISPUTED", reason=HOSTILE,
                           count=2)]
    r = build(items, docs, reasons=reasons)
    page = render_html(r)
    c = parse(page)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "onerror=alert(1)&gt;" in page
    assert c.tags.count("script") == 0 and c.tags.count("img") == 0
    assert all(k in {"class", "lang", "charset", "http-equiv", "content", "name", "viewbox",
                     "width", "height", "role", "aria-label", "preserveaspectratio", "x", "y",
                     "x1", "x2", "y1", "y2", "fill", "text-anchor", "style"}
               for k, _ in c.attrs), {k for k, _ in c.attrs}
    # the hostile text survives as text (escaped on the page, readable in the browser)
    assert sum(HOSTILE in t for t in c.text) >= 3


def test_html_of_an_empty_report() -> None:
    page = render_html(build())
    parse(page)
    assert "nothing exchanged yet" in page


def test_render_dispatch() -> None:
    r = demo_like()
    assert render(r, "html").startswith("<!DOCTYPE html>")
    assert json.loads(render(r, "json"))["party"] == "alpha"
    assert render(r, "csv").startswith("section,")
    with pytest.raises(ValueError, match="unknown format"):
        render(r, "pdf")


def test_rules_model_and_build_are_pure_and_only_the_text_renderer_loads_rich() -> None:
    """Rules, model and build import no I/O framework and no rich; nor do the JSON, CSV and
    HTML renderers (the engine reads ``render.json``); the text renderer does load rich, so
    the check would see it."""
    code = ("import sys, bridge.reports.rules, bridge.reports.model, bridge.reports.build; "
            "import bridge.reports.render.json, bridge.reports.render.csv; "
            "import bridge.reports.render.html; "
            "print(sorted(m for m in ('asyncio', 'aiohttp', 'sqlite3', '_sqlite3', 'rich') "
            "if m in sys.modules)); "
            "import bridge.reports.render.text; print('rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["[]", "True"]


def _imports(path: Path, prefix: str) -> set[str]:
    """The modules ``path`` imports (anywhere in its body) that are ``prefix`` or inside it."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found.update(n for n in names if n == prefix or n.startswith(prefix + "."))
    return found


BRIDGE = Path(__file__).resolve().parent.parent / "bridge"


def test_only_the_text_renderer_imports_rich() -> None:
    room = BRIDGE / "reports"
    importers = {path.relative_to(room).as_posix() for path in room.rglob("*.py")
                 if _imports(path, "rich")}
    assert importers == {"render/text.py"}


def test_the_store_reads_only_the_reports_model_and_rules() -> None:
    """The store sits below every renderer: it hands out the model's rows, nothing more."""
    used = {name for path in (BRIDGE / "store").rglob("*.py")
            for name in _imports(path, "bridge.reports")}
    assert used and used <= {"bridge.reports.model", "bridge.reports.rules"}, used


def test_json_matches_the_local_api_description() -> None:
    yaml = pytest.importorskip("yaml")
    import jsonschema_rs

    spec_path = Path(__file__).resolve().parent.parent / "schemas" / "local-api.yaml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    validator = jsonschema_rs.validator_for({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/schemas/Reconciliation", "components": spec["components"]})
    hostile = build([item("in", HOSTILE, "DISPUTED", 2)],
                    [manifest("M-X", {"DISPUTED": 2, None: 1}, direction="in",
                              meta={"batch": HOSTILE, "declared": "lots", "quota": 3},
                              undeclared={"RECEIVED_UNDECLARED": 1})], quota=7, peers=["beta"])
    for report in (demo_like(), build(), hostile):
        errors = [str(e) for e in validator.iter_errors(to_json(report))]
        assert errors == []


def test_the_summary_cards_add_up_to_the_items() -> None:
    # "received, not confirmed" and "declined" were left out: the figures did not add up.
    page = render_html(demo_like())
    cards = page[page.index('<div class="cards">'):page.index("</div></div></div>") + 18]
    for side in re.findall(r'<div class="card">(.*?)</div></div>', cards):
        figures = dict((k, int(v.replace(",", ""))) for v, k in re.findall(
            r'<b class="[a-z]*">([\d,]+)</b><span>([^<]+)</span>', side))
        groups = [figures[label] for label in GROUP_LABELS.values()]
        assert sum(groups) == figures["items"], figures
