"""`customers show ID`: a customer's cascades and timeline, for people — times in the
customer's own time zone (named), status in words, steps numbered from 1, and a
rehearsal's times on its campaign clock (marked with its scale)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from omnicascade.clock import LIVE, RunClock, now_utc
from omnicascade.reports.when import clock_from, local, parse_iso, relative, zone_of
from omnicascade.vocabulary import reason_label


def customer_view(data: dict[str, Any]) -> list[Any]:
    c = data["customer"]
    zone = zone_of(c.get("zone") or c.get("timezone"))
    zone_text = c.get("zone") or c.get("timezone") or "UTC"
    now = now_utc()
    clocks: dict[str, RunClock] = {e["run_id"]: clock_from(e.get("rehearsal")) or LIVE
                                   for e in data["enrollments"]}

    def when(text: str | None, run_id: str | None = None) -> str:
        """`2026-12-02 09:00:13 · 3 h ago` in the customer's zone; a rehearsal's instants
        on its campaign clock, marked `×N`."""
        at = parse_iso(text)
        if at is None:
            return "–"
        clock = clocks.get(run_id or "", LIVE)
        shown, ref = clock.campaign(at), clock.campaign(now)
        mark = f" ×{clock.scale:g}" if clock.rehearsal else ""
        return f"{local(shown, zone, seconds=True)}{mark} · {relative(shown, ref)}"

    header = (f"[bold]{c['id']}[/] email={c['email'] or '–'} phone={c['phone'] or '–'} "
              f"telegram={c['telegram_chat_id'] or '–'} push={'yes' if c['push_token'] else '–'}"
              f" · times in {zone_text}")
    out: list[Any] = [header]
    if data["enrollments"]:
        cascades = Table(title="Cascades")
        for col in ("campaign", "run", "variant", "status", "promo", "enrolled"):
            cascades.add_column(col, overflow="fold")
        for e in data["enrollments"]:
            run = e["run_id"] + (f" ({e['rehearsal']['label']})" if e.get("rehearsal") else "")
            cascades.add_row(e["campaign"] or "–", run, e["variant"] or "–",
                             e.get("status_label") or e["status"], e["promo_code"] or "–",
                             when(e["enrolled_at"], e["run_id"]))
        out.append(cascades)
    t = Table(title=f"Timeline ({zone_text})")
    for col in ("at", "what", "detail"):
        t.add_column(col, overflow="fold")
    events: list[tuple[str, str, str, str]] = []  # (wall ISO for order, at, what, detail)
    for e in data["enrollments"]:
        events.append((e["enrolled_at"] or "", when(e["enrolled_at"], e["run_id"]), "enrolled",
                       f"{e['campaign']} ({e['run_id']})"
                       + (f" promo={e['promo_code']}" if e["promo_code"] else "")))
        if e["status"] in ("stopped", "exited"):
            events.append((e["finished_at"] or "", when(e["finished_at"], e["run_id"]),
                           e["status"], f"{e['campaign']} ({e['run_id']}): "
                           f"{reason_label(e['exit_reason']) or 'no reason recorded'}"))
    for m in data["messages"]:
        label = m.get("label") or m["step"]
        state = m.get("status_label") or m["status"]
        events.append((m["at"] or "", when(m["at"], m["run_id"]), f"{m['channel']} {label}",
                       f"{m['template']}: {state}"))
    # a conversion on the clock of the cascade it converted (a rehearsal's, maybe)
    converted = {e.get("conversion_event_id"): e["run_id"] for e in data["enrollments"]}
    for cv in data["conversions"]:
        events.append((cv["occurred_at"] or "",
                       when(cv["occurred_at"], converted.get(cv["event_id"])), "converted",
                       f"{cv['type']} {cv['event_id']}"
                       + (f" promo={cv['promo_code']}" if cv["promo_code"] else "")))
    for _, at, what, detail in sorted(events, key=lambda x: x[0]):
        t.add_row(at, what, detail)
    out.append(t)
    from omnicascade.cli.display import ended_early
    from omnicascade.reports.funnel import endings
    ended = ended_early(endings((e["status"], e["exit_reason"]) for e in data["enrollments"]))
    rehearsals = sorted({e["rehearsal"]["label"] for e in data["enrollments"]
                         if e.get("rehearsal")})
    if rehearsals:
        out.append(f"×N: a rehearsal's campaign time ({', '.join(rehearsals)}): its clock "
                   f"started at the launch and runs N times faster")
    return out + ([f"cascades ended early: {ended}"] if ended else [])
