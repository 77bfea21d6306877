"""The console's login limit under attack (issue 23): counted in the database before the
password is checked, so slow bodies, plain concurrency and several API processes all get
at most 5 password checks per address per window; a flood from many addresses never locks
out an address with no failures of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from omnicascade.api.app import create_app
from omnicascade.config import Settings
from omnicascade.db.models import LoginAttempt
from omnicascade.db.session import session_scope
from omnicascade.runtime.server import free_port
from tests.helpers.console import PASSWORD, csrf_of, login

pytestmark = pytest.mark.db  # SQLite, and PostgreSQL when configured


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"console_password": PASSWORD})


@asynccontextmanager
async def browser(app: FastAPI, address: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        yield http


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind uvicorn on a real socket in this process: requests truly overlap."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.02)
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                     timeout=60) as http:
            yield http
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def login_form(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """One login form's token and the headers that send its pre-login cookie (each answer
    sets a new cookie: an attacker keeps sending the first one)."""
    page = await http.get("/login")
    return csrf_of(page.text), {"Cookie": f"oc_login={page.cookies['oc_login']}"}


async def slow_login(http: httpx.AsyncClient, form: tuple[str, dict[str, str]],
                     password: str, pause_s: float) -> httpx.Response:
    """A login whose body arrives in two parts `pause_s` apart (the headers and 10 bytes
    first), as a slow-body attacker sends it."""
    csrf, headers = form
    body = urlencode({"csrf": csrf, "password": password, "next": "/"}).encode()

    async def parts() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(pause_s)
        yield body[10:]
    return await http.post("/login", content=parts(), headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"})


def checked(responses: list[httpx.Response]) -> int:
    """How many passwords were checked: every answer but a refusal (429)."""
    assert {r.status_code for r in responses} <= {401, 303, 429}
    return sum(r.status_code != 429 for r in responses)


async def test_slow_bodies_get_at_most_five_password_checks(console_settings: Settings) -> None:
    app = create_app(console_settings)
    async with browser(app) as http:
        form = await login_form(http)
        guesses = [slow_login(http, form, f"guess-{i}", 0.5) for i in range(39)]
        right = slow_login(http, form, PASSWORD, 1.5)  # the 40th: the right password
        *wrong, last = await asyncio.gather(*guesses, right)
    # at most 5 (racing attempts may all be refused: each counts the others)
    assert checked(wrong) <= 5 and {r.status_code for r in wrong} <= {401, 429}
    assert last.status_code == 429 and int(last.headers["retry-after"]) > 0
    assert "oc_session" not in last.headers.get("set-cookie", "")


async def test_sixty_concurrent_logins_get_at_most_five_checks(
        console_settings: Settings) -> None:
    app = create_app(console_settings)
    async with served(app) as http:
        form = await login_form(http)  # bodies in two chunks, sent at once
        answers = await asyncio.gather(*(slow_login(http, form, f"guess-{i}", 0)
                                         for i in range(60)))
    assert checked(list(answers)) <= 5
    with session_scope(console_settings.db_url) as s:  # every attempt counted, refused too
        assert s.query(LoginAttempt).count() == 60


async def test_the_limit_holds_across_api_processes(console_settings: Settings) -> None:
    one, two = create_app(console_settings), create_app(console_settings)
    async with browser(one) as a, browser(two) as b:
        for http in (a, b, a, b, a):
            assert (await login(http, "guess")).status_code == 401
        for http in (a, b):
            r = await login(http)  # the sixth, on either process: refused
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    later = time.time() + 301  # the window has passed: one process's success clears both
    for app in (one, two):
        app.state.console.limiter.clock = lambda: later
    async with browser(two) as b, browser(one) as a:
        assert (await login(b)).status_code == 303
        assert (await login(a, "guess")).status_code == 401


async def test_an_address_without_failures_logs_in_during_an_attack(
        console_settings: Settings) -> None:
    app = create_app(console_settings)
    limiter = app.state.console.limiter
    async with browser(app, "198.51.100.1") as attacker:
        for _ in range(5):
            assert (await login(attacker, "guess")).status_code == 401
        assert (await login(attacker)).status_code == 429
    async with browser(app, "192.0.2.10") as marketer:  # throttling one address only
        assert (await login(marketer)).status_code == 303
    limiter.flood_attempts, limiter.flood_delay_s = 8, 0.3
    for i in range(4):  # guessing from many addresses: a flood
        async with browser(app, f"198.51.100.{10 + i}") as bot:
            assert (await login(bot, "guess")).status_code == 401
    async with browser(app, "198.51.100.10") as bot:  # one try per address in a flood
        assert (await login(bot, "guess")).status_code == 429
    async with browser(app, "192.0.2.11") as marketer:  # slowed, never locked out
        started = time.monotonic()
        assert (await login(marketer)).status_code == 303
        assert time.monotonic() - started >= 0.3
