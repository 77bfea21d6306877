"""issue 24: one default currency. `{{ x | money }}` without a currency formats in the shop's
currency, OMNICASCADE_COST_CURRENCY, the one message costs and bare conversion amounts are
in (it used to be EUR while the configuration said USD)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from omnicascade.campaign.templates.render import render_part
from omnicascade.config import load_settings


def money(amount: object, locale: str = "en_US") -> str:
    return render_part("{{ amount | money }}", {"amount": amount,
                                                "customer": {"id": "c1", "locale": locale}})


def test_the_default_currency_is_the_configured_one(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.delenv("OMNICASCADE_COST_CURRENCY", raising=False)
    assert load_settings().cost_currency == "USD"
    assert money(1234.5) == "$1,234.50"
    monkeypatch.setenv("OMNICASCADE_COST_CURRENCY", "gbp")
    assert money(1234.5) == "£1,234.50"
    assert money(Decimal("19.99"), "de_DE") == "19,99\xa0£"


def test_a_currency_given_wins_and_decimals_format_exactly(monkeypatch):
    monkeypatch.setenv("OMNICASCADE_COST_CURRENCY", "USD")
    assert render_part("{{ 5 | money('eur') }}", {"customer": {"id": "c1"}}) == "€5.00"
    assert money(Decimal("0.125")) == "$0.12"  # babel's half-even on the exact decimal


@pytest.mark.parametrize("bad", ["XX", "EURO"])
def test_a_bad_configured_currency_is_refused_with_its_name(monkeypatch, bad):
    monkeypatch.setenv("OMNICASCADE_COST_CURRENCY", bad)
    with pytest.raises(Exception, match="OMNICASCADE_COST_CURRENCY"):
        money(1)
