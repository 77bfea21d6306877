"""Make sure the schema is current before a command uses the database."""

from __future__ import annotations

from functools import lru_cache

from omnicascade.errors import ConfigError

HEAD = "0015"  # the newest migration; a test keeps this in step with alembic


def _sqlite_version(url: str) -> str | None:
    import sqlite3
    path = url.split("///", 1)[-1]
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
    except sqlite3.Error:
        return None


@lru_cache(maxsize=8)
def ensure_schema(url: str) -> None:
    if url.startswith("sqlite"):
        if _sqlite_version(url) != HEAD:  # cheap check first: alembic costs ~0.3 s to load
            from omnicascade.db.migrate import upgrade
            upgrade(url)  # the embedded default migrates itself
        return
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from omnicascade.db.migrate import alembic_config
    from omnicascade.db.session import get_engine
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with get_engine(url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise ConfigError(f"the database schema is at {current or 'nothing'}, not {head}: "
                          f"run `omnicascade db upgrade`")
