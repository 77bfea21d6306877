"""A run's page: the live funnel per step and variant (refreshed by htmx while the run is
live; a reload without JavaScript), conversions as they arrive, skip and exit reasons, the
report's verdicts, charts and money (reports/html.py `sections`, the HTML report's own code),
and pause / resume / stop / drain, each confirmed on a page that says how many customers it
affects, then done through cascade/control.py exactly as `omnicascade runs …` does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from omnicascade.api.console.filters import LIVE_RUN
from omnicascade.api.console.web import (
    ConsoleRoute,
    Login,
    Refused,
    console_of,
    form,
    read,
    render,
    signed_in,
)
from omnicascade.api.http import settings_of
from omnicascade.cascade.control import Action, RunControlRefused, control_run
from omnicascade.errors import NotFound
from omnicascade.reports.run_views import recent_conversions, run_show

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
# What a marketer may ask of a run in each status (README, *Run control*).
ACTIONS = {"listening": ("pause", "drain", "stop"), "running": ("pause", "drain", "stop"),
           "paused": ("resume", "drain", "stop"), "draining": ("stop",),
           "superseded": ("stop",)}


def live_view(run_id: str, *, session: Session) -> dict[str, Any]:
    show = run_show(run_id, session=session)
    steps = show["steps"] + show["after_conversion"]
    return {"run": show, "rows": steps, "live": show["status"] in LIVE_RUN,
            "variants": len({s["variant"] for s in show["steps"]}) > 1,
            "held": sum(s["held"] for s in steps), "conversions": recent_conversions(
                run_id, session=session), "actions": ACTIONS.get(show["status"], ())}


def _with_ids(request: Request, view: dict[str, Any]) -> dict[str, Any]:
    hide = console_of(request).ids.hide
    for c in view["conversions"]:
        c["token"] = hide(c["customer_id"])
    return view


@router.get("/runs/{run_id}")
async def run_page(run_id: str, request: Request, login: Login = Depends(signed_in)) -> Response:
    view = await read(request, lambda s: live_view(run_id, session=s))
    return render(request, "run.html", login=login, nav="campaigns",
                  done=request.query_params.get("done"), **_with_ids(request, view),
                  **await _report(request, run_id))


@router.get("/runs/{run_id}/live")
async def run_live(run_id: str, request: Request, login: Login = Depends(signed_in)) -> Response:
    """The live part alone, for htmx to swap in every few seconds."""
    view = await read(request, lambda s: live_view(run_id, session=s))
    return render(request, "run_live.html", login=login, **_with_ids(request, view))


@router.get("/runs/{run_id}/report")
async def run_report(run_id: str, request: Request,
                     login: Login = Depends(signed_in)) -> Response:
    """The report's verdicts, charts and money (heavier: refreshed less often)."""
    return render(request, "run_report.html", login=login, **await _report(request, run_id))


async def _report(request: Request, run_id: str) -> dict[str, Any]:
    from omnicascade.reports.build import build_report  # scipy: only when asked
    from omnicascade.reports.html import sections
    settings = settings_of(request)
    report = await read(request, lambda s: build_report(run_id, session=s, settings=settings))
    return {"report": report, "parts": sections(report),
            "report_live": report["status"] in LIVE_RUN}


def _question(action: str, view: dict[str, Any]) -> tuple[str, str]:
    live, held, run_id = view["run"]["active"], view["held"], view["run"]["run_id"]
    who = f"{live:,} customer{'s' if live != 1 else ''} in flight"
    return {
        "stop": (f"Stop run {run_id} now?", f"The {who} end stopped at once (follow-ups "
                 f"still due are cancelled). Nobody new is enrolled and no message starts "
                 f"after this. Its promo codes stop being valid: the checkout refuses them, even "
                 f"ones already sent. A stopped run cannot be resumed."),
        "drain": (f"Drain run {run_id}?", f"Nobody new is enrolled. The {who} finish their "
                  f"cascades normally; then the run is stopped."),
        "pause": (f"Pause run {run_id}?", f"No message goes out to the {who}: each due send "
                  f"is held until you resume. Waits keep running, conversions still stop "
                  f"cascades, and trigger events are still enrolled (their sends held)."),
        "resume": (f"Resume run {run_id}?", f"{held:,} held send{'s' if held != 1 else ''} "
                   f"go out now, each checked again (conversion, consent, quiet hours, "
                   f"frequency caps); the {who} carry on."),
    }[action]


def _action(action: str) -> Action:
    if action not in ("stop", "drain", "pause", "resume"):
        raise Refused(404, "Not found", f"no such action {action!r}")
    return Action(action)


@router.get("/runs/{run_id}/confirm/{action}")
async def confirm(run_id: str, action: str, request: Request,
                  login: Login = Depends(signed_in)) -> Response:
    _action(action)
    view = await read(request, lambda s: live_view(run_id, session=s))
    title, text = _question(action, view)
    return render(request, "confirm.html", login=login, nav="campaigns", run=view["run"],
                  action=action, title=title, text=text,
                  allowed=action in view["actions"])


@router.post("/runs/{run_id}/{action}")
async def control(run_id: str, action: str, request: Request,
                  login: Login = Depends(signed_in)) -> Response:
    what = _action(action)
    await form(request, login.csrf)
    try:
        change = await control_run(run_id, what, settings_of(request),
                                   request.app.state.temporal)
    except NotFound as exc:
        raise Refused(404, "Not found", str(exc)) from None
    except RunControlRefused as exc:
        raise Refused(409, "Not possible", str(exc)) from None
    note = "" if change.temporal else "-temporal-unreachable"
    return RedirectResponse(f"/runs/{run_id}?done={change.status}{note}", status_code=303)
