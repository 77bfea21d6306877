"""The rehearsal clock's one rule for campaign durations (clock.py RunClock.wall_span),
and the workflow's copy of it (workflows/cascade.py `_scaled`: workflow code may import
nothing but the vocabulary), which must agree."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from omnicascade.clock import RunClock
from omnicascade.workflows.cascade import CustomerCascade


@pytest.mark.parametrize("seconds", [1, 59, 3600, 86_400, 3 * 86_400, 7 * 86_400 + 5])
@pytest.mark.parametrize("scale", [1.0, 60.0, 3600.0, 86_400.0 * 20])
def test_the_workflows_timers_scale_by_the_clocks_one_rule(scale, seconds):
    """Waits, follow-up delays and the holdout's window become workflow timers in
    workflows/cascade.py `_scaled`, which may import nothing but the vocabulary (the
    sandbox): it is RunClock.wall_span's rule, and they must agree."""
    wall = RunClock(datetime(2026, 1, 1), scale).wall_span(timedelta(seconds=seconds))
    timer = CustomerCascade._scaled(SimpleNamespace(time_scale=scale), seconds)  # type: ignore[arg-type]
    assert abs(timer - wall) < timedelta(microseconds=2)
