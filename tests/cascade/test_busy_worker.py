"""A worker busy on pathological templates never delays a conversion (promises 1 and 4).

The probe: a slow template rendered inside the send transaction held SQLite's write lock;
a conversion posted meanwhile got 500 after 60 s and was not stored. Now rendering happens
before any write transaction and is bounded by the render budget. Here the API and the
worker share one process and one event loop, as in `omnicascade server`: while the worker
renders 60 customers' over-budget templates, 100 conversions are posted one after another.
Every one is answered and stored while the worker is still busy rendering (told by the
order of events, not by a stopwatch: the benchmark measures latency), and every converted
cascade stops.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.launch import launch
from omnicascade.clock import now_utc
from omnicascade.customers.model import CustomerIn
from omnicascade.db.models import ConversionEvent, Delivery, Enrollment
from omnicascade.db.session import session_scope
from omnicascade.reports.run_views import sends_after_conversion
from omnicascade.runtime.worker import build_worker
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import FULL, TEMPLATES, write_campaign
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.db

CAMPAIGN = """\
campaign: busy
conversion: {events: [order_placed], lookback: 1h}
steps:
  - {channel: email, template: t_email, wait: 1h}
  - {channel: sms,   template: t_sms}
"""
# Passes validation (no customer at the trial render); with `loops: 100000` it runs until
# the render budget stops it.
SLOW = ("{% for i in range(customer.loops) %}{% for j in range(customer.loops) %}{% endfor %}"
        "{% endfor %}Hi {{ customer.id }}")
SLOW_CUSTOMERS, BUYERS = 60, 100


async def test_conversions_are_stored_at_once_while_the_worker_is_busy(dev_env, settings,
                                                                       tmp_path):
    settings = settings.model_copy(update={
        "temporal_address": dev_env.client.service_client.config.target_host})
    campaign = write_campaign(tmp_path / "c", CAMPAIGN, dict(TEMPLATES, **{"t_email.txt.j2": SLOW}))
    audience = [CustomerIn(id=f"slow{i}", **FULL, attributes={"loops": 100000})
                for i in range(SLOW_CUSTOMERS)]
    audience += [CustomerIn(id=f"buyer{i}", **FULL, attributes={"loops": 0})
                 for i in range(BUYERS)]
    app, sign = create_app(settings, dev_env.client), FreshSigner()
    async with build_worker(dev_env.client, settings), asgi_client(app) as http:
        run_id = (await launch(load_campaign(campaign), settings, audience=audience)).run_id
        post_start = now_utc()
        answers = []
        for i in range(BUYERS):
            body = json.dumps({"event_id": f"order-{i}", "type": "order_placed",
                               "customer_id": f"buyer{i}"}).encode()
            response = await http.post("/v1/conversions", content=body, headers={
                HEADER: sign(SECRET, "POST", "/v1/conversions", body),
                "content-type": "application/json"})
            answers.append(response.status_code)
        post_end = now_utc()

        def slow_failures() -> int:
            with session_scope(settings.db_url) as s:
                return len(s.scalars(select(Delivery.id).where(
                    Delivery.run_id == run_id, Delivery.customer_id.like("slow%"),
                    Delivery.step_key == "0", Delivery.status == "failed")).all())

        def converted() -> bool:
            with session_scope(settings.db_url) as s:
                statuses = s.scalars(select(Enrollment.status).where(
                    Enrollment.run_id == run_id, Enrollment.customer_id.like("buyer%"))).all()
            return len(statuses) == BUYERS and set(statuses) == {"converted"}

        await eventually(converted, "every buyer's cascade to stop as converted", 60)
        await eventually(lambda: slow_failures() == SLOW_CUSTOMERS,
                         "every slow template to fail its step", 120)

    assert answers == [202] * BUYERS, answers
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(ConversionEvent.event_id).where(
            ConversionEvent.event_id == f"order-{BUYERS - 1}")) is not None
        assert sends_after_conversion(session=s, run_id=run_id) == 0
        slow = s.scalars(select(Delivery).where(Delivery.run_id == run_id,
                                                Delivery.customer_id.like("slow%"),
                                                Delivery.step_key == "0")).all()
        assert {d.status for d in slow} == {"failed"}
        assert all(d.reason and d.reason.startswith("template:") and "render budget" in d.reason
                   for d in slow), slow[0].reason
    # the worker really was busy rendering while the conversions came in, and was still busy
    # after the last one was answered: no conversion waited for the renders to finish
    during = [d for d in slow if post_start <= d.created_at <= post_end]
    assert during, (post_start, post_end, sorted(d.created_at for d in slow)[:3])
    still_busy = [d for d in slow if d.created_at > post_end]
    assert still_busy, (post_end, sorted(d.created_at for d in slow)[-3:])
