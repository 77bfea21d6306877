"""Export (GDPR Art. 15/20), on SQLite and PostgreSQL: a person with messages, feedback, an
event, a conversion, a promo code, a suppression and a Telegram link gets every table that
holds them back in one document — through the API (bearer token, 404 for an unknown id)
and `omnicascade customers export` (the same document; a clear error for an unknown id)."""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest

from omnicascade.api.app import create_app
from omnicascade.cascade.erase import erase_customer
from omnicascade.db.models import Enrollment
from omnicascade.db.personal import PERSON_TABLES
from omnicascade.db.session import session_scope
from omnicascade.reports.export_person import SECTIONS
from tests.cascade.test_erasure import person_everywhere
from tests.helpers.api import SECRET, asgi_client
from tests.helpers.cli import home_env, run_cli
from tests.helpers.erasure import NEEDLES, PERSON, holding

pytestmark = pytest.mark.db
TOKEN = "read-token-for-tests-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def exported(settings: Any, customer_id: str) -> tuple[int, Any]:
    app = create_app(settings.model_copy(update={"api_token": TOKEN}))
    async with asgi_client(app) as http:
        quoted = customer_id.replace("/", "%2F")
        assert (await http.get(f"/v1/customers/{quoted}/export")).status_code == 401
        r = await http.get(f"/v1/customers/{quoted}/export", headers=AUTH)
        return r.status_code, r.json()


def stable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "exported_at"}


async def test_export_round_trip_holds_every_table_that_holds_the_person(
        settings, campaign_file, tmp_path):
    await person_everywhere(settings, campaign_file)
    with session_scope(settings.db_url) as s:
        mine = s.query(Enrollment).filter_by(customer_id=PERSON["id"]).one()
        mine.promo_code = "ZQ-PROMO-1"
    status, doc = await exported(settings, PERSON["id"])
    assert status == 200, doc
    assert doc["schema_version"] == 1 and doc["customer_id"] == PERSON["id"]

    # every table that holds the person (found by searching every row) has its section
    holders = set(holding(settings.db_url))
    assert holders <= set(PERSON_TABLES), holders - set(PERSON_TABLES)
    assert holders >= {"customers", "enrollments", "deliveries", "outbox_messages",
                       "delivery_events", "conversions", "events", "telegram_links",
                       "suppressions"}
    for table in holders:
        assert doc[SECTIONS[table]], (table, SECTIONS[table])
    text = json.dumps(doc).lower()
    assert all(n in text for n in NEEDLES), [n for n in NEEDLES if n not in text]

    assert doc["profile"]["email"] == PERSON["email"]
    assert doc["profile"]["attributes"] == PERSON["attributes"]
    sent = [m for m in doc["messages"] if m["rendered"]]
    assert len(sent) == 2 and all(m["rendered"]["body"] for m in sent)
    assert all(m["rendered"]["body_pruned"] is False for m in sent)
    assert sent[0]["enrollment_id"] == mine.id and sent[0]["cost"] is not None
    assert {f["event"] for f in doc["feedback"]} == {"delivered", "reply"}
    assert {"From": PERSON["phone"], "Body": "hi"} in [f["data"] for f in doc["feedback"]]
    assert doc["events"][0]["data"] == {"email": PERSON["email"]}
    conversion = doc["conversions"][0]
    assert conversion["amount"] == "42.5000" and conversion["currency"] == "EUR"
    assert conversion["data"] == {"ship_to": "Zeldaquux, 1 Main St"}
    assert doc["promo_codes"] == [{"code": "ZQ-PROMO-1", "campaign": mine.campaign,
                                   "run_id": mine.run_id, "enrollment_id": mine.id,
                                   "redeemed": False}]
    [enrolled] = doc["enrollments"]
    assert enrolled["status"] == "converted" and enrolled["trigger_data"]
    assert {"variant", "key", "enrolled_at", "finished_at", "campaign"} <= set(enrolled)
    assert doc["suppressions"] == [{"channel": "email", "address": PERSON["email"],
                                    "reason": "unsubscribed",
                                    "created_at": doc["suppressions"][0]["created_at"]}]
    assert [h["what"] for h in doc["consents"]["history"]] == ["suppressed"]
    assert doc["telegram_links"][0]["chat_id"] == PERSON["telegram_chat_id"]
    assert "tg-token-zq" not in text  # the one-time token is a credential, not data

    # the CLI writes the same document, 0600
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url,
                   OMNICASCADE_WEBHOOK_SECRET=SECRET)
    out = tmp_path / "zq.json"
    run_cli("customers", "export", PERSON["id"], "--out", str(out), env=env, ok=True)
    assert stable(json.loads(out.read_text())) == stable(doc)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    printed = run_cli("customers", "export", PERSON["id"], env=env, ok=True)
    assert stable(json.loads(printed.stdout)) == stable(doc)

    # erasure knows the same tables: it changes every one of them
    outcome = await erase_customer(None, settings, PERSON["id"], "cli")
    assert set(outcome.rows) == set(PERSON_TABLES)
    status, body = await exported(settings, PERSON["id"])
    assert status == 404, body  # nothing holds the id any more


async def test_unknown_ids_are_404_and_a_clear_cli_error(settings, tmp_path):
    for customer_id in ("nobody", "a/b", "x" * 300):
        status, body = await exported(settings, customer_id)
        assert status == 404, (customer_id, body)
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url,
                   OMNICASCADE_WEBHOOK_SECRET=SECRET)
    r = run_cli("customers", "export", "nobody", env=env, ok=False)
    assert r.returncode == 1 and "no customer 'nobody'" in r.stderr
    assert "Traceback" not in r.stderr
