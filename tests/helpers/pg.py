"""PostgreSQL beside SQLite for the DB-facing tests (marked `@pytest.mark.db`).

With OMNICASCADE_TEST_POSTGRES_URL set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/
postgres; .ci/run starts a throwaway server and sets it), every such test also runs on a
fresh database created for it and dropped afterwards. Without it the PostgreSQL half is
skipped loudly — or fails, with OMNICASCADE_REQUIRE_POSTGRES=1, so CI cannot pass without it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from omnicascade.db.migrate import upgrade
from omnicascade.db.session import get_engine

ENV_URL = "OMNICASCADE_TEST_POSTGRES_URL"
ENV_REQUIRE = "OMNICASCADE_REQUIRE_POSTGRES"
DB_BACKENDS = ["sqlite", "postgres"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
NOT_RUN = (f"PostgreSQL half of the DB tests NOT RUN: set {ENV_URL}="
           f"postgresql+psycopg://postgres@127.0.0.1:5432/postgres (.ci/run starts one)")
skipped: list[str] = []


def postgres_base_url(nodeid: str = "") -> str:
    url = os.environ.get(ENV_URL, "").strip()
    if not url:
        if os.environ.get(ENV_REQUIRE) == "1":
            pytest.fail(f"{ENV_REQUIRE}=1 but {ENV_URL} is not set", pytrace=False)
        skipped.append(nodeid)
        pytest.skip(NOT_RUN)
    host = make_url(url).host or ""
    if host not in LOOPBACK:  # tests create and drop databases: never on a real server
        pytest.fail(f"{ENV_URL} must point at this machine (127.0.0.1), not {host!r}",
                    pytrace=False)
    return url


@contextmanager
def database_url(backend: str, tmp_path: Path, nodeid: str = "",
                 templates: Templates | None = None) -> Iterator[str]:
    """A URL of a database of this backend, removed afterwards: empty, or with `templates` a
    copy of the session's database at the head revision (what the app's tests start from:
    copying is faster than running every migration for each test)."""
    template = templates.url(backend, nodeid) if templates else None
    if backend == "sqlite":
        path = tmp_path / "app.db"
        if template:
            _copy_sqlite(template, path)
        yield f"sqlite:///{path}"
        return
    base = make_url(postgres_base_url(nodeid))
    name = f"omni_test_{os.urandom(6).hex()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    source = f' TEMPLATE "{make_url(template).database}"' if template else ""
    try:
        with admin.connect() as conn:
            if source and (conn.dialect.server_version_info or (0,)) >= (15,):
                source += " STRATEGY FILE_COPY"  # for a small database: a third of the time
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{source}')
        url = base.set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            get_engine(url).dispose()
            with admin.connect() as conn:  # FORCE: a worker thread may still hold one
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _copy_sqlite(url: str, path: Path) -> None:
    """SQLite's online backup: a consistent copy whatever the source's journal holds."""
    with closing(sqlite3.connect(str(make_url(url).database))) as src, \
            closing(sqlite3.connect(str(path))) as dst:
        src.backup(dst)


class Templates:
    """One database at the head revision per backend, migrated the first time a test asks
    for it and removed when the session ends (`close`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.urls: dict[str, str] = {}
        self._cleanup = ExitStack()  # drops the PostgreSQL template

    def url(self, backend: str, nodeid: str) -> str:
        if backend not in self.urls:
            if backend == "sqlite":
                url = f"sqlite:///{self.folder / 'template.db'}"
            else:
                url = self._cleanup.enter_context(database_url(backend, self.folder, nodeid))
            upgrade(url)
            get_engine(url).dispose()  # PostgreSQL copies a template nobody is connected to
            self.urls[backend] = url
        return self.urls[backend]

    def close(self) -> None:
        self._cleanup.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if skipped:
        terminalreporter.write_sep("!", f"{len(skipped)} tests skipped: {NOT_RUN}",
                                   red=True, bold=True)
