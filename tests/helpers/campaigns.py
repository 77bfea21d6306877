"""Campaigns for tests: the template files every test campaign uses, a four-step cascade
with a follow-up, an A/B block, customers reachable on every channel, and writing a campaign
folder to disk."""

from __future__ import annotations

import textwrap
from pathlib import Path

# Reachable on every channel.
FULL = {"email": "a@example.com", "phone": "+4915112345678", "telegram_chat_id": "42",
        "push_token": "tok"}

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




def four_steps(name: str, wait: str, *, conversion: str = "{events: [order_placed]}") -> str:
    """email → sms → telegram → push, `wait` between steps, no trigger (launch an audience)."""
    return f"""\
campaign: {name}
conversion: {conversion}
steps:
  - {{channel: email,    template: t_email,    wait: {wait}}}
  - {{channel: sms,      template: t_sms,      wait: {wait}}}
  - {{channel: telegram, template: t_telegram, wait: {wait}}}
  - {{channel: push,     template: t_push}}
"""
