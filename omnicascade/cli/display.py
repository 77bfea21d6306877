"""Rich tables for people; the CLI prints JSON instead when asked with --json."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from omnicascade.clock import now_utc
from omnicascade.reports.format import money
from omnicascade.reports.when import clock_from, parse_iso, relative, span
from omnicascade.vocabulary import reason_label, step_label

if TYPE_CHECKING:  # the CLI starts without loading the library (cli/common.py)
    from omnicascade.cascade.control import Change

# Piped output keeps whole ids instead of wrapping at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    # Plain print: rich would wrap long lines and break machine parsing.
    print(json.dumps(data, indent=2, default=str))


def ago(text: str | None) -> str:
    """An ISO instant of the JSON shapes as `3 h ago` (`–` when there is none)."""
    at = parse_iso(text)
    return relative(at, now_utc()) if at else "–"


def with_rehearsal(status: str, rehearsal: dict[str, Any] | None) -> str:
    return f"{status} · {rehearsal['label']}" if rehearsal else status


def runs_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="Runs")
    numbers = ("enrolled", "excluded", "active", "converted", "rate", "unmatched")
    for col in ("run", "campaign", "version", "status", *numbers, "created"):
        t.add_column(col, justify="right" if col in numbers else "left",
                     no_wrap=col == "run")
    for r in rows:
        t.add_row(r["run_id"], r["campaign"], str(r.get("version", "")),
                  with_rehearsal(r["status"], r.get("rehearsal")), str(r["enrolled"]),
                  str(r["excluded"]), str(r["active"]), str(r["converted"]),
                  f"{r['conversion_rate']:.1%}", str(r.get("unmatched", 0)),
                  ago(r["created_at"]))
    if any(r.get("rehearsal") for r in rows):  # one clock per view: say which
        t.caption = "created: real time, rehearsals too (their campaign time: runs show)"
    return t


def _reasons(s: dict[str, Any]) -> str:
    out = [f"{reason_label(k)} {v}" for k, v in sorted(s["skipped_by_reason"].items())]
    out += [f"deferred by quiet hours {s['deferred']}"] if s.get("deferred") else []
    out += [f"deferred by cap {s['capped']}"] if s.get("capped") else []
    out += [f"waiting for the best send time {s['timed']}"] if s.get("timed") else []
    out += [f"held while paused {s['held']}"] if s.get("held") else []
    return ", ".join(out)


def funnel_table(run: dict[str, Any]) -> Table:
    t = Table(title=with_rehearsal(f"{run['campaign']} · {run['run_id']} · {run['status']}",
                                   run.get("rehearsal")))
    rows = [*run["steps"], *run.get("after_conversion", [])]
    # a variant column when the run has several: step 1 is email in one, SMS in another
    several = len({s.get("variant") for s in rows}) > 1
    # `waiting`: cascades still in progress whose last step so far is this one (live funnel)
    live = any(s.get("waiting") for s in run["steps"]) or run.get("active")
    cols = (("variant",) if several else ()) + ("step", "channel", "sent", "skipped",
                                                "failed") \
        + (("waiting",) if live else ()) + ("skip reasons",)
    for col in cols:
        t.add_column(col, justify="right" if col in ("sent", "skipped", "failed", "waiting")
                     else "left")
    for s in rows:
        follow_up = s in run.get("after_conversion", [])
        label = s.get("label") or step_label(s["index"], "follow_up" if follow_up else None)
        sent = str(s["sent"]) + (f" ({s['unknown']} unknown)" if s.get("unknown") else "")
        waiting = ("" if follow_up else str(s.get("waiting", 0)),) if live else ()
        t.add_row(*((str(s.get("variant")),) if several else ()), label, s["channel"], sent,
                  str(s["skipped"]), str(s["failed"]), *waiting, _reasons(s))
    return t


def run_summary(run: dict[str, Any]) -> str:
    enrolled, conv = run["enrolled"], run["converted"]
    rate = f"{conv / enrolled:.1%}" if enrolled else "–"
    lines = [f"enrolled {enrolled} · excluded (already converted) {run['excluded']} · "
             f"still active {run['active']} · converted {conv} ({rate})",
             f"messages after a recorded conversion: {run['sent_after_conversion']}"]
    if ended := ended_early(run):
        lines.insert(1, ended)
    if run.get("unmatched"):
        lines.append(f"conversions for customers nobody knows (unmatched) while it ran: "
                     f"{run['unmatched']}")
    if len(run["variants"]) > 1:
        lines.append("variants: " + ", ".join(
            f"{k}: {v['converted']}/{v['enrolled']}"
            + (f" ({v['converted'] / v['enrolled']:.1%})" if v["enrolled"] else "")
            for k, v in sorted(run["variants"].items())))
    if clock := clock_from(run.get("rehearsal")):
        elapsed = now_utc() - clock.started
        lines.append(f"{run['rehearsal']['label']}: launched {span(elapsed)} ago, "
                     f"{span(clock.span(elapsed))} ago in campaign time; times and durations "
                     f"shown are campaign time")
    return "\n".join(lines)


def control_line(change: Change) -> str:
    """What `runs stop|pause|resume` did, in a sentence."""
    run = f"run {change.run_id}"
    if not change.changed:
        return f"{run} is already {change.status}; nothing changed" + (
            f" (told its {change.told} live cascade(s) again)" if change.told else "")
    if change.status == "stopped":
        return f"{run} stopped: enrolls nobody, sends nothing more; {change.ended} " \
               f"cascade(s) in flight ended"
    if change.status == "draining":
        return f"{run} draining: enrolls nobody new; its {change.live} cascade(s) in flight " \
               f"finish normally, then it is stopped"
    if change.status == "paused":
        return f"{run} paused: no message goes out; the sends of its {change.live} live " \
               f"cascade(s) are held until `omnicascade runs resume {change.run_id}`"
    return f"{run} resumed ({change.status}): held sends of its {change.live} live " \
           f"cascade(s) go out now, each checked again first"


def ended_early(data: dict[str, Any]) -> str:
    """E.g. "stopped 3 (replaced by a newer version 1, run stopped 2) · exited 1
    (cart_emptied 1)"; "" if none."""
    return " · ".join(f"{k} {data[k]} (" + ", ".join(
        f"{reason_label(r)} {n}" for r, n in data.get(f"{k}_by_reason", {}).items()) + ")"
        for k in ("stopped", "exited") if data.get(k))


def outbox_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title=f"Outbox ({len(rows)} messages)")
    for col in ("sent", "customer", "key", "step", "channel", "to", "subject / text"):
        t.add_column(col, overflow="fold")
    for m in rows:
        text = m["subject"] or m.get("body_note") or m["body"].replace("\n", " ")
        t.add_row(ago(m["sent_at"]), m["customer_id"], m.get("key") or "–",
                  m.get("label") or step_label(m["step"]),
                  m["channel"], m["to"], text[:70] + ("…" if len(text) > 70 else ""))
    return t


def _planned(text: str, zone: str | None = None) -> str:
    """A planned local time of the preview (`…T09:00:00+01:00`) as `2026-12-02 09:00
    Europe/Berlin` (the zone named, as every view names it); anything else (`3d after a
    conversion`) as written."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return text
    return f"{at:%Y-%m-%d %H:%M} {zone or at.tzname() or 'UTC'}"


def preview_messages(items: list[dict[str, Any]]) -> None:
    for m in items:
        mark = " (this customer's variant)" if m.get("assigned") and m["variant"] != "all" \
            else ""
        to = m["to"] or "no address"
        step = step_label(int(m["step"]) - 1, "follow_up" if m["phase"] != "cascade"
                          else None) if str(m["step"]).isdigit() else f"{m['phase']} {m['step']}"
        console.rule(f"[bold]{m['variant']}{mark} · {step} · {m['channel']}[/] → {to}")
        when = _planned(m.get("at", ""), m.get("zone"))
        if m.get("deferred_from"):
            when += f"  (quiet hours: deferred from {_planned(m['deferred_from'], m.get('zone'))})"
        if m.get("send_time_from"):
            when += f"  (best send time: moved from " \
                    f"{_planned(m['send_time_from'], m.get('zone'))})"
        if m.get("skipped"):
            when = f"skipped: {reason_label(m['skipped'])}"
        console.print(f"[dim]{when}[/]", highlight=False)
        if m.get("send_time"):
            console.print(f"[dim]send time: {m['send_time']['why']}[/]", highlight=False)
        if m.get("may_skip"):
            console.print(f"[dim]{m['may_skip']}[/]", highlight=False)
        if "error" in m:
            console.print(f"[red]{m['error']}[/]", highlight=False)
            continue
        for key in ("subject", "title"):
            if m.get(key):
                console.print(f"{key}: {m[key]}", highlight=False, markup=False)
        if m.get("whatsapp_template"):
            t = m["whatsapp_template"]
            console.print(f"WhatsApp template {t['content_sid']}: " + ", ".join(
                f"{{{{{k}}}}} = {v}" for k, v in t["content_variables"].items()),
                markup=False, highlight=False)
            console.print("[dim](WhatsApp gets the approved template; the outbox, this body)[/]")
        console.print(m["body"], markup=False, highlight=False)
        cost = money(m["cost"], m["currency"]) if "cost" in m else ""
        if m.get("segments"):
            cost = f"{m['segments']} SMS segment(s) · {cost}" if cost else \
                f"{m['segments']} SMS segment(s)"
        if cost:
            console.print(f"[dim]{cost}[/]", highlight=False)


def audience_summary(s: dict[str, Any]) -> None:
    console.print(f"[bold]{s['campaign']}[/]: {s['customers']} customers"
                  + (f" ({s['unknown_customers']} unknown — import them first)"
                     if s["unknown_customers"] else ""))
    t = Table(title="Variants")
    t.add_column("variant")
    t.add_column("customers", justify="right")
    t.add_column("share", justify="right")
    total = max(s["customers"], 1)
    for name, n in sorted(s["variants"].items()):
        t.add_row(name, str(n), f"{n / total:.1%}")
    console.print(t)
    if s.get("holdout"):
        console.print(f"[dim]{s['holdout']['note']}"
                      + (": too few for a lift" if not s["holdout"]["customers"] else "")
                      + "[/]", highlight=False)
    r = Table(title="Reach and messages")
    for col in ("channel", "reachable", "messages per 1,000"):
        r.add_column(col, justify="left" if col == "channel" else "right")
    for ch, n in s["reachable"].items():
        r.add_row(ch, f"{n} ({n / total:.0%})", str(s["messages_per_1000"][ch]))
    console.print(r)
    console.print(f"expected cost of the full cascade per 1,000 customers (nobody converts): "
                  f"{money(s['cost_per_1000'], s['currency'])}")
