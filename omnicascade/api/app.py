"""FastAPI application: thin routes over plain functions. Every write is signed (see
signature.py); the signature is checked on the raw body before anything is parsed."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from omnicascade.api import signature
from omnicascade.config import ConfigError, Settings
from omnicascade.temporal_client import connect

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        self.status, self.message, self.errors = status, message, errors or []


class TemporalHandle:
    """Connects lazily and reconnects after failures, so the API keeps recording conversions
    (and the send-time guard keeps working) while Temporal is briefly unreachable."""

    def __init__(self, settings: Settings, client: Client | None = None):
        self.settings, self._client, self._lock = settings, client, asyncio.Lock()

    async def get(self) -> Client | None:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(connect(self.settings), 5)
                except (TimeoutError, ConfigError) as exc:
                    log.warning("Temporal unavailable: %s", exc)
                    return None
        return self._client


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema(ref_template="#/components/"
                                                                "schemas/{model}")}}}}


async def read_body(request: Request) -> bytes:
    """The raw body, or 413 past settings.max_body_bytes. Reads at most the limit whatever
    Content-Length claims (it may lie, or be absent for a chunked body): never buffers
    more than the limit plus one chunk."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def signed_json(request: Request, model: type[BaseModel]) -> Any:
    settings: Settings = request.app.state.settings
    body = await read_body(request)
    problem = signature.verify(request.app.state.secret, request.headers.get(signature.HEADER),
                               body, settings.signature_tolerance_s)
    if problem:
        raise ApiError(401, problem)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"].removeprefix("Value error, "),
                   "type": e["type"]} for e in exc.errors(include_url=False, include_input=False)]
        raise ApiError(422, "invalid request body: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors),
            errors) from None


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    from omnicascade.api import routes, webhooks

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield

    app = FastAPI(title="omnicascade", version="0.1.0", lifespan=lifespan,
                  description="Campaign orchestrator API: customers, trigger events, "
                              "conversions. Writes are signed with X-Omnicascade-Signature.")
    app.state.settings = settings
    app.state.secret = settings.resolved_webhook_secret(create=True)
    app.state.temporal = TemporalHandle(settings, client)

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        content: dict[str, Any] = {"detail": exc.message}
        if exc.errors:
            content["errors"] = exc.errors
        return JSONResponse(content, status_code=exc.status)

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
    app.include_router(webhooks.router)
    return app
