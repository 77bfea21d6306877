"""Cascades wait for days, so every committed history of CustomerCascade must replay
against the current workflow code: a change that is not replay-safe fails here, before it
reaches cascades in flight. `histories/v0/` was recorded with the workflow code as it was
before the restructure (commit c801714) — no run-control patch marker, so they also prove
that cascades started before run control keep their old path; `histories/v1/` with run
control (the `run-control` marker): stop mid-wait, stop during a follow-up's delay, a stop
only the send-time guard saw, pause and resume across a wait, an exit event; `histories/v2/`
an SMS sent on its rate-limited channel's own task queue (the `send-queues` marker);
`histories/v3/` a conversion and a stop while a refused send waits for its next attempt,
the activity cancelled (the `send-interrupts` marker); `histories/v4/` a step the
frequency cap skipped, which still gets its wait (the `cap-spacing` marker).
Record new ones with `python -m tests.workflows.record_histories DIR [SHAPE ...]`."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from omnicascade.runtime.worker import FAST_RUNNER, STRICT_RUNNER
from omnicascade.workflows.cascade import CustomerCascade
from omnicascade.workflows.types import (
    PATCH_CAP_SPACING,
    PATCH_RUN_CONTROL,
    PATCH_SEND_INTERRUPTS,
    PATCH_SEND_QUEUES,
)

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(HERE.glob("*/*.json"))
V0_SHAPES = {"plain", "converted_mid_wait", "follow_up", "quiet_hours", "holdout",
             "skipped_and_failed", "guard_2"}
V1_SHAPES = {"stopped", "stopped_follow_up", "stop_guard", "paused_resumed", "exited",
             "keyed"}


def _history(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(f"replay-{path.parent.name}-{path.stem}", data)


def test_every_shape_recorded_before_the_restructure_is_committed():
    assert {p.stem for p in HERE.glob("v0/*.json")} == V0_SHAPES


def _patches(path: Path) -> set[str]:
    """The workflow.patched() ids a history recorded (core_patch markers)."""
    found = set()
    for event in json.loads(path.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes") or {}
        if marker.get("markerName") == "core_patch":
            data = marker["details"]["patch-data"]["payloads"][0]["data"]
            found.add(json.loads(base64.b64decode(data))["id"])
    return found


def test_every_run_control_shape_is_committed_with_its_patch_marker():
    assert {p.stem for p in HERE.glob("v1/*.json")} == V1_SHAPES
    assert all(_patches(p) == {PATCH_RUN_CONTROL} for p in HERE.glob("v1/*.json"))
    assert not any(_patches(p) for p in HERE.glob("v0/*.json"))  # the old path replays


def test_the_send_queue_shape_is_committed_with_both_markers():
    assert {p.stem for p in HERE.glob("v2/*.json")} == {"send_queue"}
    assert _patches(HERE / "v2" / "send_queue.json") == {PATCH_RUN_CONTROL, PATCH_SEND_QUEUES}


def test_the_back_off_shapes_are_committed_with_the_interrupt_marker():
    assert {p.stem for p in HERE.glob("v3/*.json")} == {"converted_in_back_off",
                                                        "stopped_in_back_off"}
    assert all(_patches(p) == {PATCH_RUN_CONTROL, PATCH_SEND_INTERRUPTS}
               for p in HERE.glob("v3/*.json"))
    # every history recorded before it replays the old path: no marker
    assert not any(PATCH_SEND_INTERRUPTS in _patches(p) for p in HISTORIES
                   if p.parent.name in ("v0", "v1", "v2"))


def test_the_cap_spacing_shape_is_committed_with_its_marker():
    assert {p.stem for p in HERE.glob("v4/*.json")} == {"cap_skipped"}
    assert _patches(HERE / "v4" / "cap_skipped.json") == {
        PATCH_RUN_CONTROL, PATCH_SEND_INTERRUPTS, PATCH_CAP_SPACING}
    # every history recorded before it replays the old path: no marker
    assert not any(PATCH_CAP_SPACING in _patches(p) for p in HISTORIES
                   if p.parent.name != "v4")


@pytest.mark.parametrize("runner", [FAST_RUNNER, STRICT_RUNNER], ids=["fast", "strict"])
@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_history_replays_on_current_code(path: Path, runner: object) -> None:
    replayer = Replayer(workflows=[CustomerCascade], workflow_runner=runner)
    result = await replayer.replay_workflow(_history(path))
    assert result.replay_failure is None


@workflow.defn(name="CustomerCascade")
class ReorderedCascade:
    """A careless edit: a timer before the first send. Not replay-safe."""

    @workflow.run
    async def run(self, inp: dict) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return "completed"


async def test_a_change_that_is_not_replay_safe_fails() -> None:
    replayer = Replayer(workflows=[ReorderedCascade],
                        workflow_runner=UnsandboxedWorkflowRunner())
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(_history(HERE / "v0" / "plain.json"))
