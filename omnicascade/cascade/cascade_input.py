"""What a cascade will walk through: the steps of the customer's variant in their resolved
channel order, the follow-ups, and the workflow input carrying both (durations as data)."""

from __future__ import annotations

from omnicascade.campaign.load import spec_from_snapshot
from omnicascade.campaign.model import CampaignSpec
from omnicascade.campaign.variants import variant_steps
from omnicascade.channels.queues import send_queue
from omnicascade.config import Settings
from omnicascade.customers.pseudonym import pseudonym
from omnicascade.db.models import Enrollment, Run
from omnicascade.vocabulary import DEFAULT_VARIANT, FOLLOW_UP_PREFIX, HOLDOUT, Phase
from omnicascade.workflows.types import CascadeInput, StepPlan

_spec_cache: dict[str, CampaignSpec] = {}


def run_spec(run: Run) -> CampaignSpec:
    """Runs are immutable once launched, so their parsed spec is cached per process."""
    spec = _spec_cache.get(run.id)
    if spec is None:
        spec = _spec_cache[run.id] = spec_from_snapshot(run.snapshot)
    return spec


def follow_up_key(index: int) -> str:
    """The ledger key of the index-th after_conversion step ("ac0", …)."""
    return f"{FOLLOW_UP_PREFIX}{index}"


def plan(spec: CampaignSpec, variant: str = DEFAULT_VARIANT,
         channel_order: list[int] | None = None) -> tuple[list[StepPlan], list[StepPlan]]:
    steps = variant_steps(spec, variant)
    order = channel_order if channel_order and sorted(channel_order) == list(
        range(len(steps))) else list(range(len(steps)))
    # Keys and indices stay those of the step as written, so ledger ids are stable and
    # reports can tell which step (template, channel) a message came from.
    cascade = [StepPlan(str(i), i, steps[i].channel, steps[i].template, steps[i].wait)
               for i in order]
    follow = [StepPlan(follow_up_key(i), i, f.channel, f.template, f.delay,
                       phase=Phase.FOLLOW_UP.value)
              for i, f in enumerate(spec.after_conversion)]
    return cascade, follow


def cascade_input(run: Run, enrollment: Enrollment, settings: Settings) -> CascadeInput:
    """Nothing personal goes to Temporal: the customer travels as its keyed pseudonym (the
    workflow never reads it; it fills the OmnicascadeCustomer search attribute)."""
    steps, follow = plan(run_spec(run), enrollment.variant, enrollment.channel_order)
    for step in (*steps, *follow):  # a rate-limited channel sends on its own queue
        step.task_queue = send_queue(settings, step.channel)
    return CascadeInput(enrollment_id=enrollment.id, run_id=run.id, campaign=run.campaign,
                        customer_id=pseudonym(settings, enrollment.customer_id),
                        steps=steps, follow_ups=follow,
                        holdout=enrollment.variant == HOLDOUT,
                        time_scale=run.time_scale, send_timeout_s=settings.send_timeout_s,
                        send_max_attempts=settings.send_max_attempts,
                        send_initial_retry_s=settings.send_initial_retry_s,
                        search_attributes=settings.search_attributes,
                        pause_recheck_s=settings.pause_recheck_s,
                        pause_recheck_max_s=settings.pause_recheck_max_s)
