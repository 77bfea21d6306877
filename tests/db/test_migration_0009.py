"""Migration 0009 (issue 23): promo codes stored before codes had one normal form are brought
into it, on SQLite and PostgreSQL; two codes differing only in case keep both rows (the one
already normal keeps its code, the other is left as it was and named in a warning)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from omnicascade.db.migrate import upgrade
from omnicascade.db.session import get_engine

pytestmark = pytest.mark.db

CODES = {"enr_lower": "save-t7j6zg",  # from a lowercase pattern: never redeemable before
         "enr_normal": "SAVE-ABCD23",  # already normal: unchanged
         "enr_wide": "ｓａｖｅ-ＸＹ２３",  # full-width (NFKC) letters
         "enr_accent": "café-éè45",  # non-ASCII lowercase: SQLite's upper() would miss it
         "enr_a_dup": "dup-ABCD",  # collides with enr_b_dup, which is already normal
         "enr_b_dup": "DUP-ABCD"}


def _seed(db_url: str) -> None:
    snapshot = '{"spec": {"campaign": "cart", "steps": []}, "templates": {}}'
    with get_engine(db_url).begin() as conn:
        conn.execute(text(
            "INSERT INTO runs (id, campaign, description, snapshot, trigger_event, status, "
            "time_scale, audience_total, created_at) VALUES ('run_1', 'cart', '', :snap, "
            "'cart_abandoned', 'listening', 1.0, 0, '2026-11-01 10:00:00')"), {"snap": snapshot})
        for i, (enrollment_id, code) in enumerate(CODES.items()):
            conn.execute(text(
                "INSERT INTO enrollments (id, run_id, customer_id, variant, status, promo_code, "
                "conversion_events, lookback_s, enrolled_at) VALUES (:id, 'run_1', :c, "
                "'default', 'active', :code, '[]', 0, '2026-11-01 10:00:00')"),
                {"id": enrollment_id, "c": f"c{i}", "code": code})
        conn.execute(text(
            "INSERT INTO conversions (event_id, type, customer_id, promo_code, occurred_at, "
            "recorded_at, stopped) VALUES ('o1', 'order_placed', 'c0', 'save-t7j6zg', "
            "'2026-11-02 10:00:00', '2026-11-02 10:00:00', 0)"))


def test_0009_stores_every_code_in_its_normal_form(db_url: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    upgrade(db_url, "0008")
    _seed(db_url)
    with caplog.at_level(logging.WARNING):
        upgrade(db_url, "0009")
    get_engine(db_url).dispose()
    with get_engine(db_url).connect() as conn:
        codes: dict[str, str] = dict(conn.execute(text("SELECT id, promo_code FROM enrollments")).all())
        redeemed = conn.scalar(text("SELECT promo_code FROM conversions"))
    assert codes == {"enr_lower": "SAVE-T7J6ZG", "enr_normal": "SAVE-ABCD23",
                     "enr_wide": "SAVE-XY23", "enr_accent": "CAFÉ-ÉÈ45",
                     "enr_a_dup": "dup-ABCD", "enr_b_dup": "DUP-ABCD"}
    assert redeemed == "SAVE-T7J6ZG"
    assert "1 promo code(s) left as stored" in caplog.text and "enr_a_dup" in caplog.text
