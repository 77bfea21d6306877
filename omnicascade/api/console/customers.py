"""Customers: search by id, email, phone or name (a prefix, any case: reports/timeline.py
`find`; sent by POST so it stays out of URLs and logs), one customer's page by an opaque id
(security.py), and unsubscribing a channel the shop uses (the same suppression a message's
unsubscribe link makes: customers/consent.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from omnicascade.api.console.web import (
    ConsoleRoute,
    Login,
    Refused,
    console_of,
    form,
    read,
    render,
    signed_in,
)
from omnicascade.api.http import settings_of
from omnicascade.customers.consent import suppress
from omnicascade.customers.model import address_for
from omnicascade.db.models import Customer
from omnicascade.db.session import session_scope
from omnicascade.reports.paging import SEARCH_MATCHES, PageError
from omnicascade.reports.timeline import customer_page, find
from omnicascade.vocabulary import CHANNELS

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _customer_id(request: Request, token: str) -> str:
    customer_id = console_of(request).ids.reveal(token)
    if customer_id is None:
        raise Refused(404, "Not found", "no such customer page")
    return customer_id


@router.get("/customers")
async def search_page(request: Request, login: Login = Depends(signed_in)) -> Response:
    return render(request, "customers.html", login=login, nav="customers", query="",
                  matches=None, cap=SEARCH_MATCHES)


@router.post("/customers")
async def search(request: Request, login: Login = Depends(signed_in)) -> Response:
    query = (await form(request, login.csrf)).get("q", "")
    ids = await read(request, lambda s: find(query, session=s))
    hide = console_of(request).ids.hide
    if len(ids) == 1:
        return RedirectResponse(f"/customers/{hide(ids[0])}", status_code=303)
    return render(request, "customers.html", login=login, nav="customers", query=query,
                  matches=[{"id": i, "token": hide(i)} for i in ids], cap=SEARCH_MATCHES)


@router.get("/customers/{token}")
async def customer(token: str, request: Request, login: Login = Depends(signed_in)) -> Response:
    customer_id = _customer_id(request, token)
    cursor = request.query_params.get("cursor") or None
    settings = settings_of(request)
    configured = [ch for ch in CHANNELS if settings.provider_for(ch) != "outbox"]
    try:
        data = await read(request, lambda s: customer_page(customer_id, session=s,
                                                           cursor=cursor,
                                                           configured=configured))
    except PageError as exc:
        raise Refused(400, "Bad page", str(exc)) from None
    return render(request, "customer.html", login=login, nav="customers", token=token,
                  done=request.query_params.get("done"), **data)


@router.post("/customers/{token}/unsubscribe")
async def unsubscribe(token: str, request: Request,
                      login: Login = Depends(signed_in)) -> Response:
    customer_id = _customer_id(request, token)
    channel = (await form(request, login.csrf)).get("channel", "")
    if channel not in CHANNELS:
        raise Refused(400, "Unknown channel", f"no channel {channel!r}")
    url = settings_of(request).db_url

    def work() -> bool:
        with session_scope(url) as session:
            address = address_for(session.get(Customer, customer_id), channel)
            return address is not None and suppress(channel, address, "unsubscribed",
                                                    session=session)
    await run_in_threadpool(work)
    return RedirectResponse(f"/customers/{token}?done=unsubscribed-{channel}",
                            status_code=303)
