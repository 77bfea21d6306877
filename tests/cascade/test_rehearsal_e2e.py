"""A rehearsal end to end on the real dev server: quiet hours, a cap and a 3 d follow-up on
the campaign clock, done in seconds. On SQLite only: what it checks is the clock, and the
database-specific parts of sending are covered on both backends elsewhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.launch import launch
from omnicascade.clock import clock_of
from omnicascade.customers.model import CustomerIn
from omnicascade.db.models import Delivery, Enrollment, Run
from omnicascade.db.session import session_scope
from tests.cascade.test_rehearsal import YAML, _quiet_now
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, convert, outbox, running_worker
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.asyncio


async def test_a_rehearsal_with_quiet_hours_a_cap_and_a_3d_follow_up_finishes_fast(
        dev_env, settings, tmp_path):
    """Quiet hours cover "now" for every customer, the cap is 1 per 12 h, the review
    request comes 3 d after the sale: on the wall clock that is days; rehearsed ×14,400
    (a campaign day in 6 s) it is over in well under a minute, and nothing is capped that
    a live run would have sent."""
    scale = 14_400
    settings = settings.model_copy(update={
        "temporal_address": dev_env.client.service_client.config.target_host})
    add_customers(settings, *({"id": c, **FULL, "timezone": "Europe/Berlin"}
                              for c in ("c1", "c2")))
    folder = write_campaign(tmp_path / "r", YAML.format(quiet=_quiet_now(6)))
    async with running_worker(dev_env, settings):
        result = await launch(load_campaign(folder), settings,
                              audience=[CustomerIn(id="c1"), CustomerIn(id="c2")], time_scale=scale)
        await eventually(lambda: [m for m in outbox(settings, "c1")], "c1's first email", 30)
        await convert(dev_env.client, settings, "c1")
        with session_scope(settings.db_url) as s:
            run = s.get(Run, result.run_id)
            assert run is not None and not run.sends_live

        def ended() -> bool:
            with session_scope(settings.db_url) as s:
                return all(e.status in ("converted", "completed") and e.finished_at
                           for e in s.scalars(select(Enrollment).where(
                               Enrollment.run_id == result.run_id)))
        await eventually(ended, "every cascade of the rehearsal to end", 60)
    sent = {(m.customer_id, m.step) for m in outbox(settings)}
    assert sent == {("c1", "0"), ("c1", "ac0"), ("c2", "0"), ("c2", "1")}  # nothing capped
    with session_scope(settings.db_url) as s:
        run = s.get(Run, result.run_id)
        assert run is not None
        clock = clock_of(run)
        rows = {(d.customer_id, d.step_key): d for d in s.scalars(
            select(Delivery).where(Delivery.run_id == result.run_id))}
    # the first emails went out when the (campaign-time) quiet hours ended, about 5-6 h in
    first = clock.span(rows[("c2", "0")].sent_at - clock.started)
    assert timedelta(hours=4) < first < timedelta(hours=7.5)
    # the sms a day later in campaign time, the review 3 days after the sale
    gap = clock.span(rows[("c2", "1")].sent_at - rows[("c2", "0")].sent_at)
    assert timedelta(hours=23) < gap < timedelta(hours=27)
    review = clock.span(rows[("c1", "ac0")].sent_at - rows[("c1", "0")].sent_at)
    assert timedelta(days=3) <= review < timedelta(days=3, hours=4)
