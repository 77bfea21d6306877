"""`omnicascade report RUN_ID` in the terminal: rich tables over the report dict."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

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


def _right(t: Table, *cols: str, left: int = 1) -> Table:
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i < left else "right")
    return t


def verdict_lines(r: dict[str, Any]) -> list[Text]:
    out = []
    summary = (r["experiment"] or {}).get("summary")  # a winner decided (reports/winner.py)
    if summary:
        out.append(Text(summary, style="bold"))
    for cmp in (r["experiment"] or {}).get("comparisons", []):
        out.append(Text(("✓ " if cmp["significant"] else "… ") + cmp["text"],
                        style="bold green" if cmp["significant"] else "yellow"))
    lift = r["lift"]
    if lift:
        style = ("bold green" if lift["winner"] == "cascade" else "bold red") \
            if lift["significant"] else "yellow"
        out.append(Text(lift["text"], style=style))
        if lift.get("incremental_conversions") is not None:
            cur = lift["cost_currency"]
            out.append(Text(f"  incremental: {lift['incremental_conversions']:,.1f} conversions,"
                            f" {incremental_revenue(lift)} for {money(lift['cost'], cur)} of "
                            f"messages "
                            f"({money(lift['cost_per_incremental_conversion'], cur)} per extra "
                            f"conversion, ROI {roi(lift['incremental_roi'])})"))
    elif r.get("lift_note"):
        out.append(Text(f"No lift over the holdout: {r['lift_note']}", style="yellow"))
    return out


def variants_table(r: dict[str, Any]) -> Table:
    t = _right(Table(title="Conversion by variant"), "variant", "enrolled", "converted",
               "rate", "95% CI", "messages", "revenue", "cost", "cost/conv.", "ROI",
               "median", "p90")
    for name, v in r["variants"].items():
        t.add_row(name, num(v["enrolled"]), num(v["converted"]), pct(v["rate"]),
                  f"{pct(v['ci_low'])}–{pct(v['ci_high'])}", num(v["messages_sent"]),
                  revenue(v), cost(v["cost"], v), cost(v["cost_per_conversion"], v),
                  roi(v["roi"]), hours(v["hours_to_convert"]["median"]),
                  hours(v["hours_to_convert"]["p90"]))
    return t


def funnel_table(r: dict[str, Any]) -> Table:
    """Every step's row; a variant column when several variants get messages."""
    variant = ["variant"] if has_variants(r) else []
    t = _right(Table(title="Funnel"), *variant, "step", "channel", "reached", "sent",
               "delivered", "opened", "clicked", "failed", "skipped", "converted after",
               "cost", "revenue", "skip reasons", left=2 + len(variant))
    t.columns[-1].justify = "left"
    for s in r["funnel"]["all"]:
        t.add_row(*([s["variant"]] if variant else []), step(s), s["channel"],
                  num(s["reached"]), num(s["sent"]), num(s["delivered"]), num(s["opened"]),
                  num(s["clicked"]), num(s["failed"]), num(s["skipped"]),
                  num(s["converted_after"]), cost(s["cost"], s), revenue(s),
                  reasons(s["skipped_by_reason"], s.get("deferred", 0), s.get("held", 0),
                          s.get("timed", 0), s.get("capped", 0)))
    return t


def attribution_table(r: dict[str, Any]) -> Table:
    a = r["attribution"]
    variant = ["variant"] if has_variants(r) else []
    t = _right(Table(title="Conversions by last message (last touch)"), *variant, "step",
               "last message", "conversions", "revenue", "median wait", "p90 wait",
               left=2 + len(variant))
    for s in a["by_step"]:
        t.add_row(*([s["variant"]] if variant else []), step(s), s["channel"],
                  num(s["conversions"]), revenue(s), hours(s["hours_to_convert"]["median"]),
                  hours(s["hours_to_convert"]["p90"]))
    for key, label in (("holdout", "none: holdout"),
                       ("before_first_message", "none: before any message")):
        if key == HOLDOUT and HOLDOUT not in r["variants"]:
            continue
        n = a["no_prior_message"][key]
        t.add_row(*(["–"] if variant else []), "–", label, num(n["conversions"]), revenue(n),
                  "–", "–")
    return t


def economics_lines(r: dict[str, Any]) -> list[Text]:
    eco = r["economics"]
    extra = total(eco)
    out = [Text(f"messages {num(eco['messages'])} · cost {cost(eco['cost'], eco)} · revenue "
                f"{revenue(eco)}{' (' + extra + ')' if extra else ''} · cost per conversion "
                f"{cost(eco['cost_per_conversion'], eco)} · ROI {roi(eco['roi'])}"
                " (customers who got messages)")]
    follow_ups = after_conversion(eco)
    if follow_ups:
        out.append(Text(follow_ups))
    saved = saved_by_engagement(eco)
    if saved:
        out.append(Text(saved))
    return out


def report_view(r: dict[str, Any]) -> list[Any]:
    c = r["conversion_rate"]
    banner = rehearsal(r)
    unmatched = r.get("unmatched_conversions") or 0
    out: list[Any] = [
        Text(f"{r['campaign']} · {r['run_id']} · {r['status']}"
             + (f" · {r['rehearsal']['label']}" if banner else ""), style="bold"),
        *([Text(banner, style="bold yellow")] if banner else []),
        Text(f"enrolled {num(r['enrolled'])} · converted {num(r['converted'])} "
             f"({pct(c['rate'])}, 95% CI {pct(c['ci_low'])}–{pct(c['ci_high'])}) · "
             f"excluded {r['excluded']} · active {r['active']}"
             + (f" · unmatched conversions {num(unmatched)}" if unmatched else "")),
        *verdict_lines(r), variants_table(r), funnel_table(r), attribution_table(r),
        *economics_lines(r)]
    out += [Text(f"note: {n}", style="dim") for n in r["notes"]]
    return out
