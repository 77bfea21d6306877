"""The web console in tests: its password, logging in over HTTP, and the CSRF token of a
page."""

from __future__ import annotations

import re

import httpx

PASSWORD = "console-test-password-0123456789"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def login(http: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    """Log in through the login form (its pre-login cookie and token); the answer."""
    page = await http.get("/login")
    return await http.post("/login", data={"csrf": csrf_of(page.text), "password": password,
                                           "next": "/"})


async def signed_in_csrf(http: httpx.AsyncClient) -> str:
    """Log in; the CSRF token of the session (on every page's forms)."""
    r = await login(http)
    assert r.status_code == 303, r.text
    return csrf_of((await http.get("/customers")).text)
