"""X-Forwarded-* headers over a real socket: uvicorn believes them only from the proxies in
OMNICASCADE_TRUSTED_PROXIES (none by default; uvicorn's own default trusts 127.0.0.1), and
provider signatures are checked against the configured URL whatever the headers say."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from twilio.request_validator import RequestValidator

from omnicascade.api.app import create_app
from omnicascade.config import Settings
from omnicascade.db.models import Suppression
from omnicascade.db.session import session_scope
from omnicascade.runtime import deploy
from omnicascade.runtime.deploy import proxy_options
from omnicascade.runtime.server import free_port
from tests.helpers.env import reread
from tests.helpers.fake_provider import SignalRecorder

TOKEN = "twilio-auth-token-for-tests-0123"
PHONE = "+4915112345678"


def test_forwarded_headers_are_off_unless_proxies_are_named() -> None:
    assert proxy_options(Settings(trusted_proxies="")) == {"proxy_headers": False, "forwarded_allow_ips": []}
    assert proxy_options(Settings(trusted_proxies=" 10.0.0.7, 10.0.1.0/24 ,")) == {
        "proxy_headers": True, "forwarded_allow_ips": ["10.0.0.7", "10.0.1.0/24"]}
    config = uvicorn.Config(lambda: None, **proxy_options(Settings(trusted_proxies="")))  # type: ignore[arg-type]
    assert config.proxy_headers is False


def test_omnicascade_api_runs_uvicorn_without_proxy_headers_at_its_own_address(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(deploy.uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    settings = settings.model_copy(update={  # reachable by others: real secrets only
        "api_token": "a" * 32, "console_password": "a-real-console-password"})
    deploy.run_api_process(settings, host="0.0.0.0", port=9876)
    assert (seen["proxy_headers"], seen["host"], seen["port"]) == (False, "0.0.0.0", 9876)
    assert seen["app"].state.settings.public_base_url() == "http://0.0.0.0:9876"


def _start(body: str, sid: str) -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "SmsStatus": "received", "Body": body,
            "From": PHONE, "To": "+15005550006"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
async def test_a_spoofed_host_and_proto_cannot_pass_twilio_verification(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, trusted: str) -> None:
    monkeypatch.setenv("OMNICASCADE_TWILIO_AUTH_TOKEN", TOKEN)
    port = free_port()
    s = reread(settings.model_copy(update={"api_port": port, "trusted_proxies": trusted}))
    with session_scope(s.db_url) as db:
        db.add(Suppression(channel="sms", address=PHONE, reason="stop"))
    server = uvicorn.Server(uvicorn.Config(create_app(s, SignalRecorder()),  # type: ignore
                                           host="127.0.0.1", port=port, log_level="warning",
                                           **proxy_options(s)))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def post(url: str, params: dict[str, str], **headers: str) -> int:
                sig = RequestValidator(TOKEN).compute_signature(url, params)
                r = await http.post("/webhooks/twilio", content=urlencode(params), headers={
                    "X-Twilio-Signature": sig, **headers,
                    "content-type": "application/x-www-form-urlencoded"})
                return r.status_code
            spoof = {"host": "other-app.example.com", "x-forwarded-proto": "https",
                     "x-forwarded-host": "other-app.example.com"}
            assert await post("https://other-app.example.com/webhooks/twilio",
                              _start("START", "SM1"), **spoof) == 403
            assert await post("http://other-app.example.com/webhooks/twilio",
                              _start("START", "SM2"), **spoof) == 403
            with session_scope(s.db_url) as db:
                assert db.query(Suppression).count() == 1  # the STOP stands
            assert await post(f"http://127.0.0.1:{port}/webhooks/twilio",
                              _start("START", "SM3")) == 200
            with session_scope(s.db_url) as db:
                assert db.query(Suppression).count() == 0
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
