"""Experiments that decide, wired into the product (issue 28): a winner stored by the
periodic pass takes every later entrant (holdout unchanged) while customers in flight keep
their variant; `runs winner` shows, declares and resets; a rehearsal's decision says so."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.conversions import ConversionIn, record_conversion
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.winner import decide_all, history
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import HOLDOUT
from tests.helpers.campaigns import write_campaign
from tests.helpers.cli import home_env, run_cli

pytestmark = pytest.mark.db

WINNER = """\
campaign: ab-winner{name}
trigger: {{event: cart_abandoned}}
conversion: {{events: [order_placed], window: 1d}}
steps:
  - {{channel: email, template: t_email, wait: 1d}}
experiment:
  holdout: 10%
  variants:
    control: {{weight: 50}}
    sms_first:
      weight: 50
      steps: [{{channel: sms, template: t_sms, wait: 1d}}]
  winner: {{metric: {metric}, confidence: 95%, min_per_variant: {min_n}{extra}}}
"""


def _run(settings: Settings, folder, *, time_scale: float = 1.0, min_n: int = 50,
         extra: str = "", metric: str = "conversion_rate") -> str:
    loaded = load_campaign(write_campaign(folder, WINNER.format(
        min_n=min_n, extra=extra, metric=metric, name="-rev" if "rev" in metric else "")))
    with session_scope(settings.db_url) as s:
        return create_run(loaded, session=s, time_scale=time_scale).id


def _enroll(settings: Settings, run_id: str, ids: list[str]) -> dict[str, str]:
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        assert run is not None
        return {e.customer_id: e.variant
                for e in enroll_customers(run, ids, session=s, settings=settings)}


def _age_and_convert(settings: Settings, run_id: str, rates: dict[str, float],
                     days: float = 10, amount: Decimal | None = None) -> None:
    """Every enrollment ended `days` ago (its window long closed); a deterministic share
    of each arm converted inside its window."""
    with session_scope(settings.db_url) as s:
        rows = list(s.scalars(select(Enrollment).where(Enrollment.run_id == run_id)))
        run = s.get(Run, run_id)
        assert run is not None
        run.created_at = min(run.created_at, now_utc() - timedelta(days=days + 2))
        seen: dict[str, int] = {}
        for e in rows:
            e.enrolled_at = now_utc() - timedelta(days=days + 1)
            e.status, e.finished_at = "completed", now_utc() - timedelta(days=days)
            e.active_entry = None
        s.flush()
        for e in rows:
            i = seen[e.variant] = seen.get(e.variant, 0) + 1
            if (i % 100) < rates.get(e.variant, 0) * 100:
                record_conversion(ConversionIn(
                    event_id=f"o-{e.id}", type="order_placed", customer_id=e.customer_id,
                    amount=amount,
                    occurred_at=e.finished_at + timedelta(minutes=10)), session=s)


def _decide(settings: Settings) -> int:
    with session_scope(settings.db_url) as s:
        return decide_all(session=s)


def test_a_declared_winner_takes_later_entrants_and_in_flight_customers_keep_theirs(
        settings, tmp_path):
    run_id = _run(settings, tmp_path / "c", time_scale=24)
    first = _enroll(settings, run_id, [f"a{i}" for i in range(400)])
    assert {"control", "sms_first", HOLDOUT} == set(first.values())
    assert _decide(settings) == 0  # no window has closed yet: nothing to decide on
    _age_and_convert(settings, run_id, {"control": 0.05, "sms_first": 0.40})
    assert _decide(settings) == 1
    assert _decide(settings) == 0  # the first winner stands; it is never re-decided
    with session_scope(settings.db_url) as s:
        (row,) = history(run_id, session=s)
        assert (row.kind, row.winner, row.by, row.rehearsal) == ("winner", "sms_first",
                                                                 "auto", True)
        assert row.effect and row.effect > 0 and row.ci_low and row.ci_low > 0
        assert set(row.sample_sizes) == {"control", "sms_first"}
        # in flight: nobody's variant changed
        assert {e.customer_id: e.variant for e in s.scalars(
            select(Enrollment).where(Enrollment.run_id == run_id))} == first
    later = _enroll(settings, run_id, [f"b{i}" for i in range(200)])
    assert set(later.values()) == {"sms_first", HOLDOUT}  # the holdout is unchanged
    assert sum(v == HOLDOUT for v in later.values()) in range(8, 35)

    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    shown = json.loads(run_cli("runs", "winner", run_id, "--json", env=env, ok=True).stdout)
    assert shown["winner"]["winner"] == "sms_first" and shown["winner"]["rehearsal"] is True
    text = run_cli("runs", "winner", run_id, env=env, ok=True).stdout
    assert "sms_first" in text and "REHEARSAL" in text
    assert "winner: sms_first" in run_cli("runs", "show", run_id, env=env, ok=True).stdout
    show = json.loads(run_cli("runs", "show", run_id, "--json", env=env, ok=True).stdout)
    assert show["experiment"]["winner"]["winner"] == "sms_first"
    rep = json.loads(run_cli("report", run_id, "--json", env=env, ok=True).stdout)
    w = rep["experiment"]["winner"]
    assert w["metric"] == "conversion_rate" and w["interval"]["low"] > 0
    assert w["sample_sizes"] == row.sample_sizes and w["rehearsal"] is True


def test_runs_winner_declare_and_reset(settings, tmp_path):
    run_id = _run(settings, tmp_path / "c")
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    before = run_cli("runs", "winner", run_id, env=env, ok=True).stdout
    assert "no winner yet" in before and "waiting for 50 customers" in before
    bad = run_cli("runs", "winner", run_id, "--declare", "nope", env=env, ok=False)
    assert "no variant 'nope'" in bad.stderr and "control, sms_first" in bad.stderr
    out = json.loads(run_cli("runs", "winner", run_id, "--declare", "control", "--json",
                             env=env, ok=True).stdout)
    assert out["winner"]["winner"] == "control" and out["winner"]["by"] == "manual"
    assert set(_enroll(settings, run_id, [f"c{i}" for i in range(50)]).values()) <= {
        "control", HOLDOUT}
    out = json.loads(run_cli("runs", "winner", run_id, "--reset", "--json", env=env,
                             ok=True).stdout)
    assert out["winner"] is None and out["status"] == "no winner yet"
    assert {"control", "sms_first"} <= set(
        _enroll(settings, run_id, [f"d{i}" for i in range(50)]).values())


def test_max_duration_passes_without_a_winner_and_the_split_continues(settings, tmp_path):
    run_id = _run(settings, tmp_path / "c", extra=", max_duration: 3d")
    _enroll(settings, run_id, [f"a{i}" for i in range(300)])
    _age_and_convert(settings, run_id, {"control": 0.10, "sms_first": 0.10})
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        assert run is not None
        run.created_at = now_utc() - timedelta(days=12)
    assert _decide(settings) == 1
    with session_scope(settings.db_url) as s:
        (row,) = history(run_id, session=s)
    assert row.kind == "expired" and row.winner is None and "split continues" in row.note
    assert _decide(settings) == 0
    assert {"control", "sms_first"} <= set(
        _enroll(settings, run_id, [f"b{i}" for i in range(50)]).values())


async def test_the_console_run_report_shows_the_winner_and_says_rehearsal(settings, tmp_path):
    import httpx

    from omnicascade.api.app import create_app
    from omnicascade.cascade.winner import declare
    from tests.helpers.console import PASSWORD, signed_in_csrf

    run_id = _run(settings, tmp_path / "c", time_scale=24)
    _enroll(settings, run_id, [f"a{i}" for i in range(20)])
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        assert run is not None
        declare(run, "sms_first", session=s)
    app = create_app(settings.model_copy(update={"console_password": PASSWORD}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://console.test") as http:
        await signed_in_csrf(http)
        page = (await http.get(f"/runs/{run_id}/report")).text
    assert 'id="winner"' in page and "winner: sms_first" in page and "REHEARSAL" in page


def test_revenue_per_customer_decides_on_the_money(settings, tmp_path):
    run_id = _run(settings, tmp_path / "c", metric="revenue_per_customer")
    _enroll(settings, run_id, [f"a{i}" for i in range(400)])
    _age_and_convert(settings, run_id, {"control": 0.05, "sms_first": 0.40},
                     amount=Decimal("50"))
    assert _decide(settings) == 1
    with session_scope(settings.db_url) as s:
        (row,) = history(run_id, session=s)
    assert (row.winner, row.metric) == ("sms_first", "revenue_per_customer")
    assert 10 < row.effect < 25  # ≈ 50 × (0.40 − 0.05) per customer
