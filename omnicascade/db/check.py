"""Make sure the schema is current before a command uses the database."""

from __future__ import annotations

from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from omnicascade.config import ConfigError
from omnicascade.db.migrate import alembic_config, upgrade
from omnicascade.db.session import get_engine


@lru_cache(maxsize=8)
def ensure_schema(url: str) -> None:
    if url.startswith("sqlite"):
        upgrade(url)  # the embedded default migrates itself
        return
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with get_engine(url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise ConfigError(f"the database schema is at {current or 'nothing'}, not {head}: "
                          f"run `omnicascade db upgrade`")
