"""Routes: parse + verify, call one plain function, answer. No business logic here."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from omnicascade.api.app import ApiError, body_schema, signed_json
from omnicascade.consent import unsubscribe
from omnicascade.conversions import (
    ConversionIn,
    ConversionRejected,
    record_conversion,
    signal_conversion,
)
from omnicascade.customers import CustomerIn, upsert_customers
from omnicascade.db.session import session_scope
from omnicascade.events import EventIn, UnknownCustomer, process_event, store_event
from omnicascade.links import read_unsubscribe_token

router = APIRouter()


def _db(request: Request) -> str:
    return request.app.state.settings.db_url


@router.get("/health", tags=["ops"])
async def health(request: Request) -> dict[str, Any]:
    def ping() -> None:
        with session_scope(_db(request)) as session:
            session.execute(text("SELECT 1"))
    await run_in_threadpool(ping)
    client = await request.app.state.temporal.get()
    return {"status": "ok", "database": "ok", "temporal": "ok" if client else "unavailable"}


@router.post("/v1/customers", tags=["customers"], openapi_extra=body_schema(CustomerIn),
             responses={200: {"description": "created or updated"}})
async def put_customer(request: Request) -> dict[str, Any]:
    data: CustomerIn = await signed_json(request, CustomerIn)

    def tx() -> tuple[int, int]:
        with session_scope(_db(request)) as session:
            return upsert_customers([data], session=session)
    created, _ = await run_in_threadpool(tx)
    return {"id": data.id, "created": bool(created)}


@router.post("/v1/events", tags=["events"], status_code=202, openapi_extra=body_schema(EventIn),
             responses={200: {"description": "duplicate event_id: no new effect"}})
async def post_event(request: Request) -> JSONResponse:
    data: EventIn = await signed_json(request, EventIn)
    settings = request.app.state.settings

    def tx() -> tuple[bool, int]:
        with session_scope(_db(request)) as session:
            row, duplicate = store_event(data, session=session)
            return duplicate, row.enrolled
    try:
        duplicate, enrolled = await run_in_threadpool(tx)
    except UnknownCustomer as exc:
        raise ApiError(422, str(exc)) from None
    if not duplicate:
        client = await request.app.state.temporal.get()
        if client is not None:  # otherwise the worker's reconciler processes it shortly
            enrolled = await process_event(client, settings, data.event_id)
    body = {"event_id": data.event_id, "customer_id": data.customer_id, "enrolled": enrolled}
    return JSONResponse(body, status_code=200 if duplicate else 202)


@router.post("/v1/conversions", tags=["conversions"], status_code=202,
             openapi_extra=body_schema(ConversionIn),
             responses={200: {"description": "duplicate event_id: same body, no new effect"}})
async def post_conversion(request: Request) -> JSONResponse:
    data: ConversionIn = await signed_json(request, ConversionIn)

    def tx():  # noqa: ANN202
        with session_scope(_db(request)) as session:
            return record_conversion(data, session=session)
    try:
        outcome = await run_in_threadpool(tx)  # committed before any signal (promise 1)
    except ConversionRejected as exc:
        raise ApiError(422, str(exc)) from None
    if outcome.to_signal:
        client = await request.app.state.temporal.get()
        if client is not None:
            await signal_conversion(client, outcome,
                                    request.app.state.settings.signal_timeout_s)
    return JSONResponse(outcome.body(), status_code=200 if outcome.duplicate else 202)


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:32rem;margin:4rem auto;text-align:center">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


@router.get("/u/{token}", response_class=HTMLResponse, tags=["consent"])
async def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    if read_unsubscribe_token(request.app.state.settings, token) is None:
        return HTMLResponse(_PAGE.format(title="Link not valid", text="This unsubscribe link "
                                         "is not valid.", form=""), status_code=404)
    form = (f'<form method="post" action="/u/{html.escape(token)}">'
            '<button type="submit">Unsubscribe</button></form>')
    return HTMLResponse(_PAGE.format(title="Unsubscribe", text="Stop receiving these "
                                     "messages?", form=form))


@router.post("/u/{token}", response_class=HTMLResponse, tags=["consent"])
async def unsubscribe_now(request: Request, token: str) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058 List-Unsubscribe-Post) and the page's button."""
    found = read_unsubscribe_token(request.app.state.settings, token)
    if found is None:
        return HTMLResponse(_PAGE.format(title="Link not valid", text="This unsubscribe link "
                                         "is not valid.", form=""), status_code=404)

    def tx() -> None:
        with session_scope(_db(request)) as session:
            unsubscribe(*found, session=session)
    await run_in_threadpool(tx)
    return HTMLResponse(_PAGE.format(title="Unsubscribed", text="You will not receive these "
                                     "messages any more.", form=""))
