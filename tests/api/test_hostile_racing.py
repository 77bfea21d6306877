"""The hostile suite with two API servers racing on one database, on SQLite and PostgreSQL
(the scaled deployment: several `omnicascade api` behind a load balancer, one database).

Two real uvicorn servers in this process, each with its own app (as two processes would
have), share the database and one stand-in Temporal client. They also share this process's
connection pool, which changes nothing that matters here: each request still runs in its
own connection and transaction, and the races are between those. What one server cannot
show:

- a representative set of tests/hostile/ cases, each sent to both servers at once: still
  the expected 2xx or 4xx from both, never a 5xx or a traceback, and a repeated event_id
  answered 202 once and 200 with the same body once;
- the same events and conversions posted to both at once: one stored row per event_id,
  one cascade per entry, one conversion signal per stopped cascade, and answers that agree
  (docs/architecture.md §4: a repeated event_id → 200 with the same body, no new effect).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.config import Settings
from omnicascade.db.models import ConversionEvent, Customer, Enrollment, InboundEvent, Suppression
from omnicascade.db.session import session_scope
from omnicascade.runtime.server import free_port
from omnicascade.workflows.types import SIGNAL_CONVERSION
from tests.api import test_hostile_payloads as corpus
from tests.api.test_hostile_payloads import CASES, _body, _headers, _suppressions
from tests.helpers.api import SECRET, FreshSigner
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, enroll
from tests.helpers.env import reread
from tests.helpers.fake_provider import SignalRecorder

pytestmark = pytest.mark.db

# One or two of each kind: the API's 2xx and 4xx per route, the unsubscribe page, and each
# provider's webhook (the whole corpus runs against one server in test_hostile_payloads).
RACED = [
    "event occurred_at exactly the first second of year 1 in UTC",
    "event with unicode line separators in its id and data",
    "event occurred_at after year 9999 in UTC",
    "conversion occurred_at the last second of year 9999 in UTC",
    "conversion occurred_at as a huge unix time",
    "customer with emoji, RTL and zero-width text",
    "customer email with CRLF and a Bcc header",
    "unsubscribe page, NUL signature",
    "telegram /start token with NUL",
    "twilio START signed for the bound address (no public URL)",
    "twilio STOP from a number with NUL",
    "sendgrid batch: an unsubscribe and a spam report with a lone surrogate",
]
BY_NAME = {case["name"]: case for case in CASES}
sendgrid_key, providers = corpus.sendgrid_key, corpus.providers  # its fixtures: the same keys
ONCE = {"/v1/events": InboundEvent, "/v1/conversions": ConversionEvent}  # by event_id


class TemporalStandIn(SignalRecorder):
    """The one Temporal both servers talk to: records cascades started, and signals."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    async def start_workflow(self, _workflow: Any, _arg: Any, *, id: str, **_: Any) -> None:
        self.started.append(id)


@pytest.fixture
async def two_apis(settings: Settings, providers: ec.EllipticCurvePrivateKey
                   ) -> AsyncIterator[tuple[TemporalStandIn, list[httpx.AsyncClient]]]:
    temporal = TemporalStandIn()
    servers, tasks, clients = [], [], []
    configured = reread(settings)  # with the `providers` variables
    for _ in range(2):
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(configured, temporal),  # type: ignore
                                               host="127.0.0.1", port=port,
                                               log_level="warning"))
        servers.append(server)
        tasks.append(asyncio.create_task(server.serve()))
        clients.append(httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30))
    try:
        while not all(s.started for s in servers):
            assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
            await asyncio.sleep(0.02)
        yield temporal, clients
    finally:
        for client in clients:
            await client.aclose()
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)


def _count(settings: Settings, model: Any, **where: Any) -> int:
    with session_scope(settings.db_url) as s:
        q = select(func.count()).select_from(model)
        for column, value in where.items():
            q = q.where(getattr(model, column) == value)
        return int(s.scalar(q) or 0)


def test_the_raced_cases_are_in_the_corpus() -> None:
    assert set(RACED) <= set(BY_NAME), set(RACED) - set(BY_NAME)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", RACED)
async def test_a_hostile_case_sent_to_two_servers_at_once(two_apis: Any, settings: Settings,
                                                          providers: ec.EllipticCurvePrivateKey,
                                                          name: str) -> None:
    case = BY_NAME[name]
    _, clients = two_apis
    add_customers(settings, {"id": "c1", **FULL})
    with session_scope(settings.db_url) as s:
        for channel, address, reason in case.get("setup_suppressions", []):
            s.add(Suppression(channel=channel, address=address, reason=reason))
    body, signer = _body(case), FreshSigner()  # each server's request signed afresh
    answers = await asyncio.gather(*(http.request(
        case["method"], case["endpoint"], content=body,
        headers=_headers(case, body, providers, signer)) for http in clients))
    where = [(name, r.status_code, r.text[:300]) for r in answers]
    for r in answers:
        assert r.status_code < 500 and "Traceback" not in r.text, where
        assert f"{r.status_code // 100}xx" == case["expect_status_class"], where
    route = case["endpoint"]
    if route in ONCE and case["expect_status_class"] == "2xx":
        assert sorted(r.status_code for r in answers) == [200, 202], where
        assert answers[0].json() == answers[1].json(), where
        event_id = answers[0].json()["event_id"]
        assert _count(settings, ONCE[route], event_id=event_id) == 1, where
    else:
        assert answers[0].status_code == answers[1].status_code, where
        expected = case.get("expect_status", answers[0].status_code)
        assert answers[0].status_code == expected, where
    if route == "/v1/customers" and case["expect_status_class"] == "2xx":
        assert sorted(r.json()["created"] for r in answers) == [False, True], where
        assert _count(settings, Customer, id=case["body"]["id"]) == 1
    if "expect_suppressions" in case:
        assert _suppressions(settings) == sorted(case["expect_suppressions"]), where


async def _race(clients: list[httpx.AsyncClient], path: str,
                payloads: list[dict[str, Any]]) -> list[list[httpx.Response]]:
    """Each payload posted to every server at once (each request signed afresh, as a shop
    retrying through a load balancer would); the answers per payload."""
    signer = FreshSigner()

    async def post(http: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload).encode()
        return await http.post(path, content=body, headers={
            HEADER: signer(SECRET, "POST", path, body), "content-type": "application/json"})
    answers = await asyncio.gather(*(post(http, p) for p in payloads for http in clients))
    n = len(clients)
    return [list(answers[i:i + n]) for i in range(0, len(answers), n)]


def _agree(pair: list[httpx.Response]) -> dict[str, Any]:
    where = [(r.status_code, r.text[:300]) for r in pair]
    assert sorted(r.status_code for r in pair) == [200, 202], where
    assert pair[0].json() == pair[1].json(), where
    body: dict[str, Any] = pair[0].json()
    return body


@pytest.mark.timeout(120)
async def test_events_and_conversions_racing_through_two_servers_take_effect_once(
        two_apis: Any, settings: Settings, campaign_file: Path) -> None:
    """Customers, then trigger events, then conversions, each posted to both at once."""
    temporal, clients = two_apis
    n = 6
    customers = [f"r{i}" for i in range(n)]
    for pair in await _race(clients, "/v1/customers", [{"id": c, **FULL} for c in customers]):
        assert [r.status_code for r in pair] == [200, 200], [r.text for r in pair]
        assert sorted(r.json()["created"] for r in pair) == [False, True]
    assert _count(settings, Customer) == n
    await enroll(None, settings, campaign_file, [], start=False)  # listens: cart_abandoned

    events = [{"event_id": f"ev-{c}", "customer_id": c, "type": "cart_abandoned"}
              for c in customers]
    for pair in await _race(clients, "/v1/events", events):
        assert _agree(pair)["enrolled"] == 1
    assert _count(settings, InboundEvent) == n
    with session_scope(settings.db_url) as s:
        enrolled = Counter(s.scalars(select(Enrollment.customer_id)))
        enrollment_ids = set(s.scalars(select(Enrollment.id)))
    assert enrolled == dict.fromkeys(customers, 1)  # one cascade per entry
    assert sorted(temporal.started) == sorted(f"cascade-{e}" for e in enrollment_ids)

    conversions = [{"event_id": f"cv-{c}", "type": "order_placed", "customer_id": c}
                   for c in customers]
    for pair, c in zip(await _race(clients, "/v1/conversions", conversions), customers,
                       strict=True):
        assert _agree(pair) == {"event_id": f"cv-{c}", "customer_id": c, "stopped": 1,
                                "matched": True}
    assert _count(settings, ConversionEvent) == n
    told = Counter(wf for wf, name, _ in temporal.signals if name == SIGNAL_CONVERSION)
    assert told == {f"cascade-{e}": 1 for e in enrollment_ids}


@pytest.mark.timeout(60)
async def test_one_signed_request_sent_to_both_servers_takes_effect_once(
        two_apis: Any, settings: Settings) -> None:
    """The same signature replayed to the other server at the same moment: used up once
    across the processes (the database holds the claim), the other is refused."""
    _, clients = two_apis
    add_customers(settings, {"id": "c1", **FULL})
    body = json.dumps({"event_id": "cv-same", "type": "order_placed",
                       "customer_id": "c1"}).encode()
    headers = {HEADER: FreshSigner()(SECRET, "POST", "/v1/conversions", body),
               "content-type": "application/json"}
    answers = await asyncio.gather(*(http.post("/v1/conversions", content=body,
                                               headers=headers) for http in clients))
    assert sorted(r.status_code for r in answers) == [202, 401], [r.text for r in answers]
    assert _count(settings, ConversionEvent) == 1
