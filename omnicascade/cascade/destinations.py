"""Where a trigger event went: one line per campaign whose trigger listens to its type —
enrolled, or why not — and, when no campaign listens, a note that says so and names the
types that are listened to. A misspelt type (`cart_abandonned`) or a drained campaign
would otherwise answer `enrolled: 0` in silence. Stored on the event (`outcome`), so a
repeated event_id answers the same (cascade/events.py)."""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.campaign.durations import format_duration
from omnicascade.campaign.model import CampaignSpec
from omnicascade.cascade.cascade_input import run_spec
from omnicascade.cascade.entries import ACTIVE
from omnicascade.db.models import Run
from omnicascade.vocabulary import ENROLLING_RUN, RunStatus

IDLE_WHY = {RunStatus.DRAINING: "it enrolls nobody new while its cascades in flight finish",
            RunStatus.STOPPED: "it enrolls nobody"}


def entry(run: Run, enrolled: bool, reason: str | None = None) -> dict[str, Any]:
    """One campaign's line of the answer (the run's status says a paused run holds sends)."""
    line: dict[str, Any] = {"campaign": run.campaign, "run_id": run.id, "enrolled": enrolled,
                            "status": run.status}
    if reason:
        line["reason"] = reason
    return line


def refusal_words(reason: str, spec: CampaignSpec, key: str | None) -> str:
    """A refusal (cascade/entries.py) with the entry it is about, for a keyed campaign."""
    if reason == ACTIVE and key is not None and spec.entry_field:
        return f"{ACTIVE} for {spec.entry_field} {key}"
    return reason


def converted_words(spec: CampaignSpec) -> str:
    lookback = format_duration(spec.lookback_s)
    return f"converted within the lookback ({lookback}): not enrolled"


def idle_runs(event_type: str, listening: set[str], *, session: Session) -> list[dict[str, Any]]:
    """Campaigns whose latest version has this trigger but no longer enrolls (drained or
    stopped), named with their status; `listening`: campaigns an enrolling run took."""
    latest = select(Run.campaign, func.max(Run.version).label("version")) \
        .group_by(Run.campaign).subquery()
    runs = session.scalars(select(Run).join(latest, (Run.campaign == latest.c.campaign)
                                            & (Run.version == latest.c.version))
                           .where(Run.trigger_event == event_type,
                                  Run.status.not_in(ENROLLING_RUN))
                           .order_by(Run.campaign, Run.created_at))
    out = []
    for run in runs:
        if run.campaign in listening:
            continue
        why = IDLE_WHY.get(RunStatus(run.status), "it no longer listens")
        out.append(entry(run, False, f"version {run.version} is {run.status}: {why}"))
    return out


def nowhere_note(event_type: str, exited: int, idle: list[dict[str, Any]], *,
                 session: Session) -> str:
    """What to say when no enrolling campaign's trigger listens to `event_type`; `idle`:
    the campaigns that did, and enroll nobody now."""
    runs = list(session.scalars(select(Run).where(Run.status.in_(ENROLLING_RUN),
                                                  Run.trigger_event.is_not(None))))
    heard = sorted({r.trigger_event for r in runs if r.trigger_event})
    exits = {t for r in runs for t in run_spec(r).exit_events}
    if exited or event_type in exits:
        return (f"no campaign's trigger listens to '{event_type}'; it is an exit event "
                f"(ended {exited} cascade(s))")
    note = f"no campaign listens to '{event_type}'"
    if idle:
        note += " any more (" + "; ".join(f"{c['campaign']} is {c['status']}"
                                          for c in idle) + ")."
    else:
        guess = difflib.get_close_matches(event_type, heard, n=1, cutoff=0.6)
        note += f" — did you mean '{guess[0]}'?" if guess else "."
    if heard:
        return note + f" Types listened to: {', '.join(heard)}."
    return note + (" No campaign listens to any event type: launch one with a trigger "
                   "(omnicascade campaign launch FILE).")
