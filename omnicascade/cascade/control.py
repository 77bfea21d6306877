"""Run control: stop a run now, drain it, pause it, resume it — `omnicascade runs
stop|pause|resume` and `POST /v1/runs/{run_id}/stop|pause|resume`, with the same effect.

Each command is one database transaction through lifecycle.py, committed before any signal:
the run's new status and, for a stop, every live cascade of the run ended `stopped` (reason
`stopped`; one whose customer already converted ends `converted`, its follow-ups cancelled).
From that commit on the send-time guard, which reads the run's and the cascade's status
before every send, skips (stopped) or holds (paused) every send that starts (promise 1).
Then the run's cascades are told (cascade/temporal.py) so they act at once: a stop ends them
mid-wait, a pause holds their next send, a resume sends the held step now. A lost signal
only delays that, never lets a message through.

A draining run enrolls nobody new and lets its cascades finish; once the last one has ended
it is `stopped` (shown so by the reports, written so by the next command). Asking for the
status a run already has changes nothing and answers with it (a retried command is safe; a
repeated pause or resume tells the cascades again). Anything else the state machine refuses
is a RunControlRefused naming what the run can still do.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client

from omnicascade.cascade import lifecycle
from omnicascade.cascade.temporal import LazyClient, signal_pause, signal_stop
from omnicascade.config import Settings
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.errors import NotFound, UserFacingError
from omnicascade.vocabulary import LIVE_ENROLLMENT, EnrollmentStatus, RunStatus

R = RunStatus
STOP_REASON = "stopped"  # Enrollment.exit_reason of the cascades a run stop ended


class Action(StrEnum):
    STOP = "stop"
    DRAIN = "drain"
    PAUSE = "pause"
    RESUME = "resume"


_DONE = {Action.STOP: "stopped", Action.DRAIN: "drained", Action.PAUSE: "paused",
         Action.RESUME: "resumed"}


class RunControlRefused(UserFacingError):
    """The run's status does not allow the command (HTTP 409)."""


@dataclass
class Change:
    """What a command did: the run's status after it, and the cascades to tell."""
    run_id: str
    status: str
    signal: Action | None = None   # stop, pause or resume: what to tell `cascades`
    cascades: list[str] = field(default_factory=list)  # enrollment ids
    changed: bool = True           # False: the run already had that status
    live: int = 0                  # cascades of the run in flight before the command
    ended: int = 0                 # cascades a stop ended in the database
    told: int = 0                  # cascades that got the signal
    temporal: bool = True          # False: Temporal was unreachable, nobody was told

    def body(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status}


def _target(run: Run, action: Action) -> RunStatus:
    return {Action.STOP: R.STOPPED, Action.DRAIN: R.DRAINING, Action.PAUSE: R.PAUSED,
            Action.RESUME: lifecycle.resumed_status(run)}[action]


def _possible(run: Run) -> list[Action]:
    return [a for a in Action if (run.status == R.PAUSED if a == Action.RESUME
                                  else lifecycle.can_move(run, _target(run, a)))]


def refusal(run: Run, action: Action) -> str:
    """E.g. "run X is stopped; a stopped run cannot be resumed", or "run X is draining; a
    draining run cannot be paused (it can be stopped)"."""
    text = f"run {run.id} is {run.status}; a {run.status} run cannot be {_DONE[action]}"
    can = [_DONE[a] for a in _possible(run)]
    return text + (f" (it can be {', '.join(can[:-1])}{' or ' if len(can) > 1 else ''}"
                   f"{can[-1]})" if can else "")


def _live(run_id: str, *, session: Session) -> dict[str, bool]:
    """The run's live cascades: enrollment id → whether its customer already converted."""
    return {e: c is not None for e, c in session.execute(
        select(Enrollment.id, Enrollment.conversion_event_id).where(
            Enrollment.run_id == run_id, Enrollment.status.in_(LIVE_ENROLLMENT)))}


def change_run(run_id: str, action: Action, *, session: Session) -> Change:
    """The database half of a command (the caller commits, then `tell`s). Raises NotFound
    for an unknown run and RunControlRefused for a transition the run does not allow."""
    run = session.get(Run, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    live = _live(run.id, session=session)
    if run.status == R.DRAINING and not live:
        lifecycle.move_run(run, R.STOPPED)  # the drain is over: write what reports show
    target = _target(run, action)
    ids = list(live)
    if run.status == target or (action == Action.DRAIN and run.status == R.STOPPED):
        # Already so: no change; a repeated pause or resume tells the cascades again.
        again = action in (Action.PAUSE, Action.RESUME)
        return Change(run.id, run.status, action if again else None, ids if again else [],
                      changed=False, live=len(ids))
    if not lifecycle.can_move(run, target):
        raise RunControlRefused(refusal(run, action))
    was_paused = run.status == R.PAUSED
    change = Change(run.id, target.value, live=len(ids))
    if target == R.STOPPED:
        for enrollment_id, converted in live.items():
            if converted:  # bought already: it ends converted, its follow-ups cancelled
                lifecycle.finish(enrollment_id, EnrollmentStatus.CONVERTED, session=session)
        session.flush()
        change.ended = lifecycle.end_live(session=session, status=EnrollmentStatus.STOPPED,
                                          reason=STOP_REASON, run_id=run.id)
        change.signal, change.cascades = Action.STOP, ids
    elif target == R.PAUSED:
        change.signal, change.cascades = Action.PAUSE, ids
    elif was_paused:  # resumed, or drained straight from paused: held sends go out now
        change.signal, change.cascades = Action.RESUME, ids
    lifecycle.move_run(run, target)
    return change


async def tell(client: Client | LazyClient | None, change: Change, timeout_s: float) -> Change:
    """The Temporal half: signal the cascades (after the commit). Never raises for an
    unreachable Temporal: the database change stands and the send-time guard enforces it."""
    if change.signal is None or not change.cascades:
        return change
    resolved = await client.get() if isinstance(client, LazyClient) else client
    if resolved is None:
        change.temporal = False
        return change
    if change.signal == Action.STOP:
        change.told = await signal_stop(resolved, change.cascades, EnrollmentStatus.STOPPED,
                                        STOP_REASON, timeout_s)
    else:
        change.told = await signal_pause(resolved, change.cascades,
                                         resume=change.signal == Action.RESUME,
                                         timeout_s=timeout_s)
    return change


async def control_run(run_id: str, action: Action, settings: Settings,
                      client: Client | LazyClient | None) -> Change:
    """Commit the change, then tell the cascades. `client` may be a LazyClient: Temporal is
    only connected to once the database change is committed."""
    def tx() -> Change:
        with session_scope(settings.db_url) as session:
            return change_run(run_id, action, session=session)
    change = await asyncio.to_thread(tx)
    return await tell(client, change, settings.signal_timeout_s)


async def stop_run(run_id: str, drain: bool, settings: Settings,
                   client: Client | LazyClient | None) -> Change:
    return await control_run(run_id, Action.DRAIN if drain else Action.STOP, settings, client)


async def pause_run(run_id: str, settings: Settings,
                    client: Client | LazyClient | None) -> Change:
    return await control_run(run_id, Action.PAUSE, settings, client)


async def resume_run(run_id: str, settings: Settings,
                     client: Client | LazyClient | None) -> Change:
    return await control_run(run_id, Action.RESUME, settings, client)
