"""The outbox: what the outbox provider "sent" (rendered and stored, not delivered), for
`omnicascade outbox`, the console's outbox page and `GET /v1/outbox` — one read, a page at
a time, in the `--json` shape of docs/architecture.md §4 (plus `label` and the cascade's
`key`, keys.py; the console's also `id`, `html` and `key_label`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.db.models import Delivery, Enrollment, OutboxMessage
from omnicascade.errors import NotFound
from omnicascade.reports.format import iso
from omnicascade.reports.keys import delivery_keys, labels
from omnicascade.reports.paging import Page, check_limit, cut, keyset
from omnicascade.vocabulary import LIVE_ENROLLMENT, DeliveryStatus, step_label


def outbox_page(*, session: Session, customer_id: str | None = None,
                run_id: str | None = None, limit: int | None = None,
                cursor: str | None = None, newest_first: bool = False,
                framed: bool = False) -> Page:
    """Messages in the order they were sent (the console shows the newest first), of one
    customer and/or run if given. `framed` adds each message's `id` and whether it has an
    HTML part (`html`) and its key's `key_label`: what the console shows."""
    limit = check_limit(limit)
    q = keyset(select(OutboxMessage), "outbox", cursor, OutboxMessage.sent_at,
               OutboxMessage.id, newest_first=newest_first)
    if customer_id:
        q = q.where(OutboxMessage.customer_id == customer_id)
    if run_id:
        q = q.where(OutboxMessage.run_id == run_id)
    found, after = cut(list(session.scalars(q.limit(limit + 1))), limit, "outbox",
                       lambda m: (m.sent_at, m.id))
    keys = delivery_keys((m.delivery_id for m in found), session=session)
    rows = [{"customer_id": m.customer_id, "run_id": m.run_id, "step": m.step,
             "label": step_label(m.step), "key": keys.get(m.delivery_id or ""),
             "channel": m.channel, "to": m.to_address,
             "subject": m.subject or m.title, "body": m.body, "sent_at": iso(m.sent_at),
             **pruned(m.sent_at, m.pruned_at),
             **({"id": m.id, "html": bool(m.html)} if framed else {})} for m in found]
    if framed:  # the console names each key's field (`cart_id A2`): keys.py
        for row, label in zip(rows, labels(rows, session=session), strict=True):
            row["key_label"] = label
    return Page(rows, after)


def pruned_label(sent_at: datetime, pruned_at: datetime) -> str:
    """What views show for a message a retention prune emptied (cascade/retention.py)."""
    return f"body removed after {max(0, (pruned_at - sent_at).days)} d (retention)"


def pruned(sent_at: datetime, pruned_at: datetime | None) -> dict[str, object]:
    """`body_pruned` of an outbox message, and the note views show instead of its body."""
    return {"body_pruned": pruned_at is not None,
            **({"body_note": pruned_label(sent_at, pruned_at)} if pruned_at else {})}


def outbox_message(message_id: int, *, session: Session) -> dict[str, str | None]:
    """One message's `{html, body}`: what the console frames (NotFound if none)."""
    m = session.get(OutboxMessage, message_id)
    if m is None:
        raise NotFound(f"no outbox message {message_id}")
    return {"html": m.html, "body": m.body}


def deferred_note(*, session: Session, customer_id: str | None = None,
                  run_id: str | None = None) -> str | None:
    """"N messages deferred until …" (the earliest, UTC): what an empty outbox says when
    messages of live cascades are waiting (quiet hours, the cap, …); None if none are."""
    q = select(func.count(), func.min(Delivery.deferred_until)).join(
        Enrollment, Enrollment.id == Delivery.enrollment_id).where(
        Delivery.status == DeliveryStatus.DEFERRED, Enrollment.status.in_(LIVE_ENROLLMENT))
    if customer_id:
        q = q.where(Delivery.customer_id == customer_id)
    if run_id:
        q = q.where(Delivery.run_id == run_id)
    n, first = session.execute(q).one()
    if not n:
        return None
    when = f" until {first:%Y-%m-%d %H:%M} UTC" if first else ""
    return f"{n} message{'s' if n != 1 else ''} deferred{when}"
