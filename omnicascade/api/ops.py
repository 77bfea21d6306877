"""What an operator's tools ask the API: GET /ready (may it take traffic?), GET /metrics
(Prometheus text format), and the count of every request by route template and status.

/health (routes.py) says the process is alive; /ready says its dependencies answer: 200 only
when the database answers SELECT 1 and Temporal answers its health check, each within
READY_TIMEOUT_S; else 503 naming which is down. /metrics needs the read token unless
OMNICASCADE_METRICS_PUBLIC=true: metric labels hold no personal data, but campaign slugs
and volumes are the shop's business.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnicascade.api.http import settings_of
from omnicascade.api.reads import authorized, bearer
from omnicascade.db.session import ping
from omnicascade.reports.gauges import DatabaseGauges
from omnicascade.telemetry import API_REQUESTS

READY_TIMEOUT_S = 3.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
router = APIRouter(tags=["ops"])


def gauges_registry(db_url: str) -> CollectorRegistry:
    """The app's own registry for the database gauges (one per app, so two apps in one
    process — the tests, `server` — do not register the same collector twice)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseGauges(db_url))
    return registry


async def _database(request: Request) -> bool:
    try:
        await asyncio.wait_for(run_in_threadpool(ping, settings_of(request).db_url),
                               READY_TIMEOUT_S)
        return True
    except Exception:  # noqa: BLE001 — any failure means "not ready"; the body says which
        return False


async def _temporal(request: Request) -> bool:
    try:
        client = await asyncio.wait_for(request.app.state.temporal.get(), READY_TIMEOUT_S)
        if client is None:
            return False
        return bool(await client.service_client.check_health(
            timeout=timedelta(seconds=READY_TIMEOUT_S)))
    except Exception:  # noqa: BLE001
        return False


@router.get("/ready", responses={503: {"description": "the database or Temporal is down"}})
async def ready(request: Request) -> JSONResponse:
    database, temporal = await asyncio.gather(_database(request), _temporal(request))
    body: dict[str, Any] = {"ready": database and temporal,
                            "database": "ok" if database else "down",
                            "temporal": "ok" if temporal else "down"}
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", responses={401: {"description": "no read token (unless "
                                                        "OMNICASCADE_METRICS_PUBLIC=true)"}})
async def metrics(request: Request) -> Response:
    if not settings_of(request).metrics_public:
        authorized(request, await bearer(request))
    own: CollectorRegistry = request.app.state.gauges

    def render() -> bytes:
        return generate_latest(REGISTRY) + generate_latest(own)
    return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)


class CountRequests:
    """Counts each HTTP request by its route template (`/v1/runs/{run_id}`, never the raw
    path, which holds ids) and status. A plain ASGI middleware: one dict lookup and one
    increment per request."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            API_REQUESTS.labels(template, method if method in METHODS else "other",
                                str(status[0])).inc()
