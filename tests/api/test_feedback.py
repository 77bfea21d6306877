"""POST /v1/feedback: the webhook channel's receiver reports what became of a message, signed
with our v2 scheme (the channel's secret, or the API's). An `opened` makes a later step's
`skip_if: [opened]` skip it; a `failed` keeps the step sent, notes why and tells the cascade
to move on; each event is stored once; bad or replayed signatures change nothing (401)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from omnicascade.activities.ledger import engaged_before
from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER, sign
from omnicascade.db.models import Delivery, DeliveryEvent, Suppression
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import StepPlan
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, deliver_now, enroll
from tests.helpers.env import reread
from tests.helpers.fake_provider import SignalRecorder
from tests.helpers.webhook import STEP, hook_campaign

pytestmark = pytest.mark.db  # also on PostgreSQL when tests/pg.py has one

CHANNEL_SECRET = "channel-secret-0123456789abcdef"
PATH = "/v1/feedback"
WHEN = "2026-01-02T03:04:05+01:00"  # in the past: a report says what happened
EMAIL_STEP = StepPlan("1", 1, "email", "t_email", 86400)


class Hook:
    def __init__(self, settings: Any, http: httpx.AsyncClient, temporal: SignalRecorder,
                 enrollment_id: str):
        self.settings, self.http, self.temporal = settings, http, temporal
        self.enrollment_id, self.delivery_id = enrollment_id, f"{enrollment_id}:0"
        self.fresh = FreshSigner()

    async def post(self, payload: dict[str, Any] | bytes, *, secret: str = CHANNEL_SECRET,
                   header: str | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return await self.http.post(PATH, content=body, headers={
            "content-type": "application/json",
            HEADER: header if header is not None else self.fresh(secret, "POST", PATH, body)})

    def event(self, event: str, **extra: Any) -> dict[str, Any]:
        return {"delivery_id": self.delivery_id, "event": event, "occurred_at": WHEN, **extra}

    def stored(self) -> list[tuple[str | None, str]]:
        with session_scope(self.settings.db_url) as s:
            return [(e.delivery_id, e.event) for e in s.scalars(
                select(DeliveryEvent).order_by(DeliveryEvent.id))]

    def delivery(self) -> tuple[str, str | None, Any]:
        with session_scope(self.settings.db_url) as s:
            d = s.get(Delivery, self.delivery_id)
            assert d is not None
            return d.status, d.reason, d.failure_signal_due


@pytest.fixture
async def hook(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("OMNICASCADE_WEBHOOK_CHANNEL_SECRET", CHANNEL_SECRET)
    settings = reread(settings)
    add_customers(settings, {"id": "c1", **FULL})
    _, [e] = await enroll(None, settings, hook_campaign(tmp_path / "hook"), ["c1"],
                          start=False)  # type: ignore[arg-type]
    sent = await deliver_now(settings, e.id, STEP)  # the webhook step, through the outbox
    assert sent.status == "sent"
    temporal = SignalRecorder()
    http = asgi_client(create_app(settings, temporal))  # type: ignore[arg-type]
    yield Hook(settings, http, temporal, e.id)
    await http.aclose()


async def test_opened_is_stored_once_and_skips_a_step_with_skip_if_opened(hook):
    r = await hook.post(hook.event("opened"))
    assert r.status_code == 202, r.text
    assert r.json() == {"delivery_id": hook.delivery_id, "event": "opened", "matched": True,
                        "duplicate": False}
    again = await hook.post(hook.event("opened"))  # a resent report, signed afresh
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert hook.stored() == [(hook.delivery_id, "read")]  # a person's open, counted as one
    with session_scope(hook.settings.db_url) as s:
        assert engaged_before(hook.enrollment_id, f"{hook.enrollment_id}:1",
                              frozenset({"opened", "replied"}), session=s) == {"opened"}
    # step 2 is `skip_if: [opened]`: the guard reads the stored feedback and skips it
    skipped = await deliver_now(hook.settings, hook.enrollment_id, EMAIL_STEP)
    assert (skipped.status, skipped.reason) == ("skipped", "engaged")


async def test_delivered_clicked_replied_are_recorded_for_the_delivery(hook):
    for event in ("delivered", "clicked", "replied"):
        assert (await hook.post(hook.event(event))).status_code == 202
    assert hook.stored() == [(hook.delivery_id, e) for e in ("delivered", "click", "replied")]
    assert hook.temporal.signals == [] and hook.delivery()[:2] == ("sent", None)


async def test_failed_notes_the_reason_and_tells_the_cascade_to_move_on(hook):
    r = await hook.post(hook.event("failed", reason="viber user not subscribed"))
    assert r.status_code == 202, r.text
    assert hook.stored() == [(hook.delivery_id, "undelivered")]
    status, reason, due = hook.delivery()
    # handed over (and paid for), so still sent; the failure is its reason
    assert (status, reason) == ("sent", "webhook receiver: failed: viber user not subscribed")
    assert hook.temporal.signals == [(f"cascade-{hook.enrollment_id}", "step_failed", "0")]
    assert due is None  # told: nothing left for the reconciler


async def test_unsubscribed_suppresses_the_customer_on_the_webhook_channel(hook):
    assert (await hook.post(hook.event("unsubscribed"))).status_code == 202
    with session_scope(hook.settings.db_url) as s:
        assert [(x.channel, x.address, x.reason) for x in s.scalars(select(Suppression))] \
            == [("webhook", "c1", "unsubscribed")]


async def test_the_api_secret_is_accepted_too(hook):
    r = await hook.post(hook.event("delivered"), secret=SECRET)
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("case", ["missing", "wrong secret", "other path", "stale"])
async def test_bad_signatures_are_401_and_change_nothing(hook, case):
    body = json.dumps(hook.event("failed")).encode()
    header = {"missing": "", "wrong secret": sign("not-the-secret-0123", "POST", PATH, body),
              "other path": sign(CHANNEL_SECRET, "POST", "/v1/events", body),
              "stale": sign(CHANNEL_SECRET, "POST", PATH, body, 1_000_000_000)}[case]
    r = await hook.post(body, header=header)
    assert r.status_code == 401 and r.json()["detail"], r.text
    assert hook.stored() == [] and hook.temporal.signals == []


async def test_a_replayed_signature_is_refused(hook):
    body = json.dumps(hook.event("clicked")).encode()
    header = sign(CHANNEL_SECRET, "POST", PATH, body)
    assert (await hook.post(body, header=header)).status_code == 202
    replay = await hook.post(body, header=header)
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    assert hook.stored() == [(hook.delivery_id, "click")]


@pytest.mark.parametrize("delivery_id", ["nobody:0", "EMAIL"])
async def test_an_unknown_delivery_id_is_200_unmatched_and_recorded_as_rejected(
        hook, delivery_id):
    if delivery_id == "EMAIL":  # a real message, of another channel: not the receiver's
        await deliver_now(hook.settings, hook.enrollment_id,
                          StepPlan("1", 1, "email", "t_email", 86400))
        delivery_id = f"{hook.enrollment_id}:1"
    r = await hook.post({**hook.event("failed"), "delivery_id": delivery_id})
    assert r.status_code == 200, r.text
    assert r.json() == {"delivery_id": delivery_id, "event": "failed", "matched": False,
                        "duplicate": False}
    assert hook.stored() == [(None, "rejected")] and hook.temporal.signals == []


@pytest.mark.parametrize(("payload", "names"), [
    ({"event": "bounced"}, "event"),
    ({"occurred_at": None}, "occurred_at"),
    ({"delivery_id": ""}, "delivery_id"),
    ({"reason": "a\u0000b"}, "NUL"),
    ({"extra": 1}, "extra"),
    # issue 23: years ahead is no time a message was read (utc_naive's range, and then
    # at most a day of clock skew ahead: validation.happened)
    ({"occurred_at": "9999-12-31"}, "future"),
    ({"occurred_at": "9999-12-31T23:59:59Z"}, "future"),
    ({"occurred_at": "2099-01-01T00:00:00+00:00"}, "future"),
    ({"occurred_at": "9999-12-31T23:59:59-01:00"}, "out of range"),
])
async def test_invalid_bodies_are_422_naming_the_field(hook, payload, names):
    r = await hook.post({**hook.event("failed"), **payload})
    assert r.status_code == 422, r.text
    assert names in r.json()["detail"] and "Traceback" not in r.text
    assert hook.stored() == []
    bad_json = await hook.post(b"{not json")
    assert bad_json.status_code == 422


async def test_occurred_at_a_little_ahead_of_our_clock_is_accepted(hook):
    """A receiver's clock may run a little fast: up to a day ahead is its report."""
    ahead = (datetime.now(UTC) + timedelta(hours=23)).isoformat()
    r = await hook.post({**hook.event("delivered"), "occurred_at": ahead})
    assert r.status_code == 202, r.text


def test_the_endpoint_is_in_the_openapi(settings):
    schema = create_app(settings).openapi()
    operation = schema["paths"][PATH]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) >= {"delivery_id", "event", "occurred_at"}
    assert {"202", "401", "422"} <= set(operation["responses"])
