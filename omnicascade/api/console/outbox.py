"""The outbox: what the outbox provider "sent", newest first, filtered by run and customer,
each message as the customer would see it — an email's HTML in a sandboxed frame served
with its own Content-Security-Policy (no script, no network: security.FRAME_POLICY)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
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
from omnicascade.reports.outbox import outbox_message, outbox_page
from omnicascade.reports.paging import DEFAULT_LIMIT, PageError
from omnicascade.reports.run_views import run_names

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def messages(*, session: Session, run_id: str | None, customer_id: str | None,
             limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    """The newest messages first, and the runs to filter by."""
    page = outbox_page(session=session, run_id=run_id, customer_id=customer_id, limit=limit,
                       cursor=cursor, newest_first=True, framed=True)
    return {"messages": page.rows, "next_cursor": page.next_cursor,
            "runs": run_names(session=session)}


@router.get("/outbox")
async def outbox(request: Request, login: Login = Depends(signed_in)) -> Response:
    ids = console_of(request).ids
    run_id = request.query_params.get("run") or None
    token = request.query_params.get("customer") or None
    customer_id = ids.reveal(token) if token else None
    if token and customer_id is None:
        raise Refused(404, "Not found", "no such customer")
    cursor = request.query_params.get("cursor") or None
    try:
        data = await read(request, lambda s: messages(session=s, run_id=run_id,
                                                      customer_id=customer_id, cursor=cursor))
    except PageError as exc:
        raise Refused(400, "Bad page", str(exc)) from None
    for m in data["messages"]:
        m["token"] = ids.hide(m["customer_id"])
    return render(request, "outbox.html", login=login, nav="outbox", run_id=run_id,
                  customer_id=customer_id, token=token, limit=DEFAULT_LIMIT, **data)


@router.get("/outbox/{message_id}/email")
async def email_frame(message_id: int, request: Request,
                      login: Login = Depends(signed_in)) -> Response:
    """The email's own HTML (or its text), for <iframe sandbox> only."""
    m = await read(request, lambda s: outbox_message(message_id, session=s))
    html = m["html"] or bytes(render(request, "email_text.html", body=m["body"]).body).decode()
    return HTMLResponse(html, headers=FRAME_HEADERS)
