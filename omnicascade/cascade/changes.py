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


def words(value: Any) -> str:
    """A setting's value as a marketer reads it: `max 4, per 1d`, not raw JSON."""
    if value is None or value == [] or value == {}:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(words(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {words(v)}" if not isinstance(v, dict) else f"{k} ({words(v)})"
                         for k, v in value.items() if v not in (None, [], {})) or "none"
    return str(value)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested setting as `a.b: value` pairs, to say which part of it changed."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def change_words(key: str, old: Any, new: Any) -> str:
    """`wait 1d → 2d`, `quiet_hours.end 08:00 → 09:00`: each part that changed, in words."""
    if old is None or new is None or not (isinstance(old, dict) and isinstance(new, dict)):
        return f"{key} {words(old)} → {words(new)}"
    a, b = _flat(old, key), _flat(new, key)
    return "; ".join(f"{k} {words(a.get(k))} → {words(b.get(k))}"
                     for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k))


def _side_by_side(old: list[Any], new: list[Any], wait_field: str) -> list[dict[str, Any]]:
    """Steps of the live and the new version, aligned (a step inserted at the front is
    `new`, and the ones after it unchanged, not all `changed`); numbered from 1 as every
    other view. `index` (0-based row) and `changed` are kept for machines."""
    a = [_step(s, wait_field) for s in old]
    b = [_step(s, wait_field) for s in new]
    pairs: list[tuple[int | None, int | None]] = []
    for _op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        span = max(i2 - i1, j2 - j1)
        pairs += [(i1 + k if i1 + k < i2 else None, j1 + k if j1 + k < j2 else None)
                  for k in range(span)]
    label = "step" if wait_field == "wait" else "after"
    rows = []
    for index, (i, j) in enumerate(pairs):
        live, now = (a[i] if i is not None else None), (b[j] if j is not None else None)
        status = ("new" if i is None else "removed" if j is None
                  else "same" if live == now else "changed")
        number = (j if j is not None else i)
        assert number is not None
        row = {"index": index, "number": number + 1, "label": f"{label} {number + 1}",
               "live": live, "new": now, "changed": status != "same", "status": status}
        if status == "changed":
            assert i is not None and j is not None
            was, becomes = old[i].model_dump(mode="json"), new[j].model_dump(mode="json")
            row["words"] = "; ".join(change_words(k, was.get(k), becomes.get(k))
                                     for k in dict.fromkeys([*was, *becomes])
                                     if was.get(k) != becomes.get(k))
        elif status == "new":
            row["words"] = f"new: {now}"
        elif status == "removed":
            row["words"] = f"removed: {live}"
        rows.append(row)
    return rows


def _settings(old: CampaignSpec | None, new: CampaignSpec) -> list[dict[str, Any]]:
    a = old.model_dump(mode="json") if old else {}
    b = new.model_dump(mode="json")
    return [{"key": k, "live": a.get(k), "new": b.get(k),
             "words": change_words(k, a.get(k), b.get(k)) if old else f"{k} {words(b.get(k))}"}
            for k in SETTINGS if old is None or a.get(k) != b.get(k)]


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
        at = ("converted, follow-up due" if converted_at else  # steps numbered from 1
              "before the first step" if step is None else f"after step {step + 1}")
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
    return {"steps": _side_by_side(list(old.steps) if old else [], list(new.steps), "wait"),
            "after_conversion": _side_by_side(list(old.after_conversion) if old else [],
                                              list(new.after_conversion), "delay"),
            "settings": _settings(old, new),
            "templates": _templates(old_templates, new_templates)}


def version_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What changed from one version's frozen snapshot (None: the first version) to the
    next — the `steps`, `after_conversion`, `settings` and `templates` of `campaign plan`,
    between two launched versions (the web console's campaign page)."""
    return _changes(spec_from_snapshot(old) if old else None, spec_from_snapshot(new),
                    (old or {}).get("templates") or {}, new.get("templates") or {})
