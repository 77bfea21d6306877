"""The console's access rules over HTTP (the app over ASGI, no browser): login, the session
cookie, CSRF on every POST, an expired or forged session, the login rate limit, the
security headers, opaque customer ids, and the password's own rules."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import httpx
import pytest

from omnicascade.api.app import create_app
from omnicascade.api.console.security import OpaqueIds
from omnicascade.config import Settings, load_settings
from omnicascade.db.models import OutboxMessage, Suppression
from omnicascade.db.session import session_scope
from omnicascade.errors import ConfigError
from omnicascade.reports.run_views import status_of
from tests.helpers.api import SECRET
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, enroll
from tests.helpers.console import PASSWORD, csrf_of, login, signed_in_csrf

pytestmark = pytest.mark.db  # SQLite, and PostgreSQL when configured


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"console_password": PASSWORD})


@pytest.fixture
async def http(console_settings: Settings):  # noqa: ANN201
    app = create_app(console_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://console.test") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def test_pages_need_a_login_and_carry_a_strict_policy(http: httpx.AsyncClient) -> None:
    for path in ("/", "/customers", "/outbox", "/runs/run_x", "/campaigns/x"):
        r = await http.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = await http.get("/login")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), "inline script"
    assert " style=" not in r.text and "<style" not in r.text
    spec = (await http.get("/openapi.json")).json()
    assert not [p for p in spec["paths"] if not p.startswith(("/v1", "/u/", "/webhooks",
                                                               "/health", "/ready",
                                                               "/metrics"))]


async def test_the_right_password_gets_a_strict_session_cookie(http: httpx.AsyncClient) -> None:
    r = await login(http, "wrong password")
    assert r.status_code == 401 and "Wrong password." in r.text
    assert "oc_session" not in r.headers.get("set-cookie", "")
    r = await login(http)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("oc_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain http (a local console)
    assert (await http.get("/")).status_code == 200
    csrf = csrf_of((await http.get("/")).text)
    r = await http.post("/logout", data={"csrf": csrf})
    assert r.status_code == 303 and 'oc_session=""' in r.headers["set-cookie"]
    assert (await http.get("/")).status_code == 303


async def test_over_https_the_cookie_is_secure(console_settings: Settings) -> None:
    app = create_app(console_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://console.test") as https:
        r = await login(https)
        cookie = next(c for c in r.headers.get_list("set-cookie")
                      if c.startswith("oc_session="))
        assert "Secure" in cookie


async def test_a_login_without_its_csrf_token_is_refused(http: httpx.AsyncClient) -> None:
    await http.get("/login")  # the pre-login cookie, but no token sent
    r = await http.post("/login", data={"password": PASSWORD})
    assert r.status_code == 403 and "oc_session" not in r.headers.get("set-cookie", "")
    r = await http.post("/login", data={"password": PASSWORD, "csrf": "0" * 64})
    assert r.status_code == 403
    page = await http.get("/login")
    http.cookies.delete("oc_login")  # a token without the cookie it belongs to
    r = await http.post("/login", data={"password": PASSWORD, "csrf": csrf_of(page.text)})
    assert r.status_code == 403


async def test_every_post_needs_the_sessions_csrf_token(http: httpx.AsyncClient,
                                                        console_settings: Settings,
                                                        campaign_file: Path) -> None:
    add_customers(console_settings, {"id": "c-1", **FULL})
    run_id, _ = await enroll(None, console_settings, campaign_file, ["c-1"],  # type: ignore
                             start=False)
    csrf = await signed_in_csrf(http)
    token = http.app.state.console.ids.hide("c-1")  # type: ignore[attr-defined]
    for path, data in ((f"/runs/{run_id}/pause", {}), (f"/runs/{run_id}/stop", {}),
                       ("/customers", {"q": "c-1"}),
                       (f"/customers/{token}/unsubscribe", {"channel": "email"}),
                       ("/logout", {})):
        for bad in ({}, {"csrf": "x" * 64}, {"csrf": csrf[:-1] + ("0" if csrf[-1] != "0"
                                                                  else "1")}):
            r = await http.post(path, data={**data, **bad})
            assert r.status_code == 403, (path, bad, r.status_code)
            assert "security token is missing or wrong" in r.text
    with session_scope(console_settings.db_url) as s:
        assert status_of(run_id, session=s) == "listening"
        assert s.query(Suppression).count() == 0
    r = await http.post(f"/runs/{run_id}/pause", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/runs/{run_id}?done=")
    with session_scope(console_settings.db_url) as s:
        assert status_of(run_id, session=s) == "paused"
    r = await http.post(f"/runs/{run_id}/resume", data={"csrf": csrf})
    assert r.status_code == 303
    r = await http.post(f"/runs/{run_id}/resume", data={"csrf": csrf})  # already running
    assert r.status_code == 303
    await http.post(f"/runs/{run_id}/stop", data={"csrf": csrf})
    r = await http.post(f"/runs/{run_id}/resume", data={"csrf": csrf})
    assert r.status_code == 409 and "cannot be resumed" in r.text


async def test_an_expired_or_forged_session_is_refused(http: httpx.AsyncClient) -> None:
    await signed_in_csrf(http)
    sessions = http.app.state.console.sessions  # type: ignore[attr-defined]
    cookie = http.cookies["oc_session"]
    assert len(cookie) >= 43 and "." not in cookie  # a random token, nothing readable
    flipped = cookie[:-1] + ("A" if cookie[-1] != "A" else "B")
    for forged in (flipped, cookie + "x", cookie[:-1], "garbage", "", cookie * 10):
        http.cookies.set("oc_session", forged, domain="console.test")
        assert (await http.get("/")).status_code == 303, forged
    http.cookies.set("oc_session", cookie, domain="console.test")
    assert (await http.get("/")).status_code == 200
    sessions.clock = lambda: time.time() + 43_201  # twelve hours later
    r = await http.get("/outbox")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/outbox"
    r = await http.get("/runs/x/live", headers={"HX-Request": "true"})  # a live fragment
    assert r.status_code == 401 and r.headers["hx-redirect"] == "/login"


async def test_login_attempts_are_rate_limited(http: httpx.AsyncClient) -> None:
    limiter = http.app.state.console.limiter  # type: ignore[attr-defined]
    now = [time.time()]
    limiter.clock = lambda: now[0]
    for _ in range(limiter.attempts):
        assert (await login(http, "guess")).status_code == 401
    r = await login(http)  # even the right password, while limited
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "oc_session" not in r.headers.get("set-cookie", "")
    now[0] += limiter.window_s + 1
    assert (await login(http)).status_code == 303


async def test_customer_pages_have_opaque_ids_and_search_is_a_post(
        http: httpx.AsyncClient, console_settings: Settings) -> None:
    add_customers(console_settings, {"id": "ada@shop.example.com", "email": "ada@example.com",
                                     "phone": "+4915112345678"})
    csrf = await signed_in_csrf(http)
    for query in ("ada@shop.example.com", "ADA@example.com", "+4915112345678"):
        r = await http.post("/customers", data={"csrf": csrf, "q": query})
        assert r.status_code == 303, query
        url = r.headers["location"]
        assert url.startswith("/customers/") and "ada" not in url.lower() and "4915" not in url
    page = await http.get(url)
    assert page.status_code == 200 and "ada@example.com" in page.text
    tampered = url[:-2] + ("AA" if url[-2:] != "AA" else "BB")
    assert (await http.get(tampered)).status_code == 404
    r = await http.post("/customers", data={"csrf": csrf, "q": "zed"})  # a prefix of nobody
    assert r.status_code == 200 and "starts with that" in r.text
    r = await http.post(url + "/unsubscribe", data={"csrf": csrf, "channel": "email"})
    assert r.status_code == 303
    with session_scope(console_settings.db_url) as s:
        assert [(x.channel, x.address, x.reason) for x in s.query(Suppression)] == [
            ("email", "ada@example.com", "unsubscribed")]
    assert "Unsubscribe from email" not in (await http.get(url)).text
    ids = OpaqueIds(b"k" * 64)
    assert ids.reveal(ids.hide("c-1")) == "c-1" and ids.hide("c-1") == ids.hide("c-1")
    assert ids.reveal("not-a-token") is None


async def test_an_email_is_shown_in_a_sandboxed_frame_with_its_own_policy(
        http: httpx.AsyncClient, console_settings: Settings) -> None:
    with session_scope(console_settings.db_url) as s:
        s.add(OutboxMessage(delivery_id="e:0", customer_id="c-1", run_id="r", step="0",
                            channel="email", to_address="a@example.com", subject="Hi",
                            body="text part", html="<p style='color:red'>Hi<script>x()"
                                                   "</script></p>"))
    await signed_in_csrf(http)
    page = await http.get("/outbox")
    assert re.search(r'<iframe class="mail" sandbox="" title="[^"]+" src="/outbox/\d+/email"',
                     page.text)
    frame = await http.get("/outbox/1/email")
    policy = frame.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "script-src" not in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert (await http.get("/outbox/99/email")).status_code == 404


def test_the_password_follows_the_secret_rules(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path / "h", webhook_secret=SECRET)
    app = create_app(s)
    path = tmp_path / "h" / "console_password"
    assert app.state.console.password == path.read_text().strip()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(ConfigError, match="OMNICASCADE_CONSOLE_PASSWORD"):
        load_settings(env="production", webhook_secret="x" * 32, console_password="changeme",
                      home=tmp_path / "p")
    prod = load_settings(env="production", webhook_secret="x" * 32, api_token="t" * 32,
                         home=tmp_path / "p")
    assert create_app(prod).state.console.password is None  # off: nothing generated
    assert not (tmp_path / "p").exists()


async def test_every_page_renders_for_a_run_with_and_without_customers(
        http: httpx.AsyncClient, console_settings: Settings, campaign_file: Path) -> None:
    add_customers(console_settings, {"id": "c-1", **FULL})
    empty, _ = await enroll(None, console_settings, campaign_file, [],  # type: ignore
                            start=False)
    run_id, _ = await enroll(None, console_settings, campaign_file, ["c-1"],  # type: ignore
                             start=False)
    await signed_in_csrf(http)
    token = http.app.state.console.ids.hide("c-1")  # type: ignore[attr-defined]
    for path in ("/", "/campaigns/test-cascade", f"/runs/{empty}", f"/runs/{run_id}",
                 f"/runs/{run_id}/live", f"/runs/{run_id}/report",
                 f"/runs/{run_id}/confirm/stop", f"/runs/{empty}/confirm/resume",
                 "/customers", f"/customers/{token}", "/outbox", f"/outbox?run={run_id}",
                 f"/outbox?customer={token}", "/static/report.css",
                 "/static/console/console.css"):
        r = await http.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
    page = (await http.get(f"/runs/{run_id}")).text
    assert 'hx-get="/runs/' in page and 'id="chart-funnel"' in page  # live: refreshed
    assert "cannot be resumed now" in (await http.get(f"/runs/{run_id}/confirm/resume")).text
    for path in ("/runs/nope", "/campaigns/nope", "/customers/nope", "/outbox?customer=x",
                 f"/runs/{run_id}/confirm/explode"):
        assert (await http.get(path)).status_code == 404, path
