"""Runs and enrollments: write the rows first, then start one CustomerCascade per enrollment
(cascade/temporal.py) with a deterministic workflow id.

Because the rows are committed before any workflow starts and starting is idempotent, a
launcher that dies halfway loses nothing: the worker's reconciler starts whatever is
still `pending`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.campaign.codes import code_from
from omnicascade.campaign.load import LoadedCampaign
from omnicascade.campaign.model import CampaignSpec
from omnicascade.campaign.variants import variant_names, variant_promo, variant_steps
from omnicascade.cascade.allocation import entrant_variants
from omnicascade.cascade.cascade_input import run_spec
from omnicascade.cascade.entries import Refusal, admit, recently_converted
from omnicascade.cascade.lifecycle import entry_id
from omnicascade.cascade.ordering import resolve_orders
from omnicascade.clock import clock_of, now_utc
from omnicascade.config import Settings, load_settings
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.query import scalars_in
from omnicascade.vocabulary import (
    CHANNELS,
    DEFAULT_VARIANT,
    HOLDOUT,
    EnrollmentStatus,
    RunStatus,
    SkipReason,
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def create_run(loaded: LoadedCampaign, *, session: Session, time_scale: float = 1.0,
               live: bool = False, audience_total: int = 0, version: int = 1,
               content_hash: str | None = None,
               before: Callable[[Run], None] | None = None) -> Run:
    """Write the run (a version of its campaign). `before` runs first with the new row in
    hand — the launch supersedes the old version there, before the new one listens."""
    spec = loaded.spec
    run = Run(id=new_id("run"), campaign=spec.campaign, description=spec.description,
              snapshot=loaded.snapshot(),
              trigger_event=spec.trigger.event if spec.trigger else None,
              status=RunStatus.LISTENING if spec.trigger else RunStatus.RUNNING,
              time_scale=time_scale, sends_live=time_scale == 1.0 or live,
              audience_total=audience_total, version=version,
              content_hash=content_hash, status_changed_at=now_utc())
    if before is not None:
        before(run)
    session.add(run)
    session.flush()
    return run


def _unique_codes(pattern: str, n: int, *, session: Session) -> list[str]:
    """n codes of `pattern` nobody holds yet, each in its normal form (campaign/codes.py):
    stored, shown in the message and looked up as one and the same text."""
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < n:
        batch = list({code_from(pattern) for _ in range(n - len(codes))} - seen)
        taken = set(scalars_in(session, lambda chunk: select(Enrollment.promo_code).where(
            Enrollment.promo_code.in_(chunk)), batch))
        fresh = [c for c in batch if c not in taken]
        seen.update(fresh)
        codes.extend(fresh)
    return codes


def enroll_customers(run: Run, customer_ids: Sequence[str], *, session: Session,
                     event_id: str | None = None, event_data: dict[str, Any] | None = None,
                     settings: Settings | None = None, key: str | None = None,
                     refused: list[Refusal] | None = None) -> list[Enrollment]:
    """Insert enrollment rows for the customers whose entry (campaign, customer, `key`) may
    enter now (cascade/entries.py); returns the new rows (status `pending`, or `excluded`
    with exit_reason `converted`) and appends the others to `refused`, with the reason.
    Each row carries its variant (stable hash), its resolved channel order and its own
    promo code; a pending row holds its entry until it ends."""
    spec = run_spec(run)
    now = now_utc()
    admitted, refusals = admit(spec, [(c, key) for c in customer_ids], now, session=session)
    if refused is not None:
        refused.extend(refusals)
    ids = [c for c, _ in admitted]
    excluded = {c for c, _ in recently_converted(spec, admitted, now, session=session)}
    settings = settings or load_settings()
    variants, controls = entrant_variants(run, [c for c in ids if c not in excluded],
                                          session=session, settings=settings)
    live = [c for c in ids if c not in excluded and c not in controls]
    costs = {ch: settings.price_of(ch) for ch in CHANNELS}
    orders = resolve_orders(spec, live, variants, costs, session=session)
    codes: dict[str, str] = {}
    by_pattern: dict[str, list[str]] = {}
    for c in live:
        promo = variant_promo(spec, variants[c])
        if promo:
            by_pattern.setdefault(promo.pattern, []).append(c)
    for pattern, members in by_pattern.items():
        codes.update(zip(members, _unique_codes(pattern, len(members), session=session),
                         strict=True))
    # `conversion.window` on the wall clock: a rehearsal's week passes N times faster
    window = clock_of(run).wall_span(timedelta(seconds=spec.conversion_window_s)).total_seconds()
    rows = []
    for customer_id in ids:
        if customer_id in controls:
            rows.append(_global_control(run, customer_id, key, spec, now, event_id))
            continue
        is_excluded = customer_id in excluded
        strategy, order = orders.get(customer_id, (None, None))
        rows.append(Enrollment(
            id=new_id("enr"), run_id=run.id, customer_id=customer_id, campaign=run.campaign,
            entry_key=key, match_key=spec.match_key,
            active_entry=None if is_excluded else entry_id(run.campaign, customer_id, key),
            variant=variants.get(customer_id, DEFAULT_VARIANT),
            status=EnrollmentStatus.EXCLUDED if is_excluded else EnrollmentStatus.PENDING,
            exit_reason=SkipReason.CONVERTED.value if is_excluded else None,
            promo_code=codes.get(customer_id), event_data=event_data,
            trigger_event_id=event_id, conversion_events=spec.conversion_events,
            lookback_s=spec.lookback_s, order_strategy=strategy, channel_order=order,
            conversion_window_s=window,
            enrolled_at=now, finished_at=now if is_excluded else None))
    session.add_all(rows)
    session.flush()
    return rows


def _global_control(run: Run, customer_id: str, key: str | None, spec: CampaignSpec,
                    now: datetime, event_id: str | None) -> Enrollment:
    """A global control member: enrolled as the holdout, but no cascade starts (nothing
    would be sent) and the entry is not held. Their conversions count for as long as a
    messaged customer's would: the cascade's planned length plus `conversion.window`."""
    planned = max(sum(s.wait for s in variant_steps(spec, v)) for v in variant_names(spec))
    window = clock_of(run).wall_span(timedelta(seconds=planned + spec.conversion_window_s))
    return Enrollment(
        id=new_id("enr"), run_id=run.id, customer_id=customer_id, campaign=run.campaign,
        entry_key=key, match_key=spec.match_key, active_entry=None, variant=HOLDOUT,
        status=EnrollmentStatus.GLOBAL_CONTROL, exit_reason=None, trigger_event_id=event_id,
        conversion_events=spec.conversion_events, lookback_s=spec.lookback_s,
        conversion_window_s=window.total_seconds(), enrolled_at=now, finished_at=now)
