"""Migrations, on SQLite and on PostgreSQL: up from empty, every revision down and up again,
the models match the migrated schema, data survives a round trip, and the schema check
refuses a database that is behind."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from omnicascade.db.migrate import alembic_config, downgrade, upgrade
from omnicascade.db.models import Base, Customer
from omnicascade.db.session import get_engine, session_scope
from omnicascade.errors import ConfigError

pytestmark = pytest.mark.db

TABLES = {"customers", "runs", "enrollments", "deliveries", "conversions", "events",
          "outbox_messages", "suppressions", "delivery_events", "telegram_links",
          "request_signatures", "login_attempts", "console_sessions", "erased_subjects",
          "erasures", "experiment_decisions", "allocation_updates"}


def _revisions(url: str) -> list[str]:
    """base → head order."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _current(url: str) -> str | None:
    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _tables(url: str) -> set[str]:
    get_engine(url).dispose()  # a fresh look, not a cached reflection
    return set(inspect(get_engine(url)).get_table_names())


def _models_diff(url: str) -> list:
    with get_engine(url).connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def test_up_from_empty_reaches_head_and_matches_the_models(db_url):
    assert _tables(db_url) == set()
    upgrade(db_url)
    assert _current(db_url) == _revisions(db_url)[-1]
    assert TABLES | {"alembic_version"} == _tables(db_url)
    assert _models_diff(db_url) == []


def test_every_revision_goes_down_and_up_again(db_url):
    revisions = _revisions(db_url)
    assert len(revisions) >= 2
    for i, rev in enumerate(revisions):
        upgrade(db_url, rev)
        after_up = _tables(db_url)
        downgrade(db_url, revisions[i - 1] if i else "base")
        upgrade(db_url, rev)
        assert _current(db_url) == rev and _tables(db_url) == after_up
    assert _models_diff(db_url) == []
    downgrade(db_url, "base")
    assert _tables(db_url) <= {"alembic_version"}
    upgrade(db_url)
    assert _models_diff(db_url) == []


def test_rows_survive_a_round_trip_of_the_last_migration(db_url):
    upgrade(db_url)
    with session_scope(db_url) as s:
        s.add(Customer(id="c1", email="a@example.com", attributes={"first_name": "Ann"},
                       consents={"sms": False}))
    revisions = _revisions(db_url)
    downgrade(db_url, revisions[-2])
    upgrade(db_url)
    get_engine(db_url).dispose()
    with session_scope(db_url) as s:
        row = s.get(Customer, "c1")
        assert row is not None and row.email == "a@example.com"
        assert row.attributes == {"first_name": "Ann"}


def test_schema_check_refuses_a_database_behind_head(db_url):
    from omnicascade.db.check import ensure_schema
    revisions = _revisions(db_url)
    upgrade(db_url, revisions[-2])
    if db_url.startswith("sqlite"):
        ensure_schema(db_url)  # the embedded default migrates itself
        assert _current(db_url) == revisions[-1]
        return
    with pytest.raises(ConfigError, match="omnicascade db upgrade"):
        ensure_schema(db_url)
    upgrade(db_url)
    ensure_schema.cache_clear()
    ensure_schema(db_url)


def test_check_head_constant_matches_alembic(tmp_path):
    from omnicascade.db.check import HEAD
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert ScriptDirectory.from_config(alembic_config(url)).get_current_head() == HEAD


def test_plain_postgresql_urls_use_the_shipped_driver(db_url):
    from omnicascade.db.session import normalize_url
    assert normalize_url("postgresql://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    assert normalize_url("postgres://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    plain = db_url.replace("postgresql+psycopg://", "postgresql://")
    upgrade(plain)  # psycopg2 is not installed: this works only through psycopg 3
    assert _current(plain) == _revisions(plain)[-1]


def test_0006_numbers_versions_and_repairs_two_listening_versions(db_url):
    """Before 0006 a relaunch left two versions listening (every message doubled). The
    migration numbers each campaign's launches, keeps the newest listening version and
    marks the older superseded, and lets the newest live cascade of each entry hold it."""
    from sqlalchemy import text
    upgrade(db_url, "0005")
    snapshot = '{"spec": {"campaign": "cart", "steps": []}, "templates": {}}'
    with get_engine(db_url).begin() as conn:
        for i, run_id in enumerate(("run_old", "run_new")):
            conn.execute(text(
                "INSERT INTO runs (id, campaign, description, snapshot, trigger_event, status, "
                "time_scale, audience_total, created_at) VALUES (:id, 'cart', '', :snap, "
                "'cart_abandoned', 'listening', 1.0, 0, :at)"),
                {"id": run_id, "snap": snapshot, "at": f"2026-11-0{i + 1} 10:00:00"})
            conn.execute(text(
                "INSERT INTO enrollments (id, run_id, customer_id, variant, status, "
                "conversion_events, lookback_s, enrolled_at) VALUES (:id, :run, 'c1', "
                "'default', 'active', '[]', 0, :at)"),
                {"id": f"enr_{run_id}", "run": run_id, "at": f"2026-11-0{i + 1} 10:00:00"})
    upgrade(db_url)
    get_engine(db_url).dispose()
    with get_engine(db_url).connect() as conn:
        runs = conn.execute(text("SELECT id, version, status, superseded_by FROM runs "
                                 "ORDER BY id")).all()
        entries = dict(conn.execute(text("SELECT id, active_entry FROM enrollments")).all())
    assert [tuple(r) for r in runs] == [("run_new", 2, "listening", None),
                                        ("run_old", 1, "superseded", "run_new")]
    assert entries["enr_run_old"] is None and entries["enr_run_new"] is not None
