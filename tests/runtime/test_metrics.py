"""Metrics and logs an operator relies on, scraped for real: the API's GET /metrics (over
ASGI) and a worker's own port (a real worker on the dev server, its client made with the
Temporal runtime that exports the SDK's metrics), while a cascade runs, a send fails and a
conversion stops it. The counters and histograms move as they should; no label value is a
customer id, address, run id, enrollment id or promo code; and the JSON log lines of the
same run parse and hold none of the customer's data."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.cascade.temporal import connect
from omnicascade.channels.base import Message, PermanentSendError, SendResult
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.channels.registry import build_channels
from omnicascade.db.models import Enrollment
from omnicascade.db.session import session_scope
from omnicascade.runtime.logs import JsonFormatter
from omnicascade.runtime.observe import WorkerMetrics
from omnicascade.runtime.worker import run_worker
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import write_campaign
from tests.helpers.cascades import finish, handle, outbox
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.db]
TOKEN = "metrics-read-token-0123456789abcdef"
EMAIL, PHONE, NAME = "zelda.metrics-pii@example.org", "+4915199887766", "Zeldabeth"
CAMPAIGN = """\
campaign: metrics-cart
trigger: {event: cart_abandoned}
conversion: {events: [order_placed], lookback: 1h}
promo: {pattern: "M-{random:6}", discount: "10%"}
steps:
  - {channel: sms,   template: t_sms,   wait: 1s}
  - {channel: email, template: t_email, wait: 1h}
  - {channel: push,  template: t_push}
"""
TEMPLATES = {"t_email.subject.j2": "Hello {{ customer.first_name | default('you') }}",
             "t_email.txt.j2": "BODY-SECRET {{ promo.code }} {{ unsubscribe_url }}",
             "t_sms.txt.j2": "SMS {{ promo.code }}", "t_push.title.j2": "P",
             "t_push.txt.j2": "push"}


class RefusingSms(OutboxChannel):
    """An SMS provider that refuses every number, naming it (the reason is redacted)."""

    async def send(self, message: Message) -> SendResult:
        raise PermanentSendError(f"invalid number {message.to}")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scrape: dict, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(v for (n, ls), v in scrape.items()
               if n == name and labels.items() <= dict(ls).items())


def scrape_worker(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def scrape_worker_off() -> str:
    from prometheus_client import REGISTRY, generate_latest
    return generate_latest(REGISTRY).decode()


async def post(http: Any, sign: FreshSigner, path: str, payload: dict) -> Any:
    body = json.dumps(payload).encode()
    return await http.post(path, content=body, headers={
        HEADER: sign(SECRET, "POST", path, body), "content-type": "application/json"})


@pytest.fixture
async def stack(dev_env, settings, tmp_path):  # noqa: ANN001
    settings = settings.model_copy(update={
        "api_token": TOKEN, "worker_metrics_port": 0,
        "temporal_address": dev_env.client.service_client.config.target_host})
    metrics = WorkerMetrics(settings)
    client = await connect(settings, metrics.runtime)  # the worker's client: its runtime
    metrics.start()
    channels = {**build_channels(settings), "sms": RefusingSms(settings.db_url)}
    app = create_app(settings, client)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(client, settings, stop, channels))
    await eventually(lambda: value(samples(scrape_worker(metrics.port)),
                                   "omnicascade_worker_up") == 1, "the worker to poll")
    try:
        async with asgi_client(app) as http:
            yield settings, http, metrics, client, write_campaign(tmp_path / "m", CAMPAIGN,
                                                                   TEMPLATES)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
        metrics.stop()
    assert value(samples(scrape_worker_off()), "omnicascade_worker_up") == 0


async def test_metrics_move_while_a_cascade_runs_fails_a_send_and_converts(stack):
    settings, http, metrics, client, campaign = stack
    from omnicascade.campaign.load import load_campaign
    from omnicascade.cascade.launch import launch
    log_text = io.StringIO()
    handler = logging.StreamHandler(log_text)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        await _run_the_cascade(stack, launch, load_campaign, log_text)
    finally:
        logging.getLogger().removeHandler(handler)


async def _run_the_cascade(stack, launch, load_campaign, log_text) -> None:  # noqa: ANN001
    settings, http, metrics, client, campaign = stack
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = samples((await http.get("/metrics", headers=auth)).text)
    run_id = (await launch(load_campaign(campaign), settings, audience=[])).run_id
    sign = FreshSigner()
    r = await post(http, sign, "/v1/customers", {"id": "cust-pii-7781", "email": EMAIL,
                                                 "phone": PHONE,
                                                 "attributes": {"first_name": NAME}})
    assert r.status_code == 200, r.text
    r = await post(http, sign, "/v1/events", {"event_id": "cart-m1", "type": "cart_abandoned",
                                              "customer_id": "cust-pii-7781"})
    assert r.status_code == 202, r.text
    with session_scope(settings.db_url) as s:
        e = s.scalar(select(Enrollment).where(Enrollment.run_id == run_id))
        enrollment_id, code = e.id, e.promo_code

    def email_sent() -> bool:  # the SMS failed first, then the email went: a 1 h wait
        return value(samples(scrape_worker(metrics.port)), "omnicascade_messages_total",
                     channel="email", outcome="sent") > value(
            before, "omnicascade_messages_total", channel="email", outcome="sent")
    await eventually(lambda: asyncio.to_thread(email_sent), "the email to go", timeout=30)
    assert (await http.get(f"/v1/runs/{run_id}", headers=auth)).status_code == 200
    r = await post(http, sign, "/v1/conversions", {"event_id": "order-m1",
                                                   "type": "order_placed",
                                                   "promo_code": code})
    assert r.status_code == 202 and r.json()["stopped"] == 1, r.text
    assert await finish(None, handle(client, enrollment_id)) == "converted"
    assert [m.channel for m in outbox(settings, "cust-pii-7781")] == ["email"]
    r = await http.post("/webhooks/sendgrid", content=b"[]")  # unsigned: refused
    assert r.status_code in (401, 403)

    api_text = (await http.get("/metrics", headers=auth)).text
    worker_text = await asyncio.to_thread(scrape_worker, metrics.port)
    after = samples(api_text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)
    assert moved("omnicascade_messages_total", channel="email", outcome="sent") == 1
    assert moved("omnicascade_messages_total", channel="sms", outcome="failed",
                 reason="provider") == 1
    assert moved("omnicascade_provider_call_seconds_count", channel="email") == 1
    assert moved("omnicascade_provider_call_seconds_count", channel="sms") == 1
    assert moved("omnicascade_conversions_total", type="order_placed", matched="matched") == 1
    assert moved("omnicascade_cascades_started_total") == 1
    assert moved("omnicascade_cascades_ended_total", status="converted") == 1
    assert moved("omnicascade_conversion_to_stop_seconds_count") == 1
    assert 0 < moved("omnicascade_conversion_to_stop_seconds_sum") < 30
    assert moved("omnicascade_sends_after_conversion_total") == 0
    assert value(after, "omnicascade_sends_after_conversion") == 0
    assert moved("omnicascade_webhook_requests_total", provider="sendgrid") == 1
    assert moved("omnicascade_api_requests_total", route="/v1/runs/{run_id}",
                 status="200") == 1
    assert moved("omnicascade_api_requests_total", route="/v1/conversions",
                 status="202") == 1
    assert value(after, "omnicascade_worker_up") == 1

    # the worker's port: the same application metrics, and the Temporal SDK's own
    worker = samples(worker_text)
    assert value(worker, "omnicascade_messages_total", channel="sms", outcome="failed") >= 1
    assert any(name.startswith("temporal_") for name, _ in worker), worker_text[:2000]

    # no label value carries personal data or an id
    forbidden = {"cust-pii-7781", EMAIL, PHONE, NAME, run_id, enrollment_id, code,
                 code.lower(), "order-m1", "cart-m1"}
    for name, labels in {*after, *worker}:
        for key, label in labels:
            assert not any(f in label for f in forbidden), (name, key, label)

    # the JSON log lines of the same run: they parse, carry ids, and hold no PII
    lines = [json.loads(line) for line in log_text.getvalue().splitlines() if line]
    failed = [x for x in lines if x["logger"] == "omnicascade.deliver"]
    assert failed, lines
    assert {"time", "level", "logger", "message", "enrollment_id", "run_id", "step",
            "channel"} <= failed[0].keys()
    assert failed[0]["channel"] == "sms" and failed[0]["enrollment_id"] == enrollment_id
    for bad in (EMAIL, PHONE, NAME, "BODY-SECRET", code):
        assert bad not in log_text.getvalue()


async def test_metrics_need_the_read_token_unless_public(settings):
    http = asgi_client(create_app(settings.model_copy(update={"api_token": TOKEN})))
    async with http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer x"})
                ).status_code == 401
        r = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and "omnicascade_cascades_active" in r.text
    public = create_app(settings.model_copy(update={"api_token": TOKEN,
                                                   "metrics_public": True}))
    async with asgi_client(public) as http:
        r = await http.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")

