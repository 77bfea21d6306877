"""`omnicascade report RUN_ID` in the terminal: rich tables over the report dict."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from omnicascade.reports.format import hours, money, num, pct, reasons, roi


def _right(t: Table, *cols: str, left: int = 1) -> Table:
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i < left else "right")
    return t


def verdict_lines(r: dict[str, Any]) -> list[Text]:
    out = []
    for cmp in (r["experiment"] or {}).get("comparisons", []):
        out.append(Text(("✓ " if cmp["significant"] else "… ") + cmp["text"],
                        style="bold green" if cmp["significant"] else "yellow"))
    lift = r["lift"]
    if lift:
        style = ("bold green" if lift["winner"] == "cascade" else "bold red") \
            if lift["significant"] else "yellow"
        out.append(Text(lift["text"], style=style))
        if lift.get("incremental_conversions") is not None:
            cur = r["currency"]
            out.append(Text(f"  incremental: {lift['incremental_conversions']:,.1f} conversions,"
                            f" {money(lift['incremental_revenue'], cur)} revenue for "
                            f"{money(lift['cost'], cur)} of messages "
                            f"({money(lift['cost_per_incremental_conversion'], cur)} per extra "
                            f"conversion, ROI {roi(lift['incremental_roi'])})"))
    return out


def variants_table(r: dict[str, Any]) -> Table:
    cur = r["currency"]
    t = _right(Table(title="Conversion by variant"), "variant", "enrolled", "converted",
               "rate", "95% CI", "messages", "revenue", "cost", "cost/conv.", "ROI",
               "median", "p90")
    for name, v in r["variants"].items():
        t.add_row(name, num(v["enrolled"]), num(v["converted"]), pct(v["rate"]),
                  f"{pct(v['ci_low'])}–{pct(v['ci_high'])}", num(v["messages_sent"]),
                  money(v["revenue"], cur), money(v["cost"], cur),
                  money(v["cost_per_conversion"], cur), roi(v["roi"]),
                  hours(v["hours_to_convert"]["median"]), hours(v["hours_to_convert"]["p90"]))
    return t


def funnel_table(title: str, rows: list[dict[str, Any]], cur: str | None) -> Table:
    t = _right(Table(title=title), "step", "channel", "reached", "sent", "delivered", "opened",
               "clicked", "failed", "skipped", "converted after", "cost", "revenue",
               "skip reasons", left=2)
    t.columns[-1].justify = "left"
    for s in rows:
        step = str(s["index"] + 1) if s["phase"] == "cascade" else f"after {s['index'] + 1}"
        t.add_row(step, s["channel"], num(s["reached"]), num(s["sent"]), num(s["delivered"]),
                  num(s["opened"]), num(s["clicked"]), num(s["failed"]), num(s["skipped"]),
                  num(s["converted_after"]), money(s["cost"], cur), money(s["revenue"], cur),
                  reasons(s["skipped_by_reason"], s.get("deferred", 0), s.get("held", 0)))
    return t


def attribution_table(r: dict[str, Any]) -> Table:
    a, cur = r["attribution"], r["currency"]
    t = _right(Table(title="Conversions by last message (last touch)"), "step",
               "last message", "conversions", "revenue", "median wait", "p90 wait", left=2)
    for s in a["by_step"]:
        t.add_row(str(s["index"] + 1), s["channel"], num(s["conversions"]),
                  money(s["revenue"], cur), hours(s["hours_to_convert"]["median"]),
                  hours(s["hours_to_convert"]["p90"]))
    for key, label in (("holdout", "none: holdout"),
                       ("before_first_message", "none: before any message")):
        n = a["no_prior_message"][key]
        t.add_row("–", label, num(n["conversions"]), money(n["revenue"], cur), "–", "–")
    return t


def economics_line(r: dict[str, Any]) -> Text:
    eco, cur = r["economics"], r["currency"]
    return Text(f"messages {num(eco['messages'])} · cost {money(eco['cost'], cur)} · revenue "
                f"{money(eco['revenue'], cur)} · cost per conversion "
                f"{money(eco['cost_per_conversion'], cur)} · ROI {roi(eco['roi'])}"
                " (customers who got messages)")


def report_view(r: dict[str, Any]) -> list[Any]:
    c = r["conversion_rate"]
    out: list[Any] = [
        Text(f"{r['campaign']} · {r['run_id']} · {r['status']}", style="bold"),
        Text(f"enrolled {num(r['enrolled'])} · converted {num(r['converted'])} "
             f"({pct(c['rate'])}, 95% CI {pct(c['ci_low'])}–{pct(c['ci_high'])}) · "
             f"excluded {r['excluded']} · active {r['active']}"),
        *verdict_lines(r), variants_table(r)]
    by_variant = {n: rows for n, rows in r["funnel"]["by_variant"].items() if rows}
    if len(by_variant) > 1:
        out += [funnel_table(f"Funnel · {n}", rows, r["currency"])
                for n, rows in by_variant.items()]
    else:
        out.append(funnel_table("Funnel", r["funnel"]["all"], r["currency"]))
    out += [attribution_table(r), economics_line(r)]
    out += [Text(f"note: {n}", style="dim") for n in r["notes"]]
    return out
