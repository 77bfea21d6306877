"""A campaign whose first step is the webhook channel, shared by the channel's tests and
the feedback endpoint's."""

from __future__ import annotations

from pathlib import Path

from omnicascade.workflows.types import StepPlan
from tests.helpers.campaigns import TEMPLATES, write_campaign

WEBHOOK_YAML = """\
campaign: hook-cascade
conversion: {events: [order_placed]}
steps:
  - {channel: webhook, template: t_hook, wait: 24h}
  - {channel: email,   template: t_email, wait: 24h, skip_if: [opened]}
"""
HOOK_TEMPLATES = {**TEMPLATES, "t_hook.txt.j2": "Hi {{ customer.id }}, your cart waits"}
STEP = StepPlan("0", 0, "webhook", "t_hook", 86400)


def hook_campaign(folder: Path) -> Path:
    return write_campaign(folder, WEBHOOK_YAML, HOOK_TEMPLATES)
