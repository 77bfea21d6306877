"""How `campaign plan` and `campaign list` look in a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text


def _value(v: Any) -> str:
    return "—" if v is None else escape(str(v))


def _change(row: dict[str, Any]) -> str:
    """`new`, `removed`, or what changed in words (`changed: wait 1d → 2d`)."""
    status = row["status"]
    if status == "same":
        return ""
    if status == "changed":
        return f"[yellow]changed[/]: {escape(row.get('words', ''))}"
    return "[green]new[/]" if status == "new" else "[red]removed[/]"


def plan_view(plan: dict[str, Any]) -> Group:
    live = plan["live"]
    head = Text.assemble((f"{plan['campaign']}", "bold"), ": ", (plan["action"], "cyan"))
    if live:
        head.append(f"\nlive: version {live['version']} (run {live['run_id']}, {live['status']})")
    parts: list[Any] = [head]
    for title, key in (("steps", "steps"), ("after conversion", "after_conversion")):
        rows = plan[key]
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        for column in ("step", "live", "new", "change"):
            table.add_column(column)
        for r in rows:
            table.add_row(r["label"], _value(r["live"]), _value(r["new"]), _change(r))
        parts.append(table)
    if plan["settings"]:
        table = Table(title="settings", title_justify="left")
        for column in ("setting", "change"):
            table.add_column(column)
        for s in plan["settings"]:
            table.add_row(s["key"], escape(s["words"]))
        parts.append(table)
    for t in plan["templates"]:
        parts.append(Text(f"template {t['template']}: {t['status']}", style="bold"))
        parts.append(Syntax(t["diff"] or "(empty)", "diff", theme="ansi_dark",
                            background_color="default"))
    if not plan["templates"] and live:
        parts.append(Text("templates: no change"))
    flight = plan["in_flight"]
    lines = [f"in flight: {flight['total']} customer(s) — {flight['what_happens']}"]
    lines += [f"  {where}: {n}" for where, n in flight["by_step"].items()]
    parts.append(Text("\n".join(lines)))
    return Group(*parts)


def campaigns_table(rows: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("campaign", "version", "run", "status", "active", "enrolled", "converted"):
        table.add_column(column, justify="right" if column in (
            "version", "active", "enrolled", "converted") else "left")
    for r in rows:
        table.add_row(r["campaign"], str(r["version"]), r["run_id"], r["status"],
                      f"{r['active']:,}", f"{r['enrolled']:,}", f"{r['converted']:,}")
    return table
