"""Money is never mixed: a run whose customers paid in USD and in EUR, one without an
amount and one without a currency, with review requests after the sale. Every expected
figure below is worked out by hand from the table in `run_id`; message costs are in USD
(the default OMNICASCADE_COST_CURRENCY)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from rich.console import Console

from omnicascade.config import Settings, load_settings, parse_fx_rates
from omnicascade.db.session import session_scope
from omnicascade.errors import ConfigError
from omnicascade.reports.build import build_report, export
from omnicascade.reports.html import render_html
from omnicascade.reports.terminal import report_view
from tests.helpers.reports import T0, conversion, launch, member, send

YAML = """\
campaign: money-test
trigger: {event: cart_abandoned}
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms}
after_conversion:
  - {channel: email, template: review, delay: 1d}
"""


def h(hours: float):
    return T0 + timedelta(hours=hours)


@pytest.fixture
def run_id(settings, tmp_path) -> str:
    #  who  step 1 email  step 2 SMS  bought  amount                        after the sale
    #  u1   h0            –           h2      100 USD                       review email
    #  u2   h0            h24         h30     280 EUR                       review email
    #  u3   h0            –           h5      no amount
    #  u4   h0            h24         –
    #  u5   h0            –           h1      20, no currency (→ USD)
    #  u6   h0            h24         h26     50 EUR
    # email 0.001, SMS 0.05 (USD)
    rid = launch(settings, tmp_path / "campaign", YAML)
    with session_scope(settings.db_url) as s:
        for who, bought, amount, currency in (("u1", 2, 100.0, "USD"), ("u2", 30, 280.0, "EUR"),
                                              ("u3", 5, None, None), ("u4", None, None, None),
                                              ("u5", 1, 20.0, None), ("u6", 26, 50.0, "EUR")):
            e = member(s, rid, who, "default")
            send(s, e, 0, "email", h(0))
            if bought is None or bought > 24:
                send(s, e, 1, "sms", h(24))
            if bought is not None:
                conversion(s, e, h(bought), amount, currency)
            if who in ("u1", "u2"):
                send(s, e, 0, "email", h(bought + 24), phase="follow_up")  # type: ignore[operator]
    return rid


def report_for(settings: Settings, run_id: str) -> dict:
    with session_scope(settings.db_url) as s:
        return build_report(run_id, session=s, settings=settings)


def text_of(report: dict) -> str:
    console = Console(width=220, record=True, file=io.StringIO())
    for item in report_view(report):
        console.print(item)
    return console.export_text()


# By hand. Cascade cost: 6 emails × 0.001 + 3 SMS × 0.05 = 0.156 USD; 5 conversions →
# 0.0312 USD each. Revenue: USD 100 + 20 = 120 (2 conversions), EUR 280 + 50 = 330 (2);
# u3's is unknown. Last touch: u1, u3, u5 after the email; u2, u6 after the SMS.
# (label, sent, cost USD, converted after, revenue by currency, without amount, cost/conv.)
STEPS = [("step 1", 6, 0.006, 3, {"USD": 120.0}, 1, 0.002),
         ("step 2", 3, 0.15, 2, {"EUR": 330.0}, 0, 0.075)]


def test_money_per_currency_without_rates(settings, run_id):
    r = report_for(settings, run_id)
    eco = r["economics"]
    assert (r["currency"], r["cost_currency"], r["fx"]) == (None, "USD", None)
    assert (eco["messages"], eco["conversions"], eco["cost"], eco["cost_currency"],
            eco["cost_per_conversion"]) == (9, 5, 0.156, "USD", 0.0312)
    # two currencies: no single revenue figure, no total, no ROI
    assert (eco["revenue"], eco["revenue_currency"], eco["revenue_total"], eco["roi"]) == \
        (None, None, None, None)
    assert eco["revenue_by_currency"] == {"EUR": 330.0, "USD": 120.0}
    assert eco["conversions_without_amount"] == 1
    assert eco["by_currency"] == {
        "EUR": {"conversions": 2, "revenue": 330.0, "rate": None, "in_cost_currency": None},
        "USD": {"conversions": 2, "revenue": 120.0, "rate": None, "in_cost_currency": 120.0}}
    # the reviews after the sale are their own line, outside the cascade's ROI
    assert eco["after_conversion"] == {"messages": 2, "cost": 0.002, "cost_currency": "USD"}
    assert [(s["label"], s["sent"], s["cost"], s["converted_after"], s["revenue_by_currency"],
             s["conversions_without_amount"], s["cost_per_conversion"])
            for s in eco["steps"]] == STEPS
    # step 1's revenue is all USD, but u3's amount is unknown: no ROI; step 2's is EUR
    # while costs are USD, and there is no rate: no ROI
    assert [(s["revenue"], s["revenue_currency"], s["roi"]) for s in eco["steps"]] == \
        [(120.0, "USD", None), (330.0, "EUR", None)]
    v = r["variants"]["default"]
    assert (v["messages_sent"], v["cost"], v["revenue"], v["roi"],
            v["after_conversion"]["messages"]) == (9, 0.156, None, None, 2)
    [review] = r["after_conversion"]
    assert (review["label"], review["sent"], review["cost"], review["roi"]) == \
        ("after 1", 2, 0.002, None)
    assert any("several currencies (EUR, USD)" in n and "OMNICASCADE_FX_RATES" in n
               for n in r["notes"])
    assert any(n.startswith("1 conversion(s) without an amount") for n in r["notes"])
    assert any("1 conversion amount(s) came without a currency" in n for n in r["notes"])


def test_rates_give_a_total_and_the_report_states_them(settings, run_id):
    fx = settings.model_copy(update={"fx_rates": "EUR=1.08"})
    r = report_for(fx, run_id)
    eco = r["economics"]
    assert r["fx"] == {"currency": "USD", "rates": {"EUR": 1.08}}
    assert any("1 EUR = 1.08 USD" in n for n in r["notes"])
    # 120 + 330 × 1.08 = 476.40 USD; ROI still unknown: u3 bought without an amount
    assert (eco["revenue_total"], eco["roi"]) == (476.4, None)
    assert eco["by_currency"]["EUR"] == {"conversions": 2, "revenue": 330.0, "rate": 1.08,
                                         "in_cost_currency": 356.4}
    step1, step2 = eco["steps"]
    # step 2: 330 EUR = 356.40 USD for 0.15 USD: (356.40 − 0.15) / 0.15 = 2375
    assert (step2["revenue_total"], step2["roi"]) == (356.4, 2375.0)
    assert step1["roi"] is None


def test_views_show_every_amount_with_its_currency(settings, run_id, tmp_path):
    r = report_for(settings, run_id)
    text = text_of(r)
    assert "330.00 EUR + 120.00 USD · 1 without amount" in text
    assert "cost 0.156 USD" in text and "cost per conversion 0.0312 USD" in text
    assert "ROI –" in text
    assert "after conversion: 2 messages, cost 0.002 USD" in text
    assert "450" not in text  # 120 USD + 330 EUR is never one number
    page = render_html(r)
    assert "120.00 USD" in page and "330.00 EUR" in page and "450" not in page
    assert "after conversion: 2 messages, cost 0.002 USD" in page
    with session_scope(settings.db_url) as s:
        paths = export(run_id, tmp_path / "csv", session=s, settings=settings)
    people = {x["customer_id"]: x for x in csv.DictReader(paths[0].open())}
    assert [(people[c]["amount"], people[c]["currency"]) for c in ("u1", "u2", "u3", "u5")] \
        == [("100", "USD"), ("280", "EUR"), ("", ""), ("20", "USD")]
    assert (people["u1"]["cost"], people["u1"]["follow_up_cost"],
            people["u1"]["cost_currency"]) == ("0.001", "0.001", "USD")
    [variant] = csv.DictReader(paths[2].open())
    assert (variant["revenue"], variant["revenue_by_currency"], variant["roi"],
            variant["conversions_without_amount"]) == ("", "EUR 330; USD 120", "", "1")


def test_a_conversion_without_an_amount_is_not_zero_revenue(settings, tmp_path):
    rid = launch(settings, tmp_path / "campaign", YAML)
    with session_scope(settings.db_url) as s:
        e = member(s, rid, "n1", "default")
        send(s, e, 0, "email", h(0))
        conversion(s, e, h(3), None, None)
    r = report_for(settings, rid)
    eco = r["economics"]
    assert (eco["revenue"], eco["roi"], eco["conversions_without_amount"]) == (None, None, 1)
    assert "ROI -100%" not in text_of(r) and "revenue – · 1 without amount" in text_of(r)


def test_fx_rates_and_cost_currency_settings(monkeypatch):
    assert parse_fx_rates("EUR=1.08, gbp=1.27", "USD") == {"EUR": 1.08, "GBP": 1.27}
    assert parse_fx_rates("") == {}
    for bad in ("EUR", "EUR=abc", "EURO=1", "EUR=0", "EUR=-1", "EUR=1;GBP=2", "EUR=inf"):
        with pytest.raises(ConfigError, match="OMNICASCADE_FX_RATES"):
            parse_fx_rates(bad)
    with pytest.raises(ConfigError, match="given twice"):
        parse_fx_rates("EUR=1,EUR=2")
    monkeypatch.setenv("OMNICASCADE_FX_RATES", "EUR=one")
    with pytest.raises(ConfigError, match="'EUR=one' is not CODE=RATE"):
        load_settings()
    monkeypatch.setenv("OMNICASCADE_FX_RATES", "eur=1.08")
    monkeypatch.setenv("OMNICASCADE_COST_CURRENCY", "usd")
    s = load_settings()
    assert (s.cost_currency, s.fx()) == ("USD", {"EUR": 1.08})
    monkeypatch.setenv("OMNICASCADE_COST_CURRENCY", "dollars")
    with pytest.raises(ConfigError, match="OMNICASCADE_COST_CURRENCY"):
        load_settings()
