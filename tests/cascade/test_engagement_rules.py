"""`skip_if` piece by piece: the guard in the one decision, `campaign validate` on unknown
values (steps and variant overrides), what the send activity reads (this cascade's earlier
messages only), preview's planned note, and what the report says skipping saved."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from omnicascade.activities.ledger import engaged_before
from omnicascade.campaign.load import load_campaign
from omnicascade.campaign.model import QuietHours
from omnicascade.campaign.problems import SpecError
from omnicascade.cascade.decision import (
    GUARDS,
    PLANNED,
    Defer,
    Recipient,
    Send,
    Situation,
    Skip,
    decide,
)
from omnicascade.cascade.preview import preview
from omnicascade.db.models import DeliveryEvent
from omnicascade.db.session import session_scope
from omnicascade.reports.build import build_report
from omnicascade.reports.html import render_html
from omnicascade.reports.terminal import report_view
from omnicascade.vocabulary import ENGAGEMENTS, SkipReason, reason_label
from tests.helpers.campaigns import CASCADE_YAML, FULL, write_campaign
from tests.helpers.cascades import add_customers
from tests.helpers.reports import T0, launch, member, send

NOON = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
ADA = Recipient({"sms": "+4915112345678"})


def situation(**kw: object) -> Situation:
    return Situation(**{"channel": "sms", "recipient": ADA, "now": NOON, **kw})  # type: ignore


# ---- the guard ---------------------------------------------------------------------------

def test_an_engagement_named_in_skip_if_skips_the_step_as_engaged():
    clicked = frozenset({"clicked"})
    assert decide(situation(skip_if=clicked, engaged=clicked)) == Skip(SkipReason.ENGAGED)
    assert decide(situation(skip_if=frozenset({"opened", "clicked"}),
                            engaged=clicked)) == Skip(SkipReason.ENGAGED)
    # engaged, but not in a way the step names; or no skip_if at all: sent
    assert decide(situation(skip_if=clicked, engaged=frozenset({"opened"}))) == \
        Send("+4915112345678")
    assert decide(situation(engaged=clicked)) == Send("+4915112345678")


def test_engaged_comes_after_the_reach_guards_and_before_quiet_hours_and_the_cap():
    engaged = {"skip_if": frozenset({"opened"}), "engaged": frozenset({"opened"})}
    assert decide(situation(converted=True, **engaged)) == Skip(SkipReason.CONVERTED)
    assert isinstance(decide(situation(paused=True, **engaged)), Defer)
    assert decide(situation(recipient=Recipient({}), **engaged)) == \
        Skip(SkipReason.NO_ADDRESS)  # would not have gone out anyway: nothing saved
    quiet = QuietHours(start="11:00", end="13:00")
    assert isinstance(decide(situation(quiet_hours=quiet)), Defer)
    assert decide(situation(quiet_hours=quiet, **engaged)) == Skip(SkipReason.ENGAGED)
    assert decide(situation(**engaged), PLANNED) == Send("+4915112345678")  # preview
    assert decide(situation(**engaged), GUARDS) == Skip(SkipReason.ENGAGED)


def test_the_reason_has_a_label():
    assert SkipReason.ENGAGED == "engaged" and reason_label("engaged") == "already engaged"
    assert ENGAGEMENTS == ("delivered", "opened", "clicked", "replied")


# ---- campaign validate -------------------------------------------------------------------

def _problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_campaign(path)
    return [str(p) for p in info.value.problems]


def test_validate_rejects_an_unknown_skip_if_value_with_file_line_col(tmp_path):
    text = CASCADE_YAML.replace("template: t_sms,      wait: 24h",
                                "template: t_sms, wait: 24h, skip_if: [clicked, bought]")
    file = write_campaign(tmp_path / "a", text)
    line = text.splitlines()[8]
    assert _problems(file) == [
        f"{file}:9:{line.index('bought') + 1}: unknown skip_if value 'bought'; use one of "
        f"delivered, opened, clicked, replied"]


def test_skip_if_is_allowed_and_checked_in_a_variant_step_override(tmp_path):
    block = """\
experiment:
  variants:
    control: {weight: 50}
    thrifty:
      weight: 50
      steps:
        - {channel: email, template: t_email, wait: 24h}
        - {channel: sms, template: t_sms, skip_if: [opened, clicked]}
"""
    spec = load_campaign(write_campaign(tmp_path / "ok", CASCADE_YAML + block)).spec
    assert spec.experiment is not None
    steps = spec.experiment.variants["thrifty"].steps or []
    assert [s.skip_if for s in steps] == [[], ["opened", "clicked"]]
    assert all(s.skip_if == [] for s in spec.steps)
    text = CASCADE_YAML + block.replace("[opened, clicked]", "[opend]")
    file = write_campaign(tmp_path / "bad", text)
    [problem] = _problems(file)
    n = next(i for i, ln in enumerate(text.splitlines(), 1) if "opend" in ln)
    col = text.splitlines()[n - 1].index("opend") + 1
    assert problem.startswith(f"{file}:{n}:{col}: unknown skip_if value 'opend'")


def test_skip_if_leaves_existing_campaigns_unchanged(tmp_path):
    """A campaign without skip_if hashes and snapshots as before (no new version)."""
    loaded = load_campaign(write_campaign(tmp_path / "c", CASCADE_YAML))
    from omnicascade.cascade.versions import content_hash
    spec = loaded.snapshot()["spec"]
    assert all(s["skip_if"] == [] for s in spec["steps"])
    for s in spec["steps"]:
        del s["skip_if"]  # a snapshot written before skip_if existed
    assert content_hash({**loaded.snapshot(), "spec": spec}) == content_hash(loaded.snapshot())


# ---- what the send activity reads --------------------------------------------------------

@pytest.mark.db
def test_only_this_cascades_earlier_messages_count(settings, tmp_path):
    run_id = launch(settings, tmp_path / "r", CASCADE_YAML)
    with session_scope(settings.db_url) as s:
        mine, other = member(s, run_id, "u1", "default"), member(s, run_id, "u2", "default")
        send(s, mine, 0, "email", T0, feedback=("delivered", "machine_open"))
        send(s, other, 0, "email", T0, feedback=("delivered", "open", "click"))
        s.flush()
        kinds = frozenset(ENGAGEMENTS)
        assert engaged_before(mine.id, f"{mine.id}:1", kinds, session=s) == {"delivered"}
        assert engaged_before(other.id, f"{other.id}:1", kinds, session=s) == \
            {"delivered", "opened", "clicked"}
        # the step's own row never counts as "earlier"
        assert engaged_before(other.id, f"{other.id}:0", kinds, session=s) == frozenset()
        s.add(DeliveryEvent(delivery_id=f"{mine.id}:0", provider="webhook", event="replied",
                            provider_event_id="r-1", occurred_at=T0 + timedelta(hours=1)))
        s.flush()
        assert engaged_before(mine.id, f"{mine.id}:1", frozenset({"replied", "opened"}),
                              session=s) == {"replied"}


# ---- preview -----------------------------------------------------------------------------

@pytest.mark.db
def test_preview_says_the_step_may_be_skipped_when_engaged(settings, tmp_path):
    text = CASCADE_YAML.replace("template: t_sms,      wait: 24h",
                                "template: t_sms, wait: 24h, skip_if: [clicked]")
    loaded = load_campaign(write_campaign(tmp_path / "p", text))
    add_customers(settings, {"id": "c1", **FULL})
    with session_scope(settings.db_url) as s:
        items = preview(loaded, "c1", session=s, settings=settings)
    sms = next(i for i in items if i["channel"] == "sms")
    assert sms["skip_if"] == ["clicked"] and "skipped" not in sms
    assert sms["may_skip"].startswith("may be skipped (engaged)") and "clicked" in sms["may_skip"]
    assert all("may_skip" not in i for i in items if i["channel"] != "sms")


# ---- reports -----------------------------------------------------------------------------

@pytest.mark.db
def test_the_report_counts_what_skipping_saved(settings, tmp_path):
    yaml = """\
campaign: saved
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms,   wait: 24h, skip_if: [clicked]}
  - {channel: push,  template: t_push}
"""
    run_id = launch(settings, tmp_path / "r", yaml)
    with session_scope(settings.db_url) as s:
        for who, clicked in (("u1", True), ("u2", True), ("u3", False)):
            e = member(s, run_id, who, "default")
            send(s, e, 0, "email", T0, feedback=("delivered", "open", "click") if clicked
                 else ("delivered", "machine_open"))
            t = T0 + timedelta(hours=24)
            if clicked:
                send(s, e, 1, "sms", t, "skipped", "engaged")
            else:
                send(s, e, 1, "sms", t)
            send(s, e, 2, "push", t if clicked else t + timedelta(hours=24))
    with session_scope(settings.db_url) as s:
        r = build_report(run_id, session=s, settings=settings)
    assert r["economics"]["saved_by_engagement"] == {"messages": 2, "cost": 0.1,
                                                     "cost_currency": "USD"}
    email, sms, _ = r["steps"]
    assert sms["skipped_by_reason"] == {"engaged": 2} and sms["sent"] == 1
    assert (email["delivered"], email["opened"], email["clicked"]) == (3, 2, 2)  # human opens
    console = Console(width=220, record=True, file=io.StringIO())
    for item in report_view(r):
        console.print(item)
    text = console.export_text()
    assert "already engaged 2" in text
    assert "saved by engagement: 2 messages not sent" in text and "0.10" in text
    html = render_html(r)
    assert "saved by engagement: 2 messages not sent" in html and "already engaged 2" in html


@pytest.mark.db
async def test_the_send_activity_asks_about_engagement_only_for_a_step_with_skip_if(
        settings, tmp_path):
    from sqlalchemy import event

    from omnicascade.activities.ledger import load_facts
    from omnicascade.clock import now_utc
    from omnicascade.workflows.types import DeliverInput, StepPlan
    from tests.helpers.cascades import enroll
    text = CASCADE_YAML.replace("template: t_sms,      wait: 24h",
                                "template: t_sms, wait: 24h, skip_if: [clicked]")
    add_customers(settings, {"id": "c1", **FULL})
    _, [e] = await enroll(None, settings, write_campaign(tmp_path / "q", text),  # type: ignore
                          ["c1"], start=False)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        statements.append(statement)

    for step, engagement, asked in ((StepPlan("0", 0, "email", "t_email", 86400), True,
                                     False),
                                    (StepPlan("1", 1, "sms", "t_sms", 86400), True, True),
                                    (StepPlan("1", 1, "sms", "t_sms", 86400), False,
                                     False)):  # the last guard (claim) does not ask
        statements.clear()
        with session_scope(settings.db_url) as s:
            engine = s.get_bind()
            event.listen(engine, "before_cursor_execute", seen)
            try:
                facts = load_facts(DeliverInput(e.id, step), now_utc(), session=s,
                                   engagement=engagement)
            finally:
                event.remove(engine, "before_cursor_execute", seen)
        assert statements and sum("delivery_events" in st for st in statements) == int(asked)
        assert facts.situation.skip_if == (frozenset({"clicked"}) if asked else frozenset())
