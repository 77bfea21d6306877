"""`campaign list`: one row per campaign — its live (or latest) version and the totals of
every version's runs. Built on `runs_list`, so the two never disagree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.db.models import Run
from omnicascade.errors import NotFound
from omnicascade.reports.run_views import runs_list
from omnicascade.vocabulary import ENROLLING_RUN

LIST_KEYS = ("campaign", "version", "run_id", "status", "active", "enrolled", "converted")


def campaigns_list(*, session: Session) -> list[dict[str, Any]]:
    versions = dict(session.execute(select(Run.id, Run.version)).tuples().all())
    by_campaign: dict[str, list[dict[str, Any]]] = {}
    for row in runs_list(session=session):  # newest first
        by_campaign.setdefault(row["campaign"], []).append(row)
    out = []
    for campaign, rows in sorted(by_campaign.items()):
        current = next((r for r in rows if r["status"] in ENROLLING_RUN), rows[0])
        out.append({"campaign": campaign, "version": versions.get(current["run_id"], 1),
                    "run_id": current["run_id"], "status": current["status"],
                    "active": sum(r["active"] for r in rows),
                    "enrolled": sum(r["enrolled"] for r in rows),
                    "converted": sum(r["converted"] for r in rows)})
    return out


def campaign_summaries(*, session: Session) -> list[dict[str, Any]]:
    """`campaign list` with each campaign's description and conversion rate (the console's
    home)."""
    about = dict(session.execute(select(Run.id, Run.description)).tuples().all())
    return [{**c, "description": about.get(c["run_id"]) or "",
             "conversion_rate": c["converted"] / c["enrolled"] if c["enrolled"] else None}
            for c in campaigns_list(session=session)]


def campaign_runs(slug: str, *, session: Session) -> list[dict[str, Any]]:
    """A campaign's runs, oldest version first: each one's `runs list` row (`row`), its
    `version`, `description` and `snapshot` (what a version changed is computed from these)."""
    runs = list(session.scalars(select(Run).where(Run.campaign == slug)
                                .order_by(Run.version, Run.created_at, Run.id)))
    if not runs:
        raise NotFound(f"no campaign {slug!r}")
    rows = {r["run_id"]: r for r in runs_list(session=session, campaign=slug)}
    return [{"run_id": r.id, "version": r.version, "description": r.description,
             "snapshot": r.snapshot, "row": rows[r.id]} for r in runs]
