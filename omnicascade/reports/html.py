"""`omnicascade report RUN_ID --html FILE`: one self-contained page (inline CSS and SVG,
no network) that a marketer can open offline or mail to a colleague."""

from __future__ import annotations

from html import escape as e
from pathlib import Path
from typing import Any

from omnicascade.reports import charts
from omnicascade.reports.format import hours, money, num, pct, reasons, roi

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;
margin:0;background:#f3f4f6}main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{margin:0 0 4px;font-size:28px}h2{font-size:19px;margin:0 0 12px}.sub{color:#6b7280}
section{background:#fff;border-radius:10px;padding:18px 22px;margin:18px 0;
box-shadow:0 1px 2px rgba(0,0,0,.06)}.kpis{display:grid;gap:12px;
grid-template-columns:repeat(auto-fit,minmax(150px,1fr));margin-top:18px}
.kpi{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.kpi b{display:block;font-size:24px;margin-top:4px}.kpi small{color:#6b7280}
.verdict{border-left:5px solid #9ca3af;padding:8px 12px;margin:8px 0;background:#f9fafb;
font-size:15px}.verdict::first-letter{text-transform:uppercase}.verdict.win{border-color:#059669;background:#ecfdf5}
.verdict.lose{border-color:#dc2626;background:#fef2f2}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:10px}
th,td{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th{color:#6b7280;font-weight:600}td:first-child,th:first-child,td.l,th.l{text-align:left}
td.reasons{white-space:normal;text-align:left;color:#6b7280;min-width:240px;
font-size:12px}.wide{overflow-x:auto}h3{font-size:15px;margin:16px 0 0}
.notes{color:#6b7280;font-size:13px}svg.chart{display:block;margin-top:8px}
@media print{body{background:#fff}section,.kpi{box-shadow:none;border:1px solid #e5e7eb}}
"""
# Proves in a real browser that the page laid out: counts the charts that got a size.
SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var n = 0;
  document.querySelectorAll('svg.chart').forEach(function (s) {
    var b = s.getBoundingClientRect();
    if (b.width > 0 && b.height > 0) { n++; s.setAttribute('data-rendered', 'yes'); }
  });
  document.body.setAttribute('data-charts-rendered', String(n));
});
"""


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th{" class=l" if i < left else ""}>{e(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(
        f'<td{" class=l" if i < left else (" class=reasons" if c.startswith("§") else "")}>'
        f'{e(c.lstrip("§"))}</td>' for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="wide"><table><tr>{th}</tr>{body}</table></div>'


def _kpis(r: dict[str, Any]) -> str:
    cur, eco, lift = r["currency"], r["economics"], r["lift"]
    c = r["conversion_rate"]
    cards = [("Enrolled", num(r["enrolled"]), f"{r['excluded']} excluded, {r['active']} active"),
             ("Converted", num(r["converted"]),
              f"{pct(c['rate'])} (95% CI {pct(c['ci_low'])}–{pct(c['ci_high'])})"),
             ("Revenue", money(eco["revenue"], cur), "from customers who got messages"),
             ("Cost", money(eco["cost"], cur), f"{num(eco['messages'])} messages"),
             ("Cost per conversion", money(eco["cost_per_conversion"], cur),
              f"ROI {roi(eco['roi'])}")]
    if lift:
        a = lift["absolute"]
        cards.append(("Lift over holdout", "–" if a["diff"] is None else
                      f"{a['diff'] * 100:+.1f} pts",
                      "95% CI " + ("–" if a["ci_low"] is None else
                                   f"{a['ci_low'] * 100:+.1f} to {a['ci_high'] * 100:+.1f}")))
    return '<div class="kpis">' + "".join(
        f'<div class="kpi"><small>{e(t)}</small><b>{e(v)}</b><small>{e(s)}</small></div>'
        for t, v, s in cards) + "</div>"


def _verdicts(r: dict[str, Any]) -> str:
    out = []
    for cmp in (r["experiment"] or {}).get("comparisons", []):
        cls = "win" if cmp["significant"] else ""
        out.append(f'<div class="verdict {cls}">{e(cmp["text"])}</div>')
    if r["lift"]:
        lift = r["lift"]
        cls = ("win" if lift["winner"] == "cascade" else "lose") if lift["significant"] else ""
        out.append(f'<div class="verdict {cls}">{e(lift["text"])}</div>')
    return "".join(out) or '<div class="verdict">One variant, no holdout: nothing to ' \
                           'compare.</div>'


def _variants(r: dict[str, Any]) -> str:
    cur = r["currency"]
    rows = [[n, num(v["enrolled"]), num(v["converted"]), pct(v["rate"]),
             f"{pct(v['ci_low'])}–{pct(v['ci_high'])}", num(v["messages_sent"]),
             money(v["revenue"], cur), money(v["cost"], cur),
             money(v["cost_per_conversion"], cur), roi(v["roi"]),
             hours(v["hours_to_convert"]["median"]), hours(v["hours_to_convert"]["p90"])]
            for n, v in r["variants"].items()]
    return _table(["variant", "enrolled", "converted", "rate", "95% CI", "messages",
                   "revenue", "cost", "cost/conv.", "ROI", "median to convert",
                   "p90 to convert"], rows)


def _funnel_rows(rows: list[dict[str, Any]], cur: str | None) -> list[list[str]]:
    out = []
    for s in rows:
        step = f"{s['index'] + 1}" if s["phase"] == "cascade" else f"after {s['index'] + 1}"
        out.append([step, s["channel"], num(s["reached"]), num(s["sent"]),
                    num(s["delivered"]), num(s["opened"]), num(s["clicked"]),
                    num(s["failed"]), num(s["skipped"]),
                    "§" + reasons(s["skipped_by_reason"], s.get("deferred", 0),
                                  s.get("held", 0)),
                    num(s["converted_after"]), money(s["cost"], cur)])
    return out


FUNNEL_HEAD = ["step", "channel", "reached", "sent", "delivered", "opened", "clicked",
               "failed", "skipped", "skip reasons", "converted after", "cost"]


def _funnels(r: dict[str, Any]) -> str:
    parts = []
    for name, rows in r["funnel"]["by_variant"].items():
        if rows:
            parts.append(f"<h3>{e(name)} · {num(r['variants'][name]['enrolled'])} enrolled"
                         f"</h3>" + _table(FUNNEL_HEAD, _funnel_rows(rows, r["currency"]), 2))
    return "".join(parts)


def _attribution(r: dict[str, Any]) -> str:
    a, cur = r["attribution"], r["currency"]
    rows = [[f"{s['index'] + 1}", s["channel"], num(s["conversions"]),
             money(s["revenue"], cur), hours(s["hours_to_convert"]["median"]),
             hours(s["hours_to_convert"]["p90"])] for s in a["by_step"]]
    for key, label in (("holdout", "holdout"), ("before_first_message", "before any message")):
        n = a["no_prior_message"][key]
        rows.append(["–", label, num(n["conversions"]), money(n["revenue"], cur), "–", "–"])
    t = a["hours_to_convert"]
    return (_table(["step", "last message", "conversions", "revenue", "median wait",
                    "p90 wait"], rows, 2) +
            f'<p class="notes">Time from the credited message to the purchase: median '
            f'{hours(t["since_message"]["median"])}, p90 {hours(t["since_message"]["p90"])}.'
            f' From entering the campaign: median {hours(t["since_enrollment"]["median"])},'
            f' p90 {hours(t["since_enrollment"]["p90"])}.</p>')


def _economics(r: dict[str, Any]) -> str:
    eco, cur = r["economics"], r["currency"]
    rows = [[f"{s['index'] + 1}" if s["phase"] == "cascade" else f"after {s['index'] + 1}",
             s["channel"], num(s["sent"]), money(s["cost"], cur), num(s["converted_after"]),
             money(s["revenue"], cur), money(s["cost_per_conversion"], cur), roi(s["roi"])]
            for s in eco["steps"]]
    lift = r["lift"]
    extra = ""
    if lift and lift.get("incremental_conversions") is not None:
        extra = (f'<p>Compared with the holdout, the cascade earned about '
                 f'<b>{lift["incremental_conversions"]:,.1f}</b> extra conversions and '
                 f'<b>{money(lift["incremental_revenue"], cur)}</b> extra revenue for '
                 f'{money(lift["cost"], cur)} of messages: '
                 f'{money(lift["cost_per_incremental_conversion"], cur)} per extra '
                 f'conversion, incremental ROI {roi(lift["incremental_roi"])}.</p>')
    return extra + _table(["step", "channel", "sent", "cost", "conversions after",
                           "revenue after", "cost/conv.", "ROI"], rows, 2)


def render_html(r: dict[str, Any]) -> str:
    title = f"{r['campaign']} · report"
    notes = "".join(f"<li>{e(n)}</li>" for n in r["notes"])
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(title)}</title><style>{CSS}</style></head><body><main>
<h1>{e(r['campaign'])}</h1>
<div class="sub">{e(r['description'])} · run {e(r['run_id'])} · {e(r['status'])} ·
report generated {e((r['generated_at'] or '')[:16].replace('T', ' '))} UTC</div>
{_kpis(r)}
<section id="verdicts"><h2>What the numbers say</h2>{_verdicts(r)}</section>
<section id="rates"><h2>Conversion rate by variant</h2>{charts.rates_chart(r)}
{_variants(r)}</section>
<section id="funnel"><h2>Funnel</h2>{charts.funnel_chart(r)}{_funnels(r)}</section>
<section id="timeline"><h2>Conversion over time</h2>{charts.curve_chart(r)}</section>
<section id="attribution"><h2>Which message did it (last touch)</h2>
{charts.attribution_chart(r)}{_attribution(r)}</section>
<section id="economics"><h2>What each step buys</h2>{_economics(r)}</section>
<section class="notes"><h2>How to read this</h2><ul>{notes}
<li>Rates carry 95% Wilson intervals; variants are compared with a two-sided
two-proportion z-test (Newcombe interval for the difference; Holm-adjusted with more than
two variants); relative lift uses the log (Katz) interval; "customers needed" is for 80%
power at the observed difference.</li>
<li>Each conversion is credited to the last message that went out before it. Opens and
clicks are shown where the provider reports them.</li></ul></section>
</main><script>{SCRIPT}</script></body></html>"""


def write_html(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
