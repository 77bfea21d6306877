"""Provider webhooks, routed: each provider module verifies its callback its own way on the
raw body and parses it (channels/callbacks.py); here the items are stored once and acted on
(cascade/feedback.py), the cascades of failed steps are told, and the provider's expected
answer is returned. A forged or unsigned request gets 401/403 and changes nothing.

- /webhooks/sendgrid  Signed Event Webhook (ECDSA P-256 over timestamp + body)
- /webhooks/twilio    X-Twilio-Signature: status callbacks and incoming STOP/START
- /webhooks/telegram  X-Telegram-Bot-Api-Secret-Token: `/start <token>` binds a chat
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from omnicascade.api.http import ApiError, read_body, settings_of
from omnicascade.cascade.feedback import record_feedback, signal_failed_steps
from omnicascade.channels.callbacks import (
    FeedbackOutcome,
    WebhookProvider,
    WebhookRefused,
    WebhookRequest,
)
from omnicascade.channels.registry import WEBHOOKS, build_webhook
from omnicascade.db.session import session_scope
from omnicascade.telemetry import WEBHOOKS as WEBHOOK_REQUESTS

router = APIRouter(tags=["webhooks"])


def _provider(request: Request, name: str) -> WebhookProvider:
    """Each provider's settings are read from the environment once per app."""
    cache: dict[str, WebhookProvider] = request.app.state.webhook_providers
    if name not in cache:
        cache[name] = build_webhook(name, settings_of(request))
    return cache[name]


def _urls(request: Request) -> tuple[str, ...]:
    """The URL the provider called, as configured (OMNICASCADE_PUBLIC_URL, else the address
    the API is bound to) plus the path and query: never built from the request's Host or
    X-Forwarded-* headers, which whoever sends the request chooses."""
    query = f"?{request.url.query}" if request.url.query else ""
    return (f"{settings_of(request).public_base_url()}{request.url.path}{query}",)


async def _handle(request: Request, name: str) -> Response:
    provider = _provider(request, name)
    incoming = WebhookRequest(path=request.url.path, query=dict(request.query_params),
                              headers={k.lower(): v for k, v in request.headers.items()},
                              body=await read_body(request), urls=_urls(request))
    try:
        items = provider.parse(incoming)
    except WebhookRefused as exc:
        WEBHOOK_REQUESTS.labels(name, "bad_signature" if exc.status in (401, 403)
                        else "rejected").inc()
        raise ApiError(exc.status, exc.message) from None
    WEBHOOK_REQUESTS.labels(name, "accepted").inc()
    settings = settings_of(request)

    def tx() -> FeedbackOutcome:
        with session_scope(settings.db_url) as session:
            return record_feedback(items, session=session)
    outcome = await run_in_threadpool(tx)  # committed before any signal
    outcome.signalled = await signal_failed_steps(await request.app.state.temporal.get(),
                                                  outcome.failed_steps, settings.db_url)
    reply = provider.reply(items, outcome)
    if isinstance(reply.content, dict):
        return JSONResponse(reply.content)
    return Response(reply.content, media_type=reply.media_type)


def _route(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        return await _handle(request, name)
    return handle


for _name, (_, _summary) in WEBHOOKS.items():
    router.add_api_route(f"/webhooks/{_name}", _route(_name), methods=["POST"],
                         summary=_summary, name=f"{_name}_webhook")
