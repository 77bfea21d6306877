"""Report fixtures: a launched run with an experiment, and rows written straight into the
ledger tables with chosen timestamps, so report numbers can be checked by hand (and a
realistic seeded data set can be rendered for the browser test)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.enroll import create_run
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, Delivery, DeliveryEvent, Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import WENT_OUT
from tests.helpers.campaigns import write_campaign

EXPERIMENT_YAML = """\
campaign: cart-test
description: Abandoned cart, email first vs SMS first
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms,   wait: 24h}
  - {channel: push,  template: t_push}
after_conversion:
  - {channel: email, template: review, delay: 1d}
experiment:
  holdout: 10%
  variants:
    control:   {weight: 50}
    sms_first:
      weight: 50
      steps:
        - {channel: sms,   template: t_sms,   wait: 24h}
        - {channel: email, template: t_email, wait: 24h}
        - {channel: push,  template: t_push}
"""
T0 = datetime(2025, 3, 3, 9, 0, 0)
COST = {"email": 0.001, "sms": 0.05, "telegram": 0.0, "push": 0.0}


def launch(settings: Settings, folder: Path, yaml_text: str = EXPERIMENT_YAML) -> str:
    loaded = load_campaign(write_campaign(folder, yaml_text))
    with session_scope(settings.db_url) as s:
        run = create_run(loaded, session=s)
        run.created_at = T0
        return run.id


def member(s: Session, run_id: str, customer_id: str, variant: str,
           status: str = "completed", at: datetime = T0) -> Enrollment:
    e = Enrollment(id=f"enr_{customer_id}", run_id=run_id, customer_id=customer_id,
                   variant=variant, status=status, conversion_events=["order_placed"],
                   enrolled_at=at, started_at=at)
    s.add(e)
    return e


def send(s: Session, e: Enrollment, index: int, channel: str, at: datetime,
         status: str = "sent", reason: str | None = None, phase: str = "cascade",
         feedback: tuple[str, ...] = (), cost: float | None = None) -> Delivery:
    key = str(index) if phase == "cascade" else f"ac{index}"
    d = Delivery(id=f"{e.id}:{key}", enrollment_id=e.id, run_id=e.run_id,
                 customer_id=e.customer_id, step_key=key, step_index=index, phase=phase,
                 channel=channel, template=f"t_{channel}", status=status, reason=reason,
                 provider="outbox", created_at=at, sent_at=at if status == "sent" else None,
                 # priced as the ledger prices: whatever went out, or may have (unknown)
                 cost=(COST[channel] if cost is None else cost) if status in WENT_OUT
                 else None)
    s.add(d)
    for i, name in enumerate(feedback):
        s.add(DeliveryEvent(delivery_id=d.id, provider="sendgrid", event=name,
                            provider_event_id=f"{d.id}:{name}:{i}",
                            occurred_at=at + timedelta(minutes=5 + i)))
    return d


def conversion(s: Session, e: Enrollment, at: datetime, amount: float | None = None,
               currency: str | None = "EUR") -> ConversionEvent:
    c = ConversionEvent(event_id=f"order-{e.customer_id}", type="order_placed",
                        customer_id=e.customer_id, amount=amount, currency=currency,
                        occurred_at=at, recorded_at=at)
    s.add(c)
    e.converted_at, e.conversion_event_id = at, c.event_id
    if e.variant != "holdout":  # holdout rows stay `completed`: they never had a cascade
        e.status = "converted"
    return c


STEPS = {"control": ["email", "sms", "push"], "sms_first": ["sms", "email", "push"]}
# Chance to convert in the day after each step (email, sms, push), and without messages.
P_AFTER = {"email": 0.045, "sms": 0.05, "push": 0.012}
P_HOLDOUT = 0.05


def realistic(settings: Settings, folder: Path, n: int = 600, n_holdout: int = 150,
              seed: int = 7) -> str:
    """A plausible finished campaign: two variants and a holdout, feedback for email and
    SMS, some skips, revenue. Deterministic for a given seed."""
    rnd = random.Random(seed)
    run_id = launch(settings, folder)
    with session_scope(settings.db_url) as s:
        for variant, count in (("control", n), ("sms_first", n), ("holdout", n_holdout)):
            for i in range(count):
                at = T0 + timedelta(minutes=rnd.randrange(0, 3 * 24 * 60))
                e = member(s, run_id, f"{variant[:2]}{i:04d}", variant, at=at)
                if variant == "holdout":
                    if rnd.random() < P_HOLDOUT:
                        conversion(s, e, at + timedelta(hours=rnd.uniform(0, 72)),
                                   round(rnd.uniform(20, 150), 2))
                    continue
                has_phone = rnd.random() > 0.1
                for index, channel in enumerate(STEPS[variant]):
                    t = at + timedelta(hours=24 * index, minutes=1)
                    if channel == "sms" and not has_phone:
                        send(s, e, index, channel, t, "skipped", "no_address")
                        continue
                    if rnd.random() < 0.02:
                        send(s, e, index, channel, t, "skipped",
                             rnd.choice(["unsubscribed", "frequency_cap", "quiet_hours"]))
                        continue
                    fb: tuple[str, ...] = ()
                    if channel == "email":
                        r = rnd.random()
                        fb = ("bounce",) if r < 0.03 else ("delivered",) + (
                            ("open",) if r < 0.45 else ()) + (("click",) if r < 0.12 else ())
                    elif channel == "sms":
                        fb = ("delivered",) if rnd.random() < 0.97 else ("undelivered",)
                    send(s, e, index, channel, t, feedback=fb)
                    if rnd.random() < P_AFTER[channel]:
                        done = t + timedelta(hours=rnd.expovariate(1 / 5) % 23.5)
                        conversion(s, e, done, round(rnd.uniform(20, 150), 2))
                        send(s, e, 0, "email", done + timedelta(days=1), phase="follow_up")
                        break
    return run_id


def get_run(settings: Settings, run_id: str) -> Run:
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        assert run is not None
        return run
