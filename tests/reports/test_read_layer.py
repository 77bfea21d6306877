"""One read layer (reports/): the console, the CLI and the read API call the same functions.
`runs list` counts with the funnel's own `tally` — in a constant number of statements
however many runs a page holds — and agrees with `runs show`; the console's customer page
and the CLI's `customers show` are one function's answer; the CLI pages like the API."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from omnicascade.api.console import customers as console_customers
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, Run
from omnicascade.db.session import read_scope, session_scope
from omnicascade.reports import timeline
from omnicascade.reports.customers import customer_show
from omnicascade.reports.run_views import run_show, runs_list, runs_page
from omnicascade.reports.unmatched import unmatched_conversions
from tests.helpers.cli import home_env, run_cli
from tests.helpers.views import Seeded, seed

pytestmark = pytest.mark.db
COUNTS = ("enrolled", "excluded", "active", "converted", "stopped", "exited", "status")


@pytest.fixture
def seeded(settings: Settings, tmp_path: Path) -> Seeded:
    return seed(settings, tmp_path / "campaign")


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Any:
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    return lambda *args, ok=True: run_cli(*args, env=env, ok=ok)


def statements(settings: Settings, work: Any) -> tuple[Any, int]:
    count = [0]

    def seen(*_: Any) -> None:
        count[0] += 1
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        with read_scope(settings.db_url) as s:
            return work(s), count[0]
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


def test_runs_list_counts_as_runs_show_does(settings, seeded):
    with read_scope(settings.db_url) as s:
        [row] = runs_list(session=s)
        show = run_show(seeded.run_id, session=s)
    assert {k: row[k] for k in COUNTS} == {k: show[k] for k in COUNTS}
    assert (row["enrolled"], row["converted"], row["active"]) == (4, 2, 2)


def test_a_page_of_runs_takes_a_few_statements_however_many_runs(settings, seeded):
    with session_scope(settings.db_url) as s:
        run = s.get(Run, seeded.run_id)
        assert run is not None
        for i in range(40):
            s.add(Run(id=f"run_more_{i:02d}", campaign=f"more-{i}", snapshot=run.snapshot,
                      status="stopped", version=1,
                      created_at=seeded.now - timedelta(hours=i % 7)))
        s.add(ConversionEvent(event_id="ghost-2", type="order_placed", customer_id="nobody",
                              occurred_at=seeded.now - timedelta(hours=3, minutes=30),
                              recorded_at=seeded.now, matched=False))
    small, few = statements(settings, lambda s: runs_page(session=s, limit=3))
    page, many = statements(settings, lambda s: runs_page(session=s, limit=41))
    assert len(small.rows) == 3 and len(page.rows) == 41 and page.next_cursor is None
    assert many == few <= 6, (few, many)
    with read_scope(settings.db_url) as s:  # the batched count is each run's own count
        for row in page.rows:
            run = s.get(Run, row["run_id"])
            assert row["unmatched"] == unmatched_conversions(run, session=s), row["run_id"]
    assert {r["unmatched"] for r in page.rows} == {0, 1, 2}  # by launch time


def test_the_console_and_the_cli_show_one_customer_page(settings, seeded, cli):
    assert console_customers.customer_page is timeline.customer_page
    with read_scope(settings.db_url) as s:
        page = timeline.customer_page("dee", session=s)
        shown = customer_show("dee", session=s)
    # dee's cascade has ended: nothing in her page depends on the moment it is read
    as_json = json.loads(cli("customers", "show", "dee", "--json").stdout)
    assert as_json == shown == {k: page[k] for k in shown}
    text = cli("customers", "show", "dee").stdout
    rows = [(t["what"], t["kind"]) for t in page["timeline"]]
    assert ("email after 1", "message") in rows and ("converted: order_placed",
                                                     "conversion") in rows
    for what, _ in rows:
        assert what in text, (what, text)


def test_the_cli_pages_like_the_api(settings, seeded, cli):
    with session_scope(settings.db_url) as s:
        run = s.get(Run, seeded.run_id)
        assert run is not None
        s.add(Run(id="run_older", campaign="older", snapshot=run.snapshot, status="stopped",
                  version=1, created_at=seeded.now - timedelta(days=9)))
    first = cli("runs", "list", "--json", "--limit", "1")
    [row] = json.loads(first.stdout)
    assert row["run_id"] == seeded.run_id
    cursor = re.search(r"--cursor (\S+)", first.stderr)
    assert cursor, first.stderr
    last = cli("runs", "list", "--json", "--limit", "1", "--cursor", cursor.group(1))
    assert [r["run_id"] for r in json.loads(last.stdout)] == ["run_older"]
    assert "--cursor" not in last.stderr
    wrong = cli("runs", "list", "--limit", "501", ok=False)
    assert "limit must be between 1 and 500" in wrong.stderr
    wrong = cli("outbox", "--cursor", cursor.group(1), ok=False)
    assert "not a cursor of this list" in wrong.stderr
    box = cli("outbox", "--json", "--limit", "1")
    assert len(json.loads(box.stdout)) == 1 and "--cursor" in box.stderr
