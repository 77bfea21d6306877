"""The global control group (issue 28): exactly the hashed share of customers is enrolled as
`global_control` — no cascade, no message — in every campaign, except a `transactional:
true` one; their conversions count, and `report --global` compares them with the messaged."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.conversions import ConversionIn, record_conversion
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.reconcile import stale_work
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import Delivery, Enrollment
from omnicascade.db.session import session_scope
from omnicascade.experiments import in_global_control
from omnicascade.vocabulary import HOLDOUT
from tests.helpers.campaigns import write_campaign
from tests.helpers.cli import home_env, run_cli

pytestmark = pytest.mark.db

CAMPAIGN = """\
campaign: {name}
trigger: {{event: cart_abandoned}}
conversion: {{events: [order_placed]}}
steps:
  - {{channel: email, template: t_email, wait: 1d}}
{extra}"""


def _with_control(settings: Settings, share: str = "20%") -> Settings:
    return settings.model_copy(update={"global_control": share, "global_control_salt": "s1"})


def _enroll(settings: Settings, folder, name: str, ids: list[str], extra: str = ""
            ) -> list[Enrollment]:
    loaded = load_campaign(write_campaign(folder, CAMPAIGN.format(name=name, extra=extra)))
    with session_scope(settings.db_url) as s:
        run = create_run(loaded, session=s)
        rows = enroll_customers(run, ids, session=s, settings=settings)
        s.expunge_all()
        return rows


def test_exactly_the_hashed_share_gets_nothing_across_campaigns(settings, tmp_path):
    gc = _with_control(settings)
    ids = [f"cust-{i}" for i in range(500)]
    expected = {c for c in ids if in_global_control(c, share=0.2, salt="s1")}
    assert 60 < len(expected) < 140  # about 20 %
    for name in ("first", "second"):
        rows = _enroll(gc, tmp_path / name, name, ids)
        held = {r.customer_id for r in rows if r.status == "global_control"}
        assert held == expected
        for r in rows:
            if r.customer_id in expected:
                assert (r.variant, r.active_entry, r.promo_code) == (HOLDOUT, None, None)
            else:
                assert r.status == "pending"
    with session_scope(settings.db_url) as s:  # the reconciler starts no cascade for them
        _, inputs = stale_work(gc, -60, session=s)
    started = {i.enrollment_id for i in inputs}
    with session_scope(settings.db_url) as s:
        held_ids = set(s.scalars(select(Enrollment.id).where(
            Enrollment.status == "global_control")))
    assert len(held_ids) == 2 * len(expected) and not held_ids & started
    receipts = _enroll(gc, tmp_path / "tx", "receipts", ids, extra="transactional: true\n")
    assert all(r.status == "pending" for r in receipts)  # transactional reaches everyone


def test_no_salt_is_a_clear_error(settings, tmp_path):
    from omnicascade.errors import ConfigError
    bad = settings.model_copy(update={"global_control": "5%"})
    with pytest.raises(ConfigError, match="OMNICASCADE_GLOBAL_CONTROL_SALT"):
        _enroll(bad, tmp_path / "a", "a", ["c1"])


def test_report_global_numbers_by_hand(settings, tmp_path):
    gc = _with_control(settings, "30%")
    pool = [f"p{i}" for i in range(200)]
    control = [c for c in pool if in_global_control(c, share=0.3, salt="s1")][:10]
    messaged = [c for c in pool if not in_global_control(c, share=0.3, salt="s1")][:10]
    rows = _enroll(gc, tmp_path / "a", "alpha", control + messaged)
    assert {r.customer_id for r in rows if r.status == "global_control"} == set(control)
    buyers = {**{c: "10" for c in control[:2]}, **{c: "20" for c in messaged[:5]}}
    with session_scope(settings.db_url) as s:
        for c, amount in buyers.items():
            record_conversion(ConversionIn(event_id=f"o-{c}", type="order_placed",
                                           customer_id=c, amount=Decimal(amount),
                                           occurred_at=now_utc() + timedelta(minutes=1)),
                              session=s)
        for r in rows[:3]:
            if r.customer_id in messaged:
                s.add(Delivery(id=f"{r.id}:0", enrollment_id=r.id, run_id=r.run_id,
                               customer_id=r.customer_id, step_key="0", step_index=0,
                               phase="cascade", channel="sms", template="t_sms",
                               status="sent", cost=Decimal("0.05"), cost_currency="USD"))
    n_sent = sum(r.customer_id in messaged for r in rows[:3])
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    rep = json.loads(run_cli("report", "--global", "--since", "30d", "--json", env=env,
                             ok=True).stdout)
    m, g = rep["messaged"], rep["global_control"]
    assert (m["customers"], m["converted"], m["rate"]) == (10, 5, 0.5)
    assert (g["customers"], g["converted"], g["rate"]) == (10, 2, 0.2)
    assert (m["revenue"], g["revenue"]) == (100.0, 20.0)
    assert (m["revenue_per_customer"], g["revenue_per_customer"]) == (10.0, 2.0)
    assert rep["lift"]["conversion_rate"]["diff"] == pytest.approx(0.3)
    rpc = rep["lift"]["revenue_per_customer"]
    assert rpc["diff"] == pytest.approx(8.0)
    # Welch's interval of the same per-customer revenues, as scipy computes it
    from scipy.stats import ttest_ind
    a = [20.0] * 5 + [0.0] * 5
    b = [10.0] * 2 + [0.0] * 8
    ci = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (rpc["ci_low"], rpc["ci_high"]) == (pytest.approx(ci.low, abs=1e-5),
                                                pytest.approx(ci.high, abs=1e-5))
    assert rep["messaging_cost"] == pytest.approx(0.05 * n_sent)
    assert rep["incremental_revenue"] == pytest.approx(80.0)
    assert any("1,000" in n for n in rep["notes"])
    text = run_cli("report", "--global", env=env, ok=True).stdout
    assert "global_control: 10 customers, 2 converted" in text
    bad = run_cli("report", "--global", "--since", "soon", env=env, ok=False)
    assert "--since" in bad.stderr
    assert "--global" in run_cli("report", env=env, ok=False).stderr
