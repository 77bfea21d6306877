"""Signature v2 over the real app, on SQLite and PostgreSQL: a signature covers the method
and the path as well as the time and the body, the old v1 form is refused with a message
saying how to sign now, and each signature takes effect once (the probes of the hardening
issue: a /v1/events body replayed to /v1/conversions, and a consent change reverted by
replaying the earlier upsert), also when 20 identical requests race."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omnicascade.api import replay
from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER, V1_REFUSED, sign
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import (
    ConversionEvent,
    Customer,
    InboundEvent,
    RequestSignature,
)
from omnicascade.db.session import session_scope
from tests.helpers.api import SECRET
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers

pytestmark = pytest.mark.db

JSON = {"content-type": "application/json"}
# Valid for /v1/events and for /v1/conversions alike: what the probe replayed.
ORDER = json.dumps({"event_id": "ord-1", "type": "order_placed", "customer_id": "c1"}).encode()


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    add_customers(settings, {"id": "c1", **FULL})
    with socket.socket() as s:  # Temporal at a closed port: the API records, never waits
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"})


@pytest.fixture
async def http(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(api_settings)),
                                 base_url="http://api") as client:
        yield client


def count(settings: Settings, model: Any) -> int:
    with session_scope(settings.db_url) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def consents(settings: Settings, customer_id: str) -> dict[str, Any]:
    with session_scope(settings.db_url) as s:
        row = s.get(Customer, customer_id)
        assert row is not None
        return dict(row.consents or {})


async def test_a_body_signed_for_events_replayed_to_conversions_is_refused_and_not_stored(
        http, api_settings):
    header = sign(SECRET, "POST", "/v1/events", ORDER)
    r = await http.post("/v1/conversions", content=ORDER, headers={HEADER: header, **JSON})
    assert r.status_code == 401 and "does not match" in r.json()["detail"], r.text
    assert (await http.post("/v1/events", content=ORDER, headers={HEADER: header, **JSON})
            ).status_code == 202
    r = await http.post("/v1/conversions", content=ORDER, headers={HEADER: header, **JSON})
    assert r.status_code == 401, r.text
    assert count(api_settings, ConversionEvent) == 0
    assert count(api_settings, InboundEvent) == 1


async def test_a_replayed_consent_upsert_is_refused_and_the_opt_out_stands(http, api_settings):
    opt_in = json.dumps({"id": "c1", "consents": {"sms": True}}).encode()
    opt_in_header = sign(SECRET, "POST", "/v1/customers", opt_in)
    r = await http.post("/v1/customers", content=opt_in, headers={HEADER: opt_in_header, **JSON})
    assert r.status_code == 200 and consents(api_settings, "c1") == {"sms": True}
    opt_out = json.dumps({"id": "c1", "consents": {"sms": False}}).encode()
    r = await http.post("/v1/customers", content=opt_out, headers={
        HEADER: sign(SECRET, "POST", "/v1/customers", opt_out), **JSON})
    assert r.status_code == 200 and consents(api_settings, "c1") == {"sms": False}

    r = await http.post("/v1/customers", content=opt_in, headers={HEADER: opt_in_header, **JSON})
    assert r.status_code == 401 and r.json()["detail"].startswith("signature already used")
    assert consents(api_settings, "c1") == {"sms": False}  # still opted out


@pytest.mark.parametrize("route", ["/v1/customers", "/v1/events", "/v1/conversions"])
async def test_the_same_signed_request_twice_takes_effect_once(http, api_settings, route):
    body = {"/v1/customers": json.dumps({"id": "c2", "email": "c2@example.com"}).encode()
            }.get(route, ORDER)
    headers = {HEADER: sign(SECRET, "POST", route, body), **JSON}
    first = await http.post(route, content=body, headers=headers)
    assert first.status_code in (200, 202), first.text
    with session_scope(api_settings.db_url) as s:
        before = {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                  for m in (Customer, InboundEvent, ConversionEvent, RequestSignature)}
        updated = s.get(Customer, "c2").updated_at if route == "/v1/customers" else None
    again = await http.post(route, content=body, headers=headers)
    assert again.status_code == 401 and "already used" in again.json()["detail"], again.text
    with session_scope(api_settings.db_url) as s:
        assert before == {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                          for m in (Customer, InboundEvent, ConversionEvent, RequestSignature)}
        if updated is not None:
            assert s.get(Customer, "c2").updated_at == updated


async def test_a_v1_signature_is_refused_with_how_to_sign_now(http, api_settings):
    t = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + ORDER, hashlib.sha256).hexdigest()
    r = await http.post("/v1/events", content=ORDER, headers={HEADER: f"t={t},v1={mac}", **JSON})
    assert r.status_code == 401 and r.json()["detail"] == V1_REFUSED
    assert "v1 signatures (t + body only) are no longer accepted" in V1_REFUSED
    assert '"<t>.<METHOD>.<path>.<body>"' in V1_REFUSED and "README" in V1_REFUSED
    assert count(api_settings, InboundEvent) == 0


@pytest.mark.parametrize("method", ["PUT", "GET", "PATCH", "post "])
async def test_a_signature_for_another_method_is_refused(http, api_settings, method):
    r = await http.post("/v1/events", content=ORDER, headers={
        HEADER: sign(SECRET, method, "/v1/events", ORDER), **JSON})
    assert r.status_code == 401 and "does not match" in r.json()["detail"], r.text
    assert count(api_settings, InboundEvent) == 0


async def test_the_query_string_is_part_of_the_signed_path(http, api_settings):
    body = json.dumps({"id": "c3"}).encode()
    r = await http.post("/v1/customers?source=shop", content=body, headers={
        HEADER: sign(SECRET, "POST", "/v1/customers", body), **JSON})
    assert r.status_code == 401
    r = await http.post("/v1/customers?source=shop", content=body, headers={
        HEADER: sign(SECRET, "POST", "/v1/customers?source=shop", body), **JSON})
    assert r.status_code == 200, r.text


async def test_a_request_that_fails_does_not_use_its_signature_up(http, api_settings):
    """The signature is used up in the transaction of the effect: a 422 (unknown customer)
    rolls it back, and the same signed request sent again once the customer exists works."""
    body = json.dumps({"event_id": "ev-9", "type": "cart_abandoned",
                       "customer_id": "c9"}).encode()
    headers = {HEADER: sign(SECRET, "POST", "/v1/events", body), **JSON}
    assert (await http.post("/v1/events", content=body, headers=headers)).status_code == 422
    assert count(api_settings, RequestSignature) == 0
    add_customers(api_settings, {"id": "c9", **FULL})
    assert (await http.post("/v1/events", content=body, headers=headers)).status_code == 202
    assert (await http.post("/v1/events", content=body, headers=headers)).status_code == 401


@pytest.mark.timeout(120)
@pytest.mark.parametrize("route", ["/v1/customers", "/v1/events"])
async def test_twenty_identical_signed_requests_racing_take_effect_once(http, api_settings,
                                                                        route):
    body = {"/v1/customers": json.dumps({"id": "c1", "consents": {"sms": True}}).encode()
            }.get(route, ORDER)
    headers = {HEADER: sign(SECRET, "POST", route, body), **JSON}
    answers = await asyncio.gather(*(http.post(route, content=body, headers=headers)
                                     for _ in range(20)))
    statuses = Counter(r.status_code for r in answers)
    accepted = 200 if route == "/v1/customers" else 202
    assert statuses == {accepted: 1, 401: 19}, [(r.status_code, r.text) for r in answers]
    assert all("already used" in r.json()["detail"] for r in answers if r.status_code == 401)
    assert count(api_settings, RequestSignature) == 1
    if route == "/v1/events":
        assert count(api_settings, InboundEvent) == 1


def _old_rows(settings: Settings, n: int, age_s: int, prefix: str) -> None:
    with session_scope(settings.db_url) as s:
        signed_at = now_utc() - timedelta(seconds=age_s)
        s.add_all(RequestSignature(id=f"{prefix}{i:0{64 - len(prefix)}d}", signed_at=signed_at,
                                   accepted_at=signed_at) for i in range(n))


def _ids(settings: Settings) -> set[str]:
    with session_scope(settings.db_url) as s:
        return set(s.scalars(select(RequestSignature.id)))


async def test_the_replay_table_is_pruned_a_chunk_at_a_time(http, api_settings):
    tolerance = api_settings.signature_tolerance_s
    n_old = replay.PRUNE_CHUNK + 30
    _old_rows(api_settings, n_old, 2 * tolerance + 60, "old")
    _old_rows(api_settings, 5, 2 * tolerance - 60, "recent")  # could still be replayed: kept
    recent = {i for i in _ids(api_settings) if i.startswith("recent")}
    assert len(recent) == 5

    async def upsert(customer: str) -> None:
        body = json.dumps({"id": customer}).encode()
        r = await http.post("/v1/customers", content=body, headers={
            HEADER: sign(SECRET, "POST", "/v1/customers", body), **JSON})
        assert r.status_code == 200, r.text

    await upsert("p1")
    left = _ids(api_settings)
    assert len([i for i in left if i.startswith("old")]) == n_old - replay.PRUNE_CHUNK
    assert recent <= left
    await upsert("p2")
    left = _ids(api_settings)
    assert not [i for i in left if i.startswith("old")] and recent <= left
    assert len(left) == len(recent) + 2  # the two accepted signatures


def test_prune_deletes_only_what_can_never_match_again(api_settings):
    now = datetime(2030, 1, 1)
    with session_scope(api_settings.db_url) as s:
        s.add_all(RequestSignature(id=f"{age:064d}", signed_at=now - timedelta(seconds=age),
                                   accepted_at=now) for age in (601, 700, 599, 0, -300))
    with session_scope(api_settings.db_url) as s:
        assert replay.prune(s, 300, now=now) == 2
    assert _ids(api_settings) == {f"{age:064d}" for age in (599, 0, -300)}
