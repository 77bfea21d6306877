"""Runs and enrollments: write the rows first, then start one CustomerCascade per enrollment
(cascade/temporal.py) with a deterministic workflow id.

Because the rows are committed before any workflow starts and starting is idempotent, a
launcher that dies halfway loses nothing: the worker's reconciler starts whatever is
still `pending`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.campaign.load import LoadedCampaign
from omnicascade.campaign.model import RANDOM_PART
from omnicascade.campaign.variants import assign_variant, variant_promo
from omnicascade.cascade.entries import Refusal, admit, recently_converted
from omnicascade.cascade.lifecycle import entry_id
from omnicascade.cascade.ordering import resolve_orders
from omnicascade.cascade.plan import run_spec
from omnicascade.clock import clock_of
from omnicascade.config import Settings, load_settings
from omnicascade.db.models import Enrollment, Run, utcnow
from omnicascade.db.query import scalars_in
from omnicascade.vocabulary import CHANNELS, EnrollmentStatus, RunStatus, SkipReason

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud


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
              content_hash=content_hash, status_changed_at=utcnow())
    if before is not None:
        before(run)
    session.add(run)
    session.flush()
    return run


def promo_code(pattern: str) -> str:
    return RANDOM_PART.sub(lambda m: "".join(secrets.choice(_CODE_ALPHABET)
                                             for _ in range(int(m.group(1)))), pattern)


def _unique_codes(pattern: str, n: int, *, session: Session) -> list[str]:
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < n:
        batch = list({promo_code(pattern) for _ in range(n - len(codes))} - seen)
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
    now = utcnow()
    admitted, refusals = admit(spec, [(c, key) for c in customer_ids], now, session=session)
    if refused is not None:
        refused.extend(refusals)
    ids = [c for c, _ in admitted]
    excluded = {c for c, _ in recently_converted(spec, admitted, now, session=session)}
    variants = {c: assign_variant(spec, c) for c in ids}
    live = [c for c in ids if c not in excluded]
    costs = {ch: (settings or load_settings()).unit_cost(ch) for ch in CHANNELS}
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
        is_excluded = customer_id in excluded
        strategy, order = orders.get(customer_id, (None, None))
        rows.append(Enrollment(
            id=new_id("enr"), run_id=run.id, customer_id=customer_id, campaign=run.campaign,
            entry_key=key, match_key=spec.match_key,
            active_entry=None if is_excluded else entry_id(run.campaign, customer_id, key),
            variant=variants[customer_id],
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
