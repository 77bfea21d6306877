"""The web console for marketers, served by the API process at `/` (the API stays under
/v1): campaigns and their versions, a run's live funnel and report with run control, a
customer's timeline with unsubscribe, and the outbox. Server-rendered (jinja2), enhanced by
a vendored htmx (static/README.md); every page reads with JavaScript off. Access: see
security.py."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from omnicascade.api.console import access, campaigns, customers, outbox, run_pages
from omnicascade.api.console.web import HERE, Console
from omnicascade.config import Settings


def mount(app: FastAPI, settings: Settings) -> None:
    app.state.console = Console.create(settings)
    for module in (access, campaigns, run_pages, customers, outbox):
        app.include_router(module.router)
    app.mount("/static/console", StaticFiles(directory=HERE / "static"), name="console-static")
