"""Versions of a campaign: every launch of a slug is a new version (1, 2, …) unless nothing
changed, and a trigger campaign has one version taking events at a time.

Launching a trigger campaign while a version of it listens: identical YAML and templates →
nothing is created (`unchanged`); changed → the new version starts listening and the old
one is `superseded` in the same transaction (a partial unique index on runs makes two
enrolling versions impossible), so no event is enrolled twice or missed. Customers in
flight finish on the version they entered with, unless `--in-flight stop` ends them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.campaign.load import LoadedCampaign, spec_from_snapshot
from omnicascade.cascade import lifecycle
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.query import chunks
from omnicascade.vocabulary import (
    ENROLLING_RUN,
    LIVE_ENROLLMENT,
    EnrollmentStatus,
    ExitReason,
    RunStatus,
)

InFlight = Literal["keep", "stop"]
REPLACED = ExitReason.REPLACED.value


def content_hash(snapshot: dict[str, Any]) -> str:
    """What a version is: the spec as it means (defaults spelled or not: the same) and every
    template's text."""
    spec = spec_from_snapshot(snapshot).model_dump(mode="json", exclude_defaults=True)
    text = json.dumps({"spec": spec, "templates": snapshot.get("templates") or {}},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def run_hash(run: Run) -> str:
    return run.content_hash or content_hash(run.snapshot)


def enrolling_version(campaign: str, *, session: Session) -> Run | None:
    """The trigger campaign's version that takes events now (listening or paused)."""
    return session.scalar(select(Run).where(Run.campaign == campaign,
                                            Run.status.in_(ENROLLING_RUN),
                                            Run.trigger_event.is_not(None)))


def latest_version(campaign: str, *, session: Session) -> Run | None:
    return session.scalar(select(Run).where(Run.campaign == campaign)
                          .order_by(Run.version.desc(), Run.created_at.desc()).limit(1))


@dataclass
class Versioning:
    """What a launch does to the campaign's versions (decided before anything is written)."""
    version: int
    digest: str
    unchanged: Run | None = None         # the live version, identical: create nothing
    superseded: Run | None = None        # the live version this launch replaces
    to_stop: list[str] = field(default_factory=list)  # in-flight cascades (--in-flight stop)


def plan_version(loaded: LoadedCampaign, *, session: Session, in_flight: InFlight = "keep",
                 time_scale: float = 1.0, sends_live: bool = True) -> Versioning:
    """A launch identical to the live version creates nothing — unless it runs on another
    clock: launching for real what was rehearsed (or rehearsing again) replaces it."""
    slug = loaded.spec.campaign
    digest = content_hash(loaded.snapshot())
    live = enrolling_version(slug, session=session) if loaded.spec.trigger else None
    if live is not None and run_hash(live) == digest and live.time_scale == time_scale \
            and bool(live.sends_live) == sends_live:
        return Versioning(live.version, digest, unchanged=live)
    latest = latest_version(slug, session=session)
    if latest is None:
        version = 1
    elif run_hash(latest) == digest:
        version = latest.version  # an audience campaign sent again, as it was
    else:
        version = int(session.scalar(select(func.max(Run.version))
                                     .where(Run.campaign == slug)) or 0) + 1
    to_stop = list(session.scalars(select(Enrollment.id).where(
        Enrollment.campaign == slug, Enrollment.status.in_(LIVE_ENROLLMENT)))
    ) if in_flight == "stop" else []
    return Versioning(version, digest, superseded=live, to_stop=to_stop)


def apply_version(plan: Versioning, new_run: Run, *, session: Session) -> None:
    """Supersede the old version and stop what `--in-flight stop` asked for, in the
    launch's transaction (the new run is added after the old one stops enrolling)."""
    if plan.superseded is not None:
        lifecycle.move_run(plan.superseded, RunStatus.SUPERSEDED, superseded_by=new_run.id)
        session.flush()
    for chunk in chunks(plan.to_stop):
        lifecycle.end_live(session=session, status=EnrollmentStatus.STOPPED, reason=REPLACED,
                           enrollment_ids=chunk)
