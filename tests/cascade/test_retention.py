"""Retention, on SQLite and PostgreSQL: OMNICASCADE_RETENTION's windows are parsed strictly;
a prune empties message bodies and subjects, processed events' and provider callbacks'
raw data past their window — and nothing else: run reports (funnel, money) are the same
before and after, deliveries keep status and cost, views say `body_pruned`. `db prune`
prints per table (a dry run changes nothing); one pass at a time across workers."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from omnicascade.api.app import create_app
from omnicascade.cascade.retention import LOCK_KEY, parse_retention, prune, start_pruning
from omnicascade.clock import now_utc
from omnicascade.db.models import DeliveryEvent, InboundEvent, OutboxMessage
from omnicascade.db.session import get_engine, session_scope
from omnicascade.errors import ConfigError
from omnicascade.reports.customers import customer_show
from omnicascade.reports.outbox import outbox_page
from omnicascade.reports.timeline import customer_page
from tests.cascade.test_erasure import person_everywhere, reports
from tests.helpers.api import SECRET, asgi_client
from tests.helpers.cli import home_env, run_cli
from tests.helpers.console import PASSWORD, signed_in_csrf
from tests.helpers.erasure import PERSON, delivery_rows

pytestmark = pytest.mark.db
WINDOWS = {"messages": 90 * 86400, "events": 365 * 86400, "feedback": 180 * 86400}
LATER = timedelta(days=400)  # every row is past every window


def test_parse_retention_reads_windows_and_names_the_setting_when_wrong():
    assert parse_retention("") == {} and parse_retention(None) == {}
    assert parse_retention("messages=90d, events=365d,feedback=180d") == WINDOWS
    assert parse_retention("messages=12w") == {"messages": 12 * 7 * 86400}
    for bad in ("messages=90", "mesages=90d", "messages", "messages=0", "messages=-1d",
                "messages=90d,messages=30d", "events=9999d"):
        with pytest.raises(ConfigError, match="OMNICASCADE_RETENTION") as caught:
            parse_retention(bad)
        assert repr(bad) in str(caught.value)


def _stale_event(settings) -> None:
    """A trigger event nobody acted on yet: its data is kept whatever its age."""
    with session_scope(settings.db_url) as s:
        for e in s.scalars(select(InboundEvent)):  # the person's event was acted on
            e.processed_at = now_utc()
        s.add(InboundEvent(event_id="ev-waiting", customer_id="someone", type="t",
                           data={"cart": "kept"}, occurred_at=now_utc() - LATER,
                           received_at=now_utc() - LATER))


async def test_a_prune_drops_bodies_and_payloads_and_leaves_reports_alone(
        settings, campaign_file):
    run_id = await person_everywhere(settings, campaign_file)
    _stale_event(settings)
    before, deliveries = reports(settings, run_id), delivery_rows(settings)

    nothing = prune(settings.db_url, WINDOWS)  # nothing is old enough yet
    assert nothing.rows == {"outbox_messages": 0, "events": 0, "delivery_events": 0}
    at = now_utc() + LATER
    dry = prune(settings.db_url, WINDOWS, dry_run=True, now=at)
    assert dry.rows == {"outbox_messages": 4, "events": 1, "delivery_events": 2}
    with session_scope(settings.db_url) as s:
        assert all(m.body and m.pruned_at is None for m in s.scalars(select(OutboxMessage)))

    done = prune(settings.db_url, WINDOWS, now=at, batch=3)  # batches of 3: two for outbox
    assert done.rows == dry.rows and not done.busy
    again = prune(settings.db_url, WINDOWS, now=at)
    assert again.rows == {"outbox_messages": 0, "events": 0, "delivery_events": 0}

    assert reports(settings, run_id) == before  # counts, funnel, attribution, money
    assert delivery_rows(settings) == deliveries  # status, cost, times
    with session_scope(settings.db_url) as s:
        for m in s.scalars(select(OutboxMessage)):
            assert (m.subject, m.title, m.body, m.html) == (None, None, "", None)
            assert m.pruned_at == at and m.to_address  # the row stays
        assert all(e.data is None for e in s.scalars(select(DeliveryEvent)))
        assert {e.event for e in s.scalars(select(DeliveryEvent))} == {"delivered", "reply"}
        events = {e.event_id: e.data for e in s.scalars(select(InboundEvent))}
        assert events == {"view-zeldaquux-1": None, "ev-waiting": {"cart": "kept"}}
        page = outbox_page(session=s, customer_id=PERSON["id"])
        show = customer_show(PERSON["id"], session=s)
        timeline = customer_page(PERSON["id"], session=s)
    assert all(m["body_pruned"] and m["body"] == "" for m in page.rows)
    assert page.rows[0]["body_note"] == "body removed after 400 d (retention)"
    assert all(m["body_pruned"] for m in show["messages"])
    sent = [t for t in timeline["timeline"] if t["kind"] == "message"]
    assert sent and all(t["message"] is None for t in sent)  # no empty message shown
    assert all(t["detail"].endswith(" · body removed after 400 d (retention)") for t in sent)


async def test_db_prune_prints_per_table_and_refuses_a_bad_setting(
        settings, campaign_file, tmp_path):
    await person_everywhere(settings, campaign_file)
    with session_scope(settings.db_url) as s:  # sent a hundred days ago
        for m in s.scalars(select(OutboxMessage)):
            m.sent_at = now_utc() - timedelta(days=100)
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url,
                   OMNICASCADE_WEBHOOK_SECRET=SECRET)
    r = run_cli("db", "prune", "--json", env=env, ok=True)  # the default: keep everything
    assert json.loads(r.stdout) == {"dry_run": False, "windows": {}, "rows": {}}
    r = run_cli("db", "prune", env=env, ok=True)
    assert "everything is kept" in r.stdout
    env["OMNICASCADE_RETENTION"] = "messages=90d,feedback=180d"
    r = run_cli("db", "prune", "--dry-run", "--json", env=env, ok=True)
    assert json.loads(r.stdout) == {"dry_run": True,
                                    "windows": {"messages": "90d", "feedback": "180d"},
                                    "rows": {"outbox_messages": 4, "delivery_events": 0}}
    r = run_cli("db", "prune", env=env, ok=True)
    assert "outbox_messages: removed the content of 4 row(s)" in r.stdout
    assert "delivery_events: removed the content of 0 row(s)" in r.stdout
    note = "body removed after 100 d (retention)"
    assert note in run_cli("customers", "show", PERSON["id"], env=env, ok=True).stdout
    assert note in run_cli("outbox", "--customer", PERSON["id"], env=env, ok=True).stdout
    app = create_app(settings.model_copy(update={"console_password": PASSWORD}))
    async with asgi_client(app) as http:
        await signed_in_csrf(http)
        page = await http.get("/outbox")
        assert page.status_code == 200 and page.text.count(note) == 4
    env["OMNICASCADE_RETENTION"] = "messages=90 days"
    r = run_cli("db", "prune", env=env, ok=False)
    assert r.returncode == 1 and "OMNICASCADE_RETENTION" in r.stderr
    assert "Traceback" not in r.stderr


async def test_the_worker_prunes_on_its_own_and_only_when_configured(
        settings, campaign_file):
    assert start_pruning(settings) is None  # keep everything: no task at all
    with pytest.raises(ConfigError, match="OMNICASCADE_RETENTION"):
        start_pruning(settings.model_copy(update={"retention": "messages=soon"}))
    await person_everywhere(settings, campaign_file)
    task = start_pruning(settings.model_copy(update={"retention": "messages=1s"}),
                         every_s=0.2)
    assert task is not None
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            with session_scope(settings.db_url) as s:
                if all(m.pruned_at for m in s.scalars(select(OutboxMessage))):
                    break
        else:
            raise AssertionError("the worker's pass never pruned")
    finally:
        task.cancel()


async def test_one_pass_at_a_time_across_workers(settings, campaign_file, db_backend):
    await person_everywhere(settings, campaign_file)
    if db_backend != "postgres":  # SQLite's writers are serial: a second pass waits its turn
        passes = await asyncio.gather(*(asyncio.to_thread(
            prune, settings.db_url, WINDOWS, now=now_utc() + LATER) for _ in range(2)))
        assert sorted(p.rows["outbox_messages"] for p in passes) == [0, 4]
        return
    holder = get_engine(settings.db_url).connect()
    try:
        holder.execute(text("BEGIN"))
        assert holder.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                              {"k": LOCK_KEY}).scalar()
        busy = prune(settings.db_url, WINDOWS, now=now_utc() + LATER)
        assert busy.busy and busy.rows == {"outbox_messages": 0}
    finally:
        holder.rollback()
        holder.close()
    done = prune(settings.db_url, WINDOWS, now=now_utc() + LATER)
    assert not done.busy and done.rows["outbox_messages"] == 4
