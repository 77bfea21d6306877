"""Telegram: the real python-telegram-bot `Bot(token, base_url=…)` against a local fake of the
Bot API; the exact request and every error class (blocked bot, flood control, 5xx)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError
from omnicascade.channels.telegram_bot import TelegramChannel, TelegramSettings
from tests.helpers.fake_provider import DROP, FakeProvider, Reply, refused_url

TOKEN = "123456789:AAtest-bot-token"
MSG = Message(delivery_id="enr_abc:2", channel="telegram", to="987654321",
              body="Your cart misses you: https://shop.example/cart", customer_id="c1",
              run_id="run_1", step="2", campaign="abandoned-cart")
OK = Reply(200, {"ok": True, "result": {"message_id": 77, "date": 1700000000,
                                        "chat": {"id": 987654321, "type": "private"},
                                        "text": "Your cart misses you"}})


def channel(url: str) -> TelegramChannel:
    return TelegramChannel(TelegramSettings(bot_token=TOKEN, bot_username="shop_bot",
                                            api_base_url=f"{url}/bot", rate=0, timeout_s=5))


def refused(description: str, code: int, **extra: object) -> Reply:
    return Reply(code, {"ok": False, "error_code": code, "description": description, **extra})


async def test_sends_exactly_what_the_bot_api_expects():
    with FakeProvider(OK) as fake:
        result = await channel(fake.url).send(MSG)
    assert (result.provider, result.message_id) == ("telegram", "987654321:77")
    [req] = fake.seen
    assert (req.method, req.path) == ("POST", f"/bot{TOKEN}/sendMessage")
    assert req.form() == {"chat_id": "987654321",
                          "text": "Your cart misses you: https://shop.example/cart"}


@pytest.mark.parametrize("reply, kind, suppress, retry_after", [
    (refused("Forbidden: bot was blocked by the user", 403), "permanent", True, None),
    (refused("Forbidden: user is deactivated", 403), "permanent", True, None),
    (refused("Bad Request: chat not found", 400), "permanent", True, None),
    (refused("Bad Request: message is too long", 400), "permanent", False, None),
    (refused("Bad Request: can't parse entities", 400), "retry", False, None),
    (refused("Unauthorized", 401), "retry", False, None),
    (refused("Too Many Requests: retry after 3", 429, parameters={"retry_after": 3}),
     "retry", False, 3.0),
    (Reply(502, b"<html>Bad Gateway</html>"), "retry", False, None),
])
async def test_answers_are_classified(reply: Reply, kind: str, suppress: bool,
                                      retry_after: float | None):
    with FakeProvider().answer(reply) as fake, \
            pytest.raises((PermanentSendError, RetryableSendError)) as err:
        await channel(fake.url).send(MSG)
    assert len(fake.seen) == 1
    if kind == "permanent":
        assert isinstance(err.value, PermanentSendError) and err.value.suppress is suppress
    else:
        assert isinstance(err.value, RetryableSendError), err.value
        assert err.value.retry_after == retry_after


async def test_500_or_dropped_answer_is_ambiguous_but_refused_is_retryable():
    for reply in (refused("Internal Server Error", 500), Reply(DROP)):
        with FakeProvider().answer(reply) as fake, pytest.raises(Exception) as err:
            await channel(fake.url).send(MSG)
        assert not isinstance(err.value, (RetryableSendError, PermanentSendError)), reply
    with pytest.raises(RetryableSendError, match="unreachable"):
        await channel(refused_url()).send(MSG)


async def test_empty_text_is_permanent_and_not_sent():
    with FakeProvider(OK) as fake, pytest.raises(PermanentSendError, match="empty"):
        await channel(fake.url).send(replace(MSG, body="  "))
    assert fake.seen == []
