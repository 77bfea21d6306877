"""Promise 5 and 2 together: kill -9 the worker process between steps, start a new one, and
every cascade resumes where it was — no step delivered twice, none lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sysconfig
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from omnicascade.db.models import Delivery, Enrollment
from omnicascade.db.session import session_scope
from omnicascade.launch import launch
from omnicascade.spec import load_campaign

from .cascade_helpers import FULL, add_customers, outbox
from .conftest import write_campaign

pytestmark = pytest.mark.asyncio
OMNI = str(Path(sysconfig.get_path("scripts")) / "omnicascade")
SHORT = """\
campaign: restart
conversion: {events: [order_placed]}
steps:
  - {channel: email,    template: t_email,    wait: 3s}
  - {channel: sms,      template: t_sms,      wait: 3s}
  - {channel: telegram, template: t_telegram, wait: 3s}
  - {channel: push,     template: t_push}
"""


def _worker(settings, tmp_path: Path, n: int) -> subprocess.Popen:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNICASCADE_")}
    env.update(OMNICASCADE_TEMPORAL_ADDRESS=settings.temporal_address,
               OMNICASCADE_DATABASE_URL=settings.db_url, OMNICASCADE_TASK_QUEUE=settings.task_queue,
               OMNICASCADE_WEBHOOK_SECRET=settings.webhook_secret,
               OMNICASCADE_HOME=str(settings.home), OMNICASCADE_SEARCH_ATTRIBUTES="true")
    return subprocess.Popen([OMNI, "worker"], env=env, stdout=open(tmp_path / f"w{n}.log", "w"),
                            stderr=subprocess.STDOUT)


def _count(settings, **where) -> int:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        q = select(func.count()).select_from(Delivery)
        for key, value in where.items():
            q = q.where(getattr(Delivery, key) == value)
        return int(s.scalar(q))


async def _until(predicate, timeout: float = 60) -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_kill_worker_between_steps_resumes_without_duplicates(dev_env, settings,
                                                                    tmp_path):
    settings = settings.model_copy(update={
        "temporal_address": dev_env.client.service_client.config.target_host,
        "search_attributes": True})
    ids = [f"k{i}" for i in range(8)]
    add_customers(settings, *({"id": i, **FULL} for i in ids))
    campaign = write_campaign(tmp_path / "restart", SHORT)
    first = _worker(settings, tmp_path, 1)
    try:
        from omnicascade.customers import CustomerIn
        await launch(load_campaign(campaign), settings,
                     audience=[CustomerIn(id=i) for i in ids])
        await _until(lambda: _count(settings, step_key="0", status="sent") == len(ids))
        first.send_signal(signal.SIGKILL)  # mid-cascade: every customer is in its first wait
        first.wait(10)
        sent_before = _count(settings, status="sent")
        await asyncio.sleep(4)  # timers fire while no worker is alive
        assert _count(settings, status="sent") == sent_before
        second = _worker(settings, tmp_path, 2)
        try:
            def finished() -> bool:
                with session_scope(settings.db_url) as s:
                    return s.scalar(select(func.count()).select_from(Enrollment).where(
                        Enrollment.status == "completed")) == len(ids)
            await _until(finished, 90)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    per_step = Counter((m.customer_id, m.step) for m in outbox(settings))
    assert set(per_step.values()) == {1}  # nothing delivered twice
    assert len(per_step) == 4 * len(ids)  # nothing lost
    assert _count(settings, status="unknown") == 0
