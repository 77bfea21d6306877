"""Twilio's callbacks to /webhooks/twilio, verified by X-Twilio-Signature (HMAC over the URL
Twilio called and the form fields): message status callbacks (?delivery=<opaque id>) and
incoming SMS and WhatsApp messages (From `whatsapp:+…`): STOP / START keywords act on that
channel only, and any other message is a reply (cascade/conversations.py links it to the
latest message sent to that number there). The URL is the configured one (the router's
`urls`: OMNICASCADE_PUBLIC_URL + path), never the Host header: a form signed for another
app's URL is refused."""

from __future__ import annotations

from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator, get_signature_algorithm

from omnicascade.channels.callbacks import (
    Feedback,
    FeedbackOutcome,
    WebhookRefused,
    WebhookReply,
    WebhookRequest,
    content_id,
)
from omnicascade.channels.twilio_sms import DEAD_NUMBER, TwilioSettings
from omnicascade.config import Settings

TWIML_OK = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
STOP_WORDS = {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
              "OPTOUT", "REVOKE"}
START_WORDS = {"START", "YES", "UNSTOP", "OPTIN"}


HELP_WORDS = {"HELP", "INFO"}  # answered by Twilio itself: neither a reply nor consent


def sender(value: str | None) -> tuple[str, str]:
    """(channel, bare number) of a Twilio address: `whatsapp:+49…` is WhatsApp."""
    value = value or ""
    if value.lower().startswith("whatsapp:"):
        return "whatsapp", value[len("whatsapp:"):]
    return "sms", value


def twilio_item(params: dict[str, str], delivery_id: str | None) -> Feedback:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if status == "received" or (not delivery_id and "Body" in params):
        word = (params.get("OptOutType") or params.get("Body") or "").strip().upper()
        channel, number = sender(params.get("From"))
        item = Feedback("twilio", "inbound", f"twilio:{sid}" if sid else
                        content_id("twilio", params),
                        data={"from": params.get("From", ""), "body": word[:40]})
        if number:
            item.inbound, item.replies = (channel, number), True
        if word in STOP_WORDS:  # for this channel only: a WhatsApp STOP leaves SMS alone
            item.event, item.suppress = "inbound_stop", (channel, number, "stop")
            item.replies = False
        elif word in START_WORDS:
            item.event, item.lift = "inbound_start", (channel, number, ("stop", "unsubscribed"))
            item.replies = False
        elif word in HELP_WORDS:
            item.replies = False
        return item
    item = Feedback("twilio", status[:32] or "status", f"twilio:{sid}:{status}" if sid else
                    content_id("twilio", params), delivery_id=(delivery_id or "")[:160] or None,
                    data=dict(params))
    if status in ("failed", "undelivered"):
        raw = params.get("ErrorCode", "")
        code = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
        channel, number = sender(params.get("To"))
        item.fail = f"{channel} {status}" + (f" (Twilio {code})" if code else "")
        if code in DEAD_NUMBER:
            item.suppress = (channel, number or None, DEAD_NUMBER[code][0])
    return item


class TwilioWebhook:
    name = "twilio"

    def __init__(self, config: TwilioSettings):
        self.config = config

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioWebhook:
        return cls(settings.twilio)

    def parse(self, request: WebhookRequest) -> list[Feedback]:
        [signature] = request.signature("X-Twilio-Signature", key=self.config.auth_token,
                                        key_setting="OMNICASCADE_TWILIO_AUTH_TOKEN")
        try:
            params: dict[str, str] | None = dict(parse_qsl(request.body.decode(),
                                                           keep_blank_values=True))
        except UnicodeDecodeError:
            params = None
        algorithm = get_signature_algorithm(request.header("X-Twilio-Webhooks-Signature-Settings"))
        validator = RequestValidator(self.config.auth_token)
        if params is None or not any(validator.validate(url, params, signature, algorithm)
                                     for url in request.urls):
            raise WebhookRefused(403, "Twilio signature does not match the configured URL "
                                      "(is OMNICASCADE_PUBLIC_URL + /webhooks/twilio the URL "
                                      "Twilio calls?)")
        return [twilio_item(params, request.query.get("delivery"))]

    def reply(self, items: list[Feedback], outcome: FeedbackOutcome) -> WebhookReply:
        return WebhookReply(TWIML_OK, media_type="application/xml")
