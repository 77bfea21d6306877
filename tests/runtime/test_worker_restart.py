"""Promise 5 and 2 together: kill -9 the worker process between steps, start a new one, and
every cascade resumes where it was — no step delivered twice, none lost."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest
from sqlalchemy import func, select

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.launch import launch
from omnicascade.db.models import Delivery, Enrollment
from omnicascade.db.session import session_scope
from tests.helpers.campaigns import FULL, four_steps, write_campaign
from tests.helpers.cascades import add_customers, outbox
from tests.helpers.server import worker_process
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.asyncio
SHORT = four_steps("restart", "3s")


def _count(settings, **where) -> int:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        q = select(func.count()).select_from(Delivery)
        for key, value in where.items():
            q = q.where(getattr(Delivery, key) == value)
        return int(s.scalar(q))


async def test_kill_worker_between_steps_resumes_without_duplicates(dev_env, settings,
                                                                    tmp_path):
    settings = settings.model_copy(update={
        "temporal_address": dev_env.client.service_client.config.target_host,
        "search_attributes": True})
    ids = [f"k{i}" for i in range(8)]
    add_customers(settings, *({"id": i, **FULL} for i in ids))
    campaign = write_campaign(tmp_path / "restart", SHORT)
    first = worker_process(settings, tmp_path / "w1.log")
    try:
        from omnicascade.customers.model import CustomerIn
        await launch(load_campaign(campaign), settings,
                     audience=[CustomerIn(id=i) for i in ids])
        await eventually(lambda: _count(settings, step_key="0", status="sent") == len(ids),
                         "every first message sent")
        first.send_signal(signal.SIGKILL)  # mid-cascade: every customer is in its first wait
        first.wait(10)
        sent_before = _count(settings, status="sent")
        await asyncio.sleep(4)  # timers fire while no worker is alive
        assert _count(settings, status="sent") == sent_before
        second = worker_process(settings, tmp_path / "w2.log")
        try:
            def finished() -> bool:
                with session_scope(settings.db_url) as s:
                    return s.scalar(select(func.count()).select_from(Enrollment).where(
                        Enrollment.status == "completed")) == len(ids)
            await eventually(finished, "every cascade completed after the restart", 90)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    per_step = Counter((m.customer_id, m.step) for m in outbox(settings))
    assert set(per_step.values()) == {1}  # nothing delivered twice
    assert len(per_step) == 4 * len(ids)  # nothing lost
    assert _count(settings, status="unknown") == 0
