"""The request plumbing every route shares: errors as JSON, the raw body read with a size
limit, and signed JSON bodies (the signature is checked on the method, path and raw bytes
before anything is parsed, and used up in the transaction of the route's effect)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from omnicascade.api import replay, signature
from omnicascade.config import Settings
from omnicascade.db.session import read_scope, session_scope

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None):
        self.status, self.message, self.errors = status, message, errors or []
        self.headers = headers


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


def signed_path(request: Request) -> str:
    """The path as the client sent it, with `?query` if there is one: what v2 signs."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string") or b""
    path = raw.decode("utf-8", "replace")
    return f"{path}?{query.decode('utf-8', 'replace')}" if query else path


@dataclass(frozen=True)
class SignedBody(Generic[M]):
    data: M
    signed: signature.Signed


async def signed_json(request: Request, model: type[M], *,
                      empty: bytes | None = None) -> SignedBody[M]:
    """The parsed body of a request whose signature is valid (else 401), not yet used up:
    the route does its work through `signed_transaction`. With `empty`, a request without
    a body (still signed, over no bytes) reads as that JSON, e.g. b"{}"."""
    body = await read_body(request)
    try:
        signed = signature.verify(request.app.state.secrets,
                                  request.headers.get(signature.HEADER), request.method,
                                  signed_path(request), body,
                                  settings_of(request).signature_tolerance_s)
    except signature.SignatureError as exc:
        raise ApiError(401, str(exc)) from None
    try:
        return SignedBody(model.model_validate_json(body if body or empty is None
                                                    else empty), signed)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def signed_transaction(request: Request, body: SignedBody[Any],
                             work: Callable[[Session], T]) -> T:
    """`work` in one transaction that first uses the signature up: a replayed request, or
    one racing an identical one, gets 401 and `work` has no effect. If `work` fails the
    transaction rolls back and the signature can be sent again."""
    settings = settings_of(request)

    def tx() -> T:
        with session_scope(settings.db_url) as session:
            replay.claim(session, body.signed, settings.signature_tolerance_s)
            return work(session)
    try:
        return await run_in_threadpool(tx)
    except signature.SignatureError as exc:
        raise ApiError(401, str(exc)) from None


async def read_only(request: Request, work: Callable[[Session], T]) -> T:
    """`work` in a read-only session, off the event loop (the read API and the console)."""
    url = settings_of(request).db_url

    def run() -> T:
        with read_scope(url) as session:
            return work(session)
    return await run_in_threadpool(run)
