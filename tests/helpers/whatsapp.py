"""A campaign with a WhatsApp step (an approved template: Content SID and two variables),
an SMS step after it that is skipped once the customer replied, and a free-form-only one."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.campaigns import FULL, TEMPLATES, write_campaign

CONTENT_SID = "HX" + "ab12" * 8
# Reachable on WhatsApp: consent_whatsapp: yes (WhatsApp is opt-in).
WA_CUSTOMER = {"id": "c1", **FULL, "attributes": {"first_name": "Ana"},
               "consents": {"whatsapp": True}}

WA_YAML = """\
campaign: wa-cascade
conversion: {events: [order_placed]}
promo: {pattern: "WA-{random:6}", discount: "10%"}
steps:
  - {channel: whatsapp, template: t_wa, wait: 24h}
  - {channel: sms, template: t_sms, wait: 24h, skip_if: [replied]}
  - {channel: whatsapp, template: t_free}
"""

WA_TEMPLATES = {
    **TEMPLATES,
    "t_wa.txt.j2": "Hi {{ customer.first_name }}, your code {{ promo.code }}",
    "t_wa.whatsapp.yaml": f"""\
content_sid: {CONTENT_SID}
variables:
  "1": "{{{{ customer.first_name }}}}"
  "2": "{{{{ promo.code }}}}"
""",
    "t_free.txt.j2": "Thanks for writing, {{ customer.first_name }}!",
}


def write_wa_campaign(folder: Path, **overrides: str) -> Path:
    return write_campaign(folder, WA_YAML, {**WA_TEMPLATES, **overrides})
