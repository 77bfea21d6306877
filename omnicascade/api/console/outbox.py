"""The outbox: what the outbox provider "sent", newest first, filtered by run and customer,
each message as the customer would see it — an email's HTML in a sandboxed frame served
with its own Content-Security-Policy (no script, no network: security.FRAME_POLICY)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.api.console.security import FRAME_HEADERS
from omnicascade.api.console.web import (
    ConsoleRoute,
    Login,
    Refused,
    console_of,
    read,
    render,
    signed_in,
)
from omnicascade.db.models import OutboxMessage, Run
from omnicascade.errors import NotFound
from omnicascade.reports.format import iso
from omnicascade.vocabulary import step_label

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE = 100


def messages(*, session: Session, run_id: str | None, customer_id: str | None,
             limit: int = PAGE) -> dict[str, Any]:
    q = select(OutboxMessage).order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())
    if run_id:
        q = q.where(OutboxMessage.run_id == run_id)
    if customer_id:
        q = q.where(OutboxMessage.customer_id == customer_id)
    rows = [{"id": m.id, "customer_id": m.customer_id, "run_id": m.run_id,
             "label": step_label(m.step), "channel": m.channel, "to": m.to_address,
             "subject": m.subject or m.title, "body": m.body, "html": bool(m.html),
             "sent_at": iso(m.sent_at)} for m in session.scalars(q.limit(limit))]
    runs = [{"run_id": r, "campaign": c, "version": v} for r, c, v in session.execute(
        select(Run.id, Run.campaign, Run.version).order_by(Run.created_at.desc())).all()]
    return {"messages": rows, "runs": runs}


@router.get("/outbox")
async def outbox(request: Request, login: Login = Depends(signed_in)) -> Response:
    ids = console_of(request).ids
    run_id = request.query_params.get("run") or None
    token = request.query_params.get("customer") or None
    customer_id = ids.reveal(token) if token else None
    if token and customer_id is None:
        raise Refused(404, "Not found", "no such customer")
    data = await read(request, lambda s: messages(session=s, run_id=run_id,
                                                  customer_id=customer_id))
    for m in data["messages"]:
        m["token"] = ids.hide(m["customer_id"])
    return render(request, "outbox.html", login=login, nav="outbox", run_id=run_id,
                  customer_id=customer_id, token=token, limit=PAGE, **data)


def _message(message_id: int, *, session: Session) -> OutboxMessage:
    m = session.get(OutboxMessage, message_id)
    if m is None:
        raise NotFound(f"no outbox message {message_id}")
    session.expunge(m)
    return m


@router.get("/outbox/{message_id}/email")
async def email_frame(message_id: int, request: Request,
                      login: Login = Depends(signed_in)) -> Response:
    """The email's own HTML (or its text), for <iframe sandbox> only."""
    m = await read(request, lambda s: _message(message_id, session=s))
    html = m.html or bytes(render(request, "email_text.html", body=m.body).body).decode()
    return HTMLResponse(html, headers=FRAME_HEADERS)
