"""The read API for the shop's backend: runs, a run's report, a customer's timeline and a
promo code at checkout. Each answer is the CLI's `--json` of the same command, made by the
same function (`runs list`, `runs show`, `report`, `customers show`).

Reads carry PII, so each needs `Authorization: Bearer <OMNICASCADE_API_TOKEN>` (compared
in constant time): without it, or with another token, 401 and a `WWW-Authenticate`
header. An id that does not exist — or could not be stored (NUL, lone surrogates) — is 404.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from omnicascade.api.http import ApiError, read_only, settings_of
from omnicascade.errors import NotFound
from omnicascade.reports.customers import customer_show
from omnicascade.reports.promo import promo_code
from omnicascade.reports.runs import run_show, runs_list
from omnicascade.validation import unstorable

T = TypeVar("T")
REALM = 'Bearer realm="omnicascade"'
bearer = HTTPBearer(auto_error=False, scheme_name="api_token",
                    description="OMNICASCADE_API_TOKEN (generated into the state directory "
                                "in development; `omnicascade server` prints where)")


def authorized(request: Request,
               credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """401 unless the request carries the API token."""
    if credentials is None:
        raise ApiError(401, "this read needs Authorization: Bearer <OMNICASCADE_API_TOKEN>",
                       headers={"WWW-Authenticate": REALM})
    token: str = request.app.state.api_token
    given = credentials.credentials.encode("latin-1", "replace")  # the header's own bytes
    if not hmac.compare_digest(given, token.encode()):
        raise ApiError(401, "wrong API token",
                       headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'})


router = APIRouter(dependencies=[Depends(authorized)])
ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no `Authorization: Bearer <OMNICASCADE_API_TOKEN>`, or another "
                         "token"}}
FOUND = {**ANSWERS, 404: {"description": "unknown id"}}


async def _read(request: Request, work: Callable[[Session], T], *ids: str) -> T:
    """`work` in a read-only session, off the event loop; NotFound → 404."""
    for value in ids:
        if unstorable(value):
            raise ApiError(404, f"no such id {value!r}")
    try:
        return await read_only(request, work)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from None


@router.get("/v1/runs", tags=["reads"], responses=ANSWERS)
async def list_runs(request: Request) -> list[dict[str, Any]]:
    """Every run, newest first: `omnicascade runs list --json`."""
    return await _read(request, lambda s: runs_list(session=s))


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


@router.get("/v1/customers/{customer_id:path}", tags=["reads"], responses=FOUND)
async def show_customer(customer_id: str, request: Request) -> dict[str, Any]:
    """A customer's timeline: `omnicascade customers show ID --json`."""
    return await _read(request, lambda s: customer_show(customer_id, session=s), customer_id)


@router.get("/v1/promo-codes/{code}", tags=["reads"], responses=FOUND)
async def show_promo_code(code: str, request: Request) -> dict[str, Any]:
    """`{code, valid, discount, campaign, customer_id, redeemed}` for the checkout (any
    case). Valid: issued, not yet redeemed by a conversion, and its run not stopped."""
    return await _read(request, lambda s: promo_code(code, session=s), code)
