"""`omnicascade report RUN_ID --html FILE`: one self-contained page (inline CSS and SVG,
no network) that a marketer can open offline or mail to a colleague."""

from __future__ import annotations

from html import escape as e
from pathlib import Path
from typing import Any

from omnicascade.reports import charts
from omnicascade.reports.format import (
    after_conversion,
    cost,
    has_variants,
    hours,
    incremental_revenue,
    money,
    num,
    pct,
    reasons,
    rehearsal,
    revenue,
    roi,
    saved_by_engagement,
    step,
    total,
)
from omnicascade.vocabulary import HOLDOUT

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;
margin:0;background:#f3f4f6}main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{margin:0 0 4px;font-size:28px}h2{font-size:19px;margin:0 0 12px}.sub{color:#6b7280}
section{background:#fff;border-radius:10px;padding:18px 22px;margin:18px 0;
box-shadow:0 1px 2px rgba(0,0,0,.06)}.kpis{display:grid;gap:12px;
grid-template-columns:repeat(auto-fit,minmax(150px,1fr));margin-top:18px}
.kpi{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.kpi b{display:block;font-size:22px;margin-top:4px;white-space:nowrap}
.kpi small{color:#6b7280;display:block}.kpi b.several{font-size:17px}
.kpi .code{font-size:13px;font-weight:600;color:#4b5563}
td.m{white-space:normal;min-width:9em}
.verdict{border-left:5px solid #9ca3af;padding:8px 12px;margin:8px 0;background:#f9fafb;
font-size:15px}.verdict::first-letter{text-transform:uppercase}.verdict.win{border-color:#059669;background:#ecfdf5}
.verdict.lose{border-color:#dc2626;background:#fef2f2}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:10px}
th,td{padding:5px 7px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th{color:#6b7280;font-weight:600;white-space:normal;vertical-align:bottom}td:first-child,th:first-child,td.l,th.l{text-align:left}
td.reasons{white-space:normal;text-align:left;color:#6b7280;min-width:200px;
font-size:12px}.wide,.chart-scroll{overflow-x:auto}h3{font-size:15px;margin:16px 0 0}
.notes{color:#6b7280;font-size:13px}svg.chart{display:block;margin-top:8px}
.rehearsal{background:#fef3c7;border:1px solid #f59e0b;color:#78350f;border-radius:8px;
padding:8px 12px;margin:12px 0 0;font-size:14px}
@media (max-width:700px){.chart-scroll svg.chart{min-width:900px}}
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


CELL_CLASS = {"§": " class=reasons", "¤": " class=m"}  # skip reasons; revenue (may wrap)


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th{" class=l" if i < left or h[:1] == "§" else ""}>{e(h.lstrip("§"))}</th>'
                 for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(
        f'<td{" class=l" if i < left else CELL_CLASS.get(c[:1], "")}>'
        f'{e(c.lstrip("§¤"))}</td>' for i, c in enumerate(row)) + "</tr>" for row in rows)
    # a focusable region: a table wider than a phone scrolls by keyboard too (axe)
    label = e(", ".join(h.lstrip("§") for h in head[:3]))
    return (f'<div class="wide" tabindex="0" role="region" aria-label="table: {label}">'
            f'<table><tr>{th}</tr>{body}</table></div>')


def _kpis(r: dict[str, Any]) -> str:
    eco, lift = r["economics"], r["lift"]
    c = r["conversion_rate"]
    missing = eco["conversions_without_amount"]
    # one line per currency: amounts in different currencies are never added up
    amounts = [money(a, c) for c, a in eco["revenue_by_currency"].items()] or \
        [money(eco["revenue"], eco["revenue_currency"])]
    about = [total(eco) + " at the configured rates"] if total(eco) else []
    about += [f"{num(missing)} without an amount"] if missing else []
    cards = [("Enrolled", [num(r["enrolled"])], f"{r['excluded']} excluded, {r['active']} active"),
             ("Converted", [num(r["converted"])],
              f"{pct(c['rate'])} (95% CI {pct(c['ci_low'])}–{pct(c['ci_high'])})"),
             ("Revenue", amounts, " · ".join(about) or "from customers who got messages"),
             ("Cost", [cost(eco["cost"], eco)], f"{num(eco['messages'])} messages"),
             ("Cost per conversion", [cost(eco["cost_per_conversion"], eco)],
              f"ROI {roi(eco['roi'])}")]
    if r.get("unmatched_conversions"):
        cards.append(("Unmatched conversions", [num(r["unmatched_conversions"])],
                      "for customer ids nobody knows"))
    if lift:
        a = lift["absolute"]
        cards.append(("Lift over holdout", ["–" if a["diff"] is None else
                                            f"{a['diff'] * 100:+.1f} pts"],
                      "95% CI " + ("–" if a["ci_low"] is None else
                                   f"{a['ci_low'] * 100:+.1f} to {a['ci_high'] * 100:+.1f}")))
    return '<div class="kpis">' + "".join(
        f'<div class="kpi"><small>{e(t)}</small>'
        + "".join(f'<b{" class=several" if len(v) > 1 else ""}>{_figure(x)}</b>' for x in v)
        + f'<small>{e(s)}</small></div>' for t, v, s in cards) + "</div>"


def _figure(text: str) -> str:
    """A KPI figure, its currency code set small: `6,863.48 <span>EUR</span>`."""
    number, _, code = text.rpartition(" ")
    if number and len(code) == 3 and code.isupper():
        return f'{e(number)} <span class="code">{e(code)}</span>'
    return e(text)


def _verdicts(r: dict[str, Any]) -> str:
    out = []
    summary = (r["experiment"] or {}).get("summary")  # a winner decided (reports/winner.py)
    if summary:
        out.append(f'<div class="verdict win">{e(summary)}</div>')
    for cmp in (r["experiment"] or {}).get("comparisons", []):
        cls = "win" if cmp["significant"] else ""
        out.append(f'<div class="verdict {cls}">{e(cmp["text"])}</div>')
    if r["lift"]:
        lift = r["lift"]
        cls = ("win" if lift["winner"] == "cascade" else "lose") if lift["significant"] else ""
        out.append(f'<div class="verdict {cls}">{e(lift["text"])}</div>')
    elif r.get("lift_note"):
        out.append(f'<div class="verdict">No lift over the holdout: {e(r["lift_note"])}</div>')
    return "".join(out) or '<div class="verdict">One variant, no holdout: nothing to ' \
                           'compare.</div>'


def _variants(r: dict[str, Any]) -> str:
    rows = [[n, num(v["enrolled"]), num(v["converted"]), pct(v["rate"]),
             f"{pct(v['ci_low'])}–{pct(v['ci_high'])}", num(v["messages_sent"]),
             "¤" + revenue(v), cost(v["cost"], v), cost(v["cost_per_conversion"], v),
             roi(v["roi"]),
             hours(v["hours_to_convert"]["median"]), hours(v["hours_to_convert"]["p90"])]
            for n, v in r["variants"].items()]
    return _table(["variant", "enrolled", "converted", "rate", "95% CI", "messages",
                   "revenue", "cost", "cost/conv.", "ROI", "median to convert",
                   "p90 to convert"], rows)


def _step_table(r: dict[str, Any], head: list[str], rows: list[dict[str, Any]],
                cells: Any) -> str:
    """A per-step table: variant (when several get messages), step, then `cells(row)`."""
    variant = has_variants(r)
    body = [([s.get("variant") or "–"] if variant else []) + [step(s)] + cells(s)
            for s in rows]
    return _table((["variant"] if variant else []) + head, body, 3 if variant else 2)


FUNNEL_HEAD = ["step", "channel", "reached", "sent", "delivered", "opened", "clicked",
               "failed", "skipped", "§skip reasons", "converted after", "cost"]


def _funnels(r: dict[str, Any]) -> str:
    return _step_table(r, FUNNEL_HEAD, r["funnel"]["all"], lambda s: [
        s["channel"], num(s["reached"]), num(s["sent"]), num(s["delivered"]),
        num(s["opened"]), num(s["clicked"]), num(s["failed"]), num(s["skipped"]),
        "§" + reasons(s["skipped_by_reason"], s.get("deferred", 0), s.get("held", 0),
                      s.get("timed", 0), s.get("capped", 0)),
        num(s["converted_after"]), cost(s["cost"], s)])


def _attribution(r: dict[str, Any]) -> str:
    a = r["attribution"]
    rows = [*a["by_step"], *({"label": "–", "channel": label, **a["no_prior_message"][key],
                              "hours_to_convert": {"median": None, "p90": None}}
                             for key, label in (("holdout", "none: holdout"),
                                                ("before_first_message",
                                                 "none: before any message"))
                             if key != HOLDOUT or HOLDOUT in r["variants"])]
    t = a["hours_to_convert"]
    return (_step_table(r, ["step", "last message", "conversions", "revenue", "median wait",
                            "p90 wait"], rows, lambda s: [
        s["channel"], num(s["conversions"]), "¤" + revenue(s),
        hours(s["hours_to_convert"]["median"]),
        hours(s["hours_to_convert"]["p90"])]) +
            f'<p class="notes">Time from the credited message to the purchase: median '
            f'{hours(t["since_message"]["median"])}, p90 {hours(t["since_message"]["p90"])}.'
            f' From entering the campaign: median {hours(t["since_enrollment"]["median"])},'
            f' p90 {hours(t["since_enrollment"]["p90"])}.</p>')


def _economics(r: dict[str, Any]) -> str:
    eco, lift = r["economics"], r["lift"]
    extra = ""
    if lift and lift.get("incremental_conversions") is not None:
        cur = lift["cost_currency"]
        extra = (f'<p>Compared with the holdout, the cascade earned about '
                 f'<b>{lift["incremental_conversions"]:,.1f}</b> extra conversions and '
                 f'{e(incremental_revenue(lift))} for {money(lift["cost"], cur)} of '
                 f'messages: {money(lift["cost_per_incremental_conversion"], cur)} per extra '
                 f'conversion, incremental ROI {roi(lift["incremental_roi"])}.</p>')
    table = _step_table(r, ["step", "channel", "sent", "cost", "conversions after",
                            "revenue after", "cost/conv.", "ROI"], eco["steps"], lambda s: [
        s["channel"], num(s["sent"]), cost(s["cost"], s), num(s["converted_after"]),
        "¤" + revenue(s), cost(s["cost_per_conversion"], s), roi(s["roi"])])
    if len(eco["by_currency"]) > 1 or r["fx"]:
        table += _table(["currency", "conversions", "revenue", "rate",
                         f"in {eco['cost_currency']}"],
                        [[c, num(x["conversions"]), money(x["revenue"], c),
                          "–" if x["rate"] is None else f"{x['rate']:g}",
                          money(x["in_cost_currency"], eco["cost_currency"])]
                         for c, x in eco["by_currency"].items()])
    follow_ups = after_conversion(eco)
    saved = saved_by_engagement(eco)
    return extra + table + "".join(f'<p class="notes">{e(line)}.</p>'
                                   for line in (follow_ups, saved) if line)


def sections(r: dict[str, Any]) -> dict[str, str]:
    """The report's parts as HTML: this page and the web console's run page render them
    with this one code path (the console serves CSS at /static/report.css)."""
    return {"kpis": _kpis(r), "verdicts": _verdicts(r),
            "rates": charts.rates_chart(r) + _variants(r),
            "funnel": charts.funnel_chart(r) + _funnels(r), "timeline": charts.curve_chart(r),
            "attribution": charts.attribution_chart(r) + _attribution(r),
            "economics": _economics(r)}


def render_html(r: dict[str, Any]) -> str:
    title = f"{r['campaign']} · report"
    notes = "".join(f"<li>{e(n)}</li>" for n in r["notes"])
    part = sections(r)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(title)}</title><style>{CSS}</style></head><body><main>
<h1>{e(r['campaign'])}</h1>
<div class="sub">{e(r['description'])} · run {e(r['run_id'])} · {e(r['status'])} ·
report generated {e((r['generated_at'] or '')[:16].replace('T', ' '))} UTC</div>
{f'<div class="rehearsal" id="rehearsal">{e(rehearsal(r))}</div>' if r['rehearsal'] else ''}
{part["kpis"]}
<section id="verdicts"><h2>What the numbers say</h2>{part["verdicts"]}</section>
<section id="rates"><h2>Conversion rate by variant</h2>{part["rates"]}</section>
<section id="funnel"><h2>Funnel</h2>{part["funnel"]}</section>
<section id="timeline"><h2>Conversion over time</h2>{part["timeline"]}</section>
<section id="attribution"><h2>Which message did it (last touch)</h2>
{part["attribution"]}</section>
<section id="economics"><h2>What each step buys</h2>{part["economics"]}</section>
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
