"""The campaigns page (the console's home) and one campaign's versions, each with what
changed from the version before — the `campaign plan` diff (cascade/changes.py)."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from omnicascade.api.console.web import ConsoleRoute, Login, read, render, signed_in
from omnicascade.cascade.changes import version_changes
from omnicascade.reports.campaigns import campaign_runs, campaign_summaries

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def versions(slug: str, *, session: Session) -> dict[str, Any]:
    """A campaign's versions, newest first, each with its runs (`runs list` rows) and what
    changed from the version before (None for the first)."""
    runs = campaign_runs(slug, session=session)
    out: list[dict[str, Any]] = []
    before: dict[str, Any] | None = None
    for version, group in groupby(runs, key=lambda r: r["version"]):
        members = list(group)
        snapshot = members[-1]["snapshot"]
        changes: dict[str, Any] | None = (version_changes(before, snapshot)
                                          if before is not None else None)
        if changes is not None:
            changes["changed"] = bool(
                changes["settings"] or changes["templates"]
                or any(r["changed"] for r in changes["steps"] + changes["after_conversion"]))
        out.append({"version": version, "description": members[-1]["description"],
                    "runs": [r["row"] for r in reversed(members)], "changes": changes})
        before = snapshot
    summary = next((c for c in campaign_summaries(session=session) if c["campaign"] == slug),
                   None)
    return {"campaign": slug, "summary": summary, "versions": out[::-1]}


@router.get("/")
async def home(request: Request, login: Login = Depends(signed_in)) -> Response:
    rows = await read(request, lambda s: campaign_summaries(session=s))
    return render(request, "campaigns.html", login=login, campaigns=rows, nav="campaigns")


@router.get("/campaigns/{slug}")
async def campaign(slug: str, request: Request, login: Login = Depends(signed_in)) -> Response:
    data = await read(request, lambda s: versions(slug, session=s))
    return render(request, "campaign.html", login=login, nav="campaigns", **data)
