"""`campaign preview`: render every message for one customer exactly as it would be sent.
Reads the customer from the database; writes nothing, sends nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from omnicascade.customers import customer_dict
from omnicascade.db.models import Customer
from omnicascade.durations import format_duration
from omnicascade.reports.views import NotFound
from omnicascade.spec import LoadedCampaign
from omnicascade.templates.render import RenderError, build_context, render_message

ADDRESS = {"email": "email", "sms": "phone", "telegram": "telegram_chat_id", "push": "push_token"}


def preview(loaded: LoadedCampaign, customer_id: str, *, session: Session,
            event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}; import it first")
    spec, cust = loaded.spec, customer_dict(customer)
    promo = ({"code": spec.promo.pattern.split("{")[0] + "PREVIEW",
              "discount": spec.promo.discount} if spec.promo else {})
    out = []
    uses = [("", "cascade", i, s.channel, s.template, s.wait) for i, s in enumerate(spec.steps)]
    uses += [("", "after_conversion", i, f.channel, f.template, f.delay)
             for i, f in enumerate(spec.after_conversion)]
    for name, steps in spec.all_step_lists().items():
        if name:
            uses += [(name, "cascade", i, s.channel, s.template, s.wait)
                     for i, s in enumerate(steps)]
    for variant, phase, i, channel, template, wait in uses:
        entry: dict[str, Any] = {"variant": variant or "default", "phase": phase, "step": i + 1,
                                 "channel": channel, "template": template,
                                 "wait" if phase == "cascade" else "delay": format_duration(wait),
                                 "to": cust.get(ADDRESS[channel])}
        if not entry["to"]:
            entry["skipped"] = "no_address"
        try:
            r = render_message(loaded.templates.get(template, {}), build_context(
                customer=cust, event=event, promo=promo,
                campaign={"name": spec.campaign, "description": spec.description,
                          "run_id": "preview"},
                unsubscribe_url="https://example.invalid/u/preview",
                step={"key": str(i), "channel": channel}, variant=variant or "default"),
                template=template)
            entry.update({"subject": r.subject, "title": r.title, "body": r.body,
                          "html": r.html})
        except RenderError as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return out
