"""What every console route shares: its state on the app, the route class that adds the
security headers and turns "log in first" and refusals into pages, the session check, form
bodies with their CSRF token, reads off the event loop, and rendering (jinja2)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from omnicascade.api.console.filters import FILTERS
from omnicascade.api.console.security import PAGE_HEADERS, Keys, OpaqueIds, same
from omnicascade.api.console.sessions import Sessions
from omnicascade.api.console.throttle import LoginLimiter
from omnicascade.api.http import ApiError, read_body, read_only
from omnicascade.config import Settings
from omnicascade.errors import ConfigError, NotFound

T = TypeVar("T")
HERE = Path(__file__).parent
COOKIE, LOGIN_COOKIE = "oc_session", "oc_login"
MAX_FORM_BYTES = 16_384
templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(default=True), trim_blocks=True,
                        lstrip_blocks=True)
templates.filters.update(FILTERS)
STATIC_VERSION = hashlib.sha256(b"".join(
    p.read_bytes() for p in sorted((HERE / "static").iterdir()))).hexdigest()[:10]
templates.globals["static_version"] = STATIC_VERSION


@dataclass
class Console:
    """The console's state (app.state.console). `password` None: switched off (production
    without OMNICASCADE_CONSOLE_PASSWORD)."""
    password: str | None
    sessions: Sessions
    ids: OpaqueIds
    limiter: LoginLimiter

    @classmethod
    def create(cls, settings: Settings) -> Console:
        try:
            password: str | None = settings.resolved("console_password", create=True)
        except ConfigError:  # production without a password: the console stays off
            password = None
        # one set of keys per key of the session secret, newest first (sessions.py)
        keys = [Keys.derive(secret, password or "")
                for secret in settings.keys("session_secret", create=True)]
        sessions = Sessions(settings.db_url, keys, settings.console_session_s,
                            settings.console_idle_s)
        ids = OpaqueIds(keys[0].ids, tuple(k.ids for k in keys[1:]))
        return cls(password, sessions, ids, LoginLimiter(settings.db_url))


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


class LoginNeeded(Exception):
    """No valid session: the page sends the browser to the login."""


class Refused(Exception):
    def __init__(self, status: int, title: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.title, self.message, self.headers = status, title, message, headers


@dataclass(frozen=True)
class Login:
    sid: str
    csrf: str


class ConsoleRoute(APIRoute):
    """Every console response carries the page security headers (unless the route set its
    own policy); LoginNeeded becomes a redirect to the login, Refused an error page."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response: Response = await inner(request)
            except LoginNeeded:
                response = to_login(request)
            except Refused as exc:
                response = render(request, "error.html", status=exc.status,
                                  title=exc.title, message=exc.message)
                response.headers.update(exc.headers or {})
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
            return response
        return handler


def to_login(request: Request) -> Response:
    if request.headers.get("HX-Request"):  # a live fragment whose session ran out
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    target = request.url.path if request.method == "GET" else "/"
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


async def signed_in(request: Request) -> Login:
    """The route's dependency: the live session of the cookie (sessions.py)."""
    console = console_of(request)
    if console.password is None:
        raise LoginNeeded()
    opened = await console.sessions.open(request.cookies.get(COOKIE))
    if opened is None:
        raise LoginNeeded()
    return Login(opened.sid, console.sessions.csrf(opened))


async def form(request: Request, expected_csrf: str | None) -> dict[str, str]:
    """A url-encoded form body; with `expected_csrf`, refused (403) unless its `csrf` field
    is that token."""
    try:
        body = await read_body(request)
    except ApiError as exc:
        raise Refused(exc.status, "Too large", exc.message) from None
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "Too large", "this form is larger than any the console sends")
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                           keep_blank_values=True).items()}
    if expected_csrf is not None and not same(fields.get("csrf", ""), expected_csrf):
        raise Refused(403, "Refused", "This form was not sent from the console page (its "
                      "security token is missing or wrong). Reload the page and try again.")
    return fields


async def read(request: Request, work: Callable[[Session], T]) -> T:
    """`work` in a read-only session, off the event loop; NotFound → a 404 page."""
    try:
        return await read_only(request, work)
    except NotFound as exc:
        raise Refused(404, "Not found", str(exc)) from None


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    login: Login | None = context.pop("login", None)
    html = templates.get_template(name).render(
        request=request, csrf=login.csrf if login else "", signed_in=login is not None,
        path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)


def secure_cookie(request: Request) -> bool:
    return request.url.scheme == "https"
