"""One-click unsubscribe: the signed link in every message (no PII in it). GET shows a page
with a button and never unsubscribes (mail scanners follow links); POST unsubscribes, as
RFC 8058's List-Unsubscribe-Post one-click does."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from omnicascade.api.http import settings_of
from omnicascade.customers.consent import unsubscribe
from omnicascade.customers.links import read_unsubscribe_token
from omnicascade.db.session import session_scope

router = APIRouter()

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:32rem;margin:4rem auto;text-align:center">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


@router.get("/u/{token}", response_class=HTMLResponse, tags=["consent"])
async def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    if read_unsubscribe_token(settings_of(request), token) is None:
        return HTMLResponse(_PAGE.format(title="Link not valid", text="This unsubscribe link "
                                         "is not valid.", form=""), status_code=404)
    form = (f'<form method="post" action="/u/{html.escape(token)}">'
            '<button type="submit">Unsubscribe</button></form>')
    return HTMLResponse(_PAGE.format(title="Unsubscribe", text="Stop receiving these "
                                     "messages?", form=form))


@router.post("/u/{token}", response_class=HTMLResponse, tags=["consent"])
async def unsubscribe_now(request: Request, token: str) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058 List-Unsubscribe-Post) and the page's button."""
    found = read_unsubscribe_token(settings_of(request), token)
    if found is None:
        return HTMLResponse(_PAGE.format(title="Link not valid", text="This unsubscribe link "
                                         "is not valid.", form=""), status_code=404)

    def tx() -> None:
        with session_scope(settings_of(request).db_url) as session:
            unsubscribe(*found, session=session)
    await run_in_threadpool(tx)
    return HTMLResponse(_PAGE.format(title="Unsubscribed", text="You will not receive these "
                                     "messages any more.", form=""))
