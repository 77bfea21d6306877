"""`campaign plan`: what launching a campaign file would change against its live version —
steps, waits, channels, settings and experiment side by side, templates as a unified diff,
and who is in flight on earlier versions (at which step) and what will happen to them.
Reads only; writes nothing.
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.campaign.durations import format_duration
from omnicascade.campaign.load import LoadedCampaign, spec_from_snapshot
from omnicascade.campaign.model import CampaignSpec
from omnicascade.cascade.versions import (
    InFlight,
    content_hash,
    enrolling_version,
    latest_version,
    run_hash,
)
from omnicascade.db.models import Delivery, Enrollment, Run
from omnicascade.db.query import rows_in
from omnicascade.vocabulary import LIVE_ENROLLMENT, Phase

SETTINGS = ("trigger", "reentry", "conversion", "exit", "promo", "quiet_hours",
            "frequency_cap", "order", "timezone", "experiment", "description")
PART_FILES = {"body": "txt.j2", "subject": "subject.j2", "html": "html.j2", "title": "title.j2"}


def _step(step: Any, wait_field: str) -> str:
    seconds = getattr(step, wait_field)
    tail = f", {wait_field} {format_duration(seconds)}" if seconds else ""
    skip_if = getattr(step, "skip_if", None)
    if skip_if:
        tail += f", skip if {' or '.join(skip_if)}"
    return f"{step.channel} · {step.template}{tail}"


def _side_by_side(old: list[str], new: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        rows.append({"index": i, "live": a, "new": b, "changed": a != b})
    return rows


def _settings(old: CampaignSpec | None, new: CampaignSpec) -> list[dict[str, Any]]:
    a = old.model_dump(mode="json") if old else {}
    b = new.model_dump(mode="json")
    return [{"key": k, "live": a.get(k), "new": b.get(k)} for k in SETTINGS
            if old is None or a.get(k) != b.get(k)]


def _templates(old: dict[str, dict[str, str]], new: dict[str, dict[str, str]],
               ) -> list[dict[str, Any]]:
    out = []
    for name in sorted(set(old) | set(new)):
        for part in sorted(set(old.get(name, {})) | set(new.get(name, {}))):
            a, b = old.get(name, {}).get(part), new.get(name, {}).get(part)
            if a == b:
                continue
            file = f"{name}.{PART_FILES.get(part, part)}"
            status = "added" if a is None else "removed" if b is None else "changed"
            diff = "".join(difflib.unified_diff(
                (a or "").splitlines(keepends=True), (b or "").splitlines(keepends=True),
                fromfile=f"live/{file}", tofile=f"new/{file}"))
            out.append({"template": file, "status": status, "diff": diff})
    return out


def _in_flight(campaign: str, in_flight: InFlight, *, session: Session) -> dict[str, Any]:
    live = session.execute(select(Enrollment.id, Run.version, Enrollment.converted_at)
                           .join(Run, Run.id == Enrollment.run_id)
                           .where(Enrollment.campaign == campaign,
                                  Enrollment.status.in_(LIVE_ENROLLMENT))).all()
    last = dict(rows_in(session, lambda chunk: select(
        Delivery.enrollment_id, func.max(Delivery.step_index))
        .where(Delivery.enrollment_id.in_(chunk), Delivery.phase == Phase.CASCADE)
        .group_by(Delivery.enrollment_id), [e for e, _, _ in live]))
    where: Counter[str] = Counter()
    for enrollment_id, version, converted_at in live:
        step = last.get(enrollment_id)
        at = ("converted, follow-up due" if converted_at else
              "before the first step" if step is None else f"after step {step}")
        where[f"version {version}: {at}"] += 1
    fate = ("they end now, stopped with reason `replaced` (--in-flight stop)"
            if in_flight == "stop" else
            "they finish on the version they entered with: same messages, waits and promo "
            "codes (--in-flight keep)")
    return {"total": len(live), "by_step": dict(sorted(where.items())),
            "what_happens": fate if live else "nobody is in flight"}


def plan_launch(loaded: LoadedCampaign, *, session: Session,
                in_flight: InFlight = "keep") -> dict[str, Any]:
    """The plan `campaign plan --json` prints."""
    spec = loaded.spec
    live: Run | None = (enrolling_version(spec.campaign, session=session) if spec.trigger
                        else None) or latest_version(spec.campaign, session=session)
    old = spec_from_snapshot(live.snapshot) if live else None
    same = live is not None and run_hash(live) == content_hash(loaded.snapshot())
    if live is None:
        action = "create version 1"
    elif same and spec.trigger and live.status in ("listening", "paused"):
        action = f"nothing: version {live.version} is live and identical"
    elif same:
        action = f"send version {live.version} again, to a new audience"
    else:
        newest = int(session.scalar(select(func.max(Run.version)).where(
            Run.campaign == spec.campaign)) or 0)
        action = f"create version {newest + 1}" + (
            f"; version {live.version} stops listening (superseded)"
            if spec.trigger and live.status in ("listening", "paused") else "")
    old_templates = (live.snapshot.get("templates") or {}) if live else {}
    return {
        "campaign": spec.campaign, "action": action, "unchanged": same,
        "live": {"run_id": live.id, "version": live.version, "status": live.status}
        if live else None,
        **_changes(old, spec, old_templates, loaded.templates),
        "in_flight": _in_flight(spec.campaign, in_flight, session=session),
    }


def _changes(old: CampaignSpec | None, new: CampaignSpec, old_templates: dict[str, Any],
             new_templates: dict[str, Any]) -> dict[str, Any]:
    return {"steps": _side_by_side([_step(s, "wait") for s in old.steps] if old else [],
                                   [_step(s, "wait") for s in new.steps]),
            "after_conversion": _side_by_side(
                [_step(f, "delay") for f in old.after_conversion] if old else [],
                [_step(f, "delay") for f in new.after_conversion]),
            "settings": _settings(old, new),
            "templates": _templates(old_templates, new_templates)}


def version_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What changed from one version's frozen snapshot (None: the first version) to the
    next — the `steps`, `after_conversion`, `settings` and `templates` of `campaign plan`,
    between two launched versions (the web console's campaign page)."""
    return _changes(spec_from_snapshot(old) if old else None, spec_from_snapshot(new),
                    (old or {}).get("templates") or {}, new.get("templates") or {})
