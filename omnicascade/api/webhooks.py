"""Provider webhooks: each verified the provider's own way on the raw body before anything is
parsed; a forged or unsigned request gets 401/403 and changes nothing. Parsing turns events
into `Feedback` (omnicascade.feedback), which stores each event once and acts on it.

- /webhooks/sendgrid  Signed Event Webhook (ECDSA P-256 over timestamp + body)
- /webhooks/twilio    X-Twilio-Signature (HMAC over the public URL + form fields): message
                      status callbacks (?delivery=<id>) and incoming messages (STOP/START)
- /webhooks/telegram  X-Telegram-Bot-Api-Secret-Token: `/start <token>` binds a chat
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator, get_signature_algorithm

from omnicascade.api.app import ApiError, read_body
from omnicascade.channels.common import ProviderSettings
from omnicascade.channels.sendgrid_email import DELIVERY_ARG, SendGridSettings
from omnicascade.channels.telegram_link import TelegramSettings, bind_chat
from omnicascade.channels.twilio_sms import TwilioSettings
from omnicascade.db.session import session_scope
from omnicascade.feedback import (
    Feedback,
    event_id,
    from_unix,
    lift_suppression,
    record_feedback,
    signal_failed_steps,
)

router = APIRouter(tags=["webhooks"])
C = TypeVar("C", bound=ProviderSettings)
TWIML_OK = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
STOP_WORDS = {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
              "OPTOUT", "REVOKE"}
START_WORDS = {"START", "YES", "UNSTOP", "OPTIN"}
# Twilio error codes that mean this number can never get our SMS (beyond this message).
SMS_DEAD = {21211: "invalid number", 21610: "stop", 21614: "not a mobile number",
            30004: "blocked", 30005: "invalid number", 30006: "not a mobile number"}
NOT_CONFIGURED = "this webhook is not configured on the server; set"
_BOUNCE_DROP = re.compile(r"bounce|unsubscrib|spam|invalid", re.IGNORECASE)


def _config(request: Request, cls: type[C]) -> C:
    cache = getattr(request.app.state, "provider_configs", None)
    if cache is None:
        cache = request.app.state.provider_configs = {}
    if cls not in cache:
        cache[cls] = cls()
    return cache[cls]


async def _apply(request: Request, items: list[Feedback]) -> dict[str, int]:
    def tx():
        with session_scope(request.app.state.settings.db_url) as session:
            return record_feedback(items, session=session)
    outcome = await run_in_threadpool(tx)  # committed before any signal
    signalled = await signal_failed_steps(await request.app.state.temporal.get(),
                                          outcome.failed_steps,
                                          request.app.state.settings.db_url)
    return {"recorded": outcome.recorded, "duplicates": outcome.duplicates,
            "steps_failed": len(outcome.failed_steps), "signalled": signalled}


# ---- SendGrid ------------------------------------------------------------------------------
def sendgrid_item(ev: dict[str, Any]) -> Feedback:
    name = str(ev.get("event") or "unknown")[:32]
    address = ev.get("email") if isinstance(ev.get("email"), str) else None
    sg_id = ev.get("sg_event_id")
    item = Feedback("sendgrid", name, f"sendgrid:{sg_id}"[:255] if sg_id else
                    event_id("sendgrid", ev),
                    delivery_id=str(ev[DELIVERY_ARG])[:160] if ev.get(DELIVERY_ARG) else None,
                    occurred_at=from_unix(ev.get("timestamp")), data=ev)
    reason = str(ev.get("reason") or ev.get("response") or "")[:200]
    if name == "bounce" and ev.get("type") == "blocked":  # refused for now, not a dead address
        item.fail = f"blocked: {reason}".strip(": ")
    elif name == "bounce":
        item.suppress, item.fail = ("email", address, "bounced"), f"bounced: {reason}".strip(": ")
    elif name == "dropped":
        item.fail = f"dropped: {reason}".strip(": ")
        if _BOUNCE_DROP.search(reason):  # SendGrid's own suppression list: mirror it
            item.suppress = ("email", address, f"dropped: {reason}")
    elif name == "spamreport":
        item.suppress = ("email", address, "spamreport")
    elif name in ("unsubscribe", "group_unsubscribe"):
        item.suppress = ("email", address, "unsubscribed")
    return item


@router.post("/webhooks/sendgrid", summary="SendGrid Event Webhook (signed)")
async def sendgrid_webhook(request: Request) -> dict[str, int]:
    config = _config(request, SendGridSettings)
    body = await read_body(request)
    signature = request.headers.get(EventWebhookHeader.SIGNATURE)
    timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP)
    if not signature or not timestamp:
        raise ApiError(401, f"missing {EventWebhookHeader.SIGNATURE} / "
                            f"{EventWebhookHeader.TIMESTAMP} headers")
    if not config.webhook_public_key:
        raise ApiError(403, f"cannot verify: {NOT_CONFIGURED} "
                            f"OMNICASCADE_SENDGRID_WEBHOOK_PUBLIC_KEY")
    try:
        valid = EventWebhook(config.webhook_public_key).verify_signature(
            body.decode(), signature, timestamp)
    except Exception:  # noqa: BLE001 — malformed signature, key or body: not verified
        valid = False
    if not valid:
        raise ApiError(403, "SendGrid signature does not match")
    try:
        events = json.loads(body)
    except ValueError:
        raise ApiError(400, "body is not JSON") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ApiError(400, "expected a JSON array of event objects")
    return await _apply(request, [sendgrid_item(e) for e in events])


# ---- Twilio --------------------------------------------------------------------------------
def twilio_item(params: dict[str, str], delivery_id: str | None) -> Feedback:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if status == "received" or (not delivery_id and "Body" in params):
        word = (params.get("OptOutType") or params.get("Body") or "").strip().upper()
        sender = params.get("From", "")
        item = Feedback("twilio", "inbound", f"twilio:{sid}" if sid else
                        event_id("twilio", params), data={"from": sender, "body": word[:40]})
        if word in STOP_WORDS:
            item.event, item.suppress = "inbound_stop", ("sms", sender, "stop")
        elif word in START_WORDS:
            item.event, item.lift = "inbound_start", ("sms", sender, ("stop", "unsubscribed"))
        return item
    item = Feedback("twilio", status[:32] or "status", f"twilio:{sid}:{status}" if sid else
                    event_id("twilio", params), delivery_id=(delivery_id or "")[:160] or None,
                    data=dict(params))
    if status in ("failed", "undelivered"):
        code = int(params["ErrorCode"]) if params.get("ErrorCode", "").isdigit() else None
        item.fail = f"sms {status}" + (f" (Twilio {code})" if code else "")
        if code in SMS_DEAD:
            item.suppress = ("sms", params.get("To"), SMS_DEAD[code])
    return item


def _twilio_urls(request: Request) -> list[str]:
    urls = [str(request.url)]
    public = request.app.state.settings.public_url
    if public:
        query = f"?{request.url.query}" if request.url.query else ""
        urls.insert(0, f"{public.rstrip('/')}{request.url.path}{query}")
    return urls


@router.post("/webhooks/twilio", summary="Twilio status callbacks and incoming SMS (signed)")
async def twilio_webhook(request: Request) -> Response:
    config = _config(request, TwilioSettings)
    body = await read_body(request)
    signature = request.headers.get("X-Twilio-Signature")
    if not signature:
        raise ApiError(401, "missing X-Twilio-Signature header")
    if not config.auth_token:
        raise ApiError(403, f"cannot verify: {NOT_CONFIGURED} OMNICASCADE_TWILIO_AUTH_TOKEN")
    try:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        params = None
    algorithm = get_signature_algorithm(
        request.headers.get("X-Twilio-Webhooks-Signature-Settings"))
    validator = RequestValidator(config.auth_token)
    if params is None or not any(validator.validate(url, params, signature, algorithm)
                                 for url in _twilio_urls(request)):
        raise ApiError(403, "Twilio signature does not match (is OMNICASCADE_PUBLIC_URL the "
                            "URL Twilio calls?)")
    await _apply(request, [twilio_item(params, request.query_params.get("delivery"))])
    return Response(TWIML_OK, media_type="application/xml")


# ---- Telegram ------------------------------------------------------------------------------
def telegram_update(update: dict[str, Any], config: TelegramSettings, *,
                    session: Any) -> tuple[int, str | None, str | None]:
    """Record one update and act on it: (recorded?, chat id, reply text)."""
    message = update.get("message") or {}
    member = update.get("my_chat_member") or {}
    chat = str((message.get("chat") or member.get("chat") or {}).get("id") or "")
    item = Feedback("telegram", "update", f"telegram:{config.bot_username or 'bot'}:"
                    f"{update.get('update_id')}" if "update_id" in update else
                    event_id("telegram", update), data={"chat_id": chat})
    text = str(message.get("text") or "").strip()
    command, _, arg = text.partition(" ")
    command = command.split("@")[0].lower()
    status = (member.get("new_chat_member") or {}).get("status")
    if chat and status == "kicked":  # the person blocked the bot
        item.event, item.suppress = "blocked", ("telegram", chat, "blocked")
    elif chat and status == "member" and member:
        item.event, item.lift = "unblocked", ("telegram", chat, ("blocked",))
    elif chat and command == "/stop":
        item.event, item.suppress = "stop", ("telegram", chat, "stop")
    elif chat and command == "/start":
        item.event = "start"
    outcome = record_feedback([item], session=session)
    if not outcome.recorded or item.event not in ("start", "stop"):
        return outcome.recorded, chat, None
    if item.event == "stop":
        return 1, chat, None
    token = arg.strip()
    if token and bind_chat(token, chat, session=session, config=config) is None:
        return 1, chat, config.invalid_link_reply
    if not token:
        return 1, chat, config.unknown_reply
    lift_suppression("telegram", chat, ("blocked", "stop", "unsubscribed"), session=session)
    return 1, chat, config.linked_reply


@router.post("/webhooks/telegram", summary="Telegram bot updates (secret token)")
async def telegram_webhook(request: Request) -> JSONResponse:
    config = _config(request, TelegramSettings)
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
    if not given:
        raise ApiError(401, "missing X-Telegram-Bot-Api-Secret-Token header")
    if not config.webhook_secret:
        raise ApiError(403, f"cannot verify: {NOT_CONFIGURED} "
                            f"OMNICASCADE_TELEGRAM_WEBHOOK_SECRET")
    if not hmac.compare_digest(given.encode(), config.webhook_secret.encode()):
        raise ApiError(403, "Telegram secret token does not match")
    try:
        update = json.loads(await read_body(request))
    except ValueError:
        raise ApiError(400, "body is not JSON") from None
    if not isinstance(update, dict):
        raise ApiError(400, "expected a Telegram Update object")

    def tx():
        with session_scope(request.app.state.settings.db_url) as session:
            return telegram_update(update, config, session=session)
    _, chat, reply = await run_in_threadpool(tx)
    if reply and chat:  # answered inline: Telegram performs this method for us
        return JSONResponse({"method": "sendMessage", "chat_id": int(chat) if chat.lstrip(
            "-").isdigit() else chat, "text": reply})
    return JSONResponse({"ok": True})
