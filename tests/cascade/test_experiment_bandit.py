"""`allocation: bandit` wired in (issue 28): the reconciler's pass stores Thompson-sampling
weights every `update_every`, later entrants are assigned by the newest weights, nobody in
flight moves, and the report shows the history, the fairness note and the regret saved."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from omnicascade.cascade.allocation import update_all
from omnicascade.db.experiment_models import AllocationUpdate
from omnicascade.db.models import Enrollment
from omnicascade.db.session import session_scope
from tests.cascade.test_experiment_winner import _age_and_convert, _enroll
from tests.helpers.campaigns import write_campaign
from tests.helpers.cli import home_env, run_cli

pytestmark = pytest.mark.db

BANDIT = """\
campaign: bandit
trigger: {event: cart_abandoned}
conversion: {events: [order_placed], window: 1d}
steps:
  - {channel: email, template: t_email, wait: 1d}
experiment:
  variants:
    control: {weight: 50}
    sms_first:
      weight: 50
      steps: [{channel: sms, template: t_sms, wait: 1d}]
  allocation: bandit
  floor: 10%
  update_every: 1h
"""


def _update(settings) -> list[AllocationUpdate]:
    with session_scope(settings.db_url) as s:
        update_all(session=s)
    with session_scope(settings.db_url) as s:
        rows = list(s.scalars(select(AllocationUpdate).order_by(AllocationUpdate.id)))
        s.expunge_all()
        return rows


def test_bandit_weights_move_new_entrants_only(settings, tmp_path):
    from omnicascade.campaign.load import load_campaign
    from omnicascade.cascade.enroll import create_run
    loaded = load_campaign(write_campaign(tmp_path / "c", BANDIT))
    with session_scope(settings.db_url) as s:
        run_id = create_run(loaded, session=s).id
    first = _enroll(settings, run_id, [f"a{i}" for i in range(400)])
    _age_and_convert(settings, run_id, {"control": 0.05, "sms_first": 0.30})
    (update,) = _update(settings)
    w = update.weights
    assert sum(w.values()) == pytest.approx(1) and min(w.values()) >= 0.1 - 1e-9
    assert w["sms_first"] > 0.8  # the better arm takes most of the traffic
    assert len(_update(settings)) == 1  # not again before update_every has passed
    later = _enroll(settings, run_id, [f"b{i}" for i in range(500)])
    share = sum(v == "sms_first" for v in later.values()) / len(later)
    assert share == pytest.approx(w["sms_first"], abs=0.06)
    with session_scope(settings.db_url) as s:  # in flight: nobody moved
        assert {e.customer_id: e.variant for e in s.scalars(select(Enrollment).where(
            Enrollment.customer_id.in_(list(first))))} == first
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    rep = json.loads(run_cli("report", run_id, "--json", env=env, ok=True).stdout)
    e = rep["experiment"]
    assert e["allocation"] == "bandit" and "not a fair A/B comparison" in e["bandit_note"]
    (h,) = e["allocation_history"]
    assert h["weights"] == w and h["entrants"] == 500
    assert e["regret_saved"] > 0
