"""`campaign list`: one row per campaign — its live (or latest) version and the totals of
every version's runs. Built on `runs_list`, so the two never disagree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.db.models import Run
from omnicascade.reports.runs import runs_list
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
