"""The funnel per step and channel: reached → attempted → sent → delivered → opened →
clicked (where the provider reports it) → converted after this step, with skips by reason
and what each step cost and earned (its marginal value)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omnicascade.reports.attribution import credited_send
from omnicascade.reports.data import BOUNCED, CLICKED, DELIVERED, OPENED, Member
from omnicascade.reports.money import ZERO, Currencies, Revenue, cost_only, money
from omnicascade.vocabulary import (
    LIVE_ENROLLMENT,
    NOT_DELIVERED,
    WENT_OUT,
    DeliveryStatus,
    EnrollmentStatus,
    Phase,
    SkipReason,
    reason_label,
    step_label,
)

Key = tuple[int, int, str]  # (phase order, index, channel)
PHASES: dict[str, int] = {Phase.CASCADE: 0, Phase.FOLLOW_UP: 1}
# Only email providers report opens and clicks, and WhatsApp its read receipts (`read`
# counts as opened); elsewhere 0 would read as "nobody opened".
OPEN_TRACKING = {"email", "whatsapp"}
# A step row's count of sends that go out later, by why: quiet hours (`deferred`), a paused
# run (`held`), waiting for the customer's best send time (`timed`), the frequency cap
# (`capped`: "deferred by cap").
DEFERRAL_KEYS: dict[str, str] = {SkipReason.PAUSED: "held", SkipReason.SEND_TIME: "timed",
                                 SkipReason.FREQUENCY_CAP: "capped"}


def _row(phase: str, index: int, channel: str, variant: str | None) -> dict[str, Any]:
    return {"phase": phase, "index": index, "label": step_label(index, phase),
            "variant": variant, "channel": channel, "reached": 0, "attempted": 0,
            "sent": 0, "unknown": 0, "failed": 0, "in_flight": 0, "deferred": 0, "held": 0,
            "timed": 0, "capped": 0,
            "skipped": 0,
            "skipped_by_reason": {}, "feedback": False, "delivered": 0, "opened": 0,
            "clicked": 0, "bounced": 0, "converted_after": 0, "_revenue": Revenue(),
            "cost": ZERO, "waiting": 0}


def channel_untracked(r: dict[str, Any]) -> bool:
    return r["channel"] not in OPEN_TRACKING and not (r["opened"] or r["clicked"])


def endings(ended: Iterable[tuple[str | None, str | None]]) -> dict[str, Any]:
    """Cascades ended before they ran out, from (status, exit_reason) pairs: how many were
    stopped (run stopped, version replaced) and exited (an exit event), and why."""
    return _endings((status, reason, 1) for status, reason in ended)


def _endings(ended: Iterable[tuple[str | None, str | None, int]]) -> dict[str, Any]:
    out: dict[str, Any] = {"stopped": 0, "exited": 0, "stopped_by_reason": {},
                           "exited_by_reason": {}}
    for status, reason, n in ended:
        if status in (EnrollmentStatus.STOPPED, EnrollmentStatus.EXITED):
            out[status] += n
            by = out[f"{status}_by_reason"]
            by[reason or "other"] = by.get(reason or "other", 0) + n
    for key in ("stopped_by_reason", "exited_by_reason"):
        out[key] = dict(sorted(out[key].items()))
    return out


def tally(groups: Iterable[tuple[str, str | None, bool, int]]) -> dict[str, Any]:
    """A run's headline counts from `(status, exit_reason, converted, n)` groups of its
    enrollments: `runs show` gives its members one by one, `runs list` grouped counts of
    many runs (one query). Excluded enrollments (converted before entry) count only as
    `excluded`; `active` is every cascade still under way, `status_counts` each status."""
    groups = list(groups)
    kept = [(s, r, c, n) for s, r, c, n in groups if s != EnrollmentStatus.EXCLUDED]
    counts: dict[str, int] = {}
    for status, _, _, n in groups:
        counts[status] = counts.get(status, 0) + n
    return {"enrolled": sum(n for *_, n in kept),
            "excluded": counts.get(EnrollmentStatus.EXCLUDED, 0),
            "active": sum(counts.get(s, 0) for s in LIVE_ENROLLMENT),
            "converted": sum(n for _, _, c, n in kept if c),
            **_endings((s, r, n) for s, r, _, n in kept), "status_counts": counts}


def ended_note(e: dict[str, Any]) -> str | None:
    """The report's sentence about cascades that were stopped or exited, if any."""
    parts = [f"{e[k]} {k}" + (" (" + ", ".join(f"{reason_label(r)} {n}"
                                                for r, n in e[f"{k}_by_reason"].items()) + ")")
             for k in ("stopped", "exited") if e[k]]
    return "cascades ended before they ran out: " + "; ".join(parts) if parts else None


def _pending(m: Member, phase: str) -> bool:
    """Whether a step of this phase can still be coming: never once the cascade ended, nor
    a cascade step once it converted (its follow-ups may still be due)."""
    return m.status in LIVE_ENROLLMENT and not (m.converted and phase == Phase.CASCADE)


def funnel(members: list[Member], planned: list[tuple[int, str]] | None = None,
           variant: str | None = None, cur: Currencies | None = None) -> list[dict[str, Any]]:
    """One row per (phase, step index, channel), cascade steps first. Each row carries its
    `label` ("step 1", "after 1") and `variant` (the one given: None for rows of several
    variants). Money in `cur` (default: USD, no rates); follow-ups buy no conversions, so
    their rows carry a cost only."""
    rows: dict[Key, dict[str, Any]] = {}
    cur = cur or Currencies()

    def row(phase: str, index: int, channel: str) -> dict[str, Any]:
        key = (PHASES.get(phase, 2), index, channel)
        if key not in rows:
            rows[key] = _row(phase, index, channel, variant)
        return rows[key]

    for index, channel in planned or []:
        row(Phase.CASCADE, index, channel)
    for m in members:
        for s in m.sends:
            r = row(s.phase, s.index, s.channel)
            r["reached"] += 1
            r["cost"] += s.cost
            if s.status == DeliveryStatus.SKIPPED:
                r["skipped"] += 1
                reason = s.reason or "other"
                r["skipped_by_reason"][reason] = r["skipped_by_reason"].get(reason, 0) + 1
                continue
            if s.status == DeliveryStatus.DEFERRED:  # goes out later: quiet hours, a paused
                if _pending(m, s.phase):  # run, best send time, the cap
                    r[DEFERRAL_KEYS.get(s.reason or "", "deferred")] += 1
                continue
            r["attempted"] += 1
            if s.status in WENT_OUT:
                r["sent"] += 1
                r["unknown"] += s.status == DeliveryStatus.UNKNOWN
            elif s.status in NOT_DELIVERED:
                r["failed"] += 1
            else:
                r["in_flight"] += 1  # `sending`: the provider call is under way
            if s.feedback:
                r["feedback"] = True
                r["delivered"] += bool(s.feedback & DELIVERED)
                r["opened"] += bool(s.feedback & OPENED)
                r["clicked"] += bool(s.feedback & CLICKED)
                r["bounced"] += bool(s.feedback & BOUNCED)
        credited = credited_send(m)
        if credited is not None:
            r = row(credited.phase, credited.index, credited.channel)
            r["converted_after"] += 1
            r["_revenue"].add(m.amount, cur.of(m.currency))
        if _pending(m, Phase.CASCADE):  # a converted cascade waits for no conversion
            last = [s for s in m.sends if s.phase == Phase.CASCADE]
            if last:
                row(Phase.CASCADE, last[-1].index, last[-1].channel)["waiting"] += 1
    out = []
    for key in sorted(rows):
        r = rows[key]
        if not r["feedback"]:  # the provider reports nothing here: unknown, not zero
            r["delivered"] = r["opened"] = r["clicked"] = r["bounced"] = None
        elif channel_untracked(r):
            r["opened"] = r["clicked"] = None
        r["skipped_by_reason"] = dict(sorted(r["skipped_by_reason"].items()))
        rev = r.pop("_revenue")
        r.update(cost_only(r["cost"], cur) if r["phase"] == Phase.FOLLOW_UP
                 else money(r["cost"], rev, cur))
        out.append(r)
    return out

