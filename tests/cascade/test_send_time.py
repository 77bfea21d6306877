"""Send-time optimisation (`send_time: best`, issue 16): the best hour of the week from the
customer's own opens, clicks and conversions (else the audience's on the channel, else as
scheduled), never more than `max_delay` after the step was due, outside quiet hours, asked
once and kept; on the time-skipping server the send waits for that hour and a conversion
during the wait stops the cascade. Preview shows the choice and why."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import ActivityEnvironment

from omnicascade.campaign.load import load_campaign
from omnicascade.campaign.model import CampaignSpec, QuietHours
from omnicascade.campaign.problems import SpecError
from omnicascade.campaign.steps import SendTimePolicy
from omnicascade.campaign.variants import assign_variant, variant_steps
from omnicascade.cascade.decision import Defer, Recipient, Send, Situation, Skip, decide
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.preview import preview
from omnicascade.cascade.send_history import (
    customer_engagements,
    forget_audience,
    ledger_send_time,
)
from omnicascade.cascade.send_time import Engagements, SendTimeFacts, choose, week_minute
from omnicascade.cli import display
from omnicascade.clock import RunClock
from omnicascade.db.models import ConversionEvent, Delivery, DeliveryEvent
from omnicascade.db.session import session_scope
from omnicascade.reports.build import build_report
from omnicascade.reports.format import reasons
from omnicascade.vocabulary import REASON_LABELS, SkipReason
from omnicascade.workflows.types import DeliverInput, Stage, StepPlan
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import (
    add_customers,
    cascade_of,
    convert,
    deliveries,
    outbox,
    outbox_activities,
)

BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=BERLIN)  # a step due Tuesday 10:00 in Berlin
BEST = SendTimePolicy(max_delay_s=86_400, min_events=3)


@pytest.fixture(autouse=True)
def _fresh_audience():
    forget_audience()  # the audience history is cached per process: never across tests
    yield
    forget_audience()


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """December `day`, 2026, in Berlin (the 1st is a Tuesday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


def opens(*at: datetime, zone: ZoneInfo = BERLIN, kind: str = "open") -> Engagements:
    return Engagements(tuple(week_minute(t, zone) for t in at), frozenset({kind}))


# Six of nine opens on Tuesday evenings between 20:00 and 22:00, three elsewhere.
EVENING = opens(local(1, 20, 10), local(1, 20, 30), local(8, 20, 50), local(8, 21, 10),
                local(15, 21, 30), local(15, 21, 50),
                local(7, 9), local(3, 13), local(5, 11))


def test_six_of_nine_opens_on_tuesday_evenings_choose_tuesday_21_00():
    assert TUESDAY.weekday() == 1
    choice = choose(TUESDAY, BERLIN, SendTimeFacts(BEST, "email", EVENING))
    # 20:00 counts 19:00–21:00 (3), 21:00 counts 20:00–22:00 (6), 22:00 counts 21:00–23:00 (3)
    assert choice.at == local(1, 21)  # the instant: 20:00 UTC
    assert choice.source == "customer"
    assert choice.why == "21:00 Tue: 6 of 9 opens between 20:00 and 22:00"


def test_the_hour_is_the_customers_own_in_their_zone():
    tokyo = opens(*(datetime(2026, 12, d, 21, m, tzinfo=TOKYO) for d, m in
                    ((1, 5), (8, 15), (15, 25))), zone=TOKYO)
    due = datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO)
    choice = choose(due, TOKYO, SendTimeFacts(BEST, "email", tokyo))
    assert choice.at == datetime(2026, 12, 1, 21, 0, tzinfo=TOKYO)
    assert choice.at.astimezone(UTC).hour == 12


def test_too_few_events_use_the_audiences_best_hour_on_the_channel():
    mine = opens(local(1, 21), local(8, 21))                      # 2 < min_events 3
    audience = opens(*(local(2, 9, 30) for _ in range(5)))        # Wednesdays 09:30
    choice = choose(TUESDAY, BERLIN, SendTimeFacts(BEST, "email", mine, audience))
    assert choice.at == local(2, 9) and choice.source == "audience"  # 09:00 ties 10:00
    assert choice.why == ("09:00 Wed: audience best hour, 5 of 5 opens on email between "
                          "08:00 and 10:00")


def test_without_enough_engagement_anywhere_the_step_goes_as_scheduled():
    none = choose(TUESDAY, BERLIN, SendTimeFacts(BEST, "email"))
    assert (none.at, none.source, none.why) == (TUESDAY, "scheduled",
                                                "as scheduled: no engagement recorded yet")
    one = choose(TUESDAY, BERLIN, SendTimeFacts(BEST, "email", opens(local(1, 21)),
                                                opens(local(1, 21))))
    assert (one.at, one.why) == (TUESDAY, "as scheduled: only 1 engagement")


def test_mixed_engagement_is_counted_as_engagements():
    mixed = Engagements(EVENING.minutes, frozenset({"open", "click", "conversion"}))
    assert choose(TUESDAY, BERLIN, SendTimeFacts(BEST, "email", mixed)).why.endswith(
        "6 of 9 engagements between 20:00 and 22:00")


def test_max_delay_caps_how_far_the_send_moves():
    six_hours = SendTimeFacts(SendTimePolicy(6 * 3600, 3), "email", opens(
        *(local(d, 21, 15) for d in (1, 8, 15))))
    capped = choose(TUESDAY, BERLIN, six_hours)  # 21:15 is 11 h away: out of reach
    assert capped.at == TUESDAY and capped.source == "scheduled"
    assert capped.why == "as scheduled: no engagement near any hour within 6h"
    twelve = dataclasses.replace(six_hours, policy=SendTimePolicy(12 * 3600, 3))
    assert choose(TUESDAY, BERLIN, twelve).at == local(1, 21)
    # whatever the history, never later than max_delay after the step was due
    for hour in range(24):
        due = local(1, hour, 20)
        at = choose(due, BERLIN, SendTimeFacts(SendTimePolicy(5 * 3600, 3), "email",
                                               EVENING)).at
        assert due <= at <= due + timedelta(hours=5)


def test_on_another_weekday_the_same_time_of_day_wins():
    thursday = local(3, 10)  # no Tuesday in the next 24 h: Thursday 21:00 (any day)
    choice = choose(thursday, BERLIN, SendTimeFacts(BEST, "email", EVENING))
    assert choice.at == local(3, 21)
    assert choice.why == "21:00 Thu: 6 of 9 opens between 20:00 and 22:00 on any day"


def test_quiet_hours_still_apply_at_the_chosen_time():
    quiet = QuietHours(start="21:00", end="09:00")
    choice = choose(TUESDAY, BERLIN, SendTimeFacts(BEST, "email", EVENING), quiet)
    assert choice.at == local(1, 20)  # 21:00 is quiet: the best hour outside them
    assert choice.why == "20:00 Tue: 3 of 9 opens between 19:00 and 21:00"


def situation(now: datetime, facts: SendTimeFacts | None, **kw: object) -> Situation:
    return Situation("email", Recipient({"email": "a@example.com"}, timezone="Europe/Berlin"),
                     now.astimezone(UTC), send_time=facts, **kw)  # type: ignore[arg-type]


def test_the_guard_defers_once_then_sends_and_skips_still_win():
    facts = SendTimeFacts(BEST, "email", EVENING)
    assert decide(situation(TUESDAY, facts)) == Defer(local(1, 21), SkipReason.SEND_TIME)
    assert REASON_LABELS[SkipReason.SEND_TIME] == "best send time"
    # asked again: the instant the ledger recorded is kept, and once it has come, sent
    planned = dataclasses.replace(facts, planned=local(1, 21).astimezone(UTC))
    assert decide(situation(local(1, 21), planned)) == Send("a@example.com")
    assert decide(situation(local(1, 20), planned)) == Defer(planned.planned,  # type: ignore
                                                             SkipReason.SEND_TIME)
    assert decide(situation(TUESDAY, facts, converted=True)) == Skip(SkipReason.CONVERTED)
    assert decide(situation(TUESDAY, facts, skip_if=frozenset({"opened"}),
                            engaged=frozenset({"opened"}))) == Skip(SkipReason.ENGAGED)
    # quiet hours that skip (not defer) the step now: the skip wins over moving it
    skip = QuietHours(start="09:00", end="12:00", mode="skip")
    assert decide(situation(TUESDAY, facts, quiet_hours=skip)) == Skip(SkipReason.QUIET_HOURS)
    # quiet hours that defer: the best hour is chosen outside them
    defer = QuietHours(start="09:00", end="12:00")
    assert decide(situation(TUESDAY, facts, quiet_hours=defer)) == Defer(
        local(1, 21), SkipReason.SEND_TIME)


STO_YAML = """\
campaign: sto
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
send_time: best
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms,   send_time: scheduled}
"""


def test_the_yaml_campaign_wide_per_step_and_in_a_variant(tmp_path):
    spec = load_campaign(write_campaign(tmp_path / "c", STO_YAML + "max_delay: 12h\n")).spec
    email, sms = spec.steps
    assert spec.send_time_for(email) == SendTimePolicy(43_200, 3) and not spec.send_time_for(sms)
    ab = CampaignSpec.model_validate({
        "campaign": "ab", "steps": [{"channel": "email", "template": "t"}],
        "experiment": {"variants": {"control": {"weight": 50}, "sto": {"weight": 50, "steps": [
            {"channel": "email", "template": "t", "send_time": "best", "max_delay": "6h"}]}}}})
    assert ab.send_time_for(variant_steps(ab, "control")[0]) is None
    assert ab.send_time_for(variant_steps(ab, "sto")[0]) == SendTimePolicy(21_600, 3)


def test_an_unknown_send_time_is_reported_at_its_place(tmp_path):
    bad = STO_YAML.replace("send_time: scheduled", "send_time: sometimes") + "max_delay: 1x\n"
    with pytest.raises(SpecError) as err:
        load_campaign(write_campaign(tmp_path / "c", bad))
    text = str(err.value)
    assert "campaign.yaml:7:52: unknown send_time value 'sometimes'; use best" in text
    assert "campaign.yaml:8:12: max_delay: '1x' is not a duration" in text


# --- stored engagement (SQLite and PostgreSQL) -------------------------------------------

def store_history(settings, customer_id: str, at: list[datetime], event: str = "open",  # noqa: ANN001
                  channel: str = "email", prefix: str = "old") -> None:
    """Earlier messages to the customer, each with one feedback event at `at`."""
    with session_scope(settings.db_url) as s:
        for n, when in enumerate(at):
            did = f"{prefix}-{customer_id}-{event}-{n}:0"
            s.add(Delivery(id=did, enrollment_id=f"{prefix}-{n}", run_id=prefix,
                           customer_id=customer_id, step_key="0", step_index=0,
                           phase="cascade", channel=channel, template="t", status="sent"))
            s.add(DeliveryEvent(delivery_id=did, provider="sendgrid", event=event,
                                occurred_at=when.astimezone(UTC).replace(tzinfo=None)))


@pytest.mark.db
def test_history_counts_opens_clicks_and_conversions_never_machine_opens(settings):
    add_customers(settings, {"id": "h1", **FULL, "timezone": "Europe/Berlin"})
    store_history(settings, "h1", [local(1, 21), local(8, 21, 30)])
    store_history(settings, "h1", [local(15, 20, 45)], event="click")
    store_history(settings, "h1", [local(1, 9)] * 4, event="machine_open")
    with session_scope(settings.db_url) as s:
        s.add(ConversionEvent(event_id="c-1", type="order_placed", customer_id="h1",
                              occurred_at=local(22, 21, 5).astimezone(UTC).replace(tzinfo=None)))
    with session_scope(settings.db_url) as s:
        mine = customer_engagements("h1", BERLIN, session=s)
    assert sorted(mine.minutes) == sorted(week_minute(t, BERLIN) for t in (
        local(1, 21), local(8, 21, 30), local(15, 20, 45), local(22, 21, 5)))
    assert mine.kinds == {"open", "click", "conversion"}


@pytest.mark.db
def test_the_ledger_keeps_a_send_time_deferral_on_the_runs_clock(settings, tmp_path):
    spec = load_campaign(write_campaign(tmp_path / "c", STO_YAML)).spec
    email = StepPlan("0", 0, "email", "t_email", 86400)
    wall = datetime(2026, 12, 1, 10, 0, 5)
    rehearsal = RunClock(datetime(2026, 12, 1, 10, 0), 3600.0)
    row = Delivery(id="e:0", status="deferred", reason="send_time", deferred_until=wall)
    with session_scope(settings.db_url) as s:
        kept = ledger_send_time(spec, "default", email, row, None, rehearsal, session=s)
        assert kept is not None and kept.planned == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
        quiet = Delivery(id="e:0", status="deferred", reason="quiet_hours", deferred_until=wall)
        assert ledger_send_time(spec, "default", email, quiet, None, rehearsal,
                                session=s) is None  # decided already: never moved twice
        sms = StepPlan("1", 1, "sms", "t_sms", 0)
        assert ledger_send_time(spec, "default", sms, None, None, rehearsal, session=s) is None


def daily_at(now: datetime, zone: ZoneInfo, ahead: timedelta) -> list[datetime]:
    """An open at the same local time of day (`ahead` of now) on each of the past 7 days:
    every weekday's best hour is that time."""
    return [now + ahead - timedelta(days=d) for d in range(1, 8)]


def _rehearsal_run(settings, folder: Path, scale: float) -> str:  # noqa: ANN001
    with session_scope(settings.db_url) as s:
        run = create_run(load_campaign(write_campaign(folder, STO_YAML.replace(
            "campaign: sto", f"campaign: {folder.name}"))), session=s, time_scale=scale)
        return enroll_customers(run, ["r1"], session=s)[0].id


@pytest.mark.db
@pytest.mark.asyncio
async def test_a_rehearsal_defers_on_its_own_clock_and_sends_when_the_hour_comes(settings,
                                                                                 tmp_path):
    add_customers(settings, {"id": "r1", **FULL, "timezone": "Asia/Tokyo"})
    now = datetime.now(UTC)
    store_history(settings, "r1", daily_at(now, TOKYO, timedelta(hours=10)))
    eid = _rehearsal_run(settings, tmp_path / "fast", 3600)
    email = DeliverInput(eid, StepPlan("0", 0, "email", "t_email", 86400))
    acts = outbox_activities(settings)
    first = await ActivityEnvironment().run(acts.deliver_step, email)
    assert (first.status, first.reason) == ("deferred", "send_time")
    # some ten campaign hours away (less the hours the set-up took): seconds of a ×3600
    until = datetime.fromisoformat(first.defer_until)
    assert timedelta(seconds=2) < until - now < timedelta(seconds=11)
    env = ActivityEnvironment()  # the workflow's timer fires: the next attempt is due then
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=until)
    second = await env.run(acts.deliver_step, email)
    assert second.status == "sent" and len(outbox(settings, "r1")) == 1


# --- the cascade on the time-skipping server ---------------------------------------------

async def _tokyo_customer(ts_env, settings, tmp_path):  # noqa: ANN001
    """One customer in Tokyo whose opens come at the same time every day, about 5½ hours
    after the server's clock; the best-send-time campaign and that favourite time."""
    add_customers(settings, {"id": "s1", **FULL, "timezone": "Asia/Tokyo"})
    server_now = (await ts_env.get_current_time()).astimezone(UTC)
    favourite = server_now + timedelta(hours=5, minutes=30)
    store_history(settings, "s1", daily_at(server_now, TOKYO, timedelta(hours=5, minutes=30)))
    return write_campaign(tmp_path / "sto", STO_YAML), favourite


@pytest.mark.db
@pytest.mark.asyncio
async def test_the_send_waits_for_the_customers_best_hour(ts_env, settings, tmp_path):
    campaign, favourite = await _tokyo_customer(ts_env, settings, tmp_path)
    async with cascade_of(ts_env, settings, campaign, ["s1"]) as c:
        await c.wait("s1", Stage.DEFERRED, "0")  # the email deferred to that hour
        assert await c.finish("s1") == "completed"
        progress = await c.progress("s1")
    [e] = c.rows
    steps = [(x.step, x.status, x.reason) for x in progress.timeline]
    assert steps == [("0", "deferred", "send_time"), ("0", "sent", None), ("1", "sent", None)]
    due, sent = (datetime.fromisoformat(x.at) for x in progress.timeline[:2])
    at = sent.astimezone(TOKYO)
    assert at.minute == 0 and timedelta(hours=3) < sent - due <= timedelta(hours=24)
    gap = abs((at - favourite.astimezone(TOKYO)).total_seconds()) % 86_400
    assert min(gap, 86_400 - gap) < 3600  # the whole hour nearest their daily open
    assert deliveries(settings, e.id) == {"0": ("sent", None), "1": ("sent", None)}
    assert [m.channel for m in outbox(settings, "s1")] == ["email", "sms"]


@pytest.mark.db
@pytest.mark.asyncio
async def test_a_conversion_during_the_wait_for_the_best_hour_ends_the_cascade(
        ts_env, settings, tmp_path):
    campaign, _ = await _tokyo_customer(ts_env, settings, tmp_path)
    async with cascade_of(ts_env, settings, campaign, ["s1"]) as c:
        await c.wait("s1", Stage.DEFERRED, "0")
        await convert(ts_env.client, settings, "s1")
        assert await c.finish("s1") == "converted"
    [e] = c.rows
    # never sent, and no longer shown pending (issue 27: ended means ended)
    assert deliveries(settings, e.id) == {"0": ("skipped", "converted")}
    assert outbox(settings, "s1") == []


AB_YAML = """\
campaign: sto-ab
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
experiment:
  variants:
    control: {weight: 50}
    best_time:
      weight: 50
      steps:
        - {channel: email, template: t_email, wait: 24h, send_time: best}
"""


@pytest.mark.db
@pytest.mark.asyncio
async def test_an_experiment_with_and_without_best_send_time_reports_them_apart(
        ts_env, settings, tmp_path):
    campaign = write_campaign(tmp_path / "ab", AB_YAML)
    spec = load_campaign(campaign).spec
    ids = [f"v{i}" for i in range(40)]
    first = {assign_variant(spec, i): i for i in reversed(ids)}
    people = [first["control"], first["best_time"]]
    server_now = (await ts_env.get_current_time()).astimezone(UTC)
    for cid in people:
        add_customers(settings, {"id": cid, **FULL, "timezone": "Asia/Tokyo"})
        store_history(settings, cid, daily_at(server_now, TOKYO, timedelta(hours=6, minutes=30)))
    async with cascade_of(ts_env, settings, campaign, people) as c:
        await c.wait(first["best_time"], Stage.DEFERRED, "0")
        await c.wait(first["control"], Stage.WAITING)
        with session_scope(settings.db_url) as s:
            report = build_report(c.run_id, session=s, settings=settings)
        for cid in people:  # both still wait on a timer: they must not outlive their worker
            await c.handle(cid).terminate()
    funnels = report["funnel"]["by_variant"]
    control, best = funnels["control"][0], funnels["best_time"][0]
    assert (control["sent"], control["timed"]) == (1, 0)
    assert (best["sent"], best["timed"], best["deferred"]) == (0, 1, 0)  # not quiet hours
    assert "(waiting for the best send time: 1)" in reasons(
        best["skipped_by_reason"], best["deferred"], best["held"], best["timed"])


# --- preview -------------------------------------------------------------------------------

@pytest.mark.db
def test_preview_shows_the_chosen_time_and_why(settings, tmp_path):
    add_customers(settings, {"id": "p1", **FULL, "timezone": "Europe/Berlin"},
                  {"id": "p2", **FULL, "timezone": "Europe/Berlin"})
    store_history(settings, "p1", [local(1, 20, 10), local(1, 20, 30), local(8, 20, 50),
                                   local(8, 21, 10), local(15, 21, 30), local(15, 21, 50),
                                   local(7, 9), local(3, 13), local(5, 11)])
    store_history(settings, "p2", [local(1, 21)], prefix="p2")
    loaded = load_campaign(write_campaign(tmp_path / "c", STO_YAML))
    with session_scope(settings.db_url) as s:
        items = preview(loaded, "p1", session=s, settings=settings, start=TUESDAY)
        email, sms = items
        assert email["send_time"] == {"at": local(1, 21).isoformat(), "source": "customer",
                                      "why": "21:00 Tue: 6 of 9 opens between 20:00 and 22:00"}
        assert email["send_time_from"] == TUESDAY.isoformat()
        assert email["at"] == local(1, 21).isoformat()
        assert "send_time" not in sms and sms["at"] == local(2, 21).isoformat()  # +24 h wait
        with display.console.capture() as out:
            display.preview_messages(items)
        text = out.get()
        assert "best send time: moved from 2026-12-01 10:00 Europe/Berlin" in text
        assert "send time: 21:00 Tue: 6 of 9 opens between 20:00 and 22:00" in text
        # the audience has 10 opens on email now: too few of p2's own, the audience's hour
        forget_audience()
        audience = preview(loaded, "p2", session=s, settings=settings, start=TUESDAY)[0]
        assert audience["send_time"]["source"] == "audience"
        assert audience["send_time"]["why"].startswith("21:00 Tue: audience best hour, ")
        plain = load_campaign(write_campaign(tmp_path / "plain", STO_YAML.replace(
            "send_time: best\n", "")))
        assert all("send_time" not in i for i in preview(plain, "p1", session=s,
                                                         settings=settings, start=TUESDAY))
