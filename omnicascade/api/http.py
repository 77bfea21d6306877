"""The request plumbing every route shares: errors as JSON, the raw body read with a size
limit, and signed JSON bodies (the signature is checked on the raw bytes before anything
is parsed)."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from omnicascade.api import signature
from omnicascade.config import Settings

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        self.status, self.message, self.errors = status, message, errors or []


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself (raw, to verify its signature first)."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema(ref_template="#/components/"
                                                                "schemas/{model}")}}}}


async def read_body(request: Request) -> bytes:
    """The raw body, or 413 past settings.max_body_bytes. Reads at most the limit whatever
    Content-Length claims (it may lie, or be absent for a chunked body): never buffers
    more than the limit plus one chunk."""
    limit = settings_of(request).max_body_bytes
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


def validation_error(exc: ValidationError) -> ApiError:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"].removeprefix("Value error, "),
               "type": e["type"]} for e in exc.errors(include_url=False, include_input=False)]
    return ApiError(422, "invalid request body: " + "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors), errors)


async def signed_json(request: Request, model: type[M]) -> M:
    settings = settings_of(request)
    body = await read_body(request)
    problem = signature.verify(request.app.state.secret, request.headers.get(signature.HEADER),
                               body, settings.signature_tolerance_s)
    if problem:
        raise ApiError(401, problem)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error(exc) from None
