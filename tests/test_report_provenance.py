"""The reconciliation for a meeting: the page names where its figures come from (the agreement,
each party's fingerprint, the audit log's head) and lists the ids that are disputed or
outstanding; the JSON carries both, and a report of an older daemon (without them) still
reads."""

from __future__ import annotations

from bridge.reports.build import build_reconciliation
from bridge.reports.model import AttentionItem, DocumentCount, ItemCount, Party, Provenance
from bridge.reports.render.html import render_html
from bridge.reports.render.json import from_json, to_json

FP_ALPHA = "XAN6 VQWA OYI4 FYPB 4MQE ETG3 MGVB FPAE"
FP_BETA = "B3TA VQWA OYI4 FYPB 4MQE ETG3 MGVB FPAE"


def report(attention: int = 2) -> object:
    items = [AttentionItem(direction="out", peer="beta", document="M-7", id=f"BAG-{n:04d}",
                           status="DISPUTED" if n == 0 else None) for n in range(attention)]
    return build_reconciliation(
        party="alpha", peer=None, generated="2026-03-02T15:00:00.000Z",
        items=[ItemCount(direction="out", peer="beta", category="remains", listed=False,
                         manifested=True, reached=True, status="DISPUTED", count=1)],
        documents=[DocumentCount(direction="out", peer="beta", id="M-7", type="manifest",
                                 meta={"agreement": "AGR-2026-03", "category": "remains"},
                                 created=1, by_status={"DISPUTED": 1})],
        provenance=Provenance(parties=(Party(name="alpha", fingerprint=FP_ALPHA),
                                       Party(name="beta", fingerprint=FP_BETA)),
                              audit_seq=42, audit_head="ab" * 32),
        attention=(items, attention + 5))


def test_the_page_names_agreement_fingerprints_audit_head_and_the_ids_to_discuss() -> None:
    page = render_html(report())
    for text in ("AGR-2026-03", FP_ALPHA, FP_BETA, "ab" * 32, "record 42", "BAG-0000",
                 "BAG-0001", "DISPUTED", "no acknowledgement yet", "and 5 more"):
        assert text in page, text


def test_provenance_and_attention_survive_the_json_and_an_older_report_still_reads() -> None:
    r = report()
    back = from_json(to_json(r))
    assert back.provenance == r.provenance and back.attention == r.attention  # type: ignore[attr-defined]
    assert back.attention_total == 7
    older = to_json(r)
    for key in ("provenance", "attention", "attention_total"):
        older.pop(key)
    plain = from_json(older)
    assert plain.provenance is None and plain.attention == ()
    assert "Provenance" not in render_html(plain)
