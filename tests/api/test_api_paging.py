"""Every list read pages (reports/paging.py): `GET /v1/runs`, the messages of
`GET /v1/customers/{id}` and `GET /v1/outbox` take `?limit=` (at most MAX_LIMIT) and the
opaque `?cursor=` of the page before; the next page's cursor comes in `X-Next-Cursor` and
`Link`, absent on the last page (the bodies keep the CLI's `--json` shapes). Paging through returns
every row once, in order, even when rows share an instant; a limit out of range or a
cursor the list did not make is 422 with a message that says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from omnicascade.api.app import create_app
from omnicascade.config import Settings
from omnicascade.db.models import Enrollment, OutboxMessage, Run
from omnicascade.db.session import session_scope
from omnicascade.reports.paging import MAX_LIMIT
from tests.helpers.api import asgi_client
from tests.helpers.reports import send
from tests.helpers.views import Seeded, seed

pytestmark = pytest.mark.db
TOKEN = "read-token-for-tests-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def seeded(settings: Settings, tmp_path: Path) -> Seeded:
    """The views' run, six more runs (four launched at the same instant), seven more
    messages for ada (five at one instant) and five more outbox messages (three at one)."""
    found = seed(settings, tmp_path / "campaign")
    with session_scope(settings.db_url) as s:
        run = s.get(Run, found.run_id)
        assert run is not None
        same = found.now - timedelta(days=1)
        for i, at in enumerate([same] * 4 + [found.now - timedelta(days=3)] * 2):
            s.add(Run(id=f"run_same_{i}", campaign=f"other-{i}", snapshot=run.snapshot,
                      status="stopped", version=1, created_at=at))
        ada = s.get(Enrollment, "enr_ada")
        assert ada is not None
        for i in range(1, 8):
            at = found.now - timedelta(minutes=50 if i <= 5 else 40 - i)
            send(s, ada, i, "email", at)
        for i in range(5):
            s.add(OutboxMessage(delivery_id=f"extra-{i}", customer_id="ada",
                                run_id=found.run_id, step=str(i), channel="email",
                                to_address="ada@example.com", subject=f"n{i}", body="…",
                                sent_at=found.now - timedelta(minutes=20 if i < 3 else i)))
    return found


@pytest.fixture
async def http(settings: Settings, seeded: Seeded) -> Any:
    app = create_app(settings.model_copy(update={"api_token": TOKEN}))
    async with asgi_client(app) as client:
        yield client


async def pages(http: Any, path: str, limit: int, rows: Any = lambda body: body) -> list[Any]:
    """Every page of `path` by `?limit=`, following X-Next-Cursor; the pages' rows."""
    out, cursor, seen = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await http.get(path, params=params, headers=AUTH)
        assert r.status_code == 200, r.text
        page = rows(r.json())
        assert len(page if isinstance(page, list) else page["messages"]) <= limit
        out.append(page)
        cursor = r.headers.get("x-next-cursor")
        if cursor is None:
            assert "link" not in r.headers
            return out
        assert r.headers["link"].endswith('; rel="next"') and cursor in r.headers["link"]
        seen += 1
        assert seen < 50, "paging never ends"


async def test_runs_page_through_every_run_once_in_order(http, seeded):
    r = await http.get("/v1/runs", params={"limit": MAX_LIMIT}, headers=AUTH)
    everything = [row["run_id"] for row in r.json()]
    assert len(everything) == 7 and "x-next-cursor" not in r.headers
    assert everything[0] == "run_same_3" and everything[-1] in ("run_same_4", "run_same_5")
    got = await pages(http, "/v1/runs", 2)
    assert [len(p) for p in got] == [2, 2, 2, 1]
    assert [row["run_id"] for p in got for row in p] == everything  # none twice, none lost
    # a row of a page is the row of the whole list
    assert got[-1][-1] == r.json()[-1]


async def test_a_page_without_a_limit_holds_the_default(http, seeded):
    r = await http.get("/v1/runs", headers=AUTH)
    assert r.status_code == 200 and len(r.json()) == 7 and "x-next-cursor" not in r.headers


async def test_a_customers_messages_page_through(http, seeded):
    r = await http.get("/v1/customers/ada", params={"limit": MAX_LIMIT}, headers=AUTH)
    whole = r.json()
    assert len(whole["messages"]) == 8 and "x-next-cursor" not in r.headers
    assert set(whole) == {"customer", "enrollments", "messages", "conversions"}  # DESIGN §4
    got = await pages(http, "/v1/customers/ada", 3, lambda body: body)
    assert [len(p["messages"]) for p in got] == [3, 3, 2]
    assert [m for p in got for m in p["messages"]] == whole["messages"]
    for p in got:  # the rest of the timeline is on every page
        assert (p["enrollments"], p["conversions"]) == (whole["enrollments"],
                                                        whole["conversions"])


async def test_the_outbox_pages_through(http, seeded):
    whole = (await http.get("/v1/outbox", params={"limit": MAX_LIMIT}, headers=AUTH)).json()
    assert len(whole) == 7 and len({m["subject"] for m in whole}) == 7
    assert [m["sent_at"] for m in whole] == sorted(m["sent_at"] for m in whole)
    got = await pages(http, "/v1/outbox", 2)
    assert [m for p in got for m in p] == whole
    only_dee = await pages(http, "/v1/outbox", 1, lambda body: body)
    assert [m["customer_id"] for p in only_dee for m in p].count("dee") == 1
    dee = (await http.get("/v1/outbox", params={"customer": "dee"}, headers=AUTH)).json()
    assert [m["subject"] for m in dee] == ["How was it?"]


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/outbox", "/v1/customers/ada"])
async def test_a_limit_out_of_range_is_422(http, seeded, path):
    for limit in (MAX_LIMIT + 1, 0, -3):
        r = await http.get(path, params={"limit": limit}, headers=AUTH)
        assert r.status_code == 422, (limit, r.text)
        assert f"limit must be between 1 and {MAX_LIMIT}" in r.json()["detail"]
    assert (await http.get(path, params={"limit": MAX_LIMIT}, headers=AUTH)).status_code == 200


async def test_a_cursor_the_list_did_not_make_is_422(http, seeded):
    r = await http.get("/v1/runs", params={"limit": 1}, headers=AUTH)
    runs_cursor = r.headers["x-next-cursor"]
    r = await http.get("/v1/outbox", params={"limit": 1}, headers=AUTH)
    outbox_cursor = r.headers["x-next-cursor"]
    for path, cursor in (("/v1/runs", "nonsense"), ("/v1/runs", outbox_cursor),
                         ("/v1/outbox", runs_cursor), ("/v1/customers/ada", runs_cursor),
                         ("/v1/runs", "W10"), ("/v1/runs", "%00\u00ff"),
                         ("/v1/runs", runs_cursor[:-3])):
        r = await http.get(path, params={"cursor": cursor}, headers=AUTH)
        assert r.status_code == 422, (path, cursor, r.text)
        assert "not a cursor of this list" in r.json()["detail"]
