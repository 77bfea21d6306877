"""Console sessions on the server (issue 26, OWASP ASVS 3.3.1): Log out ends the session for
every copy of its cookie, `omnicascade console logout-all` and a new password end every
session, and a session ends at its expiry and after the idle timeout. last_seen_at is
written at most once a minute."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from omnicascade.api.app import create_app
from omnicascade.config import Settings
from omnicascade.db.models import ConsoleSession
from omnicascade.db.session import session_scope
from omnicascade.reports.run_views import status_of
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, enroll
from tests.helpers.cli import home_env, run_cli
from tests.helpers.console import PASSWORD, csrf_of, login, signed_in_csrf

pytestmark = pytest.mark.db  # SQLite, and PostgreSQL when configured


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"console_password": PASSWORD,
                                       "console_session_s": 7_200, "console_idle_s": 3_600})


def browser(settings: Settings) -> httpx.AsyncClient:
    """A browser on one API process (each call: another process on the same database)."""
    app = create_app(settings)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://console.test")
    http.app = app  # type: ignore[attr-defined]
    return http


def with_cookie(http: httpx.AsyncClient, cookie: str) -> httpx.AsyncClient:
    http.cookies.set("oc_session", cookie, domain="console.test")
    return http


async def refused(http: httpx.AsyncClient, path: str = "/") -> bool:
    r = await http.get(path)
    return r.status_code == 303 and r.headers["location"].startswith("/login")


def rows(settings: Settings) -> list[tuple[datetime, datetime, datetime]]:
    with session_scope(settings.db_url) as s:
        return [tuple(r) for r in s.execute(select(  # type: ignore[misc]
            ConsoleSession.created_at, ConsoleSession.last_seen_at, ConsoleSession.expires_at))]


async def test_log_out_ends_the_session_for_a_copied_cookie(
        console_settings: Settings, campaign_file: Path) -> None:
    add_customers(console_settings, {"id": "c-1", **FULL})
    run_id, _ = await enroll(None, console_settings, campaign_file, ["c-1"],  # type: ignore
                             start=False)
    async with browser(console_settings) as http, browser(console_settings) as thief:
        csrf = await signed_in_csrf(http)
        cookie = http.cookies["oc_session"]
        with_cookie(thief, cookie)
        assert (await thief.get("/")).status_code == 200  # the copy works while logged in
        assert len(rows(console_settings)) == 1
        r = await http.post("/logout", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert rows(console_settings) == []
        assert await refused(thief) and await refused(thief, f"/runs/{run_id}")
        for action in ("stop", "pause"):
            r = await thief.post(f"/runs/{run_id}/{action}", data={"csrf": csrf})
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), action
        r = await thief.get(f"/runs/{run_id}/live", headers={"HX-Request": "true"})
        assert r.status_code == 401 and r.headers["hx-redirect"] == "/login"
    with session_scope(console_settings.db_url) as s:
        assert status_of(run_id, session=s) == "listening"


async def test_logout_all_ends_every_session(console_settings: Settings) -> None:
    async with browser(console_settings) as one, browser(console_settings) as two:
        for http in (one, two):
            assert (await login(http)).status_code == 303
            assert (await http.get("/")).status_code == 200
        env = home_env(console_settings.home, OMNICASCADE_DATABASE_URL=console_settings.db_url,
                       OMNICASCADE_WEBHOOK_SECRET=console_settings.webhook_secret or "")
        r = run_cli("console", "logout-all", "--json", env=env, ok=True)
        assert json.loads(r.stdout) == {"ended": 2}
        assert await refused(one) and await refused(two)
        assert rows(console_settings) == []
        r = run_cli("console", "logout-all", env=env, ok=True)
        assert "0 console sessions ended" in r.stdout
        assert (await login(one)).status_code == 303 and (await one.get("/")).status_code == 200


async def test_a_new_password_ends_every_session(console_settings: Settings) -> None:
    async with browser(console_settings) as http:
        assert (await login(http)).status_code == 303
        cookie = http.cookies["oc_session"]
    changed = console_settings.model_copy(update={"console_password": PASSWORD + "-new"})
    async with browser(changed) as http:
        assert await refused(with_cookie(http, cookie))
        assert (await login(http, PASSWORD)).status_code == 401
        assert (await login(http, PASSWORD + "-new")).status_code == 303
        assert (await http.get("/")).status_code == 200


async def test_a_session_ends_when_idle_and_at_its_expiry(console_settings: Settings) -> None:
    async with browser(console_settings) as http:
        sessions = http.app.state.console.sessions  # type: ignore[attr-defined]
        start = time.time()
        now = [start]
        sessions.clock = lambda: now[0]
        assert (await login(http)).status_code == 303
        cookie = http.cookies["oc_session"]
        for _ in range(2):  # in use every 50 minutes: open past one idle timeout (1 h)
            now[0] += 3_000
            assert (await http.get("/")).status_code == 200
        now[0] = start + 7_199  # just before the expiry, 2 h after the login
        assert (await http.get("/")).status_code == 200
        now[0] = start + 7_201  # past the expiry, though used a moment ago
        assert await refused(http)
        assert (await login(http)).status_code == 303
        fresh = http.cookies["oc_session"]
        assert fresh != cookie
        now[0] += 3_601  # idle for longer than console_idle_s
        assert await refused(http)
        now[0] += 3_600 * 3  # a later login prunes both dead sessions
        assert (await login(http)).status_code == 303
        assert len(rows(console_settings)) == 1


async def test_last_seen_is_written_at_most_once_a_minute(console_settings: Settings) -> None:
    async with browser(console_settings) as http:
        sessions = http.app.state.console.sessions  # type: ignore[attr-defined]
        now = [time.time()]
        sessions.clock = lambda: now[0]
        assert (await login(http)).status_code == 303
        [(created, seen, expires)] = rows(console_settings)
        assert seen == created and (expires - created).total_seconds() == 7_200
        for _ in range(5):
            now[0] += 10
            assert (await http.get("/")).status_code == 200
        assert rows(console_settings)[0][1] == seen  # 50 s of requests: no write
        now[0] += 10
        assert (await http.get("/")).status_code == 200
        assert (rows(console_settings)[0][1] - seen).total_seconds() == pytest.approx(60, abs=1)
        csrf = csrf_of((await http.get("/customers")).text)
        assert (await http.post("/logout", data={"csrf": csrf})).status_code == 303
