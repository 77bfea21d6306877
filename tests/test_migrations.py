"""Migrations: up from empty, down to nothing and up again, and the models match the schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from omnicascade.db.migrate import downgrade, upgrade
from omnicascade.db.models import Base
from omnicascade.db.session import get_engine


def test_round_trip_and_models_match(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    downgrade(url, "base")
    assert set(inspect(get_engine(url)).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    with get_engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert {"customers", "runs", "enrollments", "deliveries", "conversions", "events",
            "outbox_messages", "suppressions", "delivery_events",
            "telegram_links"} <= set(inspect(get_engine(url)).get_table_names())


def test_check_head_constant_matches_alembic(tmp_path):
    from alembic.script import ScriptDirectory

    from omnicascade.db.check import HEAD
    from omnicascade.db.migrate import alembic_config
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert ScriptDirectory.from_config(alembic_config(url)).get_current_head() == HEAD
