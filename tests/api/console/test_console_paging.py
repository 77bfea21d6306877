"""The console pages its lists through the read layer's cursor (reports/paging.py): the
outbox, newest first, links to the older messages until there are none; a customer's page
links to their later messages; a cursor it did not make is a 400 page, not an error."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from omnicascade.api.app import create_app
from omnicascade.config import Settings
from omnicascade.db.models import OutboxMessage
from omnicascade.db.session import session_scope
from omnicascade.reports.paging import DEFAULT_LIMIT
from tests.helpers.cascades import add_customers
from tests.helpers.console import PASSWORD, signed_in_csrf
from tests.helpers.reports import launch, member, send

pytestmark = pytest.mark.db
T = datetime(2026, 3, 2, 9, 0)


@pytest.fixture
async def http(settings: Settings):  # noqa: ANN201
    app = create_app(settings.model_copy(update={"console_password": PASSWORD}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://console.test") as client:
        yield client


async def test_the_outbox_links_to_older_messages(http: httpx.AsyncClient,
                                                  settings: Settings) -> None:
    total = DEFAULT_LIMIT + 7
    with session_scope(settings.db_url) as s:
        for i in range(total):  # pairs share an instant: the id breaks the tie
            s.add(OutboxMessage(delivery_id=f"d:{i}", customer_id="c-1", run_id="r",
                                step="0", channel="sms", to_address="+100",
                                body=f"message {i}", sent_at=T + timedelta(minutes=i // 2)))
    await signed_in_csrf(http)
    seen: list[str] = []
    page = await http.get("/outbox")
    while True:
        assert page.status_code == 200, page.text
        seen += re.findall(r'id="message-(\d+)"', page.text)
        older = re.search(r'id="outbox-older" href="([^"]+)"', page.text)
        if older is None:
            break
        page = await http.get(older.group(1).replace("&amp;", "&"))
    assert len(seen) == total and len(set(seen)) == total
    assert [int(i) for i in seen] == sorted((int(i) for i in seen), reverse=True)
    bad = await http.get("/outbox", params={"cursor": "nonsense"})
    assert bad.status_code == 400 and "not a cursor of this list" in bad.text


async def test_a_customer_page_links_to_later_messages(http: httpx.AsyncClient,
                                                       settings: Settings,
                                                       tmp_path: Path) -> None:
    run_id = launch(settings, tmp_path / "campaign")
    add_customers(settings, {"id": "c-1", "email": "c1@example.com"})
    total = DEFAULT_LIMIT + 5
    with session_scope(settings.db_url) as s:
        e = member(s, run_id, "c-1", "control", status="active", at=T)
        for i in range(total):
            send(s, e, i, "email", T + timedelta(minutes=i // 3))
    csrf = await signed_in_csrf(http)
    found = await http.post("/customers", data={"csrf": csrf, "q": "c-1"})
    assert found.status_code == 303
    shown, page = 0, await http.get(found.headers["location"])
    while True:
        assert page.status_code == 200, page.text
        shown += page.text.count('class="ev message"')
        later = re.search(r'id="timeline-later" href="([^"]+)"', page.text)
        if later is None:
            break
        page = await http.get(later.group(1).replace("&amp;", "&"))
    assert shown == total
    bad = await http.get(found.headers["location"], params={"cursor": "nonsense"})
    assert bad.status_code == 400
