"""Two writers upserting the same new customer at once (an import and the API, or two API
processes, on PostgreSQL): the one that loses the insert updates the row instead of
failing with a unique violation (a 500 from the API, a traceback from the CLI)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text

from omnicascade.config import Settings
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.db.models import Customer
from omnicascade.db.session import get_engine, session_scope

pytestmark = pytest.mark.db

WAITING = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
           "AND wait_event_type = 'Lock'")


def _until_blocked(url: str) -> None:
    """Event-based: until the second writer waits on the first one's uncommitted insert
    (PostgreSQL; on SQLite it waits to begin at all, and there is no race to set up)."""
    if not url.startswith("postgresql"):
        return
    with get_engine(url).connect() as conn:
        for _ in range(600):
            if conn.execute(text(WAITING)).scalar():
                return
            time.sleep(0.05)
    raise AssertionError("the second writer never reached the insert")


@pytest.mark.timeout(60)
def test_the_writer_that_loses_the_insert_updates_instead(settings: Settings) -> None:
    url, result = settings.db_url, {}

    def second() -> None:
        try:
            with session_scope(url) as s:
                result["counts"] = upsert_customers(
                    [CustomerIn(id="c1", locale="de", attributes={"b": 2})], session=s)
        except Exception as exc:  # noqa: BLE001 — the assertion below shows it
            result["error"] = exc

    with session_scope(url) as first:
        upsert_customers([CustomerIn(id="c1", email="a@example.com", attributes={"a": 1})],
                         session=first)
        thread = threading.Thread(target=second)
        thread.start()  # it looks c1 up (not committed yet: absent) and inserts it too
        _until_blocked(url)
    thread.join(30)
    assert "error" not in result, result["error"]
    assert result["counts"] == (0, 1)  # not created: it updated the first writer's row
    with session_scope(url) as s:
        row: Any = s.get(Customer, "c1")
        assert (row.email, row.locale, row.attributes) == ("a@example.com", "de",
                                                           {"a": 1, "b": 2})
