"""`POST /v1/feedback`: the webhook channel's receiver reports what became of a message
(delivered, opened, clicked, replied, failed, unsubscribed; channels/receiver_reports.py).

Signed like every write (`X-Omnicascade-Signature`, v2 over method, path and raw body), with
either secret: OMNICASCADE_WEBHOOK_CHANNEL_SECRET, the one the receiver already holds to
verify our messages (so a Viber bridge needs no key to the rest of the API), or the API's
OMNICASCADE_WEBHOOK_SECRET (the shop's backend). Each signature takes effect once
(replay.py, in the transaction that stores the event). The event is stored once (a repeat
answers 200 and changes nothing) and applied like a provider's webhook event; a `failed`
step's cascade is told after the commit, and moves on to the next channel at once.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from omnicascade.api import signature
from omnicascade.api.http import (
    ApiError,
    SignedBody,
    body_schema,
    read_body,
    settings_of,
    signed_path,
    signed_transaction,
    validation_error,
)
from omnicascade.cascade.feedback import record_feedback, signal_failed_steps
from omnicascade.channels.callbacks import FeedbackOutcome
from omnicascade.channels.receiver_reports import FeedbackIn, feedback_item

log = logging.getLogger(__name__)
router = APIRouter()

ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "a repeat of a stored event, or `\"matched\": false`: the "
                         "delivery_id is no message of the webhook channel (recorded as "
                         "rejected, no effect)"},
    202: {"description": "stored and applied: `{\"delivery_id\", \"event\", \"matched\": "
                         "true, \"duplicate\": false}`"},
    401: {"description": "missing, wrong or replayed signature"},
    422: {"description": "invalid body, naming the field"},
}


def _secrets(request: Request) -> list[str]:
    """The secrets a feedback signature may be made with: the API's own, and the webhook
    channel's (Settings refuses a placeholder one in production)."""
    state = request.app.state
    if not hasattr(state, "feedback_secrets"):
        channel = settings_of(request).webhook_channel.secret
        state.feedback_secrets = [s for s in (state.secret, channel) if s]
    secrets: list[str] = state.feedback_secrets
    return secrets


async def _signed(request: Request) -> SignedBody[FeedbackIn]:
    body = await read_body(request)
    settings = settings_of(request)
    error: signature.SignatureError | None = None
    for secret in _secrets(request):
        try:
            signed = signature.verify(secret, request.headers.get(signature.HEADER),
                                      request.method, signed_path(request), body,
                                      settings.signature_tolerance_s)
            break
        except signature.SignatureError as exc:
            error = error or exc  # the API secret's reason (for either: the same words)
    else:
        raise ApiError(401, str(error or "no secret to verify the signature with")) from None
    try:
        return SignedBody(FeedbackIn.model_validate_json(body), signed)
    except ValidationError as exc:
        raise validation_error(exc) from None


@router.post("/v1/feedback", tags=["feedback"], status_code=202, responses=ANSWERS,
             openapi_extra=body_schema(FeedbackIn))
async def post_feedback(request: Request) -> JSONResponse:
    """What became of a message the webhook channel sent (see docs/channels.md)."""
    body = await _signed(request)
    matched = False

    def work(session: Session) -> FeedbackOutcome:
        nonlocal matched
        item, matched = feedback_item(body.data, session=session)
        return record_feedback([item], session=session)
    outcome = await signed_transaction(request, body, work)  # committed before any signal
    settings = settings_of(request)
    if outcome.failed_steps:
        outcome.signalled = await signal_failed_steps(
            await request.app.state.temporal.get(), outcome.failed_steps, settings.db_url)
    answer = {"delivery_id": body.data.delivery_id, "event": body.data.event,
              "matched": matched, "duplicate": bool(outcome.duplicates)}
    return JSONResponse(answer, status_code=202 if matched and outcome.recorded else 200)
