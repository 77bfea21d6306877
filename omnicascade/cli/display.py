"""Rich tables for people; the CLI prints JSON instead when asked with --json."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the CLI starts without loading the library (cli/common.py)
    from omnicascade.cascade.control import Change

# Piped output keeps whole ids instead of wrapping at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    # Plain print: rich would wrap long lines and break machine parsing.
    print(json.dumps(data, indent=2, default=str))


def runs_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="Runs")
    for col in ("run", "campaign", "version", "status", "enrolled", "excluded", "active",
                "converted", "rate", "created"):
        t.add_column(col, justify="right" if col in ("enrolled", "excluded", "active",
                                                     "converted", "rate") else "left",
                     no_wrap=col == "run")
    for r in rows:
        t.add_row(r["run_id"], r["campaign"], str(r.get("version", "")), r["status"],
                  str(r["enrolled"]),
                  str(r["excluded"]), str(r["active"]), str(r["converted"]),
                  f"{r['conversion_rate']:.1%}", (r["created_at"] or "")[:19])
    return t


def funnel_table(run: dict[str, Any]) -> Table:
    t = Table(title=f"{run['campaign']} · {run['run_id']} · {run['status']}")
    # `waiting`: cascades still in progress whose last step so far is this one (live funnel)
    live = any(s.get("waiting") for s in run["steps"]) or run.get("active")
    cols = ("step", "channel", "sent", "skipped", "failed") + (("waiting",) if live else ()) \
        + ("skip reasons",)
    for col in cols:
        t.add_column(col, justify="right" if col in ("sent", "skipped", "failed", "waiting")
                     else "left")
    for s in run["steps"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["skipped_by_reason"].items()))
        if s.get("deferred"):
            reasons += f"{', ' if reasons else ''}deferred by quiet hours {s['deferred']}"
        if s.get("held"):
            reasons += f"{', ' if reasons else ''}held while paused {s['held']}"
        sent = str(s["sent"]) + (f" ({s['unknown']} unknown)" if s.get("unknown") else "")
        t.add_row(str(s["index"] + 1), s["channel"], sent, str(s["skipped"]),
                  str(s["failed"]), *((str(s.get("waiting", 0)),) if live else ()), reasons)
    for s in run.get("after_conversion", []):
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["skipped_by_reason"].items()))
        t.add_row(f"after {s['index'] + 1}", s["channel"], str(s["sent"]), str(s["skipped"]),
                  str(s["failed"]), *(("",) if live else ()), reasons)
    return t


def run_summary(run: dict[str, Any]) -> str:
    enrolled, conv = run["enrolled"], run["converted"]
    rate = f"{conv / enrolled:.1%}" if enrolled else "–"
    lines = [f"enrolled {enrolled} · excluded (already converted) {run['excluded']} · "
             f"still active {run['active']} · converted {conv} ({rate})",
             f"messages after a recorded conversion: {run['sent_after_conversion']}"]
    if ended := ended_early(run):
        lines.insert(1, ended)
    if len(run["variants"]) > 1:
        lines.append("variants: " + ", ".join(
            f"{k}: {v['converted']}/{v['enrolled']}"
            + (f" ({v['converted'] / v['enrolled']:.1%})" if v["enrolled"] else "")
            for k, v in sorted(run["variants"].items())))
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
    """E.g. "stopped 3 (replaced 1, stopped 2) · exited 1 (cart_emptied 1)"; "" if none."""
    return " · ".join(f"{k} {data[k]} (" + ", ".join(
        f"{r} {n}" for r, n in data.get(f"{k}_by_reason", {}).items()) + ")"
        for k in ("stopped", "exited") if data.get(k))


def outbox_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title=f"Outbox ({len(rows)} messages)")
    for col in ("sent", "customer", "step", "channel", "to", "subject / text"):
        t.add_column(col, overflow="fold")
    for m in rows:
        text = m["subject"] or m["body"].replace("\n", " ")
        t.add_row((m["sent_at"] or "")[11:19], m["customer_id"], m["step"], m["channel"],
                  m["to"], text[:70] + ("…" if len(text) > 70 else ""))
    return t


def customer_view(data: dict[str, Any]) -> list[Any]:
    c = data["customer"]
    header = (f"[bold]{c['id']}[/] email={c['email'] or '–'} phone={c['phone'] or '–'} "
              f"telegram={c['telegram_chat_id'] or '–'} push={'yes' if c['push_token'] else '–'}"
              f" tz={c['timezone'] or '–'}")
    t = Table(title="Timeline")
    for col in ("at", "what", "detail"):
        t.add_column(col, overflow="fold")
    events = []
    for e in data["enrollments"]:
        events.append((e["enrolled_at"], "enrolled", f"{e['campaign']} ({e['run_id']}) "
                       f"status={e['status']}" + (f" reason={e['exit_reason']}"
                                                  if e["exit_reason"] else "")
                       + (f" promo={e['promo_code']}" if e["promo_code"] else "")))
    for m in data["messages"]:
        events.append((m["at"], f"{m['channel']} {m['status']}",
                       f"step {m['step']} {m['template']}" + (f" ({m['reason']})"
                                                               if m["reason"] else "")))
    for e in data["enrollments"]:
        if e["status"] in ("stopped", "exited"):
            events.append((e["finished_at"], e["status"], f"{e['campaign']} ({e['run_id']}): "
                           f"{e['exit_reason'] or 'no reason recorded'}"))
    for cv in data["conversions"]:
        events.append((cv["occurred_at"], "converted", f"{cv['type']} {cv['event_id']}"
                       + (f" promo={cv['promo_code']}" if cv["promo_code"] else "")))
    for at, what, detail in sorted(events, key=lambda x: x[0] or ""):
        t.add_row((at or "")[:19], what, detail)
    from omnicascade.reports.funnel import endings
    ended = ended_early(endings((e["status"], e["exit_reason"]) for e in data["enrollments"]))
    return [header, t] + ([f"cascades ended early: {ended}"] if ended else [])


def preview_messages(items: list[dict[str, Any]]) -> None:
    for m in items:
        mark = " (this customer's variant)" if m.get("assigned") and m["variant"] != "all" \
            else ""
        to = m["to"] or "no address"
        console.rule(f"[bold]{m['variant']}{mark} · {m['phase']} {m['step']} · "
                     f"{m['channel']}[/] → {to}")
        when = m.get("at", "")
        if m.get("deferred_from"):
            when += f"  (quiet hours: deferred from {m['deferred_from']})"
        if m.get("skipped"):
            when = f"skipped: {m['skipped']}"
        console.print(f"[dim]{when}[/]", highlight=False)
        if "error" in m:
            console.print(f"[red]{m['error']}[/]", highlight=False)
            continue
        for key in ("subject", "title"):
            if m.get(key):
                console.print(f"{key}: {m[key]}", highlight=False, markup=False)
        console.print(m["body"], markup=False, highlight=False)
        if m.get("segments"):
            console.print(f"[dim]{m['segments']} SMS segment(s)[/]")


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
    r = Table(title="Reach and messages")
    for col in ("channel", "reachable", "messages per 1,000"):
        r.add_column(col, justify="left" if col == "channel" else "right")
    for ch, n in s["reachable"].items():
        r.add_row(ch, f"{n} ({n / total:.0%})", str(s["messages_per_1000"][ch]))
    console.print(r)
    console.print(f"expected cost of the full cascade per 1,000 customers (nobody converts): "
                  f"{s['cost_per_1000']:.2f}")
