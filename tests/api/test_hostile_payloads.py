"""Every case in tests/hostile/*.json against the ASGI app, on SQLite and PostgreSQL: date
extremes, Unicode (emoji, RTL, lone surrogates, NUL), CRLF in addresses, unsubscribe tokens
with non-ASCII signatures, malformed Telegram updates, Twilio forms signed for a spoofed
host, poisoned SendGrid batches. Each answer is the expected 2xx or 4xx — never a 5xx or a
traceback — within a few seconds. Requests are signed the way the real callers sign them
(tests/helpers/api.py for the API; real ECDSA P-256 keys, Twilio's RequestValidator and the
Telegram secret token for the webhooks).

Plus what one request cannot show: a repeated event_id answers with what was stored.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.config import Settings
from omnicascade.db.models import Suppression
from omnicascade.db.session import session_scope
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers
from tests.helpers.env import reread
from tests.helpers.fake_provider import SignalRecorder

pytestmark = pytest.mark.db

HOSTILE = Path(__file__).resolve().parent.parent / "hostile"
FILES = ("api_payloads.json", "webhook_payloads.json")  # HTTP cases; other files are not
CASES = [case for name in FILES
         for case in json.loads((HOSTILE / name).read_text(encoding="utf-8"))["cases"]]
TWILIO_TOKEN = "twilio-auth-token-for-tests-0123"
TELEGRAM_SECRET = "telegram-secret-for-hostile-tests"
CASE_SECONDS = 10


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch, sendgrid_key: ec.EllipticCurvePrivateKey
              ) -> ec.EllipticCurvePrivateKey:
    der = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("OMNICASCADE_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(der).decode())
    monkeypatch.setenv("OMNICASCADE_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("OMNICASCADE_TELEGRAM_WEBHOOK_SECRET", TELEGRAM_SECRET)
    return sendgrid_key


def _body(case: dict[str, Any]) -> bytes:
    if "form" in case:
        return urlencode(case["form"]).encode()
    if "body_raw_nested" in case:
        opening, n, closing = case["body_raw_nested"]
        return (opening * n + closing * n).encode()
    if "body_raw" in case:
        return str(case["body_raw"]).encode()
    if "body" in case:
        return json.dumps(case["body"]).encode()  # lone surrogates are escaped again
    return b""


def _headers(case: dict[str, Any], body: bytes, key: ec.EllipticCurvePrivateKey,
             signer: FreshSigner) -> dict[str, str]:
    headers = {"content-type": "application/x-www-form-urlencoded" if "form" in case
               else "application/json"}
    how = case.get("sign")
    if how == "api":
        headers[HEADER] = signer(SECRET, case["method"], case["endpoint"], body)
    elif how == "telegram":
        headers["X-Telegram-Bot-Api-Secret-Token"] = TELEGRAM_SECRET
    elif how == "twilio":
        headers["X-Twilio-Signature"] = RequestValidator(TWILIO_TOKEN).compute_signature(
            case["twilio_url"], case["form"])
    elif how == "sendgrid":
        ts = str(int(time.time()))
        sig = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers["X-Twilio-Email-Event-Webhook-Signature"] = base64.b64encode(sig).decode()
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = ts
    return {**headers, **case.get("headers", {})}


def _suppressions(settings: Settings) -> list[list[str]]:
    with session_scope(settings.db_url) as s:
        return sorted([r.channel, r.address, r.reason] for r in s.scalars(select(Suppression)))


@pytest.fixture
async def app_for(settings: Settings, providers: ec.EllipticCurvePrivateKey
                  ) -> AsyncIterator[Any]:
    add_customers(settings, {"id": "c1", **FULL})
    clients: list[httpx.AsyncClient] = []

    def make(overrides: dict[str, Any]) -> tuple[Settings, httpx.AsyncClient]:
        s = reread(settings.model_copy(update=overrides))  # with `providers` variables
        clients.append(asgi_client(create_app(s, SignalRecorder())))  # type: ignore[arg-type]
        return s, clients[-1]
    yield make
    for client in clients:
        await client.aclose()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_hostile_payload(app_for: Any, providers: ec.EllipticCurvePrivateKey,
                               case: dict[str, Any]) -> None:
    settings, http = app_for(case.get("settings", {}))
    with session_scope(settings.db_url) as s:
        for channel, address, reason in case.get("setup_suppressions", []):
            s.add(Suppression(channel=channel, address=address, reason=reason))
    body = _body(case)
    headers = _headers(case, body, providers, FreshSigner())
    # the wait_for is the hang guard: a payload that makes the handler hang fails here
    r = await asyncio.wait_for(http.request(case["method"], case["endpoint"], content=body,
                                            headers=headers), CASE_SECONDS)
    where = (case["name"], r.status_code, r.text[:500])
    assert r.status_code < 500 and "Traceback" not in r.text, where
    assert f"{r.status_code // 100}xx" == case["expect_status_class"], where
    assert r.status_code == case.get("expect_status", r.status_code), where
    assert case.get("expect_text", "") in r.text, where
    if "expect_json" in case:
        assert case["expect_json"].items() <= r.json().items(), where
    if "expect_suppressions" in case:
        assert _suppressions(settings) == sorted(case["expect_suppressions"]), where


def test_the_data_files_hold_every_kind_of_case() -> None:
    names = {c["name"] for c in CASES}
    assert len(names) == len(CASES), "case names must be unique"
    for case in CASES:
        assert case["expect_status_class"] in ("2xx", "4xx"), case["name"]
        assert {"endpoint", "method"} <= set(case), case["name"]
    endpoints = {c["endpoint"].split("?")[0].rsplit("/", 1)[0] for c in CASES}
    assert {"/v1", "/u", "/webhooks"} <= endpoints


# ---- a repeated event_id answers with what was stored ----------------------------------------

async def _post(http: httpx.AsyncClient, signer: FreshSigner, path: str,
                payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await http.post(path, content=body, headers={
        HEADER: signer(SECRET, "POST", path, body), "content-type": "application/json"})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path, first, again", [
    ("/v1/conversions", {"event_id": "x1", "type": "order_placed", "customer_id": "c1"},
     {"event_id": "x1", "type": "order_placed", "customer_id": "c2"}),
    ("/v1/conversions", {"event_id": "x2", "type": "order_placed", "customer_id": "c1"},
     {"event_id": "x2", "type": "promo_redeemed", "promo_code": "NOPE-123"}),
    ("/v1/events", {"event_id": "e1", "customer_id": "c1", "type": "cart_abandoned"},
     {"event_id": "e1", "customer_id": "c2", "type": "cart_abandoned"}),
    ("/v1/events", {"event_id": "e2", "customer_id": "c1", "type": "cart_abandoned"},
     {"event_id": "e2", "customer_id": "nobody", "type": "other"}),
])
async def test_a_repeated_event_id_answers_with_the_stored_body(app_for: Any, path: str,
                                                                first: dict[str, Any],
                                                                again: dict[str, Any]) -> None:
    """README: a repeated event_id → 200 with the same body as the first answer (which
    names the stored customer, not the one the repeat claims), and no new effect."""
    settings, http = app_for({})
    add_customers(settings, {"id": "c2", "email": "b@example.com"})
    signer = FreshSigner()
    r1 = await _post(http, signer, path, first)
    assert r1.status_code == 202, r1.text
    r2 = await _post(http, signer, path, again)
    assert (r2.status_code, r2.json()) == (200, r1.json())
    assert r2.json()["customer_id"] == "c1"
