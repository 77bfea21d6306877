"""Logging in and out of the console (security.py says how it is protected)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse

from omnicascade.api.console.security import same
from omnicascade.api.console.web import (
    COOKIE,
    LOGIN_COOKIE,
    ConsoleRoute,
    Login,
    Refused,
    console_of,
    form,
    render,
    secure_cookie,
    signed_in,
)
from omnicascade.reports.html import CSS as REPORT_CSS

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _next(target: str | None) -> str:
    """Where to go after the login: a path of this site only (never `//host`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, status: int = 200, error: str = "",
                target: str | None = None) -> Response:
    console = console_of(request)
    nonce = secrets.token_urlsafe(18)
    response = render(request, "login.html", status=status, error=error,
                      off=console.password is None,
                      next=_next(target or request.query_params.get("next")),
                      login_csrf=console.sessions.login_csrf(nonce))
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
                        secure=secure_cookie(request), path="/login")
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    who = request.client.host if request.client else "unknown"
    nonce = request.cookies.get(LOGIN_COOKIE)
    fields = await form(request, console.sessions.login_csrf(nonce) if nonce else
                        secrets.token_hex(16))  # no pre-login cookie: nothing can match
    if console.password is None:
        return _login_page(request, 403)
    # Counted before the password is checked, however the body arrived (throttle.py).
    wait = await console.limiter.attempt(who)
    if wait:
        raise Refused(429, "Too many attempts", f"Too many login attempts from your "
                      f"address. Try again in {wait} seconds.",
                      headers={"Retry-After": str(wait)})
    if not same(fields.get("password", ""), console.password):
        return _login_page(request, 401, "Wrong password.", fields.get("next"))
    await console.limiter.succeeded(who)
    response = RedirectResponse(_next(fields.get("next")), status_code=303)
    response.set_cookie(COOKIE, await console.sessions.issue(),
                        max_age=int(console.sessions.ttl_s),
                        httponly=True, samesite="strict", secure=secure_cookie(request),
                        path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, login: Login = Depends(signed_in)) -> Response:
    """Ends the session itself, not just this browser's cookie: a copy is refused too."""
    await form(request, login.csrf)
    await console_of(request).sessions.end(login.sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=secure_cookie(request))
    return response


@router.get("/static/report.css")
async def report_css() -> Response:
    """The HTML report's own styles: the console's run page shows the report's parts."""
    return PlainTextResponse(REPORT_CSS, media_type="text/css",
                             headers={"Cache-Control": "max-age=3600"})
