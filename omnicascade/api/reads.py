"""The read API for the shop's backend: runs, a run's report, a customer's timeline and
export (everything stored about them), the outbox and a promo code at checkout. Each answer
is the CLI's `--json` of the same command, made by the same function (`runs list`,
`runs show`, `report`, `customers show`, `outbox`).
Lists come a page at a time (reports/paging.py): `?limit=` (at most MAX_LIMIT) and
`?cursor=`, the next page's cursor in the `X-Next-Cursor` and `Link` headers.

Reads carry PII, so each needs `Authorization: Bearer <OMNICASCADE_API_TOKEN>` (compared
in constant time): without it, or with another token, 401 and a `WWW-Authenticate`
header. An id that does not exist — or could not be stored (NUL, lone surrogates) — is 404.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from omnicascade.api.http import ApiError, read_only, settings_of
from omnicascade.errors import NotFound
from omnicascade.reports.customers import customer_show_page
from omnicascade.reports.export_person import person_export
from omnicascade.reports.outbox import outbox_page
from omnicascade.reports.paging import DEFAULT_LIMIT, MAX_LIMIT, PageError
from omnicascade.reports.promo import promo_code
from omnicascade.reports.run_views import run_show, runs_page
from omnicascade.validation import unstorable

T = TypeVar("T")
REALM = 'Bearer realm="omnicascade"'
bearer = HTTPBearer(auto_error=False, scheme_name="api_token",
                    description="OMNICASCADE_API_TOKEN (generated into the state directory "
                                "in development; `omnicascade server` prints where)")


def authorized(request: Request,
               credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """401 unless the request carries the API token (any listed one: it rotates)."""
    if credentials is None:
        raise ApiError(401, "this read needs Authorization: Bearer <OMNICASCADE_API_TOKEN>",
                       headers={"WWW-Authenticate": REALM})
    tokens: list[str] = request.app.state.api_tokens
    given = credentials.credentials.encode("latin-1", "replace")  # the header's own bytes
    if not any([hmac.compare_digest(given, token.encode()) for token in tokens]):
        raise ApiError(401, "wrong API token",
                       headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})


router = APIRouter(dependencies=[Depends(authorized)])
ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no `Authorization: Bearer <OMNICASCADE_API_TOKEN>`, or another "
                         "token"}}
FOUND = {**ANSWERS, 404: {"description": "unknown id"}}


PAGED = {**ANSWERS, 422: {"description": "a limit out of range or a cursor this list did "
                                          "not make"}}
LIMIT = Query(None, description=f"At most this many rows (1–{MAX_LIMIT}; default "
                                f"{DEFAULT_LIMIT}).")
CURSOR = Query(None, description="Where the page starts: the `X-Next-Cursor` of the page "
                                 "before (opaque).")


async def _read(request: Request, work: Callable[[Session], T], *ids: str) -> T:
    """`work` in a read-only session, off the event loop; NotFound → 404, a bad limit or
    cursor → 422."""
    for value in ids:
        if unstorable(value):
            raise ApiError(404, f"no such id {value!r}")
    try:
        return await read_only(request, work)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from None
    except PageError as exc:
        raise ApiError(422, str(exc)) from None


def _next(request: Request, response: Response, cursor: str | None) -> None:
    """Where the next page starts, in headers (the body keeps the CLI's `--json` shape):
    `X-Next-Cursor` and `Link: <…>; rel="next"`, absent on the last page."""
    if cursor is not None:
        url = request.url.include_query_params(cursor=cursor)
        response.headers["X-Next-Cursor"] = cursor
        response.headers["Link"] = f'<{url}>; rel="next"'


@router.get("/v1/runs", tags=["reads"], responses=PAGED)
async def list_runs(request: Request, response: Response, limit: int | None = LIMIT,
                    cursor: str | None = CURSOR) -> list[dict[str, Any]]:
    """Runs, newest first, a page at a time: `omnicascade runs list --json`."""
    page = await _read(request, lambda s: runs_page(session=s, limit=limit, cursor=cursor))
    _next(request, response, page.next_cursor)
    return page.rows


@router.get("/v1/outbox", tags=["reads"], responses=PAGED)
async def list_outbox(request: Request, response: Response, customer: str | None = None,
                      run: str | None = None, limit: int | None = LIMIT,
                      cursor: str | None = CURSOR) -> list[dict[str, Any]]:
    """What the outbox provider "sent", oldest first, a page at a time: `omnicascade
    outbox --json` (of one customer and/or run if given)."""
    page = await _read(request, lambda s: outbox_page(
        session=s, customer_id=customer, run_id=run, limit=limit, cursor=cursor),
        *(v for v in (customer, run) if v))
    _next(request, response, page.next_cursor)
    return page.rows


@router.get("/v1/runs/{run_id}", tags=["reads"], responses=FOUND)
async def show_run(run_id: str, request: Request) -> dict[str, Any]:
    """A run's funnel per step and channel: `omnicascade runs show RUN_ID --json`."""
    return await _read(request, lambda s: run_show(run_id, session=s), run_id)


@router.get("/v1/runs/{run_id}/report", tags=["reads"], responses=FOUND)
async def run_report(run_id: str, request: Request) -> dict[str, Any]:
    """Funnel, attribution, A/B statistics and money: `omnicascade report RUN_ID --json`."""
    # Imported here: the statistics (scipy, statsmodels: ~100 MB) stay out of every worker
    # and API process until someone asks for a report.
    from omnicascade.reports.build import build_report
    settings = settings_of(request)
    return await _read(request, lambda s: build_report(run_id, session=s, settings=settings),
                       run_id)


# Before the timeline's route, whose `{customer_id:path}` would take ".../export" as an id.
@router.get("/v1/customers/{customer_id:path}/export", tags=["reads"], responses=FOUND)
async def export_customer(customer_id: str, request: Request) -> dict[str, Any]:
    """Everything stored about a person (GDPR Art. 15/20): `omnicascade customers export
    ID`; the shape is README's "Data protection → Export". `%2F` for `/` in ids."""
    return await _read(request, lambda s: person_export(customer_id, session=s), customer_id)


@router.get("/v1/customers/{customer_id:path}", tags=["reads"], responses={**FOUND, **PAGED})
async def show_customer(customer_id: str, request: Request, response: Response,
                        limit: int | None = LIMIT,
                        cursor: str | None = CURSOR) -> dict[str, Any]:
    """A customer's timeline: `omnicascade customers show ID --json`; its messages a page at
    a time."""
    data, after = await _read(request, lambda s: customer_show_page(
        customer_id, session=s, limit=limit, cursor=cursor), customer_id)
    _next(request, response, after)
    return data


@router.get("/v1/promo-codes/{code}", tags=["reads"], responses=FOUND)
async def show_promo_code(code: str, request: Request) -> dict[str, Any]:
    """`{code, valid, discount, campaign, customer_id, redeemed}` for the checkout (any
    case). Valid: issued, not yet redeemed by a conversion, and its run not stopped."""
    return await _read(request, lambda s: promo_code(code, session=s), code)
