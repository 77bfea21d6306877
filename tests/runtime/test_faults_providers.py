"""Faults at the provider edge, with the real SendGrid SDK against a local fake:
- the worker is killed with SIGKILL while the provider call is in flight (between the ledger's
  `sending` and `sent`): after a restart the step is reported `unknown` and never resent, and
  the cascade carries on;
- a 429/5xx storm: every message is retried with backoff and delivered exactly once."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.launch import launch
from omnicascade.channels.registry import build_channels
from omnicascade.customers.model import CustomerIn
from omnicascade.runtime.worker import build_worker
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, deliveries, enroll, finish, handle, outbox
from tests.helpers.env import reread
from tests.helpers.fake_provider import FakeProvider, Reply
from tests.helpers.server import worker_process

CAMPAIGN = """\
campaign: provider-faults
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 2s}
  - {channel: sms,   template: t_sms}
"""


class HangingSendGrid:
    """Accepts the first request and never answers it (the worker dies waiting); answers
    every later one with 202."""

    def __init__(self) -> None:
        self.requests = 0
        self.first_seen = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.requests += 1
                if fake.requests == 1:
                    fake.first_seen.set()
                    time.sleep(30)  # the provider "is processing" when the worker dies
                    return
                self.send_response(202)
                self.send_header("X-Message-Id", f"sg-{fake.requests}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


async def test_worker_killed_during_the_provider_call_never_resends(dev_env, settings,
                                                                   tmp_path):
    settings = settings.model_copy(update={
        "temporal_address": dev_env.client.service_client.config.target_host,
        "send_timeout_s": 3.0})
    fake = HangingSendGrid()
    provider = {"OMNICASCADE_EMAIL_PROVIDER": "sendgrid",
                "OMNICASCADE_SENDGRID_API_KEY": "SG.test-key-0123456789",
                "OMNICASCADE_SENDGRID_FROM_EMAIL": "shop@example.com",
                "OMNICASCADE_SENDGRID_HOST": fake.url,
                "OMNICASCADE_SEND_TIMEOUT_S": "3", "OMNICASCADE_SEND_INITIAL_RETRY_S": "0.2"}
    add_customers(settings, {"id": "m1", **FULL})
    campaign = write_campaign(tmp_path / "c", CAMPAIGN)
    first = worker_process(settings, tmp_path / "w.log", **provider)
    try:
        result = await launch(load_campaign(campaign), settings,
                              audience=[CustomerIn(id="m1")])
        assert await asyncio.to_thread(fake.first_seen.wait, 60)
        [enrollment_id] = [e for e in _enrollments(settings, result.run_id)]
        assert deliveries(settings, enrollment_id)["0"][0] == "sending"
        first.send_signal(signal.SIGKILL)  # dies between `sending` and `sent`
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = worker_process(settings, tmp_path / "w.log", **provider)
    try:
        h = dev_env.client.get_workflow_handle(f"cascade-{enrollment_id}")
        assert await asyncio.wait_for(h.result(), 90) == "completed"
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    d = deliveries(settings, enrollment_id)
    assert d["0"][0] == "unknown" and "not resent" in d["0"][1]
    assert d["1"] == ("sent", None)  # the cascade carried on after the ambiguous step
    assert fake.requests == 1  # the provider saw the email exactly once
    from omnicascade.db.session import read_scope
    from omnicascade.reports.run_views import run_show
    with read_scope(settings.db_url) as s:
        steps = run_show(result.run_id, session=s)["steps"]
    assert steps[0]["unknown"] == 1  # surfaced in reports


def _enrollments(settings, run_id: str) -> list[str]:  # noqa: ANN001
    from sqlalchemy import select

    from omnicascade.db.models import Enrollment
    from omnicascade.db.session import read_scope
    with read_scope(settings.db_url) as s:
        return list(s.scalars(select(Enrollment.id).where(Enrollment.run_id == run_id)))


async def test_provider_storm_of_429_and_5xx_delivers_each_message_once(
        ts_env, settings, tmp_path, monkeypatch):
    storm = [Reply(429, {"errors": [{"message": "too many"}]}, {"Retry-After": "1"}),
             Reply(503, {"errors": [{"message": "unavailable"}]}),
             Reply(500, {"errors": [{"message": "oops"}]})] * 6
    with FakeProvider(Reply(202, b"", {"X-Message-Id": "sg-ok"})) as fake:
        fake.answer(*storm)
        for key, value in {"OMNICASCADE_EMAIL_PROVIDER": "sendgrid",
                           "OMNICASCADE_SENDGRID_API_KEY": "SG.test-key-0123456789",
                           "OMNICASCADE_SENDGRID_FROM_EMAIL": "shop@example.com",
                           "OMNICASCADE_SENDGRID_HOST": fake.url}.items():
            monkeypatch.setenv(key, value)
        ids = [f"st{i}" for i in range(8)]
        add_customers(settings, *({"id": i, **FULL} for i in ids))
        campaign = write_campaign(tmp_path / "storm", CAMPAIGN)
        settings = reread(settings)  # the provider variables, as a worker started now reads
        async with build_worker(ts_env.client, settings, build_channels(settings)):
            _, rows = await enroll(ts_env.client, settings, campaign, ids)
            for e in rows:
                assert await finish(ts_env, handle(ts_env.client, e.id)) == "completed"
        accepted = [s for s in fake.seen if s.path == "/v3/mail/send"]
        assert len(accepted) == len(ids) + len(storm)  # every failure was retried …
        delivered = Counter(s.json()["custom_args"]["omnicascade_delivery_id"] for s in accepted)
        # the failures were all retries of these same deliveries; 202s: one per delivery
        assert set(delivered) == {f"{e.id}:0" for e in rows}
        for e in rows:  # … and every customer got exactly one email recorded as sent
            assert deliveries(settings, e.id)["0"][0] == "sent"
        assert len([m for m in outbox(settings) if m.channel == "sms"]) == len(ids)
