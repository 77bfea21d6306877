"""Erasure, the database half, on SQLite and PostgreSQL (Temporal unreachable here: the
dev-server half is tests/cascade/test_erasure_temporal.py): every table that held the
person holds nothing of them afterwards — rows, the raw SQLite file, a pg_dump — while the
reports keep their counts and money; a second erase and an unknown id change nothing; the
person stays out of imports, customer writes, events and conversions until readmitted."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from sqlalchemy import func, select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.cascade import lifecycle
from omnicascade.cascade.cascade_input import cascade_input
from omnicascade.cascade.erase import erase_customer
from omnicascade.cascade.erasure import refused
from omnicascade.config import Settings
from omnicascade.customers.model import CustomerIn
from omnicascade.db.erasure_models import ErasedSubject, Erasure
from omnicascade.db.models import Customer, Enrollment, Run, Suppression
from omnicascade.db.session import session_scope
from omnicascade.reports.build import build_report
from omnicascade.reports.run_views import run_show
from omnicascade.vocabulary import EnrollmentStatus
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.cascades import add_customers, deliver_now, enroll
from tests.helpers.cli import home_env, run_cli
from tests.helpers.erasure import (
    NEEDLES,
    OTHER,
    PERSON,
    delivery_rows,
    found_in_bytes,
    found_in_rows,
    holding,
    personal_extras,
)

pytestmark = pytest.mark.db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def person_everywhere(settings: Settings, campaign: Any) -> str:
    """PERSON and OTHER enrolled; PERSON's email and telegram steps sent (to the outbox),
    converted with money, and the rest of their traces; their cascade ended converted."""
    add_customers(settings, PERSON, OTHER)
    run_id, rows = await enroll(None, settings, campaign, [PERSON["id"], OTHER["id"]],  # type: ignore[arg-type]
                                event={"cart": "c-1"}, start=False)
    mine = next(e for e in rows if e.customer_id == PERSON["id"])
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        inputs = {e.customer_id: cascade_input(run, s.get(Enrollment, e.id), settings)
                  for e in rows}
    for customer, inp in inputs.items():
        for step in (inp.steps[0], inp.steps[2]):  # email, telegram ("TG for <id>")
            result = await deliver_now(settings, inp.enrollment_id, step)
            assert result.status == "sent", (customer, result)
    personal_extras(settings, f"{mine.id}:0")
    with session_scope(settings.db_url) as s:
        s.get(Enrollment, mine.id).event_data = {"cart": "Zeldaquux's cart"}  # the trigger's
        lifecycle.finish(mine.id, EnrollmentStatus.CONVERTED, session=s,
                         conversion_event_id="order-zeldaquux-1")
    return run_id


def reports(settings: Settings, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with session_scope(settings.db_url) as s:
        show = run_show(run_id, session=s)
        report = build_report(run_id, session=s, settings=settings)
    report = json.loads(json.dumps(report, default=str))
    report.pop("generated_at")
    return show, report


async def test_erase_removes_the_person_everywhere_and_reports_hold(settings, campaign_file):
    run_id = await person_everywhere(settings, campaign_file)
    before_reports, before_deliveries = reports(settings, run_id), delivery_rows(settings)
    # the checks find the person before, so finding nothing after means something
    assert found_in_rows(settings.db_url) == set(NEEDLES)
    assert found_in_bytes(settings.db_url) == set(NEEDLES)

    outcome = await erase_customer(None, settings, PERSON["id"], "cli")

    body = outcome.body()
    assert body["erased"] is True and body["customer_id"] == PERSON["id"]
    assert body["cascades_ended"] == 0  # it had ended (converted) already
    assert body["workflows_deleted"] == 0 and body["workflows_pending"] == 1  # no Temporal
    assert body["rows"]["customers"] == 1 and body["rows"]["enrollments"] == 1
    assert body["rows"]["deliveries"] == 2 and body["rows"]["outbox_messages"] == 2
    assert body["rows"]["conversions"] == 1 and body["rows"]["events"] == 1
    assert body["rows"]["telegram_links"] == 1 and body["rows"]["suppressions"] == 1
    assert body["rows"]["delivery_events"] == 2
    assert found_in_rows(settings.db_url) == set(), holding(settings.db_url)
    assert found_in_bytes(settings.db_url) == set()  # SQLite after VACUUM; a pg_dump
    assert reports(settings, run_id) == before_reports  # counts, funnel, money
    assert delivery_rows(settings) == before_deliveries  # channel, step, status, cost, times
    with session_scope(settings.db_url) as s:
        assert s.get(Customer, OTHER["id"]) is not None  # nobody else is touched
        assert s.scalar(select(func.count()).select_from(ErasedSubject)) == 5  # id + 4 addresses
        audit = s.scalars(select(Erasure)).one()
        assert audit.via == "cli" and audit.rows == body["rows"]
        assert audit.workflows_pending == [next(iter(audit.workflows_pending))]
        assert PERSON["id"] not in json.dumps(audit.rows)

    # idempotent: nothing is left to erase, nothing changes
    again = await erase_customer(None, settings, PERSON["id"], "cli")
    assert again.body()["erased"] is False and again.body()["rows"] == {}
    unknown = await erase_customer(None, settings, "nobody-here", "cli")
    assert unknown.body()["erased"] is False
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Erasure)) == 1
        assert s.scalar(select(func.count()).select_from(ErasedSubject)) == 5


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal_address": f"127.0.0.1:{closed_port()}"})


async def test_the_api_erases_blocks_the_person_and_readmits(api_settings, campaign_file):
    add_customers(api_settings, {**PERSON, "id": "shop/zq-cust-7731"}, OTHER)
    sign = FreshSigner()
    async with asgi_client(create_app(api_settings)) as http:
        async def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            raw = json.dumps(body).encode() if body is not None else b""
            return await http.request(method, path, content=raw, headers={
                HEADER: sign(SECRET, method, path, raw), "content-type": "application/json"})

        path = "/v1/customers/shop%2Fzq-cust-7731"
        assert (await http.delete(path)).status_code == 401  # unsigned: refused
        r = await call("DELETE", path)
        assert r.status_code == 200, r.text
        assert r.json()["erased"] is True and r.json()["customer_id"] == "shop/zq-cust-7731"
        assert set(r.json()) >= {"customer_id", "erased", "cascades_ended",
                                 "workflows_deleted", "rows"}
        r = await call("DELETE", path)
        assert r.status_code == 200 and r.json()["erased"] is False
        # the id, or any of the addresses under a new id, creates nobody
        for body in ({"id": "shop/zq-cust-7731"},
                     {"id": "new-id", "email": PERSON["email"].upper()},
                     {"id": "new-id", "phone": "+49 151 99887766"}):
            r = await call("POST", "/v1/customers", body)
            assert r.status_code == 200 and r.json()["suppressed"] == "erased", (body, r.text)
        r = await call("POST", "/v1/events", {"event_id": "ev-after", "type": "cart_abandoned",
                                              "customer_id": "shop/zq-cust-7731"})
        assert r.status_code == 200 and r.json()["suppressed"] == "erased"
        assert r.json()["enrolled"] == 0
        r = await call("POST", "/v1/conversions", {"event_id": "cv-after", "type": "o",
                                                   "customer_id": "shop/zq-cust-7731",
                                                   "data": {"x": PERSON["email"]}})
        assert r.status_code == 200 and r.json()["suppressed"] == "erased"
        assert found_in_rows(api_settings.db_url) == set()
        with session_scope(api_settings.db_url) as s:
            assert s.get(Customer, "new-id") is None
        # readmitted, after a new consent
        r = await call("POST", "/v1/customers", {"id": "shop/zq-cust-7731",
                                                 "email": PERSON["email"], "readmit": True})
        assert r.status_code == 200 and r.json() == {"id": "shop/zq-cust-7731",
                                                     "created": True}
        r = await call("DELETE", "/v1/customers/" + "x" * 300)
        assert r.status_code == 422


def test_the_cli_asks_refuses_without_a_terminal_and_import_skips_erased(
        settings, tmp_path):
    add_customers(settings, PERSON, OTHER)
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url,
                   OMNICASCADE_WEBHOOK_SECRET=SECRET,
                   OMNICASCADE_TEMPORAL_ADDRESS=f"127.0.0.1:{closed_port()}")
    r = run_cli("customers", "erase", PERSON["id"], env=env, ok=False)
    assert "--yes" in r.stderr
    with session_scope(settings.db_url) as s:
        assert s.get(Customer, PERSON["id"]) is not None  # nothing erased
    r = run_cli("customers", "erase", PERSON["id"], "--yes", "--json", env=env, ok=True)
    assert json.loads(r.stdout)["erased"] is True
    r = run_cli("customers", "erase", PERSON["id"], "--yes", "--json", env=env, ok=True)
    assert json.loads(r.stdout)["erased"] is False

    people = tmp_path / "people.csv"
    people.write_text(f"id,email\n{PERSON['id']},\nfresh,fresh@example.com\n"
                      f"again,{PERSON['email']}\n")
    r = run_cli("customers", "import", str(people), env=env, ok=True)
    assert "skipped: erased 2" in r.stdout
    r = run_cli("customers", "readmit", PERSON["email"], env=env, ok=True)
    r = run_cli("customers", "import", str(people), "--json", env=env, ok=True)
    assert json.loads(r.stdout)["skipped"] == {"erased": 1}  # the id is still erased
    r = run_cli("customers", "readmit", PERSON["id"], env=env, ok=True)
    r = run_cli("customers", "readmit", PERSON["id"], env=env, ok=False)  # nothing left
    r = run_cli("customers", "pseudonym", PERSON["id"], env=env, ok=True)
    assert r.stdout.startswith("p1:") and PERSON["id"] not in r.stdout


async def test_an_address_shared_with_another_customer_stays_theirs(settings):
    """A family sharing an e-mail: erasing one keeps the other's unsubscribe, and the other
    can still be written; a new customer with that address is refused."""
    add_customers(settings, PERSON, {"id": "sibling", "email": PERSON["email"]})
    with session_scope(settings.db_url) as s:
        s.add(Suppression(channel="email", address=PERSON["email"], reason="unsubscribed"))
    outcome = await erase_customer(None, settings, PERSON["id"], "api")
    assert outcome.rows["suppressions"] == 0
    with session_scope(settings.db_url) as s:
        assert s.scalars(select(Suppression)).one().address == PERSON["email"]
        assert refused(settings, [CustomerIn(id="sibling", email=PERSON["email"]),
                                  CustomerIn(id="newcomer", email=PERSON["email"]),
                                  CustomerIn(id=PERSON["id"])], session=s) == {
            "newcomer", PERSON["id"]}
