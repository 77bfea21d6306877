"""Run control over the signed HTTP API, against the real dev server and worker:
`POST /v1/runs/{run_id}/stop|pause|resume` → 200 with the new status, 404, 409, 401."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.reports.run_views import status_of
from omnicascade.runtime.worker import build_worker
from omnicascade.workflows.types import Stage
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, enroll, finish, handle, outbox, wait_state

pytestmark = [pytest.mark.asyncio, pytest.mark.db]

QUICK = """\
campaign: quick-cart
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 2s}
  - {channel: sms,   template: t_sms,   wait: 2s}
  - {channel: push,  template: t_push}
"""
LONG = QUICK.replace("wait: 2s}\n  - {channel: sms", "wait: 24h}\n  - {channel: sms")


class Api:
    def __init__(self, http: httpx.AsyncClient):
        self.http, self.sign = http, FreshSigner()

    async def post(self, path: str, payload: Any = None, *, signed: bool = True
                   ) -> httpx.Response:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if signed:
            headers[HEADER] = self.sign(SECRET, "POST", path, body)
        return await self.http.post(path, content=body, headers=headers)


@pytest.fixture
async def stack(dev_env, settings, tmp_path):  # noqa: ANN001
    app = create_app(settings, dev_env.client)
    async with build_worker(dev_env.client, settings), asgi_client(app) as http:
        yield settings, Api(http), tmp_path


def _status(settings, run_id: str) -> str:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        return status_of(run_id, session=s)


async def test_run_control_answers_200_404_409_and_401(stack):
    settings, api, tmp = stack
    add_customers(settings, {"id": "c1", **FULL})  # one cascade, never started: live
    run_id, _ = await enroll(None, settings, write_campaign(tmp / "c", QUICK), ["c1"],
                             start=False)
    base = f"/v1/runs/{run_id}"
    r = await api.post(f"{base}/pause", signed=False)
    assert r.status_code == 401 and _status(settings, run_id) == "listening"  # no effect
    r = await api.post(f"{base}/pause")  # no body at all: fine
    assert (r.status_code, r.json()) == (200, {"run_id": run_id, "status": "paused"})
    r = await api.post(f"{base}/pause", {})  # a retry: already so, same answer
    assert (r.status_code, r.json()) == (200, {"run_id": run_id, "status": "paused"})
    r = await api.post(f"{base}/resume", {})
    assert (r.status_code, r.json()["status"]) == (200, "listening")
    r = await api.post(f"{base}/stop", {"drain": True})
    assert (r.status_code, r.json()["status"]) == (200, "draining")
    r = await api.post(f"{base}/pause", {})
    assert r.status_code == 409 and "a draining run cannot be paused" in r.json()["detail"]
    r = await api.post(f"{base}/stop", {"drain": False})
    assert (r.status_code, r.json()["status"]) == (200, "stopped")
    r = await api.post(f"{base}/resume")
    assert r.status_code == 409
    assert r.json()["detail"] == f"run {run_id} is stopped; a stopped run cannot be resumed"
    for body, needle in (({"drain": "maybe"}, "drain"), ({"now": True}, "now")):
        r = await api.post(f"{base}/stop", body)
        assert r.status_code == 422 and needle in r.json()["detail"]
    for action in ("stop", "pause", "resume"):
        r = await api.post(f"/v1/runs/run_nope/{action}", {})
        assert r.status_code == 404 and "run_nope" in r.json()["detail"]
    spec = (await api.http.get("/openapi.json")).json()
    assert {f"/v1/runs/{{run_id}}/{a}" for a in ("stop", "pause", "resume")} <= set(spec["paths"])


async def test_stop_over_the_api_ends_the_cascade_at_once(stack, dev_env):
    settings, api, tmp = stack
    add_customers(settings, {"id": "c1", **FULL})
    run_id, [e] = await enroll(dev_env.client, settings, write_campaign(tmp / "c", LONG), ["c1"])
    h = handle(dev_env.client, e.id)
    await wait_state(h, Stage.WAITING, "0")  # 24 h to go
    r = await api.post(f"/v1/runs/{run_id}/stop", {"drain": False})
    assert (r.status_code, r.json()["status"]) == (200, "stopped")
    assert await finish(dev_env, h, timeout=20) == "stopped"
    assert [m.channel for m in outbox(settings, "c1")] == ["email"]


async def test_a_draining_run_enrolls_nobody_and_its_cascades_finish(stack, dev_env):
    settings, api, tmp = stack
    add_customers(settings, {"id": "c1", **FULL}, {"id": "c2", **FULL})
    run_id, [e] = await enroll(dev_env.client, settings, write_campaign(tmp / "c", QUICK),
                               ["c1"])
    r = await api.post(f"/v1/runs/{run_id}/stop", {"drain": True})
    assert (r.status_code, r.json()["status"]) == (200, "draining")
    r = await api.post("/v1/events", {"event_id": "cart-2", "customer_id": "c2",
                                      "type": "cart_abandoned"})
    assert r.status_code == 202 and r.json()["enrolled"] == 0
    assert await finish(dev_env, handle(dev_env.client, e.id), timeout=30) == "completed"
    assert [m.channel for m in outbox(settings, "c1")] == ["email", "sms", "push"]
    assert outbox(settings, "c2") == []
    with session_scope(settings.db_url) as s:
        assert s.scalars(select(Enrollment.customer_id)).all() == ["c1"]
        assert s.get(Run, run_id).status == "draining"
    assert _status(settings, run_id) == "stopped"  # its last cascade ended
