"""The page's sections for a meeting: where the figures come from (the agreements, each
party's fingerprint, the audit log's head) and the ids that are disputed or outstanding, so
that the room can name them."""

from __future__ import annotations

from bridge.reports.model import Reconciliation
from bridge.reports.render.markup import esc, table
from bridge.reports.render.wording import num, side_short
from bridge.reports.rules import GROUP_LABELS, SIDE_OF_DIRECTION, rule_of


def provenance_section(report: Reconciliation) -> str:
    p = report.provenance
    if p is None:
        return ""
    rows = [("Agreement", ", ".join(p.agreements) or "none named in the manifests")]
    rows += [(f"{x.name} fingerprint", x.fingerprint) for x in p.parties]
    rows.append(("Audit log head", f"record {num(p.audit_seq)}, {p.audit_head}"
                 if p.audit_head else "empty"))
    return ('<section class="provenance"><h2>Provenance</h2><dl class="groups">'
            + "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(v)}</code></dd>" for k, v in rows)
            + '</dl><p class="muted">Compare each fingerprint with the one read out of band; '
            "the audit head fixes the moment the figures were read "
            "(<code>bridge audit verify</code>).</p></section>")


def attention_section(report: Reconciliation) -> str:
    if not report.attention_total:
        return ""
    rows = [[("t n", esc(side_short(SIDE_OF_DIRECTION[a.direction], a.peer))),
             ("t x", esc(a.document)), ("t x", esc(a.id)),
             ("t n", esc(a.status or "no acknowledgement yet")),
             ("t n", esc(GROUP_LABELS[rule_of(a.status).persons]))]
            for a in report.attention]
    more = report.attention_total - len(report.attention)
    tail = (f'<p class="muted">and {esc(num(more))} more: <code>bridge items DOC --status '
            "STATUS</code> lists them all.</p>") if more > 0 else ""
    return (f"<section><h2>Disputed or outstanding ({esc(num(report.attention_total))})</h2>"
            + table([("t", "Side"), ("t", "Document"), ("t", "Id"), ("t", "Status"),
                     ("t", "Group")], rows) + tail + "</section>")


__all__ = ["attention_section", "provenance_section"]
