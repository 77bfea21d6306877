"""The shop's API: customers, trigger events, conversions, health. Each route verifies and
parses (signed_json), calls one plain function in the transaction that uses its signature
up (signed_transaction), and answers; no business logic here."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from omnicascade.api.http import (
    ApiError,
    body_schema,
    settings_of,
    signed_json,
    signed_transaction,
)
from omnicascade.cascade.conversions import (
    ConversionIn,
    ConversionOutcome,
    ConversionRejected,
    record_conversion,
    tell_cascades,
)
from omnicascade.cascade.events import (
    EventIn,
    UnknownCustomer,
    process_event,
    store_event,
    stored_answer,
)
from omnicascade.cascade.events import answer as event_answer
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.db.session import session_scope

router = APIRouter()


def _db(request: Request) -> str:
    return settings_of(request).db_url


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
    body = await signed_json(request, CustomerIn)
    created, _ = await signed_transaction(
        request, body, lambda session: upsert_customers([body.data], session=session))
    return {"id": body.data.id, "created": bool(created)}


@router.post("/v1/events", tags=["events"], status_code=202, openapi_extra=body_schema(EventIn),
             responses={200: {"description": "duplicate event_id: no new effect"}})
async def post_event(request: Request) -> JSONResponse:
    body = await signed_json(request, EventIn)
    data, settings = body.data, settings_of(request)

    def work(session: Session) -> tuple[bool, dict[str, Any]]:
        row, duplicate = store_event(data, session=session)
        return duplicate, event_answer(row)  # a repeat answers what was stored
    try:
        duplicate, answer = await signed_transaction(request, body, work)
    except UnknownCustomer as exc:
        raise ApiError(422, str(exc)) from None
    if not duplicate:
        client = await request.app.state.temporal.get()
        if client is not None:  # otherwise the worker's reconciler processes it shortly
            await process_event(client, settings, data.event_id)
            answer = await asyncio.to_thread(stored_answer, settings.db_url, data.event_id)
    return JSONResponse(answer, status_code=200 if duplicate else 202)


@router.post("/v1/conversions", tags=["conversions"], status_code=202,
             openapi_extra=body_schema(ConversionIn),
             responses={200: {"description": "duplicate event_id: same body, no new effect"}})
async def post_conversion(request: Request) -> JSONResponse:
    body = await signed_json(request, ConversionIn)
    try:  # committed before any signal (promise 1)
        outcome: ConversionOutcome = await signed_transaction(
            request, body, lambda session: record_conversion(body.data, session=session))
    except ConversionRejected as exc:
        raise ApiError(422, str(exc)) from None
    if outcome.to_signal:
        await tell_cascades(await request.app.state.temporal.get(), outcome,
                            settings_of(request).signal_timeout_s)
    return JSONResponse(outcome.body(), status_code=200 if outcome.duplicate else 202)
