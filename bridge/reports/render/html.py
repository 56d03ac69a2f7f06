"""The report as one self-contained HTML page: inline CSS and inline SVG charts, no script and
no external reference. Every text from data goes through :func:`esc`."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.reports.model import ManifestLine, ParityLine, QuotaLine, Reconciliation, SideReport
from bridge.reports.render.html_meeting import attention_section, provenance_section
from bridge.reports.render.markup import esc
from bridge.reports.render.markup import table as _table
from bridge.reports.render.wording import (
    CATEGORY_COLUMNS,
    category_label,
    declared_text,
    num,
    one_line,
    quota_source,
    scope,
    side_short,
    side_title,
    signed,
)
from bridge.reports.rules import (
    ARRIVED_STATUSES,
    CONFIRMED,
    DECLINED,
    DISPUTED,
    GROUP_LABELS,
    GROUPS,
    OUTSTANDING,
    PERSON_CATEGORIES,
    UNCONFIRMED,
    grouping_summary,
)

# Okabe & Ito's palette: told apart by readers with any common colour-vision deficiency.
# Labels on the bars are dark: on each of these colours, near-black has more contrast than
# white (about 6:1 against 3.4:1 on the green).
GROUP_COLOURS = {CONFIRMED: "#009E73", UNCONFIRMED: "#56B4E9", DISPUTED: "#D55E00",
                 DECLINED: "#CC79A7", OUTSTANDING: "#E69F00"}
_GREY = "#c9ccd1"


def fit(text: str, limit: int, *, middle: bool = False) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: at the end, or in the middle
    (for ids, whose ends tell batches apart). Charts carry the full text in a tooltip."""
    if len(text) <= limit:
        return text
    if middle:
        head = (limit - 1) // 2
        return text[:head] + "\u2026" + text[len(text) - (limit - 1 - head):]
    return text[: limit - 1] + "\u2026"


def _titled(svg_text: str, full: str) -> str:
    """A chart label with its full text as a tooltip."""
    return svg_text.replace("</text>", f"<title>{esc(full)}</title></text>", 1)


def _bar_scale(total: int, width: float) -> float:
    return width / total if total > 0 else 0.0


def _svg_open(width: int, height: int, label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{esc(label)}" preserveAspectRatio="xMinYMin meet">')


def _svg_text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    cls_attr = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{cls_attr}>'
            f"{esc(text)}</text>")


def _segments(x0: float, y: float, h: float, scale: float,
              parts: Sequence[tuple[str, int, str, str]]) -> tuple[list[str], float]:
    """Rectangles side by side; parts are (css colour, count, tooltip, label)."""
    out, x = [], x0
    for colour, count, tip, label in parts:
        if count <= 0:
            continue
        w = count * scale
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 1.5):.1f}" height="{h:.1f}" '
                   f'fill="{colour}"><title>{esc(tip)}</title></rect>')
        if w >= 14 + 11 * len(label):
            out.append(_svg_text(x + w / 2, y + h / 2 + 7, label, anchor="middle",
                                 cls="seg"))
        x += w
    return out, x


def svg_categories(side: SideReport) -> str:
    """Stacked bars, one per category: how its items stand, group by group."""
    label_w, bar_w, right_w, row_h, bar_h, top = 280, 770, 150, 56, 34, 8
    width = label_w + bar_w + right_w
    rows = list(side.categories)
    height = top + row_h * max(len(rows), 1) + 8
    scale = _bar_scale(max((c.items for c in rows), default=0), bar_w)
    out = [_svg_open(width, height, f"{side.side}: items by category and status group")]
    if not rows:
        out.append(_svg_text(label_w, top + 36, "nothing exchanged yet", cls="muted"))
    for n, c in enumerate(rows):
        y = top + n * row_h
        label = category_label(c.category)
        out.append(_titled(_svg_text(label_w - 16, y + bar_h / 2 + 8, fit(label, 19),
                                     anchor="end", cls="label"), label))
        parts = [(GROUP_COLOURS[g], c.group(g),
                  f"{category_label(c.category)}: {num(c.group(g))} {GROUP_LABELS[g]}",
                  num(c.group(g))) for g in GROUPS]
        segs, x = _segments(label_w, y, bar_h, scale, parts)
        out += segs
        out.append(_svg_text(x + 12, y + bar_h / 2 + 8, f"{num(c.items)} items", cls="value"))
    out.append("</svg>")
    return "".join(out)


def svg_manifests(manifests: Sequence[ManifestLine]) -> str:
    """Per manifest: its entries by outcome, a marker at the declared count, the difference."""
    label_w, bar_w, right_w, row_h, bar_h, top = 340, 580, 280, 72, 32, 12
    width = label_w + bar_w + right_w
    height = top + row_h * len(manifests) + 10
    biggest = max((max(m.entries + m.undeclared, m.declared or 0) for m in manifests), default=0)
    scale = _bar_scale(biggest, bar_w)
    out = [_svg_open(width, height, "declared versus counted, per manifest")]
    for n, m in enumerate(manifests):
        y = top + n * row_h
        out.append(_titled(_svg_text(label_w - 16, y + bar_h / 2 + 2, fit(m.id, 20, middle=True),
                                     anchor="end", cls="label"), m.id))
        sub = f"{m.side} \u00b7 {m.peer}" + (f" \u00b7 batch {m.batch}" if m.batch else "")
        out.append(_titled(_svg_text(label_w - 16, y + bar_h / 2 + 24, fit(sub, 34),
                                     anchor="end", cls="muted small"), sub))
        other = m.acknowledged - m.received - m.not_received
        parts = [
            (GROUP_COLOURS[CONFIRMED], m.received, f"{m.id}: {num(m.received)} "
             "declared and received", num(m.received)),
            (GROUP_COLOURS[UNCONFIRMED], m.undeclared,
             f"{m.id}: {num(m.undeclared)} received undeclared", num(m.undeclared)),
            (GROUP_COLOURS[DISPUTED], m.not_received,
             f"{m.id}: {num(m.not_received)} not received", num(m.not_received)),
            (GROUP_COLOURS[DECLINED], other,
             f"{m.id}: {num(other)} acknowledged, not handed over", num(other)),
            (_GREY, m.unacknowledged,
             f"{m.id}: {num(m.unacknowledged)} not acknowledged yet", num(m.unacknowledged)),
        ]
        segs, _x = _segments(label_w, y, bar_h, scale, parts)
        out += segs
        if m.declared is not None:
            xd = label_w + m.declared * scale
            out.append(f'<line x1="{xd:.1f}" y1="{y - 6:.1f}" x2="{xd:.1f}" '
                       f'y2="{y + bar_h + 6:.1f}" class="marker"><title>'
                       f"{esc(f'{m.id}: declared {num(m.declared)}')}</title></line>")
            diff = m.difference or 0
            big = signed(diff) + ("" if m.complete else " so far")
            cls = "diff bad" if diff else "diff ok"
            small = f"{num(m.counted)} counted of {num(m.declared)} declared"
        else:
            cls, big, small = "muted", "not declared", f"{num(m.counted)} counted"
        x_right = label_w + bar_w + right_w - 4
        out.append(_svg_text(x_right, y + bar_h / 2 + 2, big, anchor="end", cls=cls))
        out.append(_svg_text(x_right, y + bar_h / 2 + 24, small, anchor="end",
                             cls="muted small"))
    out.append("</svg>")
    return "".join(out)


def svg_parity(report: Reconciliation, p: ParityLine) -> str:
    """Two bars from a common axis: persons we handed over (as the peer acknowledged) and
    persons we received; the lighter bar behind each is what the manifests declared."""
    half, mid_gap, label_h, bar_h = 520, 8, 34, 40
    width = 2 * half + 2 * mid_gap
    height = label_h + bar_h + 56
    biggest = max(p.handed_over, p.received_by_peer, p.peer_handed_over, p.received_by_us)
    scale = _bar_scale(biggest, half - 20)
    cx = half + mid_gap
    y = label_h
    out = [_svg_open(width, height, f"parity with {p.peer}")]
    out.append(_svg_text(cx - mid_gap - 4, 24, f"{report.party} \u2192 {p.peer}",
                         anchor="end", cls="label"))
    out.append(_svg_text(cx + mid_gap + 4, 24, f"{p.peer} \u2192 {report.party}",
                         cls="label"))
    for declared, received, sign in ((p.handed_over, p.received_by_peer, -1),
                                     (p.peer_handed_over, p.received_by_us, 1)):
        for count, colour in ((declared, _GREY), (received, GROUP_COLOURS[CONFIRMED])):
            w = count * scale
            x = cx - mid_gap - w if sign < 0 else cx + mid_gap
            if count > 0:
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1.5):.1f}" '
                           f'height="{bar_h}" fill="{colour}"/>')
        tx = cx - mid_gap - received * scale - 10 if sign < 0 else \
            cx + mid_gap + received * scale + 10
        anchor = "end" if sign < 0 else "start"
        if received * scale > 120:  # the number fits inside the bar
            tx = cx - mid_gap - 10 if sign < 0 else cx + mid_gap + 10
            out.append(_svg_text(tx, y + bar_h / 2 + 8, num(received), anchor=anchor,
                                 cls="seg"))
        else:
            out.append(_svg_text(tx, y + bar_h / 2 + 8, num(received), anchor=anchor,
                                 cls="value"))
    out.append(f'<line x1="{cx}" y1="{y - 8}" x2="{cx}" y2="{y + bar_h + 8}" class="axis"/>')
    out.append(_svg_text(
        cx, y + bar_h + 40,
        f"received by {p.peer} {num(p.received_by_peer)} \u00b7 received by {report.party} "
        f"{num(p.received_by_us)} \u00b7 difference {signed(p.difference)}",
        anchor="middle", cls="diff bad" if p.difference else "diff ok"))
    out.append("</svg>")
    return "".join(out)


def svg_quota(q: QuotaLine) -> str:
    bar_w, bar_h = 880, 30
    out = [_svg_open(bar_w + 320, bar_h + 8, f"quota progress {q.percent:.1f} percent")]
    out.append(f'<rect x="0" y="4" width="{bar_w}" height="{bar_h}" fill="#eceef1"/>')
    w = min(q.progress / q.quota, 1.0) * bar_w if q.quota else 0
    if w > 0:
        out.append(f'<rect x="0" y="4" width="{w:.1f}" height="{bar_h}" '
                   f'fill="{GROUP_COLOURS[CONFIRMED]}"/>')
    out.append(_svg_text(bar_w + 14, bar_h / 2 + 12,
                         f"{num(q.progress)} / {num(q.quota)} ({q.percent:g}%)", cls="value"))
    out.append("</svg>")
    return "".join(out)


_CSS = """
:root { --ink: #14171a; --muted: #5b6470; --line: #d5d9de; --bg: #ffffff; --band: #f4f6f8; }
* { box-sizing: border-box; }
html { font-size: 18px; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font-family: "Segoe UI", "Noto Sans", "DejaVu Sans", Arial, sans-serif; line-height: 1.4; }
main { max-width: 1400px; margin: 0 auto; padding: 28px 36px 48px; }
h1 { font-size: 2rem; margin: 0 0 4px; }
h2 { font-size: 1.45rem; margin: 40px 0 10px; padding-top: 16px; border-top: 3px solid var(--ink); }
h3 { font-size: 1.15rem; margin: 22px 0 6px; }
p.sub, .muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px;
  margin-top: 20px; }
.card { background: var(--band); border-radius: 10px; padding: 14px 20px; }
.card h3 { margin: 0 0 8px; font-size: 1.05rem; }
.figures { display: flex; flex-wrap: wrap; gap: 8px 26px; }
.figure b { display: block; font-size: 2.1rem; font-variant-numeric: tabular-nums;
  line-height: 1.1; }
.figure span { color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 4px; font-size: .94rem;
  font-variant-numeric: tabular-nums; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; vertical-align: bottom; }
th:first-child, td:first-child, td.t, th.t { text-align: left; }
td.x { overflow-wrap: anywhere; min-width: 9em; }
td.n { white-space: nowrap; }
.detail { display: block; font-size: .8rem; color: var(--muted); overflow-wrap: anywhere; }
tr.total td { font-weight: 700; border-top: 2px solid var(--ink); }
td.bad, .bad { color: #b23c00; font-weight: 700; }
td.ok, .ok { color: #00704f; font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 22px; margin: 6px 0 2px; font-size: .95rem; }
.legend i { display: inline-block; width: 18px; height: 18px; border-radius: 3px;
  vertical-align: -3px; margin-right: 6px; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 6px 0; }
svg text { font-family: inherit; font-size: 20px; fill: var(--ink); }
svg text.label { font-weight: 600; }
svg text.small { font-size: 16px; }
svg text.seg { font-weight: 700; font-size: 18px; }
svg text.value { fill: var(--ink); }
svg text.muted { fill: var(--muted); }
svg text.diff { font-weight: 700; }
svg text.bad { fill: #b23c00; }
svg text.ok { fill: #00704f; }
svg line.marker { stroke: var(--ink); stroke-width: 4; }
svg line.axis { stroke: var(--ink); stroke-width: 2; }
ul.notes li { color: #7a4d00; }
dl.groups { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px;
  font-size: .9rem; }
dl.groups dt { font-weight: 700; }
dl.groups dd { margin: 0; color: var(--muted); }
footer { margin-top: 36px; color: var(--muted); font-size: .85rem; }
@media print { html { font-size: 12pt; } main { max-width: none; padding: 0; }
  h2 { break-after: avoid; } section, .card, table, svg { break-inside: avoid; } }
"""


def _legend(groups: Sequence[tuple[str, str]]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{colour}"></i>{esc(label)}</span>'
        for colour, label in groups) + "</div>"


def _wrap(text: str, base: str = "t") -> str:
    """Short texts stay on one line; long ones (hostile or not) wrap anywhere rather than
    widen the page."""
    return f"{base} n" if len(text) <= 32 else f"{base} x"


def _n(n: int, cls: str = "n") -> tuple[str, str]:
    return cls, esc(num(n))


def _diff_cell(diff: int | None, suffix: str = "") -> tuple[str, str]:
    if diff is None:
        return "muted n", "n/a"
    return ("bad n" if diff else "ok n"), esc(signed(diff) + suffix)


def _declared_cell(m: ManifestLine) -> tuple[str, str]:
    if not m.declared_detail:
        return "n", esc(declared_text(m))
    detail = ", ".join(f"{k} {num(v)}" for k, v in m.declared_detail)
    return _wrap(detail, ""), (esc(declared_text(m)) + '<span class="detail">' + esc(detail)
                               + "</span>")


def _head(title: str) -> list[str]:
    # A Content-Security-Policy forbids loading anything: the page is whole as it is.
    return [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>",
    ]


def _cards(report: Reconciliation) -> str:
    parts = ['<div class="cards">']
    for s in report.sides:
        t = s.total
        # Every group, so that the figures after "items" add up to it (rules.GROUPS).
        style = {CONFIRMED: "ok", DISPUTED: "bad", OUTSTANDING: "bad"}
        figures = [("items", t.items, ""), *(
            (GROUP_LABELS[g], t.group(g), style.get(g, "") if t.group(g) else "")
            for g in GROUPS)]
        parts.append(f'<div class="card"><h3>{esc(side_title(report, s.side))}</h3>'
                     '<div class="figures">' + "".join(
                         f'<div class="figure"><b class="{c}">{esc(num(v))}</b>'
                         f"<span>{esc(k)}</span></div>" for k, v, c in figures)
                     + "</div></div>")
    parts.append("</div>")
    return "".join(parts)


def _categories(report: Reconciliation) -> str:
    parts = ["<section><h2>By category</h2>",
             _legend([(GROUP_COLOURS[g], GROUP_LABELS[g]) for g in GROUPS])]
    for s in report.sides:
        parts.append(f"<h3>{esc(side_title(report, s.side))}</h3>")
        parts.append(svg_categories(s))
        header = [("t", "Category"), *(("", esc(label)) for _, label in CATEGORY_COLUMNS)]
        rows = [[(_wrap(category_label(c.category)), esc(category_label(c.category))),
                 *(_n(c.group(k)) for k, _ in CATEGORY_COLUMNS)] for c in s.categories]
        total = [("t", "Total"), *(_n(s.total.group(k)) for k, _ in CATEGORY_COLUMNS)]
        parts.append(_table(header, rows, total=total))
    parts.append("</section>")
    return "".join(parts)


_MANIFEST_HEADER = [("t", "Manifest"), ("t", "Side"), ("t", "Batch"), ("", "Declared"),
                    ("", "Entries"), ("", "Acknowledged"), ("", "Received"),
                    ("", "Not received"), ("", "Undeclared"), ("", "Counted"),
                    ("", "Difference")]


def _manifests(report: Reconciliation) -> str:
    rows = [[(_wrap(m.id), esc(m.id)), ("t n", esc(side_short(m.side, m.peer))),
             (_wrap(m.batch or ""), esc(m.batch or "")),
             _declared_cell(m),
             _n(m.entries), _n(m.acknowledged), _n(m.received), _n(m.not_received),
             _n(m.undeclared), _n(m.counted),
             _diff_cell(m.difference, "" if m.complete else " so far")]
            for m in report.manifests]
    return "".join([
        "<section><h2>Declared versus counted, per manifest</h2>",
        _legend([(GROUP_COLOURS[CONFIRMED], "declared and received"),
                 (GROUP_COLOURS[UNCONFIRMED], "received undeclared"),
                 (GROUP_COLOURS[DISPUTED], "not received"),
                 (GROUP_COLOURS[DECLINED], "acknowledged, not handed over"),
                 (_GREY, "not acknowledged yet"),
                 ("#14171a", "declared count (marker)")]),
        svg_manifests(report.manifests),
        _table(_MANIFEST_HEADER, rows),
        '<p class="muted">Counted = declared entries acknowledged as arrived plus '
        "items received undeclared; difference = counted \u2212 declared "
        "(\u201cso far\u201d while some entries have no acknowledgement).</p>",
        "</section>"])


def _parity(report: Reconciliation) -> str:
    parts = ["<section><h2>Parity (all-for-all)</h2>",
             '<p class="muted">Persons handed over through manifests, as acknowledged '
             "by the receiving side; the lighter bar is what the manifests declared.</p>"]
    parts += [svg_parity(report, p) for p in report.parity]
    header = [("t", "Peer"), ("", esc(f"{report.party} handed over")),
              ("", "received by peer"), ("", "peer handed over"),
              ("", esc(f"received by {report.party}")), ("", "Difference")]
    parts.append(_table(header, ([("t", esc(p.peer)), _n(p.handed_over),
                                  _n(p.received_by_peer), _n(p.peer_handed_over),
                                  _n(p.received_by_us), _diff_cell(p.difference)]
                                 for p in report.parity)))
    parts.append("</section>")
    return "".join(parts)


def _quotas(report: Reconciliation) -> str:
    parts = ["<section><h2>Progress against quotas</h2>"]
    for q in report.quotas:
        parts.append(f"<h3>{esc(quota_source(q))} \u00b7 {esc(q.side)} \u00b7 "
                     f"{esc(q.peer)} \u00b7 {esc(q.counts)}</h3>")
        parts.append(svg_quota(q))
    parts.append("</section>")
    return "".join(parts)


def _reasons(report: Reconciliation) -> str:
    return ("<section><h2>Reasons given</h2>"
            + _table([("t", "Side"), ("t", "Peer"), ("t", "Status"), ("", "Items"),
                      ("t", "Reason")],
                     ([("t n", esc(r.side)), ("t n", esc(r.peer)),
                       ("t n", esc(r.status)), _n(r.count),
                       ("t", esc(one_line(r.reason)))]
                      for r in report.reasons))
            + "</section>")


def _notes(report: Reconciliation) -> str:
    return ('<section><h2>Notes</h2><ul class="notes">'
            + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul></section>")


def _how_statuses_count() -> str:
    parts = ["<section><h2>How statuses count</h2><dl class=\"groups\">"]
    for label, statuses in grouping_summary():
        parts.append(f"<dt>{esc(label)}</dt><dd>{esc(statuses)}</dd>")
    parts.append("<dt>received</dt><dd>items in manifests acknowledged with "
                 f"{esc(', '.join(ARRIVED_STATUSES))}</dd>")
    parts.append(f"<dt>persons</dt><dd>{esc(', '.join(sorted(PERSON_CATEGORIES)))}</dd></dl>")
    parts.append('<p class="muted">An item counts once per side, peer and category (a manifest '
                 "item that names its roster record counts as that record), with the status of "
                 "its latest manifest entry (else its latest roster entry). Delivered: its "
                 "manifest reached the other bridge.</p></section>")
    return "".join(parts)


def render_html(report: Reconciliation) -> str:
    """One self-contained page: inline CSS, inline SVG, no script, no external reference (a
    Content-Security-Policy forbids loading anything). Every data text is escaped."""
    title = f"Reconciliation \u2014 {report.party}"
    parts = _head(title)
    parts += [f"<h1>{esc(title)}</h1>", f'<p class="sub">{esc(scope(report))}</p>',
              _cards(report), provenance_section(report), attention_section(report),
              _categories(report)]
    for present, section in ((report.manifests, _manifests), (report.parity, _parity),
                             (report.quotas, _quotas), (report.reasons, _reasons),
                             (report.notes, _notes)):
        if present:
            parts.append(section(report))
    parts.append(_how_statuses_count())
    parts.append(f"<footer>Bridge reconciliation report, {esc(report.generated)}. Generated "
                 "from signed acknowledgements; per-item receipts can be verified offline with "
                 "<code>bridge verify</code>.</footer>")
    parts.append("</main></body></html>\n")
    return "".join(parts)
