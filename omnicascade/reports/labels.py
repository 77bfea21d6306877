"""Status in words, for `customers show` (and its API twin): what a cascade is doing now —
`converted · after 1 (email review_request) due in 2 d 23 h` rather than `active` — and
what became of a message — `deferred until 09:00 Europe/Berlin (quiet hours)`.

Times are campaign time (a rehearsal's wall-clock instants go through its RunClock) in
the customer's zone. JSON keeps the machine fields; these are its `status_label`s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from omnicascade.clock import RunClock
from omnicascade.reports.when import aware, moment, span
from omnicascade.vocabulary import (
    HOLDOUT,
    LIVE_ENROLLMENT,
    WENT_OUT,
    DeliveryStatus,
    EnrollmentStatus,
    Phase,
    SkipReason,
    reason_label,
    step_label,
)


@dataclass(frozen=True)
class View:
    """How to show times: the run's clock, the customer's zone, the wall-clock now."""
    clock: RunClock
    zone: tzinfo
    now: datetime  # naive UTC, like the stored times

    def at(self, wall: datetime) -> str:
        return moment(self.clock.campaign(aware(wall)), self.zone,
                      self.clock.campaign(aware(self.now)))

    def until(self, wall_start: datetime, campaign_span: timedelta) -> timedelta:
        """Campaign time left until `campaign_span` after `wall_start`."""
        due = self.clock.campaign(wall_start) + campaign_span
        return due - self.clock.campaign(self.now)


def delivery_label(status: str, reason: str | None, deferred_until: datetime | None,
                   view: View) -> str:
    """`sent`, `skipped (no address)`, `deferred until 09:00 Europe/Berlin (quiet hours)`."""
    if status == DeliveryStatus.DEFERRED:
        if reason == SkipReason.PAUSED:
            return "held while paused"
        why = f" ({reason_label(reason)})" if reason else ""
        return (f"deferred until {view.at(deferred_until)}{why}" if deferred_until
                else f"deferred{why}")
    if status == DeliveryStatus.SKIPPED:
        return f"skipped ({reason_label(reason) or 'no reason recorded'})"
    if status == DeliveryStatus.FAILED:
        return f"failed ({reason})" if reason else "failed"
    if status == DeliveryStatus.UNKNOWN:
        return "outcome unknown (maybe sent; never resent)"
    return str(status)


def _spec_steps(spec: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    v = ((spec.get("experiment") or {}).get("variants") or {}).get(variant) or {}
    return list(v.get("steps") or spec.get("steps") or [])


_PART = re.compile(r"([0-9]+)([smhdw])")  # campaign/durations.py's ASCII digits
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds(value: Any) -> float:
    """A duration of the snapshot's spec: written as campaign/durations.format_duration
    writes it (`3d`, `1h30m`); a number is seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    return float(sum(int(n) * _UNIT[u] for n, u in _PART.findall(str(value or "").lower())))


def enrollment_label(e: dict[str, Any], sends: list[dict[str, Any]], spec: dict[str, Any],
                     converted_seen_at: datetime | None, view: View) -> str:
    """What a cascade is doing, from its row `e` (status, exit_reason, variant,
    converted_at), its deliveries `sends` (oldest first: phase, index, channel, template,
    status, reason, at, deferred_until as datetimes) and the run's spec. `converted_seen_at`:
    when the conversion was recorded (the follow-up timers start then)."""
    status = e["status"]
    if status in (EnrollmentStatus.STOPPED, EnrollmentStatus.EXITED, EnrollmentStatus.EXCLUDED):
        return f"{status} · {reason_label(e['exit_reason']) or 'no reason recorded'}"
    if status not in LIVE_ENROLLMENT:
        return str(status)  # completed, converted: nothing more will happen
    if status == EnrollmentStatus.PENDING and not sends:
        return "starting"
    converted = e["converted_at"] is not None
    head = "converted" if converted else "active"
    # a conversion cancels a cascade step's deferral (rows written before may say deferred)
    if sends and sends[-1]["status"] == DeliveryStatus.DEFERRED and \
            not (converted and sends[-1]["phase"] == Phase.CASCADE):
        last = sends[-1]
        return f"{head} · {step_label(last['index'], last['phase'])} " + delivery_label(
            last["status"], last["reason"], last["deferred_until"], view)
    if converted:
        return f"{head} · {_follow_up(e, sends, spec, converted_seen_at, view)}"
    if e["variant"] == HOLDOUT:
        return "active · holdout: watching for a conversion, sending nothing"
    cascade = [s for s in sends if s["phase"] == Phase.CASCADE]
    if not cascade:
        return "active · starting"
    last = cascade[-1]
    name = f"{step_label(last['index'])} ({last['channel']})"
    if last["status"] not in WENT_OUT:
        return f"active · {name} {delivery_label(last['status'], last['reason'], None, view)}"
    steps = _spec_steps(spec, e["variant"])
    wait = _seconds(steps[last["index"]].get("wait")) if last["index"] < len(steps) else 0
    left = view.until(last["at"], timedelta(seconds=wait))
    if left > timedelta(0):
        return f"active · {name} sent, waiting {span(left)} more for a conversion"
    return f"active · {name} sent, moving on"


def _follow_up(e: dict[str, Any], sends: list[dict[str, Any]], spec: dict[str, Any],
               seen_at: datetime | None, view: View) -> str:
    follow = list(spec.get("after_conversion") or [])
    done = [s for s in sends if s["phase"] == Phase.FOLLOW_UP]
    if e["variant"] == HOLDOUT or len(done) >= len(follow):
        return "finishing"
    nxt = follow[len(done)]
    what = f"{step_label(len(done), Phase.FOLLOW_UP)} ({nxt.get('channel')} " \
           f"{nxt.get('template')})"
    start = done[-1]["at"] if done else seen_at or e["converted_at"]
    left = view.until(start, timedelta(seconds=_seconds(nxt.get("delay"))))
    return f"{what} due in {span(left)}" if left > timedelta(0) else f"{what} due now"
