"""How long a cascade waits for a conversion after a step (workflow code: pure, no I/O).

A sent step (or an unknown one: it may have gone out) gets its whole `wait`. A step the
frequency cap skipped keeps the cascade's spacing (behind `workflow.patched(
PATCH_CAP_SPACING)`, asked only when a cap skip happens, so histories recorded before
replay as they ran): the next step is due its own wait after the skipped step came due,
never at once — a cap exists to space messages out, not to burn the cascade. Any other skip
(no address, no consent, …) moves on at once: that is channel fallback.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from omnicascade.vocabulary import WENT_OUT, DeliveryStatus, SkipReason
    from omnicascade.workflows.types import PATCH_CAP_SPACING, DeliverResult, StepPlan


def wait_after(step: StepPlan, result: DeliverResult, due: datetime,
               wait: timedelta) -> timedelta | None:
    """The wait after `step` (`wait`: its whole wait as a timer), or None to move on now.
    `due`: when the step came due (workflow time, before any deferral)."""
    if step.wait_s <= 0:
        return None
    if result.status in WENT_OUT:
        return wait
    if result.status == DeliveryStatus.SKIPPED and result.reason == SkipReason.FREQUENCY_CAP \
            and workflow.patched(PATCH_CAP_SPACING):
        left = wait - (workflow.now() - due)
        return left if left > timedelta(0) else None
    return None
