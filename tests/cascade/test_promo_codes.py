"""Promo codes are case-insensitive end to end (issue 23, item 2): a code from a lowercase
pattern ("save-{random:6}") is generated in its normal form, shown in the message exactly
as stored, found by `GET /v1/promo-codes/<any case>` and redeemed by `POST /v1/conversions`
in any case; preview shows the normal form; one function decides the form."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.campaign.codes import code_from
from omnicascade.campaign.load import SpecError, load_campaign
from omnicascade.cascade.preview import preview
from omnicascade.config import Settings
from omnicascade.db.session import session_scope
from omnicascade.validation import normal_code
from omnicascade.workflows.types import StepPlan
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import FULL, write_campaign
from tests.helpers.cascades import add_customers, deliver_now, enroll, enrollment, outbox

TOKEN = "read-token-for-tests-0123456789abcdef"
LOWER = """\
campaign: lower-promo
trigger: {event: cart_abandoned}
conversion: {events: [order_placed], lookback: 1h}
promo: {pattern: "save-{random:6}", discount: "15%"}
steps:
  - {channel: email, template: t_email, wait: 24h}
"""
TEMPLATES = {"t_email.subject.j2": "A code for you",
             "t_email.txt.j2": "Use <{{ promo.code }}> {{ unsubscribe_url }}"}


def _cases(code: str) -> list[str]:
    mixed = "".join(c.lower() if i % 2 else c for i, c in enumerate(code))
    return [code.lower(), code.upper(), mixed, f"  {mixed} "]


@pytest.mark.db
async def test_a_code_from_a_lowercase_pattern_is_found_and_redeemed_in_any_case(
        settings: Settings, tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", LOWER, TEMPLATES)
    add_customers(settings, {"id": "c1", **FULL})
    _, [e] = await enroll(None, settings, campaign, ["c1"], start=False)  # type: ignore[arg-type]
    sent = await deliver_now(settings, e.id, StepPlan("0", 0, "email", "t_email", 86400))
    assert sent.status == "sent", sent
    [message] = outbox(settings, "c1")
    shown = re.search(r"<(.*)>", message.body).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"SAVE-[A-Z2-9]{6}", shown), shown  # the normal form, as generated
    assert enrollment(settings, e.id).promo_code == shown  # …and exactly as stored

    # no Temporal here: the signal to the (unstarted) cascade is skipped, the row decides
    app = create_app(settings.model_copy(update={"api_token": TOKEN,
                                                 "temporal_address": "127.0.0.1:9"}))
    sign = FreshSigner()
    async with asgi_client(app) as http:
        for typed in _cases(shown):
            r = await http.get(f"/v1/promo-codes/{typed}",
                               headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200, (typed, r.text)
            assert (r.json()["code"], r.json()["customer_id"]) == (shown, "c1")
        for i, typed in enumerate(_cases(shown)):
            body = (f'{{"event_id": "order-{i}", "type": "order_placed", '
                    f'"promo_code": "{typed}"}}').encode()
            r = await http.post("/v1/conversions", content=body, headers={
                HEADER: sign(SECRET, "POST", "/v1/conversions", body),
                "content-type": "application/json"})
            assert r.status_code == 202, (typed, r.text)
            assert r.json() == {"event_id": f"order-{i}", "customer_id": "c1",
                                "stopped": int(i == 0), "matched": True}
        r = await http.get(f"/v1/promo-codes/{shown.lower()}",
                           headers={"Authorization": f"Bearer {TOKEN}"})
        assert (r.json()["valid"], r.json()["redeemed"]) == (False, True)
    assert enrollment(settings, e.id).converted_at is not None


@pytest.mark.db
def test_preview_shows_the_code_in_its_normal_form(settings: Settings, tmp_path: Path) -> None:
    loaded = load_campaign(write_campaign(tmp_path / "c", LOWER, TEMPLATES))
    add_customers(settings, {"id": "c1", **FULL})
    with session_scope(settings.db_url) as s:
        [entry] = preview(loaded, "c1", session=s, settings=settings)
    assert "<SAVE-PREVIEW>" in entry["body"], entry


def test_a_pattern_in_any_case_validates_and_one_too_long_for_its_codes_does_not(
        tmp_path: Path) -> None:
    for pattern in ("save-{random:6}", "Ｓave-{random:6}-ß", "{random:4}"):
        loaded = load_campaign(write_campaign(tmp_path / pattern, LOWER.replace(
            "save-{random:6}", pattern), TEMPLATES))
        assert loaded.spec.promo is not None and loaded.spec.promo.pattern == pattern
    too_long = "ß" * 20 + "-{random:32}"  # 52 characters written, 73 as codes (ß → SS)
    with pytest.raises(SpecError) as err:
        load_campaign(write_campaign(tmp_path / "long", LOWER.replace("save-{random:6}",
                                                                      too_long), TEMPLATES))
    assert any("73 characters" in p.message for p in err.value.problems), err.value.problems


def test_codes_come_out_normal_from_any_pattern() -> None:
    assert code_from("save-{random:6}", lambda n: "x" * n) == "SAVE-XXXXXX"
    code = code_from("Ｓave-{random:4}-ﬁ")
    assert re.fullmatch(r"SAVE-[A-Z2-9]{4}-FI", code) and normal_code(code) == code
    assert normal_code(" save-ab2c\u3000") == normal_code("SAVE-AB2C") == "SAVE-AB2C"
    assert normal_code("ｓａｖｅ-ＡＢ２Ｃ") == "SAVE-AB2C"  # a phone's full-width keyboard


@given(st.text(max_size=12), st.text(alphabet="abcXYZ-23 ", max_size=12))
def test_normal_code_is_a_normal_form_and_ignores_case(text: str, ascii_code: str) -> None:
    once = normal_code(text)
    assert normal_code(once) == once  # stored codes stay as they are when looked up again
    assert normal_code(text.upper()) == once
    assert normal_code(ascii_code.lower()) == normal_code(ascii_code.swapcase()) \
        == normal_code(ascii_code)
