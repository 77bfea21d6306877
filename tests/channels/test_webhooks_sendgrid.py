"""/webhooks/sendgrid: the Signed Event Webhook verified with a real ECDSA P-256 key pair made
in the test; events recorded once per delivery; bounce / spam report / unsubscribe suppress
the address for every campaign; a bounce fails the step and signals its cascade — later,
from the reconciler, if Temporal could not be reached at the time."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import func, select
from temporalio.service import RPCError, RPCStatusCode

from omnicascade.api.app import create_app
from omnicascade.cascade.feedback import unsignalled_failures
from omnicascade.cascade.reconcile import reconcile_once
from omnicascade.db.models import Delivery, DeliveryEvent, Enrollment, Suppression
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import StepPlan
from tests.helpers.api import asgi_client
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, deliver_now, enroll
from tests.helpers.env import reread
from tests.helpers.fake_provider import SignalRecorder

pytestmark = pytest.mark.db  # also on PostgreSQL when tests/pg.py has one

SIG = "X-Twilio-Email-Event-Webhook-Signature"
TS = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def signed(key: ec.EllipticCurvePrivateKey, body: bytes, ts: str | None = None
           ) -> dict[str, str]:
    ts = ts or str(int(time.time()))
    signature = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIG: base64.b64encode(signature).decode(), TS: ts,
            "content-type": "application/json"}


@pytest.fixture
async def hook(settings, campaign_file, monkeypatch):
    key = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setenv("OMNICASCADE_SENDGRID_WEBHOOK_PUBLIC_KEY", public_b64(key))
    settings = reread(settings)
    add_customers(settings, {"id": "c1", **FULL})
    _, [e] = await enroll(None, settings, campaign_file, ["c1"], start=False)  # type: ignore
    sent = await deliver_now(settings, e.id, StepPlan("0", 0, "email", "t_email", 86400))
    assert sent.status == "sent"
    temporal = SignalRecorder()
    http = asgi_client(create_app(settings, temporal))
    yield settings, key, http, temporal, f"{e.id}:0", e.id
    await http.aclose()


def _events(delivery_id: str, *names: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"email": FULL["email"], "timestamp": 1700000000 + i, "event": name,
             "sg_event_id": f"evt-{name}-{i}", "sg_message_id": "sg-1.filter",
             "omnicascade_delivery_id": delivery_id, **extra} for i, name in enumerate(names)]


def _rows(settings) -> tuple[list[tuple], list[tuple], tuple]:
    with session_scope(settings.db_url) as s:
        events = [(r.delivery_id, r.event) for r in s.scalars(
            select(DeliveryEvent).order_by(DeliveryEvent.id))]
        suppressed = [(r.channel, r.address, r.reason) for r in s.scalars(select(Suppression))]
        d = s.scalars(select(Delivery)).one()
        return events, suppressed, (d.status, d.reason)


async def test_engagement_events_are_recorded_once_per_delivery(hook):
    settings, key, http, temporal, delivery_id, _ = hook
    body = json.dumps(_events(delivery_id, "processed", "delivered", "open", "click")).encode()
    assert EventWebhook(public_b64(key)).verify_signature(  # SendGrid's own verifier agrees
        body.decode(), signed(key, body, "1700000000")[SIG], "1700000000")
    r = await http.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
    assert r.status_code == 200 and r.json()["recorded"] == 4, r.text
    again = await http.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
    assert again.json()["recorded"] == 0 and again.json()["duplicates"] == 4
    events, suppressed, delivery = _rows(settings)
    assert events == [(delivery_id, e) for e in ("processed", "delivered", "open", "click")]
    assert suppressed == [] and delivery == ("sent", None) and temporal.signals == []


async def test_bounce_suppresses_fails_the_step_and_signals_once(hook):
    settings, key, http, temporal, delivery_id, enrollment_id = hook
    body = json.dumps(_events(delivery_id, "bounce", type="bounce",
                              reason="550 5.1.1 unknown user")).encode()
    for _ in range(2):  # SendGrid redelivers: the second changes nothing
        r = await http.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
        assert r.status_code == 200
    _, suppressed, delivery = _rows(settings)
    assert suppressed == [("email", FULL["email"], "bounced")]
    assert delivery == ("sent", "bounced: 550 5.1.1 unknown user")
    assert temporal.signals == [(f"cascade-{enrollment_id}", "step_failed", "0")]


async def test_spam_report_unsubscribe_and_dropped_suppress_every_campaign(hook):
    settings, key, http, _temporal, _delivery_id, _ = hook
    events = [{"email": "x@example.com", "timestamp": 1700000000, "event": "spamreport",
               "sg_event_id": "s1"},
              {"email": "y@example.com", "timestamp": 1700000000, "event": "unsubscribe",
               "sg_event_id": "s2"},
              {"email": "z@example.com", "timestamp": 1700000000, "event": "dropped",
               "reason": "Bounced Address", "sg_event_id": "s3"},
              {"email": "w@example.com", "timestamp": 1700000000, "event": "bounce",
               "type": "blocked", "reason": "IP blocked", "sg_event_id": "s4"}]
    body = json.dumps(events).encode()
    r = await http.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
    assert r.json()["recorded"] == 4
    _, suppressed, delivery = _rows(settings)
    assert sorted(suppressed) == [("email", "x@example.com", "spamreport"),
                                  ("email", "y@example.com", "unsubscribed"),
                                  ("email", "z@example.com", "dropped: Bounced Address")]
    assert delivery == ("sent", None)  # none of them was this delivery


async def test_forged_or_unsigned_events_are_refused_and_change_nothing(hook):
    settings, key, http, temporal, delivery_id, _ = hook
    body = json.dumps(_events(delivery_id, "bounce", type="bounce")).encode()
    other = ec.generate_private_key(ec.SECP256R1())
    tampered = body.replace(b"bounce", b"delivered", 1)
    headers = signed(key, body)
    cases = [({"content-type": "application/json"}, body, 401),             # unsigned
             (signed(other, body), body, 403),                             # wrong key
             (headers, tampered, 403),                                     # body changed
             ({**headers, TS: str(int(headers[TS]) + 1)}, body, 403),      # timestamp changed
             ({**headers, SIG: "bm90IGEgc2lnbmF0dXJl"}, body, 403)]        # garbage
    for h, content, status in cases:
        r = await http.post("/webhooks/sendgrid", content=content, headers=h)
        assert r.status_code == status, (h, r.text)
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(DeliveryEvent)) == 0
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0
    assert temporal.signals == []


async def test_unconfigured_webhook_refuses_everything(hook, monkeypatch):
    settings, key, _http, *_ = hook
    monkeypatch.delenv("OMNICASCADE_SENDGRID_WEBHOOK_PUBLIC_KEY")
    app = create_app(reread(settings), SignalRecorder())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as fresh:
        r = await fresh.post("/webhooks/sendgrid", content=b"[]", headers=signed(key, b"[]"))
    assert r.status_code == 403 and "OMNICASCADE_SENDGRID_WEBHOOK_PUBLIC_KEY" in r.text


class Unreachable(SignalRecorder):
    """A Temporal client whose every signal fails as when the server is down (or, with
    NOT_FOUND, as when the cascade has already ended)."""

    def __init__(self, status: RPCStatusCode = RPCStatusCode.UNAVAILABLE) -> None:
        super().__init__()
        self.status = status

    def get_workflow_handle(self, workflow_id: str) -> Any:
        status = self.status

        class Handle:
            async def signal(self, name: str, arg: Any = None) -> None:
                raise RPCError("no", status, b"")
        return Handle()


def _due(settings) -> list[str]:
    with session_scope(settings.db_url) as s:
        return unsignalled_failures(0, session=s)


async def test_a_failed_step_temporal_missed_is_signalled_later_by_the_reconciler(hook):
    settings, key, _, _, delivery_id, enrollment_id = hook
    with session_scope(settings.db_url) as s:  # its cascade is running
        s.get(Enrollment, enrollment_id).status = "active"
    down = httpx.AsyncClient(transport=httpx.ASGITransport(
        app=create_app(settings, Unreachable())), base_url="http://api")  # type: ignore
    body = json.dumps(_events(delivery_id, "bounce", type="bounce", reason="550")).encode()
    r = await down.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
    await down.aclose()
    assert r.status_code == 200 and r.json()["signalled"] == 0, r.text
    assert _due(settings) == [delivery_id]  # remembered, not lost

    assert await reconcile_once(Unreachable(), settings, older_than_s=0) == 1  # type: ignore
    assert _due(settings) == [delivery_id]  # still down: still remembered
    temporal = SignalRecorder()
    await reconcile_once(temporal, settings, older_than_s=0)  # type: ignore[arg-type]
    assert temporal.signals == [(f"cascade-{enrollment_id}", "step_failed", "0")]
    assert _due(settings) == []
    await reconcile_once(temporal, settings, older_than_s=0)  # type: ignore[arg-type]
    assert len(temporal.signals) == 1  # told once


async def test_a_failed_step_of_a_cascade_that_already_ended_is_not_retried(hook):
    settings, key, http, _, delivery_id, _ = hook
    ended = httpx.AsyncClient(transport=httpx.ASGITransport(
        app=create_app(settings, Unreachable(RPCStatusCode.NOT_FOUND))),  # type: ignore
        base_url="http://api")
    body = json.dumps(_events(delivery_id, "bounce", type="bounce", reason="550")).encode()
    r = await ended.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
    await ended.aclose()
    assert r.status_code == 200 and r.json()["signalled"] == 0
    assert _due(settings) == []  # nothing left to tell


async def test_one_poisoned_event_is_rejected_alone_and_the_batch_is_answered(hook):
    """A signed batch of [unsubscribe, spam report whose address holds a lone surrogate,
    an element that is no object]: the unsubscribe is stored, the others are recorded as
    rejected with the reason, and SendGrid gets its 2xx (else it resends the batch for a
    day, and the valid unsubscribe would never be stored)."""
    settings, key, http, temporal, _, _ = hook
    body = (b'[{"email": "y@example.com", "timestamp": 1700000000, "event": "unsubscribe",'
            b' "sg_event_id": "u1"},'
            b' {"email": "a\\ud800@example.com", "timestamp": 1700000000,'
            b' "event": "spamreport", "sg_event_id": "s1"},'
            b' {"email": "n@example.com", "event": "bounce", "reason": "5.1.1\\u0000",'
            b' "sg_event_id": "b1"}, 42]')
    for attempt in range(2):  # a redelivery changes nothing twice
        r = await http.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
        assert r.status_code == 200, r.text
        assert r.json()["recorded"] == (1 if attempt == 0 else 0)
        assert r.json()["rejected"] == 3
    with session_scope(settings.db_url) as s:
        rows = [(e.event, e.data or {}) for e in
                s.scalars(select(DeliveryEvent).order_by(DeliveryEvent.id))]
        suppressed = [(x.channel, x.address, x.reason) for x in s.scalars(select(Suppression))]
    assert suppressed == [("email", "y@example.com", "unsubscribed")]
    assert [e for e, _ in rows] == ["unsubscribe", "rejected", "rejected", "rejected"]
    reasons = [d["reason"] for e, d in rows if e == "rejected"]
    assert "surrogate" in reasons[0] and "NUL" in reasons[1] and "object" in reasons[2]
    assert "a\\ud800@example.com" in rows[1][1]["item"]  # kept, escaped, for the operator
    assert temporal.signals == []


async def test_an_event_the_database_itself_refuses_is_rolled_back_alone(hook, db_backend):
    """Past the checks, a database error in one event (PostgreSQL: an address longer than
    its column) rolls back that event's savepoint only; the batch is still answered 2xx."""
    settings, key, http, _, _, _ = hook
    events = [{"email": "y@example.com", "event": "unsubscribe", "sg_event_id": "u1"},
              {"email": "z" * 5000 + "@example.com", "event": "spamreport", "sg_event_id": "s1"},
              {"email": "x@example.com", "event": "spamreport", "sg_event_id": "s2"}]
    body = json.dumps(events).encode()
    r = await http.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
    assert r.status_code == 200, r.text
    _, suppressed, _ = _rows(settings)
    assert ("email", "y@example.com", "unsubscribed") in suppressed
    assert ("email", "x@example.com", "spamreport") in suppressed
    if db_backend == "postgres":  # SQLite does not enforce column lengths
        assert (r.json()["recorded"], r.json()["rejected"]) == (2, 1)
        assert len(suppressed) == 2
        with session_scope(settings.db_url) as s:
            rejected = s.scalars(select(DeliveryEvent).where(
                DeliveryEvent.event == "rejected")).one()
            assert rejected.data["reason"].startswith("DataError"), rejected.data


async def test_machine_opens_are_recorded_flagged_and_reports_count_human_opens(hook):
    """Apple Mail Privacy Protection (SendGrid's `sg_machine_open`) and an open in the same
    second as the delivery are stored as `machine_open`: proof of delivery, not an open."""
    from omnicascade.reports.build import build_report
    settings, key, http, _temporal, delivery_id, _ = hook
    t = 1700000000
    batch = [{"email": FULL["email"], "timestamp": ts, "event": name, "sg_event_id": sg_id,
              "sg_message_id": "sg-1.filter", "omnicascade_delivery_id": delivery_id,
              **extra}
             for ts, name, sg_id, extra in (
                 (t, "open", "evt-scanner", {}),  # before its delivery was reported
                 (t, "delivered", "evt-delivered", {}),
                 (t + 90, "open", "evt-mpp", {"sg_machine_open": True}))]
    body = json.dumps(batch).encode()
    r = await http.post("/webhooks/sendgrid", content=body, headers=signed(key, body))
    assert r.status_code == 200 and r.json()["recorded"] == 3, r.text
    events, _, _ = _rows(settings)
    assert [e for _, e in events] == ["machine_open", "delivered", "machine_open"]
    with session_scope(settings.db_url) as s:
        data = s.scalars(select(DeliveryEvent.data).order_by(DeliveryEvent.id)).all()
        run_id = s.scalars(select(Delivery.run_id)).one()
    assert [d["event"] for d in data] == ["open", "delivered", "open"]  # as SendGrid sent it
    assert data[2]["sg_machine_open"] is True

    def email_row() -> dict[str, Any]:
        with session_scope(settings.db_url) as s:
            report = build_report(run_id, session=s, settings=settings)
        return report["steps"][0]

    assert (email_row()["delivered"], email_row()["opened"]) == (1, 0)
    human = json.dumps(_events(delivery_id, "open", timestamp=t + 1800)).encode()
    r = await http.post("/webhooks/sendgrid", content=human, headers=signed(key, human))
    assert r.json()["recorded"] == 1
    assert [e for _, e in _rows(settings)[0]][-1] == "open"
    assert (email_row()["delivered"], email_row()["opened"]) == (1, 1)
