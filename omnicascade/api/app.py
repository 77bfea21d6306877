"""The FastAPI application: thin routes over plain functions (routes.py, run_control.py,
reads.py, unsubscribe.py, provider_callbacks.py, receiver_reports.py) and the web console
at / (console/). Every write is signed (signature.py), every read carries the bearer token
(reads.py); errors are JSON `{"detail": …}`; the console has its own login (console/security.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from omnicascade.api import (
    console,
    erasure,
    ops,
    provider_callbacks,
    reads,
    receiver_reports,
    routes,
    run_control,
    unsubscribe,
)
from omnicascade.api.http import ApiError
from omnicascade.cascade.temporal import LazyClient
from omnicascade.config import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(title="omnicascade", version="0.1.0", lifespan=lifespan,
                  description="Campaign orchestrator API: customers, trigger events, "
                              "conversions; runs, reports, customers and promo codes to "
                              "read. Writes are signed with X-Omnicascade-Signature; reads "
                              "need `Authorization: Bearer <OMNICASCADE_API_TOKEN>`.")
    app.state.settings = settings
    # Rotating secrets (`new,old`): every listed key verifies a signature or a read.
    app.state.secrets = settings.keys("webhook_secret", create=True)
    app.state.secret = app.state.secrets[0]
    app.state.api_tokens = settings.keys("api_token", create=True)  # for the reads
    app.state.api_token = app.state.api_tokens[0]
    app.state.temporal = LazyClient(settings, client)
    app.state.webhook_providers = {}  # built from the environment on first use
    app.state.gauges = ops.gauges_registry(settings.db_url)  # /metrics' database gauges
    app.add_middleware(ops.CountRequests)

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        content: dict[str, Any] = {"detail": exc.message}
        if exc.errors:
            content["errors"] = exc.errors
        return JSONResponse(content, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": "invalid request", "errors": [
            {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    app.include_router(routes.router)
    app.include_router(run_control.router)
    app.include_router(erasure.router)  # DELETE /v1/customers/{id}
    app.include_router(reads.router)
    app.include_router(unsubscribe.router)
    app.include_router(provider_callbacks.router)
    app.include_router(receiver_reports.router)  # the webhook channel's receiver reports back
    app.include_router(ops.router)  # /ready, /metrics
    console.mount(app, settings)  # the web console at /
    return app
