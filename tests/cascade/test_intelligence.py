"""Campaign intelligence: variants and holdout, quiet hours (incl. a DST night), frequency caps,
consent, channel order by cost and by preference — on the time-skipping server."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from omnicascade.campaign.load import load_campaign
from omnicascade.campaign.variants import assign_variant
from omnicascade.cascade import lifecycle
from omnicascade.customers.quiet_hours import customer_zone, quiet_until
from omnicascade.db.models import ConversionEvent, Delivery, DeliveryEvent, Enrollment
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows.cascade import CustomerCascade
from omnicascade.workflows.types import StepPlan
from tests.helpers.campaigns import CASCADE_YAML, EXPERIMENT_BLOCK, FULL, write_campaign
from tests.helpers.cascades import (
    add_customers,
    cascade_of,
    convert,
    deliver_now,
    deliveries,
    enroll,
    finish,
    handle,
    outbox,
    outbox_activities,
    running_worker,
    times,
)

pytestmark = pytest.mark.db

STEPS_ONLY = CASCADE_YAML.replace("after_conversion:\n  - {channel: email, template: review, "
                                  "delay: 3d}\n", "")
EXPERIMENT = STEPS_ONLY + EXPERIMENT_BLOCK


# ---- experiments ------------------------------------------------------------------------

def test_assignment_is_stable_and_split_within_tolerance(tmp_path):
    spec = load_campaign(write_campaign(tmp_path / "x", EXPERIMENT)).spec
    ids = [f"cust-{i}" for i in range(10_000)]
    first = {c: assign_variant(spec, c) for c in ids}
    for c in ids[:50]:
        assert {assign_variant(spec, c) for _ in range(1000)} == {first[c]}
    split = Counter(first.values())
    # binomial 3-sigma bands: holdout 1000±90, each variant 4500±150
    assert abs(split["holdout"] - 1000) < 90, split
    assert abs(split["control"] - 4500) < 150 and abs(split["sms_first"] - 4500) < 150, split


async def test_variants_are_stored_stable_across_launches_and_override_steps(ts_env, settings,
                                                                             tmp_path):
    campaign = write_campaign(tmp_path / "exp", EXPERIMENT)
    ids = [f"v{i}" for i in range(40)]
    add_customers(settings, *({"id": i, **FULL} for i in ids))
    _, first = await enroll(ts_env.client, settings, campaign, ids, start=False)
    with session_scope(settings.db_url) as s:  # their cascades end; a month later, again
        for e in first:
            lifecycle.finish(e.id, EnrollmentStatus.COMPLETED, session=s)
    _, second = await enroll(ts_env.client, settings, campaign, ids, start=False)
    assert {e.customer_id: e.variant for e in first} == {e.customer_id: e.variant
                                                         for e in second}
    by_variant = {e.variant: e for e in first}
    assert {"control", "sms_first"} <= set(by_variant)
    sms_first = by_variant["sms_first"]
    async with running_worker(ts_env, settings):
        from tests.helpers.cascades import start_enrollments
        await start_enrollments(ts_env.client, settings, [sms_first])
        assert await finish(ts_env, handle(ts_env.client, sms_first.id)) == "completed"
    assert [m.channel for m in outbox(settings, sms_first.customer_id)] == ["sms", "email"]


async def test_holdout_gets_nothing_but_its_conversion_counts(ts_env, settings, tmp_path):
    campaign = write_campaign(tmp_path / "exp", EXPERIMENT)
    spec = load_campaign(campaign).spec
    cid = next(f"h{i}" for i in range(1000) if assign_variant(spec, f"h{i}") == "holdout")
    async with cascade_of(ts_env, settings, campaign, [{"id": cid, **FULL}]) as c:
        [e] = c.rows
        assert e.variant == "holdout" and e.promo_code is None
        h = c.handle(cid)
        for _ in range(100):
            if (await h.query(CustomerCascade.progress)).state.startswith("holdout"):
                break
            await asyncio.sleep(0.05)
        await ts_env.sleep(timedelta(hours=30))
        assert (await convert(ts_env.client, settings, cid))["stopped"] == 1
        assert await finish(ts_env, h) == "converted"
    assert outbox(settings, cid) == [] and deliveries(settings, e.id) == {}
    with session_scope(settings.db_url) as s:
        row = s.get(Enrollment, e.id)
        assert row.status == "converted" and row.converted_at is not None


# ---- quiet hours ------------------------------------------------------------------------

def test_quiet_until_handles_dst_both_ways():
    berlin = ZoneInfo("Europe/Berlin")
    # autumn: 22:00 CEST on 24 Oct 2026 → 09:00 CET on 25 Oct (clocks went back at 03:00)
    until = quiet_until(datetime(2026, 10, 24, 20, 0, tzinfo=UTC), berlin,
                        "21:00", "09:00")
    assert until == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    # spring: quiet until 02:30, a wall time that does not exist on 28 Mar 2027
    until = quiet_until(datetime(2027, 3, 27, 23, 0, tzinfo=UTC), berlin,
                        "23:00", "02:30")
    assert until is not None and until.astimezone(berlin).hour == 3  # first valid instant
    assert quiet_until(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), berlin,
                       "21:00", "09:00") is None
    assert quiet_until(datetime(2026, 7, 1, 12, 30, tzinfo=UTC), ZoneInfo("UTC"),
                       "12:00", "14:00") == datetime(2026, 7, 1, 14, 0, tzinfo=UTC)


def test_time_zone_falls_back_to_phone_then_campaign_then_utc():
    assert str(customer_zone("America/New_York", "+4915112345678", None)) == "America/New_York"
    assert str(customer_zone(None, "+4915112345678", None)) == "Europe/Berlin"
    assert str(customer_zone(None, None, "Europe/Paris")) == "Europe/Paris"
    assert str(customer_zone(None, None, None)) == "UTC"


def _quiet_yaml(start: str, end: str, mode: str = "defer", tz: str = "UTC") -> str:
    return STEPS_ONLY + f"timezone: {tz}\nquiet_hours: {{start: \"{start}\", end: \"{end}\", " \
                        f"mode: {mode}}}\n"


async def test_send_inside_quiet_hours_is_deferred_to_the_window_end(ts_env, settings,
                                                                     tmp_path):
    now = (await ts_env.get_current_time()).astimezone(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    campaign = write_campaign(tmp_path / "q", _quiet_yaml(start.strftime("%H:%M"),
                                                          end.strftime("%H:%M")))
    async with cascade_of(ts_env, settings, campaign,
                          [{"id": "q1", "email": "q@example.com", "timezone": "UTC"}]) as c:
        assert await c.finish("q1") == "completed"
        progress = await c.progress("q1")
    assert [x.status for x in progress.timeline][:2] == ["deferred", "sent"]
    sent_at = times(progress)[1]
    window_end = end.replace(second=0, microsecond=0)
    assert window_end <= sent_at < window_end + timedelta(minutes=1)
    assert len(outbox(settings, "q1")) == 1


async def test_quiet_hours_skip_mode_moves_on(ts_env, settings, tmp_path):
    now = (await ts_env.get_current_time()).astimezone(UTC)
    campaign = write_campaign(tmp_path / "q", _quiet_yaml(
        (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=2)).strftime(
            "%H:%M"), mode="skip"))
    async with cascade_of(ts_env, settings, campaign,
                          [{"id": "q1", "email": "q@example.com", "timezone": "UTC"}]) as c:
        assert await c.finish("q1") == "completed"
    assert deliveries(settings, c.row("q1").id)["0"] == ("skipped", "quiet_hours")


async def test_deferral_across_a_dst_night(ts_env, settings, tmp_path):
    """Skip the server clock to 22:30 local on the evening before the next Europe/Berlin
    clock change; the 21:00–09:00 quiet window ends at 09:00 local in the new offset."""
    berlin = ZoneInfo("Europe/Berlin")
    now = (await ts_env.get_current_time()).astimezone(UTC)
    probe = now
    while probe.astimezone(berlin).utcoffset() == now.astimezone(berlin).utcoffset():
        probe += timedelta(hours=1)
    change_day = probe.astimezone(berlin).date()
    evening = datetime(change_day.year, change_day.month, change_day.day, 22, 30,
                       tzinfo=berlin) - timedelta(days=1)
    await ts_env.sleep(evening.astimezone(UTC) - now)
    campaign = write_campaign(tmp_path / "dst", _quiet_yaml("21:00", "09:00",
                                                            tz="Europe/Berlin"))
    async with cascade_of(ts_env, settings, campaign,
                          [{"id": "d1", "email": "d@example.com"}]) as c:
        assert await c.finish("d1") == "completed"
        progress = await c.progress("d1")
    [e] = c.rows
    sent_local = times(progress)[1].astimezone(berlin)
    assert (sent_local.date(), sent_local.hour, sent_local.minute) == (change_day, 9, 0)
    assert sent_local.utcoffset() != evening.utcoffset()  # across the change
    with session_scope(settings.db_url) as s:
        row = s.get(Delivery, f"{e.id}:0")
        assert row.status == "sent" and row.deferred_until is not None


# ---- frequency caps and consent ------------------------------------------------------------

# a capped step is deferred, or skipped with its spacing kept: tests/cascade/test_caps.py

async def test_two_campaigns_racing_cannot_both_slip_under_the_cap(ts_env, settings, tmp_path):
    yaml = STEPS_ONLY + "frequency_cap: {max: 1, per: 24h}\n"
    # four campaigns (one live cascade per customer and campaign), all racing the cap
    campaigns = [write_campaign(tmp_path / n, yaml.replace("test-cascade", f"camp-{n}"))
                 for n in "abcd"]
    add_customers(settings, {"id": "r1", **FULL})
    enrollments = []
    for campaign in campaigns:
        _, rows = await enroll(ts_env.client, settings, campaign, ["r1"], start=False)
        enrollments += rows
    acts = outbox_activities(settings)
    step = StepPlan("0", 0, "email", "t_email", 0)
    results = await asyncio.gather(*(deliver_now(settings, e.id, step, acts)
                                     for e in enrollments))
    # the others wait for the window to admit them (issue 27: a cap defers by default)
    assert sorted(r.status for r in results) == ["deferred", "deferred", "deferred", "sent"]
    assert {r.reason for r in results if r.status == "deferred"} == {"frequency_cap"}
    assert len(outbox(settings, "r1")) == 1


async def test_channel_without_consent_is_skipped(ts_env, settings, campaign_file):
    async with cascade_of(ts_env, settings, campaign_file,
                          [{"id": "n1", **FULL, "consents": {"sms": False}}]) as c:
        assert await c.finish("n1") == "completed"
    assert deliveries(settings, c.row("n1").id)["1"] == ("skipped", "no_consent")


# ---- channel order ----------------------------------------------------------------------

async def test_cost_order_sends_cheapest_reachable_first(ts_env, settings, tmp_path):
    campaign = write_campaign(tmp_path / "c", STEPS_ONLY + "order: cost\n")
    async with cascade_of(ts_env, settings, campaign, [
            {"id": "all", **FULL},
            {"id": "no-tg", "email": "x@example.com", "phone": "+4915112345679",
             "push_token": "tok2"}]) as c:
        for e in c.rows:
            assert await c.finish(e.customer_id) == "completed"
    by = {e.customer_id: e for e in c.rows}
    assert by["all"].order_strategy == "cost" and by["all"].channel_order == [2, 3, 0, 1]
    assert by["no-tg"].channel_order == [3, 0, 1, 2]  # unreachable telegram goes last
    assert [m.channel for m in outbox(settings, "all")] == ["telegram", "push", "email", "sms"]
    assert [m.channel for m in outbox(settings, "no-tg")] == ["push", "email", "sms"]


async def test_preference_order_follows_the_customers_own_history(ts_env, settings, tmp_path):
    campaign = write_campaign(tmp_path / "p", STEPS_ONLY + "order: preference\n")
    add_customers(settings, {"id": "buyer", **FULL}, {"id": "clicker", **FULL},
                  {"id": "new", **FULL}, {"id": "reader", **FULL}, {"id": "machine", **FULL})
    old = datetime(2026, 1, 1)
    with session_scope(settings.db_url) as s:
        def sent(cid: str, channel: str, at: datetime) -> str:
            did = f"old-{cid}-{channel}"
            s.add(Delivery(id=did, enrollment_id="old", run_id="old", customer_id=cid,
                           step_key="0", step_index=0, phase="cascade", channel=channel,
                           template="t", status="sent", created_at=at, sent_at=at))
            return did
        sent("buyer", "email", old)
        sent("buyer", "sms", old + timedelta(hours=1))  # the SMS came last before the order
        s.add(ConversionEvent(event_id="old-order", type="order_placed", customer_id="buyer",
                              occurred_at=old + timedelta(hours=2)))
        s.add(DeliveryEvent(delivery_id=sent("clicker", "push", old), provider="fcm",
                            event="click"))
        # a read receipt (WhatsApp, the webhook channel's `opened`) is an open; a machine's
        # open (Apple Mail Privacy Protection) is not
        s.add(DeliveryEvent(delivery_id=sent("reader", "email", old), provider="webhook",
                            event="read"))
        s.add(DeliveryEvent(delivery_id=sent("machine", "sms", old), provider="twilio",
                            event="machine_open"))
    _, rows = await enroll(ts_env.client, settings, campaign,
                           ["buyer", "clicker", "new", "reader", "machine"], start=False)
    orders = {e.customer_id: e.channel_order for e in rows}
    assert orders["buyer"][0] == 1  # sms first: it is what this customer converts on
    assert orders["clicker"][0] == 3  # push first: clicked before
    assert orders["new"] == [2, 3, 0, 1]  # no history: falls back to cost
    assert orders["reader"][0] == 0  # email first: read before
    assert orders["machine"] == [2, 3, 0, 1]  # no person opened anything


async def test_favorite_product_and_money_in_the_customers_locale(ts_env, settings, tmp_path):
    templates = {"t_email.subject.j2": "Back: {{ favorite_product }}",
                 "t_email.txt.j2": "{{ cart.total | money('EUR') }}",
                 "t_sms.txt.j2": "s", "t_telegram.txt.j2": "t", "t_push.title.j2": "p",
                 "t_push.txt.j2": "p"}
    campaign = write_campaign(tmp_path / "fav", STEPS_ONLY, templates)
    add_customers(settings, {"id": "de", "email": "de@example.com", "locale": "de-DE"})
    with session_scope(settings.db_url) as s:
        for n, items in enumerate([[{"name": "Tent"}], [{"name": "Mug", "quantity": 3}],
                                   [{"name": "Tent"}]]):
            s.add(ConversionEvent(event_id=f"o{n}", type="x", customer_id="de",
                                  occurred_at=datetime(2026, 1, 1 + n), data={"items": items}))
    async with cascade_of(ts_env, settings, campaign, ["de"], event={"total": 1234.5}) as c:
        assert await c.finish("de") == "completed"
    [e] = c.rows
    [mail] = outbox(settings, "de")
    assert mail.subject == "Back: Mug"  # 3 mugs beat 2 tents
    assert mail.body == "1.234,50\xa0€"
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(Enrollment.order_strategy).where(
            Enrollment.id == e.id)) == "as_written"
