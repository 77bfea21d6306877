"""Telegram binding: `{{ telegram_link }}` renders a one-time t.me deep link; /webhooks/telegram
(verified by the secret token header) binds the chat on `/start <token>` exactly once;
blocking the bot suppresses the chat, unblocking lifts it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from omnicascade.api.app import create_app
from omnicascade.cascade import lifecycle
from omnicascade.db.models import Customer, DeliveryEvent, Suppression, TelegramLink
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import EnrollmentStatus
from omnicascade.workflows.types import StepPlan
from tests.helpers.api import asgi_client
from tests.helpers.campaigns import TEMPLATES, write_campaign
from tests.helpers.cascades import add_customers, deliver_now, enroll, outbox, outbox_activities
from tests.helpers.env import reread

pytestmark = pytest.mark.db  # also on PostgreSQL when tests/pg.py has one

SECRET = "telegram-webhook-secret-0123456789"
LINK = re.compile(r"https://t\.me/shop_bot\?start=([A-Za-z0-9_-]{20,64})")
EMAIL = StepPlan("0", 0, "email", "t_email", 86400)


@pytest.fixture
async def tg(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("OMNICASCADE_TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("OMNICASCADE_TELEGRAM_BOT_USERNAME", "@shop_bot")
    settings = reread(settings)
    templates = dict(TEMPLATES, **{"t_email.txt.j2": "Get updates in Telegram: "
                                                     "{{ telegram_link }}"})
    campaign = write_campaign(tmp_path / "tg", templates=templates)
    add_customers(settings, {"id": "c1", "email": "ann@example.com"})
    acts = outbox_activities(settings)

    async def email_link() -> str:
        _, [e] = await enroll(None, settings, campaign, ["c1"], start=False)  # type: ignore
        result = await deliver_now(settings, e.id, EMAIL, acts)
        assert result.status == "sent", result
        with session_scope(settings.db_url) as s:  # that cascade ends: c1 may enter again
            lifecycle.finish(e.id, EnrollmentStatus.COMPLETED, session=s)
        match = LINK.search(outbox(settings, "c1")[-1].body)
        assert match, outbox(settings, "c1")[-1].body
        return match.group(1)
    http = asgi_client(create_app(settings))

    async def update(payload: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return await http.post("/webhooks/telegram", json=payload, headers=headers)
    yield settings, email_link, update, acts, campaign
    await http.aclose()


def message(update_id: int, chat: int, text: str) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1700000000, "text": text,
        "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": False,
                                                            "first_name": "Ann"}}}


def member(update_id: int, chat: int, status: str) -> dict[str, Any]:
    return {"update_id": update_id, "my_chat_member": {
        "chat": {"id": chat, "type": "private"}, "date": 1700000000,
        "from": {"id": chat, "is_bot": False, "first_name": "Ann"},
        "old_chat_member": {"status": "member"}, "new_chat_member": {"status": status}}}


def chat_of(settings) -> str | None:
    with session_scope(settings.db_url) as s:
        return s.get(Customer, "c1").telegram_chat_id


async def test_link_is_one_time_and_binds_the_chat(tg):
    settings, email_link, update, *_ = tg
    token = await email_link()
    assert token == await email_link()  # one open link per customer until it is used
    r = await update(message(1, 555, f"/start {token}"))
    assert r.json() == {"method": "sendMessage", "chat_id": 555,
                        "text": "You're connected. We'll send your updates here."}
    assert chat_of(settings) == "555"
    assert (await update(message(1, 555, f"/start {token}"))).json() == {"ok": True}  # dup
    r = await update(message(2, 666, f"/start {token}"))  # someone reusing the link
    assert r.json()["chat_id"] == 666 and "expired or was already used" in r.json()["text"]
    assert chat_of(settings) == "555"
    with session_scope(settings.db_url) as s:
        link = s.get(TelegramLink, token)
        assert (link.chat_id, link.used_at is not None) == ("555", True)
    assert await email_link() != token  # a used token is never handed out again


async def test_blocking_the_bot_suppresses_the_chat_and_unblocking_lifts(tg):
    settings, email_link, update, *_ = tg
    await update(message(1, 555, f"/start {await email_link()}"))
    await update(member(2, 555, "kicked"))
    with session_scope(settings.db_url) as s:
        assert [(x.channel, x.address, x.reason) for x in s.scalars(select(Suppression))] == \
            [("telegram", "555", "blocked")]
    await update(member(3, 555, "member"))
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0


async def test_wrong_or_missing_secret_changes_nothing(tg):
    settings, email_link, update, *_ = tg
    token = await email_link()
    assert (await update(message(1, 555, f"/start {token}"), secret=None)).status_code == 401
    assert (await update(message(1, 555, f"/start {token}"), secret="guess")).status_code == 403
    assert chat_of(settings) is None
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(DeliveryEvent)) == 0
        assert s.get(TelegramLink, token).used_at is None


async def test_link_without_a_bot_username_fails_the_step_loudly(tg, monkeypatch):
    settings, _, _, _, campaign = tg
    monkeypatch.delenv("OMNICASCADE_TELEGRAM_BOT_USERNAME")
    settings = reread(settings)  # a worker started without the bot's username
    acts = outbox_activities(settings)
    _, [e] = await enroll(None, settings, campaign, ["c1"], start=False)  # type: ignore
    result = await deliver_now(settings, e.id, EMAIL, acts)
    assert result.status == "failed" and "OMNICASCADE_TELEGRAM_BOT_USERNAME" in result.reason
    assert outbox(settings, "c1") == []


@pytest.mark.parametrize("payload, reason", [
    ({"update_id": 1, "message": "hi"}, "message is not an object"),
    ({"update_id": 1, "message": {"chat": "x", "text": "/start abc"}},
     "message.chat is not an object"),
    ({"update_id": 1, "my_chat_member": [1, 2]}, "my_chat_member is not an object"),
    ({"update_id": 1, "my_chat_member": {"chat": {"id": 5}, "new_chat_member": "kicked"}},
     "my_chat_member.new_chat_member is not an object"),
    ({"update_id": 1, "message": {"chat": {"id": [5]}, "text": "/stop"}},
     "message.chat.id is not a number"),
    ({"update_id": 1, "message": {"chat": {"id": 5}, "text": "/start a\u0000b"}}, "NUL"),
])
async def test_a_malformed_update_is_answered_200_and_recorded_as_rejected(tg, payload, reason):
    """Telegram resends an update answered non-2xx, and holds back every later one until it
    is accepted: a malformed update is acknowledged, changes nothing, and is recorded as
    rejected (with a warning in the log)."""
    settings, email_link, update, *_ = tg
    await email_link()
    for _ in range(2):  # a redelivery is recorded once
        r = await update(payload)
        assert (r.status_code, r.json()) == (200, {"ok": True}), r.text
    with session_scope(settings.db_url) as s:
        [row] = s.scalars(select(DeliveryEvent)).all()
        assert row.event == "rejected" and reason in row.data["reason"], row.data
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0
        assert s.scalar(select(TelegramLink.used_at)) is None
    r = await update(message(2, 555, "/stop"))  # the next, well-formed, update still counts
    assert r.status_code == 200
    with session_scope(settings.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Suppression)) == 1
