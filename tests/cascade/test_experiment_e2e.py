"""A winner that takes over, end to end on the real dev server in a rehearsal (issue 28):
cascades run, the sms-first variant converts, the reconciler's pass declares it once the
conversion windows have closed on the campaign clock — marked as a rehearsal — and from then
on entrants get it, while customers already in flight finish on the variant they had. On
SQLite only, as the other rehearsal end-to-end tests."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.reconcile import decide_experiments
from omnicascade.cascade.winner import history
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import HOLDOUT
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, convert, outbox, running_worker, start_enrollments
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.asyncio

SCALE = 14_400  # a campaign day in 6 s
YAML = """\
campaign: winner-e2e
trigger: {event: cart_abandoned}
conversion: {events: [order_placed], window: 2h}
steps:
  - {channel: email, template: t_email, wait: 4h}
  - {channel: email, template: t_email}
experiment:
  holdout: 10%
  variants:
    control: {weight: 50}
    sms_first:
      weight: 50
      steps:
        - {channel: sms, template: t_sms, wait: 4h}
        - {channel: email, template: t_email}
  winner: {metric: conversion_rate, confidence: 95%, min_per_variant: 15}
"""


async def _enroll(env, settings, run_id: str, ids: list[str]) -> dict[str, str]:  # noqa: ANN001
    add_customers(settings, *({"id": c, **FULL} for c in ids))
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        assert run is not None
        rows = enroll_customers(run, ids, session=s, settings=settings)
        s.expunge_all()
    await start_enrollments(env.client, settings, [r for r in rows if r.status == "pending"])
    return {r.customer_id: r.variant for r in rows}


def _ended(settings, ids) -> bool:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return all(e.finished_at is not None for e in s.scalars(
            select(Enrollment).where(Enrollment.customer_id.in_(list(ids)))))


def _channels(settings, customer_id: str) -> list[str]:  # noqa: ANN001
    return [m.channel for m in sorted(outbox(settings, customer_id), key=lambda m: m.step)]


async def test_a_rehearsed_winner_takes_later_entrants_and_in_flight_customers_finish_theirs(
        dev_env, settings, tmp_path):
    loaded = load_campaign(write_campaign(tmp_path / "c", YAML))
    with session_scope(settings.db_url) as s:
        run_id = create_run(loaded, session=s, time_scale=SCALE).id
    async with running_worker(dev_env, settings):
        first = await _enroll(dev_env, settings, run_id, [f"a{i}" for i in range(44)])
        for n, (c, v) in enumerate(sorted(first.items())):  # every sms_first customer buys
            if v == "sms_first":
                await convert(dev_env.client, settings, c, event_id=f"o-{n}")
        await eventually(lambda: _ended(settings, first), "the first cascades to end", 60)
        # enrolled before the decision, still in flight when it comes
        flight = await _enroll(dev_env, settings, run_id, [f"f{i}" for i in range(20)])

        def decided() -> bool:
            decide_experiments(settings)
            with session_scope(settings.db_url) as s:
                return bool(history(run_id, session=s))
        # windows close 4 h + 2 h of campaign time after entry: under 2 s of wall time
        await eventually(decided, "the winner to be declared", 30, interval=0.2)
        with session_scope(settings.db_url) as s:
            (row,) = history(run_id, session=s)
            assert (row.kind, row.winner, row.rehearsal) == ("winner", "sms_first", True)
            assert all(n >= 15 for n in row.sample_sizes.values())
        later = await _enroll(dev_env, settings, run_id, [f"b{i}" for i in range(20)])
        await eventually(lambda: _ended(settings, [*flight, *later]), "the rest to end", 60)
    assert set(later.values()) <= {"sms_first", HOLDOUT} and "sms_first" in later.values()
    with session_scope(settings.db_url) as s:
        stored = {e.customer_id: e.variant for e in s.scalars(
            select(Enrollment).where(Enrollment.customer_id.in_(list(flight))))}
    assert stored == flight and "control" in flight.values()  # nobody in flight switched
    for c, v in {**flight, **later}.items():
        expected = {"control": ["email", "email"], "sms_first": ["sms", "email"],
                    HOLDOUT: []}[v]
        assert _channels(settings, c) == expected, (c, v)


ONE_STEP = """\
campaign: {name}
trigger: {{event: cart_abandoned}}
conversion: {{events: [order_placed]}}
steps:
  - {{channel: email, template: t_email}}
{extra}"""


async def test_the_global_control_gets_nothing_but_transactional_messages(
        dev_env, settings, tmp_path):
    from omnicascade.cascade.events import EventIn, process_event, store_event, stored_answer
    from omnicascade.experiments import in_global_control

    settings = settings.model_copy(update={"global_control": "20%",
                                           "global_control_salt": "s1"})
    ids = [f"g{i}" for i in range(40)]
    control = {c for c in ids if in_global_control(c, share=0.2, salt="s1")}
    assert 0 < len(control) < len(ids)
    add_customers(settings, *({"id": c, **FULL} for c in ids))
    for name, extra in (("first", ""), ("second", ""), ("receipts", "transactional: true\n")):
        loaded = load_campaign(write_campaign(tmp_path / name, ONE_STEP.format(
            name=name, extra=extra)))
        with session_scope(settings.db_url) as s:
            create_run(loaded, session=s)
    async with running_worker(dev_env, settings):
        for c in ids:
            with session_scope(settings.db_url) as s:
                store_event(EventIn(event_id=f"e-{c}", customer_id=c, type="cart_abandoned",
                                    data={}), session=s)
            await process_event(dev_env.client, settings, f"e-{c}")
            answer = stored_answer(settings.db_url, f"e-{c}")
            assert answer["enrolled"] == 3 and not answer.get("not_enrolled"), answer  # counted
        await eventually(lambda: _ended(settings, ids), "every cascade to end", 60)
    with session_scope(settings.db_url) as s:
        campaigns = {(e.customer_id, e.campaign): e.status for e in s.scalars(select(Enrollment))}
    for c in ids:
        got = {m.run_id for m in outbox(settings, c)}
        assert len(got) == (1 if c in control else 3), c  # the receipt only, or all three
        for name in ("first", "second"):
            assert (campaigns[(c, name)] == "global_control") == (c in control)
        assert campaigns[(c, "receipts")] != "global_control"
