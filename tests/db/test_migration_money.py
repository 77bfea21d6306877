"""issue 24, migration 0011: a database at 0010 with float money upgrades to Numeric with
the same values, every priced delivery gets the configured cost currency, and messages that
went out before costs were stored are priced once, here (reports no longer price them)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Numeric, inspect, text

from omnicascade.db.migrate import downgrade, upgrade
from omnicascade.db.session import get_engine

pytestmark = pytest.mark.db

#           id   channel  status     segments cost
DELIVERIES = [("d1", "email", "sent", None, 0.001),
              ("d2", "sms", "sent", 3, 0.15),
              ("d3", "sms", "sent", 2, None),       # sent before costs were stored
              ("d4", "email", "unknown", None, None),  # may have gone out: it costs
              ("d5", "sms", "failed", None, None),  # nothing went out: no cost
              ("d6", "push", "skipped", None, None)]
AMOUNTS = {"o1": 19.99, "o2": 0.1, "o3": 1234567.8912, "o4": None}


def _seed(url: str) -> None:
    with get_engine(url).begin() as conn:
        for id_, channel, status, segments, cost in DELIVERIES:
            conn.execute(text(
                "INSERT INTO deliveries (id, enrollment_id, run_id, customer_id, step_key, "
                "step_index, phase, channel, template, status, attempts, segments, cost, "
                "created_at) VALUES (:id, 'e1', 'r1', 'c1', :id, 0, 'cascade', :ch, 't', :st, "
                "1, :seg, :cost, '2026-11-01 10:00:00')"),
                {"id": id_, "ch": channel, "st": status, "seg": segments, "cost": cost})
        for event_id, amount in AMOUNTS.items():
            conn.execute(text(
                "INSERT INTO conversions (event_id, type, customer_id, amount, currency, "
                "occurred_at, recorded_at, stopped, matched) VALUES (:e, 'order_placed', 'c1', "
                ":a, 'EUR', '2026-11-01 11:00:00', '2026-11-01 11:00:00', 0, :m)"),
                {"e": event_id, "a": amount, "m": True})


def test_0011_makes_float_money_numeric_with_the_same_values(db_url, monkeypatch):
    monkeypatch.setenv("OMNICASCADE_COST_CURRENCY", "EUR")
    monkeypatch.setenv("OMNICASCADE_COST_SMS", "0.07")
    upgrade(db_url, "0010")
    _seed(db_url)
    upgrade(db_url, "0011")
    get_engine(db_url).dispose()
    columns = {(t, c["name"]): c["type"] for t in ("deliveries", "conversions")
               for c in inspect(get_engine(db_url)).get_columns(t)}
    assert isinstance(columns[("deliveries", "cost")], Numeric)
    assert (columns[("deliveries", "cost")].precision,
            columns[("deliveries", "cost")].scale) == (12, 6)
    assert isinstance(columns[("conversions", "amount")], Numeric)
    assert "cost_currency" in {c for t, c in columns if t == "deliveries"}
    from omnicascade.db.models import ConversionEvent, Delivery
    from omnicascade.db.session import session_scope
    with session_scope(db_url) as s:
        rows = {d.id: (d.cost, d.cost_currency) for d in s.query(Delivery)}
        amounts = {c.event_id: c.amount for c in s.query(ConversionEvent)}
    assert rows == {"d1": (Decimal("0.001"), "EUR"), "d2": (Decimal("0.15"), "EUR"),
                    "d3": (Decimal("0.14"), "EUR"),  # 2 segments × the configured 0.07
                    "d4": (Decimal("0.001"), "EUR"), "d5": (None, None), "d6": (None, None)}
    assert amounts == {"o1": Decimal("19.99"), "o2": Decimal("0.1"),
                       "o3": Decimal("1234567.8912"), "o4": None}
    assert all(isinstance(v, Decimal) for v, _ in rows.values() if v is not None)
    # and back: floats again, the new column gone
    downgrade(db_url, "0010")
    get_engine(db_url).dispose()
    with get_engine(db_url).connect() as conn:
        back = dict(conn.execute(text("SELECT event_id, amount FROM conversions")).all())
        assert "cost_currency" not in {c["name"] for c in inspect(conn).get_columns(
            "deliveries")}
    assert back == {"o1": pytest.approx(19.99), "o2": pytest.approx(0.1),
                    "o3": pytest.approx(1234567.8912), "o4": None}
