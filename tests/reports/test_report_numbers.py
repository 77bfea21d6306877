"""Every number of the report on a small run whose rows are written by hand, so each
expected value below can be checked with pencil and paper. Amounts are in EUR, and so are
message costs here (OMNICASCADE_COST_CURRENCY=EUR): revenue and cost share a currency, so
every ROI is defined (test_report_money.py mixes currencies)."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest
from scipy.stats import chi2_contingency

from omnicascade.db.models import Enrollment
from omnicascade.db.session import session_scope
from omnicascade.reports import stats
from omnicascade.reports.build import build_report, export
from omnicascade.reports.run_views import run_show, runs_list
from tests.helpers.reports import T0, conversion, launch, member, send


def h(hours: float):
    return T0 + timedelta(hours=hours)


@pytest.fixture
def run_id(settings, tmp_path) -> str:
    rid = launch(settings, tmp_path / "campaign")
    with session_scope(settings.db_url) as s:
        # control: email → sms → push
        c1 = member(s, rid, "c1", "control")
        send(s, c1, 0, "email", h(0), feedback=("delivered", "open", "click"))
        conversion(s, c1, h(2), 100)
        send(s, c1, 0, "email", h(26), phase="follow_up")
        c2 = member(s, rid, "c2", "control")
        send(s, c2, 0, "email", h(0), feedback=("delivered",))
        send(s, c2, 1, "sms", h(24), feedback=("delivered",))
        conversion(s, c2, h(30), 50)
        c3 = member(s, rid, "c3", "control")
        send(s, c3, 0, "email", h(0), "skipped", "unsubscribed")
        send(s, c3, 1, "sms", h(0))
        send(s, c3, 2, "push", h(24))
        c4 = member(s, rid, "c4", "control")
        send(s, c4, 0, "email", h(0), feedback=("bounce",))
        send(s, c4, 1, "sms", h(24), "skipped", "no_address")
        send(s, c4, 2, "push", h(24))
        conversion(s, c4, h(36), 30)
        c5 = member(s, rid, "c5", "control")
        conversion(s, c5, h(0.5), 20)  # bought before the first message went out
        send(s, c5, 0, "email", h(1), "skipped", "converted")
        # sms_first: sms → email → push
        s1 = member(s, rid, "s1", "sms_first")
        send(s, s1, 0, "sms", h(0))
        conversion(s, s1, h(1), 80)
        s2 = member(s, rid, "s2", "sms_first")
        send(s, s2, 0, "sms", h(0), "skipped", "no_address")
        send(s, s2, 1, "email", h(0), "unknown", "attempt died during the provider call")
        send(s, s2, 2, "push", h(24))
        s3 = member(s, rid, "s3", "sms_first", status="active")
        send(s, s3, 0, "sms", h(0))
        # holdout: no messages; one buys anyway
        h1 = member(s, rid, "h1", "holdout")
        conversion(s, h1, h(5), 40)
        member(s, rid, "h2", "holdout")
        member(s, rid, "h3", "holdout")
        s.add(Enrollment(id="enr_x1", run_id=rid, customer_id="x1", variant="control",
                         status="excluded", exit_reason="converted", enrolled_at=T0))
    return rid


@pytest.fixture
def eur(settings):
    return settings.model_copy(update={"cost_currency": "EUR"})


@pytest.fixture
def report(eur, run_id) -> dict:
    with session_scope(eur.db_url) as s:
        return build_report(run_id, session=s, settings=eur)


def test_headline_counts(report):
    assert (report["enrolled"], report["converted"], report["excluded"], report["active"]) == \
        (11, 6, 1, 1)
    assert report["status"] == "listening" and report["currency"] == "EUR"
    assert report["conversion_rate"] == stats.rate_ci(6, 11)
    assert list(report["variants"]) == ["control", "sms_first", "holdout"]


def test_variants(report):
    v = report["variants"]
    assert {n: (x["enrolled"], x["converted"], x["messages_sent"], x["active"])
            for n, x in v.items()} == {"control": (5, 4, 7, 0), "sms_first": (3, 1, 4, 1),
                                       "holdout": (3, 1, 0, 0)}
    c = v["control"]
    assert (c["rate"], c["ci_low"], c["ci_high"]) == tuple(
        stats.rate_ci(4, 5)[k] for k in ("rate", "ci_low", "ci_high"))
    # the cascade: 3 emails × 0.001 + 2 SMS × 0.05; c1's review after the purchase is its
    # own line, outside the cascade's cost per conversion and ROI
    assert (c["revenue"], c["revenue_currency"], c["cost"], c["cost_currency"]) == \
        (200.0, "EUR", pytest.approx(0.103), "EUR")
    assert c["after_conversion"] == {"messages": 1, "cost": 0.001, "cost_currency": "EUR"}
    assert c["cost_per_conversion"] == pytest.approx(0.103 / 4, abs=1e-4)
    assert c["roi"] == pytest.approx((200 - 0.103) / 0.103, rel=1e-4)
    # hours from entry to purchase: 2, 30, 36, 0.5
    assert c["hours_to_convert"] == {"median": 16.0, "p90": pytest.approx(34.2)}
    # the unknown email is priced at the unit cost: it may have gone out
    assert v["sms_first"]["cost"] == pytest.approx(0.101)
    assert v["holdout"]["revenue"] == 40.0 and v["holdout"]["cost"] == 0
    assert v["holdout"]["cost_per_conversion"] is None and v["holdout"]["holdout"] is True


def _rows(rows):
    return {(r["phase"][0], r["index"], r["channel"]): r for r in rows}


def test_funnel_per_variant(report):
    ctl = _rows(report["funnel"]["by_variant"]["control"])
    assert list(ctl) == [("c", 0, "email"), ("c", 1, "sms"), ("c", 2, "push"),
                         ("f", 0, "email")]
    e = ctl[("c", 0, "email")]
    assert (e["reached"], e["attempted"], e["sent"], e["skipped"]) == (5, 3, 3, 2)
    assert e["skipped_by_reason"] == {"converted": 1, "unsubscribed": 1}
    assert (e["delivered"], e["opened"], e["clicked"], e["bounced"]) == (2, 1, 1, 1)
    assert (e["converted_after"], e["revenue"], e["cost"]) == (1, 100.0, 0.003)
    sms = ctl[("c", 1, "sms")]
    assert (sms["reached"], sms["sent"], sms["skipped"], sms["skipped_by_reason"]) == \
        (3, 2, 1, {"no_address": 1})
    # the SMS provider reports delivery but never opens: "–", not 0
    assert (sms["delivered"], sms["opened"], sms["clicked"]) == (1, None, None)
    assert (sms["converted_after"], sms["revenue"], sms["cost"]) == (1, 50.0, 0.1)
    assert sms["cost_per_conversion"] == 0.1 and sms["roi"] == pytest.approx(499.0)
    push = ctl[("c", 2, "push")]
    assert (push["sent"], push["delivered"], push["converted_after"]) == (2, None, 1)
    review = ctl[("f", 0, "email")]
    assert (review["sent"], review["label"], review["cost"]) == (1, "after 1", 0.001)
    assert (review["roi"], review["cost_per_conversion"]) == (None, None)  # buys no sale
    assert [(r["label"], r["variant"]) for r in report["funnel"]["by_variant"]["control"]] \
        == [("step 1", "control"), ("step 2", "control"), ("step 3", "control"),
            ("after 1", "control")]
    sf = _rows(report["funnel"]["by_variant"]["sms_first"])
    assert list(sf) == [("c", 0, "sms"), ("c", 1, "email"), ("c", 2, "push")]
    assert (sf[("c", 0, "sms")]["sent"], sf[("c", 0, "sms")]["waiting"],
            sf[("c", 0, "sms")]["converted_after"]) == (2, 1, 1)
    assert (sf[("c", 1, "email")]["sent"], sf[("c", 1, "email")]["unknown"]) == (1, 1)
    assert report["funnel"]["by_variant"]["holdout"] == []


def test_whole_run_funnel_is_every_variants_steps_each_saying_whose(report):
    rows = report["funnel"]["all"]
    assert [(r["variant"], r["label"], r["channel"]) for r in rows] == [
        ("control", "step 1", "email"), ("control", "step 2", "sms"),
        ("control", "step 3", "push"), ("control", "after 1", "email"),
        ("sms_first", "step 1", "sms"), ("sms_first", "step 2", "email"),
        ("sms_first", "step 3", "push")]  # the holdout gets no messages: no rows
    assert rows == [r for n in ("control", "sms_first")
                    for r in report["funnel"]["by_variant"][n]]
    assert report["steps"] == [r for r in rows if r["phase"] == "cascade"]
    assert report["after_conversion"] == [rows[3]]
    assert sum(r["converted_after"] for r in rows) == 4


def test_attribution_last_touch_and_time_to_convert(report):
    a = report["attribution"]
    assert a["attributed"] == 4
    assert {k: (v["conversions"], v["revenue"]) for k, v in a["by_channel"].items()} == \
        {"email": (1, 100.0), "push": (1, 30.0), "sms": (2, 130.0)}
    assert [(s["variant"], s["index"], s["label"], s["channel"], s["conversions"])
            for s in a["by_step"]] == [("control", 0, "step 1", "email", 1),
                                       ("control", 1, "step 2", "sms", 1),
                                       ("control", 2, "step 3", "push", 1),
                                       ("sms_first", 0, "step 1", "sms", 1)]
    assert {k: (v["conversions"], v["revenue"], v["revenue_currency"])
            for k, v in a["no_prior_message"].items()} == {
        "holdout": (1, 40.0, "EUR"), "before_first_message": (1, 20.0, "EUR")}
    # from the credited message: c1 2h, c2 6h, c4 12h, s1 1h
    assert a["hours_to_convert"]["since_message"] == {"median": 4.0,
                                                      "p90": pytest.approx(10.2)}
    assert a["by_channel"]["sms"]["hours_to_convert"] == {"median": 3.5,
                                                          "p90": pytest.approx(5.5)}
    # from entry: 0.5, 1, 2, 5, 30, 36
    assert a["hours_to_convert"]["since_enrollment"] == {"median": 3.5, "p90": 33.0}
    assert a["by_variant"]["holdout"]["no_prior_message"]["holdout"]["conversions"] == 1


def test_experiment_control_vs_sms_first(report):
    exp = report["experiment"]
    assert exp["baseline"] == "control" and exp["adjustment"] is None
    [cmp] = exp["comparisons"]
    assert cmp["variant"] == "sms_first"
    assert cmp["diff"] == pytest.approx(1 / 3 - 4 / 5, abs=1e-6)
    _, p, _, _ = chi2_contingency([[4, 1], [1, 2]], correction=False)
    assert cmp["p_value"] == pytest.approx(p, abs=1e-8)
    assert not cmp["significant"] and cmp["text"].startswith("not yet significant")
    assert cmp["more_per_variant"] == stats.sample_size_per_group(0.8, 1 / 3) - 3


def test_lift_over_holdout(report):
    lift = report["lift"]
    assert (lift["holdout"]["converted"], lift["holdout"]["enrolled"]) == (1, 3)
    assert (lift["treated"]["converted"], lift["treated"]["enrolled"]) == (5, 8)
    assert lift["absolute"]["diff"] == pytest.approx(5 / 8 - 1 / 3, abs=1e-6)
    assert lift["absolute"] == stats.compare(1, 3, 5, 8)
    assert lift["relative"] == stats.relative_lift(5, 8, 1, 3)
    assert lift["relative"]["lift"] == pytest.approx(0.875)
    assert lift["incremental_conversions"] == pytest.approx(8 * (5 / 8 - 1 / 3), abs=0.01)
    assert lift["incremental_revenue"] == pytest.approx((280 / 8 - 40 / 3) * 8, abs=0.01)
    assert lift["incremental_revenue_currency"] == "EUR"
    assert lift["cost"] == pytest.approx(0.204)  # the cascade's: not c1's review
    assert lift["cost_per_incremental_conversion"] == pytest.approx(0.204 / (7 / 3), rel=1e-3)
    inc_rev = (280 / 8 - 40 / 3) * 8
    assert lift["incremental_roi"] == pytest.approx((inc_rev - 0.204) / 0.204, rel=1e-3)
    assert set(lift["by_variant"]) == {"control", "sms_first"}
    assert lift["by_variant"]["control"]["absolute"] == stats.compare(1, 3, 4, 5)


def test_economics_and_marginal_value_of_each_step(report):
    eco = report["economics"]
    assert (eco["messages"], eco["conversions"], eco["revenue"]) == (11, 5, 280.0)
    assert eco["cost"] == pytest.approx(0.204)
    assert eco["cost_per_conversion"] == pytest.approx(0.0408)
    assert eco["after_conversion"] == {"messages": 1, "cost": 0.001, "cost_currency": "EUR"}
    assert eco["by_currency"] == {"EUR": {"conversions": 5, "revenue": 280.0, "rate": None,
                                          "in_cost_currency": 280.0}}
    # SMS: c2, c3, s1, s3 went out (0.05 each); c2 and s1 bought after one
    sms = eco["by_channel"]["sms"]
    assert {k: sms[k] for k in ("messages", "cost", "conversions", "revenue",
                                "cost_per_conversion")} == \
        {"messages": 4, "cost": 0.2, "conversions": 2, "revenue": 130.0,
         "cost_per_conversion": 0.1}
    assert sms["roi"] == pytest.approx((130 - 0.2) / 0.2, rel=1e-4)
    assert eco["by_channel"]["push"]["cost_per_conversion"] == 0.0
    # "What each step buys": the cascade's steps, variant by variant
    assert [(r["variant"], r["label"], r["channel"], r["sent"], r["converted_after"])
            for r in eco["steps"]] == [
        ("control", "step 1", "email", 3, 1), ("control", "step 2", "sms", 2, 1),
        ("control", "step 3", "push", 2, 1), ("sms_first", "step 1", "sms", 2, 1),
        ("sms_first", "step 2", "email", 1, 0), ("sms_first", "step 3", "push", 1, 0)]


def test_csv_export_has_a_row_per_customer(eur, run_id, tmp_path):
    with session_scope(eur.db_url) as s:
        paths = export(run_id, tmp_path / "out", session=s, settings=eur)
    assert [p.name for p in paths] == ["customers.csv", "funnel.csv", "variants.csv"]
    rows = {r["customer_id"]: r for r in csv.DictReader(paths[0].open())}
    assert sorted(rows) == ["c1", "c2", "c3", "c4", "c5", "h1", "h2", "h3", "s1", "s2", "s3"]
    c2 = rows["c2"]
    assert (c2["variant"], c2["converted"], c2["amount"], c2["currency"]) == \
        ("control", "1", "50", "EUR")
    assert (c2["credited_step"], c2["credited_channel"], c2["hours_since_credited_message"],
            c2["hours_to_convert"]) == ("step 2", "sms", "6", "30")
    assert (c2["step_1"], c2["step_2"], c2["step_3"]) == ("email: sent", "sms: sent", "")
    assert rows["c3"]["step_1"] == "email: skipped (unsubscribed)"
    assert rows["c5"]["credited_step"] == "" and rows["c5"]["converted"] == "1"
    assert rows["h2"]["converted"] == "0" and rows["h2"]["messages_sent"] == "0"
    assert "email" not in paths[0].read_text().splitlines()[0].split(",")  # no PII columns
    assert rows["s2"]["step_1"] == "sms: skipped (no address)"  # the label, as everywhere
    funnel = list(csv.DictReader(paths[1].open()))
    assert [(r["variant"], r["step"], r["channel"]) for r in funnel][:4] == [
        ("control", "step 1", "email"), ("control", "step 2", "sms"),
        ("control", "step 3", "push"), ("control", "after 1", "email")]
    assert {r["variant"] for r in funnel} == {"control", "sms_first"}
    email = funnel[0]
    assert (email["skipped_by_reason"], email["revenue"], email["revenue_currency"],
            email["cost_currency"]) == ("already converted 1; unsubscribed 1", "100.0", "EUR",
                                        "EUR")
    variants = {r["variant"]: r for r in csv.DictReader(paths[2].open())}
    assert (variants["control"]["enrolled"], variants["control"]["converted"]) == ("5", "4")


def test_runs_show_stays_compatible_and_shows_the_live_funnel(settings, run_id):
    with session_scope(settings.db_url) as s:
        show = run_show(run_id, session=s)
        listing = runs_list(session=s)
    assert (show["enrolled"], show["converted"], show["status"]) == (11, 6, "listening")
    assert show["variants"] == {"control": {"enrolled": 5, "converted": 4},
                                "sms_first": {"enrolled": 3, "converted": 1},
                                "holdout": {"enrolled": 3, "converted": 1}}
    steps = {(x["index"], x["channel"]): x for x in show["steps"]}
    assert set(steps[(0, "sms")]) >= {"index", "channel", "sent", "skipped", "failed"}
    assert (steps[(0, "sms")]["sent"], steps[(0, "sms")]["skipped"],
            steps[(0, "sms")]["waiting"]) == (2, 1, 1)
    assert steps[(0, "email")]["waiting"] == 0
    [row] = [r for r in listing if r["run_id"] == run_id]
    assert (row["status"], row["enrolled"], row["converted"], row["conversion_rate"]) == \
        ("listening", 11, 6, round(6 / 11, 4))


def test_quiet_hours_deferral_is_reached_but_not_yet_attempted(settings, tmp_path):
    rid = launch(settings, tmp_path / "campaign")
    with session_scope(settings.db_url) as s:
        d = member(s, rid, "d1", "control", status="active")
        send(s, d, 0, "email", h(0), "deferred", "quiet_hours")
    with session_scope(settings.db_url) as s:
        report = build_report(rid, session=s, settings=settings)
        show = run_show(rid, session=s)
    [row] = [r for r in report["funnel"]["all"] if r["reached"]]
    assert (row["reached"], row["attempted"], row["deferred"], row["sent"]) == (1, 0, 1, 0)
    assert (show["steps"][0]["deferred"], show["steps"][0]["waiting"]) == (1, 1)
    assert report["experiment"] is None and report["lift"] is None
