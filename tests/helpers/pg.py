"""PostgreSQL beside SQLite for the DB-facing tests (marked `@pytest.mark.db`).

With OMNICASCADE_TEST_POSTGRES_URL set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/
postgres; .ci/run starts a throwaway server and sets it), every such test also runs on a
fresh database created for it and dropped afterwards. Without it the PostgreSQL half is
skipped loudly — or fails, with OMNICASCADE_REQUIRE_POSTGRES=1, so CI cannot pass without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

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
def database_url(backend: str, tmp_path: Path, nodeid: str = "") -> Iterator[str]:
    """A URL of an empty database of this backend, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    base = make_url(postgres_base_url(nodeid))
    name = f"omni_test_{os.urandom(6).hex()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = base.set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            get_engine(url).dispose()
            with admin.connect() as conn:  # FORCE: a worker thread may still hold one
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if skipped:
        terminalreporter.write_sep("!", f"{len(skipped)} tests skipped: {NOT_RUN}",
                                   red=True, bold=True)
