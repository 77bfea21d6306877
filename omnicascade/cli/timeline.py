"""`customers show ID`: a customer's cascades and timeline, for people — times in the
customer's own time zone (named), status in words, steps numbered from 1, each cascade's
key (`cart_id A2`), every time on the wall clock with a rehearsal's campaign time beside
it, labelled. The timeline's rows are the console's (reports/timeline.py
`customer_page`): this module only lays them out."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from omnicascade.clock import LIVE, RunClock, now_utc
from omnicascade.reports.when import clock_from, local, parse_iso, relative, zone_of


def customer_view(data: dict[str, Any]) -> list[Any]:
    c = data["customer"]
    zone = zone_of(c.get("zone") or c.get("timezone"))
    zone_text = c.get("zone") or c.get("timezone") or "UTC"
    now = now_utc()
    clocks: dict[str, RunClock] = {e["run_id"]: clock_from(e.get("rehearsal")) or LIVE
                                   for e in data["enrollments"]}

    def when(text: str | None, run_id: str | None = None) -> str:
        """`2026-12-02 09:00:13 · 3 h ago` in the customer's zone, on the wall clock; a
        rehearsal's campaign time beside it, labelled (one clock per column)."""
        at = parse_iso(text)
        if at is None:
            return "–"
        clock = clocks.get(run_id or "", LIVE)
        shown = f"{local(at, zone, seconds=True)} · {relative(at, now)}"
        return shown + (f"\n{local(clock.campaign(at), zone, seconds=True)} campaign time "
                        f"×{clock.scale:g}" if clock.rehearsal else "")

    header = (f"[bold]{c['id']}[/] email={c['email'] or '–'} phone={c['phone'] or '–'} "
              f"telegram={c['telegram_chat_id'] or '–'} push={'yes' if c['push_token'] else '–'}"
              f" · times in {zone_text}")
    out: list[Any] = [header]
    keys = data.get("key_labels", {})  # `cart_id A2` (reports/keys.py)
    if data["enrollments"]:
        cascades = Table(title="Cascades")
        for col in ("campaign", "key", "run", "variant", "status", "promo", "enrolled"):
            cascades.add_column(col, overflow="fold")
        for e in data["enrollments"]:
            run = e["run_id"] + (f" ({e['rehearsal']['label']})" if e.get("rehearsal") else "")
            cascades.add_row(e["campaign"] or "–", keys.get(e["enrollment_id"]) or "–", run,
                             e["variant"] or "–", e.get("status_label") or e["status"],
                             e["promo_code"] or "–",
                             when(e["enrolled_at"], e["run_id"]))
        out.append(cascades)
    t = Table(title=f"Timeline ({zone_text})")
    for col in ("at", "what", "detail"):
        t.add_column(col, overflow="fold")
    for row in data["timeline"]:  # reports/timeline.py: the console's rows too
        campaign = f"\n{row['campaign']}" if row.get("campaign") else ""
        t.add_row(f"{row['at']} · {row['ago']}{campaign}", row["what"], row["detail"])
    out.append(t)
    from omnicascade.cli.display import ended_early
    from omnicascade.reports.funnel import endings
    ended = ended_early(endings((e["status"], e["exit_reason"]) for e in data["enrollments"]))
    rehearsals = sorted({e["rehearsal"]["label"] for e in data["enrollments"]
                         if e.get("rehearsal")})
    if rehearsals:
        out.append(f"times are real time; \"campaign time ×N\": a rehearsal's clock "
                   f"({', '.join(rehearsals)}), started at the launch, N times faster")
    return out + ([f"cascades ended early: {ended}"] if ended else [])
