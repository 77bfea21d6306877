"""A customer's page: `customers show` (customers.py) plus what a marketer needs to see
beside it — each message's rendered text (the outbox), the provider's delivery and
engagement events, the suppressions of each address — as one timeline in the customer's
time zone, on the wall clock (a rehearsal's rows also read its campaign clock, labelled),
each cascade's rows named by its key (keys.py). The console renders it;
the messages come a page at a time, as in `customers show`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from omnicascade.clock import LIVE, RunClock, now_utc
from omnicascade.customers.model import ADDRESS_FIELD, address_for, consented
from omnicascade.db.models import Customer, DeliveryEvent, OutboxMessage, Run, Suppression
from omnicascade.reports.customers import customer_show_page
from omnicascade.reports.keys import labels
from omnicascade.reports.outbox import pruned_label
from omnicascade.reports.paging import SEARCH_MATCHES
from omnicascade.reports.when import aware, clock_from, local, parse_iso, relative, zone_of
from omnicascade.vocabulary import CHANNELS, reason_label

NAME_FIELDS = ("first_name", "last_name", "name")  # customer attributes a name lives in


def find(query: str, *, session: Session) -> list[str]:
    """Customer ids whose id, email, phone or name starts with `query`, any case (at most
    SEARCH_MATCHES, by id). A name is in the customer's attributes — `first_name`,
    `last_name` (also as "first last") or `name`, as imported — which has no column to
    index: each test is `lower(x) LIKE 'q%'`, a prefix an index on lower(x) can serve, and
    the read stops at SEARCH_MATCHES. No index on lower(x) exists yet (a migration's work
    if shops outgrow a scan of the customers table)."""
    q = " ".join(query.split()).lower()
    if not q:
        return []
    pattern = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    attrs = {f: func.lower(Customer.attributes[f].as_string()) for f in NAME_FIELDS}
    full = attrs["first_name"] + " " + attrs["last_name"]
    tests = [func.lower(x).like(pattern, escape="\\") for x in
             (Customer.id, Customer.email, Customer.phone)]
    tests += [x.like(pattern, escape="\\") for x in (*attrs.values(), full)]
    return list(session.scalars(select(Customer.id).where(or_(*tests))
                                .order_by(Customer.id).limit(SEARCH_MATCHES)))


def channels(customer: Customer, *, session: Session,
             offered: Collection[str] = CHANNELS) -> list[dict[str, Any]]:
    """Each channel the shop offers (`offered`: offered_channels), the customer has an
    address of their own on, or that suppressed them: the address, consent, its
    suppression (reason, since) if any, and whether the console may offer to unsubscribe
    it (`offered`). The webhook channel addresses everyone by id: listed only if used."""
    out = []
    for channel in CHANNELS:
        address = address_for(customer, channel)
        found = session.scalar(select(Suppression).where(
            Suppression.channel == channel, Suppression.address == address)) if address else None
        own = address is not None and ADDRESS_FIELD[channel] != "id"
        if channel not in offered and found is None and not own:
            continue
        out.append({"channel": channel, "address": address,
                    "consent": consented(customer.consents, channel),
                    "suppressed": found.reason if found else None,
                    "suppressed_at": found.created_at if found else None,
                    "offered": channel in offered})
    return out


def offered_channels(configured: Collection[str], *, session: Session) -> set[str]:
    """The channels a shop messages on: those with a provider configured (`configured`:
    not the outbox, channels/registry.py) and those any of its campaigns' runs has a step
    on — so a shop that never set up the webhook channel is never offered "unsubscribe
    from webhook" (issue 27). Decided here, once, for every view of a customer."""
    used: set[str] = set(configured)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("channel") in CHANNELS:
                used.add(node["channel"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    for snapshot in session.scalars(select(Run.snapshot)):
        walk((snapshot or {}).get("spec"))
    return used & set(CHANNELS)


def customer_page(customer_id: str, *, session: Session, limit: int | None = None,
                  cursor: str | None = None,
                  configured: Collection[str] = ()) -> dict[str, Any]:
    """`customers show` (the same dict, the same page of messages) with `channels`,
    `timeline`, `next_cursor` (where the next messages start, None at the end) and
    `key_labels` (`cart_id A2` by enrollment and delivery id: keys.py)."""
    data, after = customer_show_page(customer_id, session=session, limit=limit,
                                     cursor=cursor)
    customer = session.get(Customer, customer_id)
    assert customer is not None  # customer_show raised NotFound otherwise
    ids = [m["delivery_id"] for m in data["messages"]]
    outbox = {m.delivery_id: m for m in session.scalars(
        select(OutboxMessage).where(OutboxMessage.delivery_id.in_(ids)))} if ids else {}
    events: dict[str, list[DeliveryEvent]] = defaultdict(list)
    for ev in session.scalars(select(DeliveryEvent).where(DeliveryEvent.delivery_id.in_(ids))
                              .order_by(DeliveryEvent.occurred_at)) if ids else []:
        events[ev.delivery_id or ""].append(ev)
    keyed = [*data["enrollments"], *data["messages"]]
    named = dict(zip([r.get("enrollment_id") or r["delivery_id"] for r in keyed],
                     labels(keyed, session=session), strict=True))
    by_channel = channels(customer, session=session,
                          offered=offered_channels(configured, session=session))
    return {**data, "channels": by_channel, "next_cursor": after, "key_labels": named,
            "timeline": timeline(data, outbox, events, by_channel, named)}


def timeline(data: dict[str, Any], outbox: dict[str, OutboxMessage],
             events: dict[str, list[DeliveryEvent]],
             by_channel: list[dict[str, Any]],
             named: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    """Every fact, oldest first: `{at, ago, campaign, kind, what, detail, message?}`; a
    cascade's rows named by its key (`named`: by enrollment and delivery id)."""
    named = named or {}
    zone = zone_of(data["customer"].get("zone"))
    now = now_utc()
    clocks: dict[str, RunClock] = {e["run_id"]: clock_from(e.get("rehearsal")) or LIVE
                                   for e in data["enrollments"]}
    rows: list[dict[str, Any]] = []

    def add(at: str | datetime | None, kind: str, what: str, detail: str, run_id: str = "",
            **extra: Any) -> None:
        """One row on the wall clock — `at` and `ago` are real time, the order too — and a
        rehearsal's campaign-clock reading beside it, labelled (`campaign`): one clock per
        column, never the two mixed in one list (issue 27)."""
        wall = parse_iso(at) if isinstance(at, str) or at is None else aware(at)
        if wall is None:
            return
        clock = clocks.get(run_id, LIVE)
        campaign = (f"{local(clock.campaign(wall), zone, seconds=True)} campaign time "
                    f"×{clock.scale:g}") if clock.rehearsal else ""
        rows.append({"order": wall, "at": local(wall, zone, seconds=True),
                     "mark": f"×{clock.scale:g}" if clock.rehearsal else "",
                     "campaign": campaign, "ago": relative(wall, aware(now)), "kind": kind,
                     "what": what, "detail": detail, **extra})

    def keyed(what: str, label: str | None) -> str:
        return f"{what} · {label}" if label else what

    for e in data["enrollments"]:
        name = named.get(e["enrollment_id"])
        add(e["enrolled_at"], "enrolled", keyed(f"entered {e['campaign']}", name),
            f"run {e['run_id']}, variant {e['variant']}"
            + (f", promo {e['promo_code']}" if e["promo_code"] else ""), e["run_id"],
            status=e["status_label"], key=e.get("key"))
        if e["status"] in ("stopped", "exited"):
            add(e["finished_at"], e["status"],
                keyed(f"{e['status']}: {e['campaign']}", name),
                reason_label(e["exit_reason"]) or "no reason recorded", e["run_id"])
    for m in data["messages"]:
        delivery_id = m["delivery_id"]
        sent = outbox.get(delivery_id)
        # a body a retention prune removed: said in the detail, no empty message shown
        gone = f" · {pruned_label(sent.sent_at, sent.pruned_at)}" \
            if sent is not None and sent.pruned_at else ""
        add(m["at"], "message", keyed(f"{m['channel']} {m['label']}", named.get(delivery_id)),
            f"{m['template']}: {m['status_label']}{gone}", m["run_id"], key=m.get("key"),
            message={"id": sent.id, "subject": sent.subject or sent.title, "body": sent.body,
                     "html": bool(sent.html), "to": sent.to_address}
            if sent and not gone else None)
        for ev in events.get(delivery_id, []):
            add(ev.occurred_at, "engagement",
                keyed(f"{ev.event} · {m['channel']} {m['label']}", named.get(delivery_id)),
                f"reported by {ev.provider}", m["run_id"])
    converted = {e.get("conversion_event_id"): e for e in data["enrollments"]}
    for c in data["conversions"]:
        amount = f", {c['amount']:,.2f} {c['currency'] or ''}" if c["amount"] is not None else ""
        ended = converted.get(c["event_id"]) or {}
        add(c["occurred_at"], "conversion",
            keyed(f"converted: {c['type']}", named.get(ended.get("enrollment_id", ""))),
            f"event {c['event_id']}{amount}"
            + (f", promo {c['promo_code']}" if c["promo_code"] else ""),
            ended.get("run_id", ""))
    for ch in by_channel:
        if ch["suppressed"]:
            add(ch["suppressed_at"], "suppression", f"{ch['channel']} suppressed",
                f"{reason_label(ch['suppressed']) or ch['suppressed']}: no campaign "
                f"messages this address again")
    rows.sort(key=lambda r: r["order"])
    return rows

