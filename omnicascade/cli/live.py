"""`omnicascade runs show RUN_ID --watch`: the live funnel, refreshed until the run is done.

On a terminal the table redraws in place; piped, a new snapshot is printed each time the
numbers change, so a log of the run's progress can be kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text
from sqlalchemy.orm import Session

from omnicascade.cli import display
from omnicascade.clock import now_utc
from omnicascade.reports.run_views import run_show

DONE = ("completed", "stopped")


def _done(data: dict[str, Any]) -> bool:
    """Nothing more will change: completed or stopped, or superseded with nobody in flight."""
    return data["status"] in DONE or (data["status"] == "superseded" and not data["active"])


def _view(data: dict[str, Any], interval: float) -> Group:
    now = now_utc(aware=True).strftime("%H:%M:%S")
    state = "final" if _done(data) else f"refreshing every {interval:g}s, Ctrl-C stops"
    return Group(display.funnel_table(data), Text(display.run_summary(data)),
                 Text(f"{now} UTC · {state}", style="dim"))


def _key(data: dict[str, Any]) -> Any:
    return (data["status"], data["enrolled"], data["converted"], data["active"],
            [(s.get("variant"), s["index"], s["channel"], s["sent"], s["skipped"], s["failed"],
              s.get("waiting")) for s in data["steps"] + data["after_conversion"]])


def watch_run(run_id: str, open_session: Callable[[], AbstractContextManager[Session]],
              console: Console, interval: float = 2.0,
              max_refreshes: int | None = None) -> dict[str, Any]:
    """Refresh until the run is completed or stopped (or Ctrl-C); returns the last data."""
    def fetch() -> dict[str, Any]:
        with open_session() as s:
            return run_show(run_id, session=s)

    data = fetch()  # an unknown run id fails here, before any screen handling
    refreshes = 0
    try:
        if console.is_terminal:
            with Live(_view(data, interval), console=console, auto_refresh=False) as live:
                while not _done(data) and refreshes != max_refreshes:
                    time.sleep(interval)
                    data = fetch()
                    refreshes += 1
                    live.update(_view(data, interval), refresh=True)
            return data
        console.print(_view(data, interval))
        last = _key(data)
        while not _done(data) and refreshes != max_refreshes:
            time.sleep(interval)
            data = fetch()
            refreshes += 1
            if _key(data) != last or _done(data):
                console.print(_view(data, interval))
                last = _key(data)
    except KeyboardInterrupt:
        pass
    return data
