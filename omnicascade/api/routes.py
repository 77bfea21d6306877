"""The shop's API: customers, trigger events, conversions, health. Each route verifies and
parses (signed_json), calls one plain function in the transaction that uses its signature
up (signed_transaction), and answers; no business logic here."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from omnicascade.api.erasure import SUPPRESSED, CustomerWrite, erased_id, write_customer
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
from omnicascade.db.session import ping

router = APIRouter()


def _db(request: Request) -> str:
    return settings_of(request).db_url


@router.get("/health", tags=["ops"])
async def health(request: Request) -> dict[str, Any]:
    await run_in_threadpool(ping, _db(request))
    client = await request.app.state.temporal.get()
    return {"status": "ok", "database": "ok", "temporal": "ok" if client else "unavailable"}


@router.post("/v1/customers", tags=["customers"], openapi_extra=body_schema(CustomerWrite),
             responses={200: {"description": "created or updated; or an erased person, "
                                             "not written: `\"suppressed\": \"erased\"`"}})
async def put_customer(request: Request) -> dict[str, Any]:
    body = await signed_json(request, CustomerWrite)
    settings = settings_of(request)
    created, suppressed = await signed_transaction(
        request, body, lambda session: write_customer(settings, body.data, session=session))
    if suppressed:
        return {"id": body.data.id, "created": False, "suppressed": SUPPRESSED}
    return {"id": body.data.id, "created": bool(created)}


@router.post("/v1/events", tags=["events"], status_code=202, openapi_extra=body_schema(EventIn),
             responses={200: {"description": "duplicate event_id: no new effect"}})
async def post_event(request: Request) -> JSONResponse:
    body = await signed_json(request, EventIn)
    data, settings = body.data, settings_of(request)

    def work(session: Session) -> tuple[bool, bool, dict[str, Any]]:
        if erased_id(settings, data.customer_id, session=session):  # stored nowhere
            return True, True, {"event_id": data.event_id, "customer_id": data.customer_id,
                                "enrolled": 0, "campaigns": [], "suppressed": SUPPRESSED,
                                "note": "this customer was erased: the event is stored "
                                        "nowhere and enrolls nobody"}
        row, duplicate = store_event(data, session=session)
        return duplicate, row.processed_at is not None, event_answer(row)
    try:
        duplicate, processed, answer = await signed_transaction(request, body, work)
    except UnknownCustomer as exc:
        raise ApiError(422, str(exc)) from None
    # A repeat answers what was stored; one racing the first request (stored, not processed
    # yet) processes it too (once: the event is locked) so both answer with the same body.
    if not processed:
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
    settings = settings_of(request)

    def work(session: Session) -> ConversionOutcome | None:
        if erased_id(settings, body.data.customer_id, session=session):
            return None  # an erased person's conversion is stored nowhere
        return record_conversion(body.data, session=session)
    try:  # committed before any signal (promise 1)
        outcome = await signed_transaction(request, body, work)
    except ConversionRejected as exc:
        raise ApiError(422, str(exc)) from None
    if outcome is None:
        return JSONResponse({"event_id": body.data.event_id,
                             "customer_id": body.data.customer_id, "stopped": 0,
                             "matched": False, "suppressed": SUPPRESSED})
    if outcome.to_signal:
        await tell_cascades(await request.app.state.temporal.get(), outcome,
                            settings.signal_timeout_s)
    return JSONResponse(outcome.body(), status_code=200 if outcome.duplicate else 202)
