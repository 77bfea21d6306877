"""The send-time guard reads the run's and the cascade's status before every send (promise
1's second guard for run control): the real deliver_step activity, no workflow, so no
signal can help."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

import omnicascade.activities.deliver as deliver_module
from omnicascade.cascade import lifecycle
from omnicascade.cascade.control import Action, change_run
from omnicascade.db.models import Run
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows.types import DeliverInput, StepPlan
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import (
    add_customers,
    deliver_now,
    enroll,
    enrollment,
    outbox,
    outbox_activities,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.db]
EMAIL = StepPlan("0", 0, "email", "t_email", 86400)
REVIEW = StepPlan("ac0", 0, "email", "review", 0, phase="follow_up")


async def _enrolled(settings, campaign_file) -> tuple[str, str]:  # noqa: ANN001
    add_customers(settings, {"id": "c1", **FULL})
    run_id, [e] = await enroll(None, settings, campaign_file, ["c1"], start=False)
    return run_id, e.id


def _set_run(settings, run_id: str, status: str) -> None:  # noqa: ANN001
    """Write the status as a lost signal would leave it: the database only."""
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        assert run is not None
        run.status = status


@pytest.mark.parametrize("step", [EMAIL, REVIEW], ids=["cascade", "follow_up"])
async def test_a_stopped_run_skips_every_send(settings, campaign_file, step):
    run_id, enrollment_id = await _enrolled(settings, campaign_file)
    _set_run(settings, run_id, "stopped")
    result = await deliver_now(settings, enrollment_id, step)
    assert (result.status, result.reason) == ("skipped", "stopped")
    assert outbox(settings) == []


@pytest.mark.parametrize("ended", [EnrollmentStatus.STOPPED, EnrollmentStatus.EXITED])
async def test_an_ended_cascade_sends_nothing_even_if_its_run_goes_on(settings, campaign_file,
                                                                      ended):
    _, enrollment_id = await _enrolled(settings, campaign_file)
    with session_scope(settings.db_url) as s:
        lifecycle.end_live(session=s, status=ended, reason="why", enrollment_ids=[enrollment_id])
    result = await deliver_now(settings, enrollment_id, EMAIL)
    assert (result.status, result.reason) == ("skipped", "stopped")
    assert outbox(settings) == []


async def test_a_paused_run_holds_the_send_and_resuming_sends_it(settings, campaign_file):
    run_id, enrollment_id = await _enrolled(settings, campaign_file)
    _set_run(settings, run_id, "paused")
    before = datetime.now(UTC)
    held = await deliver_now(settings, enrollment_id, EMAIL)
    assert (held.status, held.reason) == ("deferred", "paused")  # held, not skipped
    assert held.defer_until is not None
    until = datetime.fromisoformat(held.defer_until)
    assert before + timedelta(seconds=settings.pause_recheck_s - 5) < until \
        < before + timedelta(seconds=settings.pause_recheck_s + 60)
    assert outbox(settings) == []
    _set_run(settings, run_id, "listening")
    sent = await deliver_now(settings, enrollment_id, EMAIL)
    assert sent.status == "sent" and len(outbox(settings)) == 1


@pytest.mark.parametrize("status", ["draining", "superseded"])
async def test_draining_and_superseded_runs_send_normally(settings, campaign_file, status):
    run_id, enrollment_id = await _enrolled(settings, campaign_file)
    _set_run(settings, run_id, status)
    assert (await deliver_now(settings, enrollment_id, EMAIL)).status == "sent"


async def test_a_stop_committed_while_the_message_renders_is_caught_before_the_provider(
        settings, campaign_file, monkeypatch):
    """The last guard (claim) decides again on fresh facts right before the provider call."""
    run_id, enrollment_id = await _enrolled(settings, campaign_file)
    compose = deliver_module.compose

    def stop_then_compose(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        with session_scope(settings.db_url) as s:
            change_run(run_id, Action.STOP, session=s)  # `runs stop` commits meanwhile
        return compose(*args, **kwargs)
    monkeypatch.setattr(deliver_module, "compose", stop_then_compose)
    result = await deliver_now(settings, enrollment_id, EMAIL)
    assert (result.status, result.reason) == ("skipped", "stopped")
    assert outbox(settings) == []
    row = enrollment(settings, enrollment_id)
    assert (row.status, row.exit_reason) == ("stopped", "stopped")


async def test_the_last_step_skipped_by_a_stop_ends_the_cascade_stopped(settings,
                                                                        campaign_file):
    """A cascade started before run control ends on its last step: never `completed`."""
    run_id, enrollment_id = await _enrolled(settings, campaign_file)
    _set_run(settings, run_id, "stopped")  # its cascades not ended: only the run says so
    last = StepPlan("3", 3, "push", "t_push", 0)
    result = await ActivityEnvironment().run(outbox_activities(settings).deliver_step,
                                             DeliverInput(enrollment_id, last, completes=True))
    assert (result.status, result.reason) == ("skipped", "stopped")
    row = enrollment(settings, enrollment_id)
    assert (row.status, row.exit_reason) == ("stopped", "stopped")
