"""The campaigns page (the console's home) and one campaign's versions, each with what
changed from the version before — the `campaign plan` diff (cascade/changes.py)."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.api.console.web import ConsoleRoute, Login, read, render, signed_in
from omnicascade.cascade.changes import version_changes
from omnicascade.db.models import Run
from omnicascade.errors import NotFound
from omnicascade.reports.campaigns import campaigns_list
from omnicascade.reports.runs import runs_list

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def campaigns(*, session: Session) -> list[dict[str, Any]]:
    """`campaign list` with each campaign's conversion rate and description."""
    about = dict(session.execute(select(Run.id, Run.description)).tuples().all())
    return [{**c, "description": about.get(c["run_id"]) or "",
             "conversion_rate": c["converted"] / c["enrolled"] if c["enrolled"] else None}
            for c in campaigns_list(session=session)]


def versions(slug: str, *, session: Session) -> dict[str, Any]:
    """A campaign's versions, newest first, each with its runs (`runs list` rows) and what
    changed from the version before (None for the first)."""
    runs = list(session.scalars(select(Run).where(Run.campaign == slug)
                                .order_by(Run.version, Run.created_at)))
    if not runs:
        raise NotFound(f"no campaign {slug!r}")
    rows = {r["run_id"]: r for r in runs_list(session=session) if r["campaign"] == slug}
    out: list[dict[str, Any]] = []
    before: dict[str, Any] | None = None
    for version, group in groupby(runs, key=lambda r: r.version):
        members = list(group)
        snapshot = members[-1].snapshot
        changes: dict[str, Any] | None = (version_changes(before, snapshot)
                                          if before is not None else None)
        if changes is not None:
            changes["changed"] = bool(
                changes["settings"] or changes["templates"]
                or any(r["changed"] for r in changes["steps"] + changes["after_conversion"]))
        out.append({"version": version, "description": members[-1].description,
                    "runs": [rows[r.id] for r in reversed(members)], "changes": changes})
        before = snapshot
    summary = next((c for c in campaigns(session=session) if c["campaign"] == slug), None)
    return {"campaign": slug, "summary": summary, "versions": out[::-1]}


@router.get("/")
async def home(request: Request, login: Login = Depends(signed_in)) -> Response:
    rows = await read(request, lambda s: campaigns(session=s))
    return render(request, "campaigns.html", login=login, campaigns=rows, nav="campaigns")


@router.get("/campaigns/{slug}")
async def campaign(slug: str, request: Request, login: Login = Depends(signed_in)) -> Response:
    data = await read(request, lambda s: versions(slug, session=s))
    return render(request, "campaign.html", login=login, nav="campaigns", **data)
