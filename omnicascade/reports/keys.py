"""A cascade's key — the value of the field its campaign's `trigger.key` names (`cart_id
A2`) — on every view of a cascade and its messages: without it, a message for cart A2 sent
after cart A1 converted reads like a message after a conversion (issue 27). JSON carries
the value as `key` (None for a campaign without `trigger.key`); the views people read
show `key_label`, the field named."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.db.models import Delivery, Enrollment, Run


def key_label(field: str | None, value: str | None) -> str | None:
    """`cart_id A2` (the field named, as the campaign file names it); None without a key."""
    if not value:
        return None
    return f"{field} {value}" if field else value


def key_field(run: Run | None) -> str | None:
    """The data field a run's trigger keys its cascades by (`trigger.key`), if any."""
    spec = ((run.snapshot or {}).get("spec") or {}) if run else {}
    trigger: dict[str, Any] = spec.get("trigger") or {}
    return trigger.get("key")


def key_fields(run_ids: Iterable[str], *, session: Session) -> dict[str, str | None]:
    """`{run_id: trigger.key}` of these runs."""
    ids = set(run_ids)
    return {r.id: key_field(r) for r in session.scalars(
        select(Run).where(Run.id.in_(ids)))} if ids else {}


def delivery_keys(delivery_ids: Iterable[str], *, session: Session) -> dict[str, str | None]:
    """`{delivery_id: key}` of these deliveries' cascades (None: a campaign without one)."""
    ids = [i for i in delivery_ids if i]
    if not ids:
        return {}
    return {d: key or None for d, key in session.execute(
        select(Delivery.id, Enrollment.entry_key)
        .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
        .where(Delivery.id.in_(ids))).all()}


def labels(rows: Iterable[dict[str, Any]], *, session: Session) -> list[str | None]:
    """The `key_label` of each row with `run_id` and `key` (views for people), in order."""
    rows = list(rows)
    fields = key_fields((r["run_id"] for r in rows if r.get("key")), session=session)
    return [key_label(fields.get(r["run_id"]), r.get("key")) for r in rows]
