"""Erasure on the embedded Temporal dev server, on SQLite and PostgreSQL: the grep proof
(the person's e-mail, phone, name and id in the database file or dump and in Temporal
before; nowhere after), erasing mid-wait and mid-deferral (no message after the answer,
also when Temporal hears of it only later), and an erasure racing 20 conversions and a
stop of the run (one consistent outcome, no 5xx)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.cascade.cascade_input import cascade_input
from omnicascade.cascade.erase import erase_customer, retry_deletions
from omnicascade.cascade.temporal import start_cascade, workflow_id
from omnicascade.config import Settings
from omnicascade.db.erasure_models import Erasure
from omnicascade.db.models import ConversionEvent, Delivery, Enrollment, OutboxMessage, Run
from omnicascade.db.session import session_scope
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import write_campaign
from tests.helpers.cascades import add_customers, cascade_of, deliver_now, enroll, running_worker
from tests.helpers.erasure import (
    PERSON,
    found_in_bytes,
    found_in_history,
    found_in_rows,
    found_in_temporal,
    holding,
)
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.db

KEYED = """\
campaign: {name}
trigger: {{event: cart_abandoned, key: cart}}
conversion: {{events: [order_placed]}}
steps:
  - {{channel: email,    template: t_email,    wait: {wait}}}
  - {{channel: telegram, template: t_telegram, wait: {wait}}}
"""


@pytest.fixture
def sa_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"search_attributes": True})


def campaign(tmp_path: Path, name: str, wait: str = "24h", extra: str = "") -> Path:
    return write_campaign(tmp_path / name, KEYED.format(name=name, wait=wait) + extra)


def outbox_count(settings: Settings) -> int:
    with session_scope(settings.db_url) as s:
        return int(s.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def statuses(settings: Settings) -> list[str]:
    with session_scope(settings.db_url) as s:
        return sorted(e.status for e in s.scalars(select(Enrollment)))


class Api:
    def __init__(self, http: httpx.AsyncClient):
        self.http, self.sign = http, FreshSigner()

    async def __call__(self, method: str, path: str, body: dict[str, Any] | None = None
                       ) -> httpx.Response:
        raw = json.dumps(body).encode() if body is not None else b""
        return await self.http.request(method, path, content=raw, headers={
            HEADER: self.sign(SECRET, method, path, raw), "content-type": "application/json"})


async def visible(client: Any, ids: set[str]) -> set[str]:
    return {wf.id async for wf in client.list_workflows()} & ids


# slow: the dev server deletes executions asynchronously (30-60 s of waiting); the other
# erasure tests here stay in the inner loop
@pytest.mark.slow
async def test_erase_leaves_nothing_in_the_database_or_temporal(dev_env, sa_settings, tmp_path):
    s = sa_settings
    for name in ("erase-a", "erase-b"):  # two trigger campaigns, keyed, listening
        await enroll(dev_env.client, s, campaign(tmp_path, name), [])
    add_customers(s, PERSON)
    async with running_worker(dev_env, s), asgi_client(create_app(s, dev_env.client)) as http:
        api = Api(http)
        r = await api("POST", "/v1/events", {"event_id": "ev-cart-1", "type": "cart_abandoned",
                                             "customer_id": PERSON["id"],
                                             "data": {"cart": "k-1", "note": PERSON["email"]}})
        assert r.status_code == 202 and r.json()["enrolled"] == 2, r.text
        new_style = {workflow_id(e) for e in _enrollment_ids(s)}
        # a cascade started before pseudonyms: the customer id in its input and attribute
        legacy_run, [old] = await enroll(dev_env.client, s, campaign(tmp_path, "erase-c"),
                                         [PERSON["id"]], start=False)
        with session_scope(s.db_url) as db:
            inp = cascade_input(db.get(Run, legacy_run), db.get(Enrollment, old.id), s)
        inp.customer_id = PERSON["id"]
        assert await start_cascade(dev_env.client, s, inp)
        ids = {workflow_id(e) for e in _enrollment_ids(s)}
        assert len(ids) == 3
        await eventually(lambda: outbox_count(s) == 3, "every cascade's first message")

        assert found_in_rows(s.db_url) >= {"zq-cust-7731", "zelda.quux@example.org",
                                           "4915199887766", "zeldaquux"}
        assert found_in_bytes(s.db_url) >= {"zq-cust-7731", "zelda.quux@example.org",
                                            "4915199887766", "zeldaquux"}
        # Temporal: the search finds the legacy cascade's id; cascades started now hold
        # nothing personal (the customer is a pseudonym in their input and attribute)
        assert await found_in_temporal(dev_env.client) == {"zq-cust-7731"}
        for wid in new_style:
            assert await found_in_history(dev_env.client, wid) == set(), wid

        r = await api("DELETE", f"/v1/customers/{PERSON['id']}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["erased"] is True and body["cascades_ended"] == 3
        assert body["workflows_deleted"] == 3 and "workflows_pending" not in body
        sent = outbox_count(s)

        # the server deletes asynchronously (about half a minute on the dev server)
        await eventually(lambda: _gone(dev_env.client, ids), "the deleted executions gone",
                         timeout=90, interval=0.5)
        assert await found_in_temporal(dev_env.client) == set()
        assert found_in_rows(s.db_url) == set(), holding(s.db_url)
        assert found_in_bytes(s.db_url) == set()
        await asyncio.sleep(1.0)
        assert outbox_count(s) == sent  # nothing after the answer
        assert statuses(s) == ["erased"] * 3


def _enrollment_ids(settings: Settings) -> list[str]:
    with session_scope(settings.db_url) as s:
        return list(s.scalars(select(Enrollment.id)))


async def _gone(client: Any, ids: set[str]) -> bool:
    return not await visible(client, ids)


async def test_erase_mid_wait_without_temporal_sends_nothing_and_deletes_later(
        dev_env, sa_settings, tmp_path):
    """Temporal hears nothing at the erase: the cascade wakes from its wait and the
    send-time guard refuses its next step; the reconciler deletes it afterwards."""
    s = sa_settings
    async with cascade_of(dev_env, s, campaign(tmp_path, "mid-wait", "3s"), [PERSON],
                          event={"cart": "k-2"}) as c:
        [e] = c.rows
        await eventually(lambda: outbox_count(s) == 1, "the first message")
        outcome = await erase_customer(None, s, PERSON["id"], "api")
        assert outcome.body()["cascades_ended"] == 1 and outcome.workflows_pending == 1
        await asyncio.wait_for(c.handle(PERSON["id"]).result(), 30)  # woke, was refused, ended
        assert outbox_count(s) == 1
        with session_scope(s.db_url) as db:
            step1 = db.get(Delivery, f"{e.id}:1")
            assert step1 is not None and (step1.status, step1.reason) == ("skipped", "stopped")
            assert db.get(Enrollment, e.id).status == "erased"
        # deleted (accepted by the server, which removes it within about half a minute:
        # the proof test above waits for that)
        assert await retry_deletions(dev_env.client, s) == 1
        with session_scope(s.db_url) as db:
            assert db.scalars(select(Erasure)).one().workflows_pending is None


async def test_erase_during_a_quiet_hours_deferral(dev_env, sa_settings, tmp_path):
    now = datetime.now(UTC)
    quiet = (f"timezone: UTC\nquiet_hours: {{start: \"{(now - timedelta(hours=1)):%H:%M}\", "
             f"end: \"{(now + timedelta(hours=2)):%H:%M}\", mode: defer}}\n")
    s = sa_settings
    async with cascade_of(dev_env, s, campaign(tmp_path, "quiet", extra=quiet),
                          [{**PERSON, "timezone": "UTC"}], event={"cart": "k-3"}) as c:
        run_id, [e] = c.run_id, c.rows
        await eventually(lambda: _status(s, f"{e.id}:0") == "deferred", "the deferral")
        outcome = await erase_customer(None, s, PERSON["id"], "cli")  # Temporal told later
        assert outcome.body()["cascades_ended"] == 1
        with session_scope(s.db_url) as db:  # the deferral's end: the guard asks again
            inp = cascade_input(db.get(Run, run_id), db.get(Enrollment, e.id), s)
        result = await deliver_now(s, e.id, inp.steps[0])
        assert (result.status, result.reason) == ("skipped", "stopped")
        assert outbox_count(s) == 0
        assert await retry_deletions(dev_env.client, s) == 1
        assert await retry_deletions(dev_env.client, s) == 0  # nothing left to retry
        assert found_in_rows(s.db_url) == set(), holding(s.db_url)


def _status(settings: Settings, delivery_id: str) -> str | None:
    with session_scope(settings.db_url) as s:
        row = s.get(Delivery, delivery_id)
        return row.status if row else None


async def test_erase_racing_conversions_and_a_stop(dev_env, sa_settings, tmp_path):
    s = sa_settings
    async with cascade_of(dev_env, s, campaign(tmp_path, "race"), [PERSON],
                          event={"cart": "k-4"}) as c, \
            asgi_client(create_app(s, dev_env.client)) as http:
        api = Api(http)
        run_id, [e] = c.run_id, c.rows
        await eventually(lambda: outbox_count(s) == 1, "the first message")
        calls = [api("POST", "/v1/conversions", {
            "event_id": f"race-{i}", "type": "order_placed", "customer_id": PERSON["id"],
            "amount": "10.00", "currency": "EUR", "data": {"by": PERSON["email"]}})
            for i in range(20)]
        calls.insert(10, api("DELETE", f"/v1/customers/{PERSON['id']}"))
        calls.insert(5, api("POST", f"/v1/runs/{run_id}/stop"))
        answers = await asyncio.gather(*calls)
        assert all(r.status_code < 500 for r in answers), [r.text for r in answers]
        erased = [r for r in answers if r.request.method == "DELETE"]
        assert erased[0].status_code == 200 and erased[0].json()["erased"] is True
        conversions = [r for r in answers if r.request.url.path == "/v1/conversions"]
        stored = [r for r in conversions if r.status_code == 202]
        suppressed = [r for r in conversions if r.json().get("suppressed") == "erased"]
        assert len(stored) + len(suppressed) == 20
        with session_scope(s.db_url) as db:  # every conversion answered 202 is stored, once
            assert db.scalar(select(func.count()).select_from(ConversionEvent)) == len(stored)
            status = db.get(Enrollment, e.id).status
        assert status in ("erased", "converted", "stopped")
        assert sum(r.json()["stopped"] for r in stored) <= 1
        await asyncio.sleep(1.0)
        assert outbox_count(s) == 1  # nothing went out after
        assert statuses(s) == [status]  # one outcome, kept
        assert found_in_rows(s.db_url) == set(), holding(s.db_url)
