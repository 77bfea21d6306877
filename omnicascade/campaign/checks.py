"""Checks of a campaign file beyond its shape, each a (place, reason) pair that load.py turns
into a `file:line:col` problem: names the API could never send, settings that quietly do
nothing or do harm (an exit event that is also the trigger, a `skip_if` with nothing before
it). They run when a file is loaded (validate, launch), not when a launched run's snapshot
is read back, so a run launched before a rule existed still loads."""

from __future__ import annotations

from typing import Any

from omnicascade.campaign.model import CampaignSpec
from omnicascade.validation import event_name_problem

Place = tuple[str | int, ...]


def check(spec: CampaignSpec) -> list[tuple[Place, str]]:
    """Every problem of the validated `spec`, at its place in the file's data."""
    return [*_event_names(spec), *_exit_is_not_the_trigger(spec), *_first_skip_if(spec)]


def _event_names(spec: CampaignSpec) -> list[tuple[Place, str]]:
    named: list[tuple[Place, str]] = []
    if spec.trigger:
        named.append((("trigger", "event"), spec.trigger.event))
    for key, events in (("conversion", spec.conversion_events), ("exit", spec.exit_events)):
        named += [((key, "events", i), name) for i, name in enumerate(events)]
    out = []
    for place, name in named:
        problem = event_name_problem(name)
        if problem:
            out.append((place, f"{'.'.join(str(p) for p in place[:2])}: {problem}"))
    return out


def _exit_is_not_the_trigger(spec: CampaignSpec) -> list[tuple[Place, str]]:
    """Every repeat of the trigger would end the cascade and enrol the customer afresh,
    sending step 1 again: the cascade could never get past its first step."""
    if not spec.trigger:
        return []
    return [(("exit", "events", i), f"exit.events: {name!r} is the trigger event: each new "
             f"trigger would end the cascade and enrol the customer again, re-sending the "
             f"first step; remove it from exit.events")
            for i, name in enumerate(spec.exit_events) if name == spec.trigger.event]


def _first_skip_if(spec: CampaignSpec) -> list[tuple[Place, str]]:
    """`skip_if` on a list's first step can never skip it: nothing of the cascade has been
    sent yet. Only where the first step written is the first one tried (`order:
    as_written` for everyone sending that list); `cost`/`preference` may move it later.
    Follow-ups have no `skip_if`."""
    lists: list[tuple[Place, Any, set[str]]] = []
    variants = spec.experiment.variants if spec.experiment else {}
    shared: set[str] = {v.order or spec.order for v in variants.values() if not v.steps}
    lists.append((("steps",), spec.steps, shared or {str(spec.order)}))
    for name, variant in variants.items():
        if variant.steps:
            lists.append((("experiment", "variants", name, "steps"), variant.steps,
                          {str(variant.order or spec.order)}))
    return [((*place, 0, "skip_if"), "skip_if on the first step never skips it: nothing "
             "of the cascade has been sent yet to engage with (put it on a later step)")
            for place, steps, orders in lists
            if steps and steps[0].skip_if and orders == {"as_written"}]

