"""Run control over HTTP, signed like every write: `POST /v1/runs/{run_id}/stop`
(`{"drain": bool}`), `/pause`, `/resume` → 200 `{"run_id", "status"}`; 404 unknown run;
409 a transition the run does not allow. The change is committed in the transaction that
uses the signature up, then the run's cascades are told (cascade/control.py); an unreachable
Temporal changes nothing in the answer — the send-time guard reads the run's status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictBool
from sqlalchemy.orm import Session

from omnicascade.api.http import ApiError, settings_of, signed_json, signed_transaction
from omnicascade.cascade.control import Action, Change, RunControlRefused, change_run, tell
from omnicascade.errors import NotFound

router = APIRouter()

ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "the run's status after the command: `{\"run_id\", \"status\"}`"},
    401: {"description": "missing, wrong or replayed signature"},
    404: {"description": "unknown run"},
    409: {"description": "the run's status does not allow this (e.g. resuming a stopped run)"},
}


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # true: enroll nobody new, let the cascades in flight finish. A JSON boolean only:
    # "yes", "false" or 1 are 422, not read as a stop of another kind than meant.
    drain: StrictBool = False


class NoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """The optional JSON body (an empty body reads as `{}`)."""
    return {"requestBody": {"required": False, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


async def _control(request: Request, run_id: str, action: Action,
                   model: type[BaseModel]) -> dict[str, Any]:
    body = await signed_json(request, model, empty=b"{}")
    if isinstance(body.data, StopIn) and body.data.drain:
        action = Action.DRAIN

    def work(session: Session) -> Change:
        return change_run(run_id, action, session=session)
    try:  # committed before any signal (promise 1)
        change = await signed_transaction(request, body, work)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from None
    except RunControlRefused as exc:
        raise ApiError(409, str(exc)) from None
    await tell(request.app.state.temporal, change, settings_of(request).signal_timeout_s)
    return change.body()


@router.post("/v1/runs/{run_id}/stop", tags=["runs"], responses=ANSWERS,
             openapi_extra=_schema(StopIn))
async def stop_run(run_id: str, request: Request) -> dict[str, Any]:
    """Stop now (every active cascade ends `stopped`, follow-ups too), or with
    `{"drain": true}` enroll nobody new and let the cascades in flight finish."""
    return await _control(request, run_id, Action.STOP, StopIn)


@router.post("/v1/runs/{run_id}/pause", tags=["runs"], responses=ANSWERS,
             openapi_extra=_schema(NoBody))
async def pause_run(run_id: str, request: Request) -> dict[str, Any]:
    """Hold every send (waits keep running; conversions still stop cascades; trigger events
    are still stored and enrolled)."""
    return await _control(request, run_id, Action.PAUSE, NoBody)


@router.post("/v1/runs/{run_id}/resume", tags=["runs"], responses=ANSWERS,
             openapi_extra=_schema(NoBody))
async def resume_run(run_id: str, request: Request) -> dict[str, Any]:
    """Held sends go out now, each re-checked (conversion, consent, quiet hours, caps) and
    paced by the channels' rate limits."""
    return await _control(request, run_id, Action.RESUME, NoBody)
