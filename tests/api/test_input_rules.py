"""What the API used to accept without a word (issue 23, item 5): `"drain": "yes"` read as
true, and event types no campaign file may name (empty, 100,000 characters, other
scripts). The event-name rule is the campaign YAML's (validation.event_name_problem), so
every name a campaign waits for can be sent and nothing else can."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.db.models import ConversionEvent, InboundEvent, Run
from omnicascade.db.session import session_scope
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, enroll
from tests.helpers.fake_provider import SignalRecorder

pytestmark = pytest.mark.db  # also on PostgreSQL when tests/pg.py has one

QUICK = """\
campaign: quick-cart
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: push,  template: t_push}
"""


class Api:
    def __init__(self, http: httpx.AsyncClient):
        self.http, self.sign = http, FreshSigner()

    async def post(self, path: str, payload: Any) -> httpx.Response:
        body = json.dumps(payload).encode()
        return await self.http.post(path, content=body, headers={
            "content-type": "application/json",
            HEADER: self.sign(SECRET, "POST", path, body)})


@pytest.fixture
async def api(settings):  # noqa: ANN001
    add_customers(settings, {"id": "c1", **FULL})
    async with asgi_client(create_app(settings, SignalRecorder())) as http:  # type: ignore[arg-type]
        yield Api(http)


def _run_status(settings, run_id: str) -> str:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        assert run is not None
        return run.status


@pytest.mark.parametrize("drain", ["yes", "true", "false", "no", 1, 0, None, [], {}])
async def test_drain_must_be_a_json_boolean(api, settings, tmp_path, drain):
    run_id, _ = await enroll(None, settings, write_campaign(tmp_path / "c", QUICK), ["c1"],
                             start=False)  # type: ignore[arg-type]
    r = await api.post(f"/v1/runs/{run_id}/stop", {"drain": drain})
    assert r.status_code == 422, r.text
    assert "drain" in r.json()["detail"] and "bool" in r.json()["detail"]
    assert _run_status(settings, run_id) == "listening"  # neither drained nor stopped
    r = await api.post(f"/v1/runs/{run_id}/stop", {"drain": True})  # the JSON boolean
    assert (r.status_code, r.json()["status"]) == (200, "draining")


BAD_TYPES = {"empty": "", "spaces": "   ", "100,000 characters": "e" * 100_000,
             "101 characters": "e" * 101, "another script": "заказ",
             "full-width": "ｏｒｄｅｒ", "tab inside": "order\tplaced",
             "leading dash": "-order", "markup": "<b>order</b>"}


@pytest.mark.parametrize("case", BAD_TYPES)
async def test_bad_event_types_are_422_on_events_and_conversions(api, settings, case):
    kind = BAD_TYPES[case]
    r = await api.post("/v1/events", {"event_id": "ev-1", "customer_id": "c1", "type": kind})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "type" in detail and "event name" in detail and len(detail) < 500, detail
    r = await api.post("/v1/conversions", {"event_id": "cv-1", "customer_id": "c1",
                                           "type": kind})
    assert r.status_code == 422 and "event name" in r.json()["detail"], r.text
    with session_scope(settings.db_url) as s:  # nothing stored
        assert s.scalar(select(func.count()).select_from(InboundEvent)) == 0
        assert s.scalar(select(func.count()).select_from(ConversionEvent)) == 0


@pytest.mark.parametrize("kind", ["order_placed", "Order Completed", "shop.order:paid/v2",
                                  "e" * 100, "  order_placed  "])
async def test_event_types_a_campaign_may_name_are_accepted(api, kind):
    r = await api.post("/v1/events", {"event_id": "ev-1", "customer_id": "c1", "type": kind})
    assert r.status_code == 202, r.text
    r = await api.post("/v1/conversions", {"event_id": "cv-1", "customer_id": "c1",
                                           "type": kind})
    assert r.status_code == 202, r.text
