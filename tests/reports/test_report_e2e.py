"""End to end: a campaign with two variants and a holdout runs real cascades on the
time-skipping Temporal server (real activities, outbox provider, SQLite), customers buy
at scripted moments, and every count in the report is checked — through the library and
through the installed `omnicascade report` command (JSON, HTML, CSV)."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.cascade_input import cascade_input
from omnicascade.cascade.conversions import ConversionIn, record_conversion, tell_cascades
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.lifecycle import activate
from omnicascade.cascade.temporal import start_cascade
from omnicascade.clock import now_utc
from omnicascade.db.models import Delivery, Enrollment
from omnicascade.db.session import session_scope
from omnicascade.reports.build import build_report
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, finish, handle, running_worker
from tests.helpers.cli import home_env, run_cli
from tests.helpers.reports import EXPERIMENT_YAML
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.asyncio
NO_PHONE = {k: v for k, v in FULL.items() if k != "phone"}
PEOPLE = {"control": {"c1": FULL, "c2": FULL, "c3": NO_PHONE, "c4": FULL, "c5": FULL},
          "sms_first": {"s1": FULL, "s2": FULL, "s3": NO_PHONE, "s4": FULL},
          "holdout": {"h1": FULL, "h2": FULL, "h3": FULL}}
AMOUNT = {"c1": 100.0, "s1": 80.0, "c2": 50.0, "s2": 60.0, "c4": 30.0, "c5": 20.0,
          "h1": 40.0}


async def buy(client, settings, customer_id: str, signal: bool = True) -> None:
    with session_scope(settings.db_url) as s:
        outcome = record_conversion(ConversionIn(
            event_id=f"order-{customer_id}", type="order_placed", customer_id=customer_id,
            amount=AMOUNT[customer_id], currency="EUR"), session=s)
    if signal:
        await tell_cascades(client, outcome)


async def rows_settled(settings, expected: dict[str, set[str]], timeout: float = 30) -> None:
    """Wait until each customer's cascade steps (keys) exist and are final."""
    def settled() -> bool:
        with session_scope(settings.db_url) as s:
            got: dict[str, set[str]] = {}
            for d in s.scalars(select(Delivery).where(Delivery.phase == "cascade")):
                if d.status not in ("sending", "retrying"):
                    got.setdefault(d.customer_id, set()).add(d.step_key)
        return all(keys <= got.get(c, set()) for c, keys in expected.items())
    await eventually(settled, f"the cascade steps {expected} to settle", timeout)


@pytest.fixture
async def finished_run(ts_env, settings, tmp_path) -> str:
    campaign = write_campaign(tmp_path / "campaign", EXPERIMENT_YAML)
    add_customers(settings, *({"id": c, **addr} for group in PEOPLE.values()
                              for c, addr in group.items()))
    client = ts_env.client
    with session_scope(settings.db_url) as s:
        run = create_run(load_campaign(campaign), session=s)
        rows = enroll_customers(run, [c for g in PEOPLE.values() for c in g], session=s)
        for e in rows:
            e.variant = next(v for v, g in PEOPLE.items() if e.customer_id in g)
            if e.variant == "holdout":  # no cascade at all; only their purchases count
                e.status, e.started_at, e.finished_at = "completed", now_utc(), now_utc()
        s.flush()
        inputs = {e.customer_id: cascade_input(run, e, settings) for e in rows
                  if e.variant != "holdout"}
        run_id = run.id
    async with running_worker(ts_env, settings):
        await buy(client, settings, "c5", signal=False)  # bought before any message
        for inp in inputs.values():
            await start_cascade(client, settings, inp)
        with session_scope(settings.db_url) as s:
            activate([i.enrollment_id for i in inputs.values()], session=s)
        # day 0: first step out (s3 has no phone: straight on to its email)
        await rows_settled(settings, {"c1": {"0"}, "c2": {"0"}, "c3": {"0"}, "c4": {"0"},
                                      "c5": {"0"}, "s1": {"0"}, "s2": {"0"},
                                      "s3": {"0", "1"}, "s4": {"0"}})
        for c in ("c1", "s1", "h1"):
            await buy(client, settings, c)
        await ts_env.sleep(timedelta(hours=24, seconds=1))
        # day 1: second step (c3 has no phone: straight on to its push)
        await rows_settled(settings, {"c2": {"1"}, "c3": {"1", "2"}, "c4": {"1"},
                                      "s2": {"1"}, "s3": {"2"}, "s4": {"1"}})
        for c in ("c2", "s2"):
            await buy(client, settings, c)
        await ts_env.sleep(timedelta(hours=24, seconds=1))
        # day 2: the push
        await rows_settled(settings, {"c4": {"2"}, "s4": {"2"}})
        await buy(client, settings, "c4")  # after the last step: the cascade had ended
        for c, inp in inputs.items():
            outcome = await finish(ts_env, handle(client, inp.enrollment_id))
            assert outcome == ("converted" if c in AMOUNT and c != "c4" else "completed"), c
    return run_id


def _steps(rows: list[dict]) -> dict:
    return {(r["phase"][0], r["index"], r["channel"]):
            (r["reached"], r["sent"], r["skipped"], r["skipped_by_reason"], r["converted_after"])
            for r in rows}


def check(report: dict) -> None:
    assert (report["enrolled"], report["converted"], report["excluded"], report["active"]) == \
        (12, 7, 0, 0)
    # messages of the cascades; the review requests after a sale are their own line
    assert {n: (v["enrolled"], v["converted"], v["messages_sent"], v["revenue"],
                v["revenue_currency"], v["after_conversion"]["messages"])
            for n, v in report["variants"].items()} == {
        "control": (5, 4, 4 + 2 + 2, 200.0, "EUR", 3),
        "sms_first": (4, 2, 3 + 3 + 2, 140.0, "EUR", 2), "holdout": (3, 1, 0, 40.0, "EUR", 0)}
    assert _steps(report["funnel"]["by_variant"]["control"]) == {
        ("c", 0, "email"): (5, 4, 1, {"converted": 1}, 1),
        ("c", 1, "sms"): (3, 2, 1, {"no_address": 1}, 1),
        ("c", 2, "push"): (2, 2, 0, {}, 1),
        ("f", 0, "email"): (3, 3, 0, {}, 0)}  # c4 bought after its cascade ended
    assert _steps(report["funnel"]["by_variant"]["sms_first"]) == {
        ("c", 0, "sms"): (4, 3, 1, {"no_address": 1}, 1),
        ("c", 1, "email"): (3, 3, 0, {}, 1),
        ("c", 2, "push"): (2, 2, 0, {}, 0),
        ("f", 0, "email"): (2, 2, 0, {}, 0)}
    assert report["funnel"]["by_variant"]["holdout"] == []
    a = report["attribution"]
    assert {ch: (r["conversions"], r["revenue"]) for ch, r in a["by_channel"].items()} == \
        {"email": (2, 160.0), "push": (1, 30.0), "sms": (2, 130.0)}
    assert {k: (r["conversions"], r["revenue"], r["revenue_currency"])
            for k, r in a["no_prior_message"].items()} == {
        "holdout": (1, 40.0, "EUR"), "before_first_message": (1, 20.0, "EUR")}
    assert a["hours_to_convert"]["since_message"]["median"] >= 0
    [cmp] = report["experiment"]["comparisons"]
    assert (cmp["baseline"], cmp["variant"]) == ("control", "sms_first")
    assert cmp["diff"] == pytest.approx(2 / 4 - 4 / 5, abs=1e-6) and not cmp["significant"]
    lift = report["lift"]
    assert (lift["treated"]["converted"], lift["treated"]["enrolled"]) == (6, 9)
    assert (lift["holdout"]["converted"], lift["holdout"]["enrolled"]) == (1, 3)
    assert lift["relative"]["lift"] == pytest.approx((6 / 9) / (1 / 3) - 1, abs=1e-6)
    eco = report["economics"]
    # the cascades: 7 emails × 0.001 + 5 SMS × 0.05, push is free; 5 reviews after a sale
    assert (eco["messages"], eco["conversions"], eco["revenue"]) == (7 + 5 + 4, 6, 340.0)
    assert eco["cost"] == pytest.approx(0.257)
    assert eco["after_conversion"] == {"messages": 5, "cost": pytest.approx(0.005),
                                       "cost_currency": "USD"}
    # revenue in EUR, costs in USD and no rates: no ROI
    assert (eco["revenue_currency"], eco["cost_currency"], eco["roi"]) == ("EUR", "USD", None)
    assert eco["by_channel"]["sms"]["cost"] == pytest.approx(0.25)
    assert report["notes"] and "outbox" in report["notes"][-1]


async def test_two_variants_and_a_holdout_every_count(finished_run, settings, tmp_path):
    with session_scope(settings.db_url) as s:
        check(build_report(finished_run, session=s, settings=settings))
        assert s.scalar(select(Enrollment.status).where(
            Enrollment.customer_id == "h1")) == "completed"  # holdout never had a cascade

    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    html, out = tmp_path / "report.html", tmp_path / "csv"

    def omni(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=env)

    r = await asyncio.to_thread(omni, "report", finished_run, "--json", "--html", str(html),
                                "--csv", str(out))
    assert r.returncode == 0, r.stderr
    check(json.loads(r.stdout))
    page = html.read_text()
    assert all(f'id="chart-{c}"' in page for c in ("funnel", "timeline", "attribution"))
    rows = list(csv.DictReader((out / "customers.csv").open()))
    assert len(rows) == 12 and sum(int(x["converted"]) for x in rows) == 7
    text = await asyncio.to_thread(omni, "report", finished_run)
    assert text.returncode == 0 and "sms_first" in text.stdout and "step 3" in text.stdout
    header = next(line for line in text.stdout.split("Funnel", 1)[1].splitlines()
                  if "channel" in line)
    assert "variant" in header  # every per-step table says whose step it is
    assert "not yet significant" in text.stdout
