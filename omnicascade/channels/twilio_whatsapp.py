"""WhatsApp through Twilio's Messages API (the official `twilio` SDK), sharing the SMS
channel's account settings, client, E.164 check, error classes and status callbacks
(channels/twilio_sms.py).

What goes out is decided before the channel is called (activities/deliver.py) and rides
on `Message.data`:
- `content_sid` + `content_variables`: an approved WhatsApp template (a Twilio Content
  SID, `HX…`) and its rendered variables: sent as ContentSid + ContentVariables (JSON);
- otherwise the free-form body, which WhatsApp accepts only inside the 24 h
  customer-service window (`window_open`: the customer wrote to us on WhatsApp in the
  last 24 h); outside it the step fails permanently, before any request.

Sender: `whatsapp:<OMNICASCADE_TWILIO_WHATSAPP_FROM_NUMBER>` or a messaging service with
a WhatsApp sender (OMNICASCADE_TWILIO_WHATSAPP_MESSAGING_SERVICE_SID); recipient
`whatsapp:+E164`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from omnicascade.campaign.templates.whatsapp import NO_TEMPLATE_OUTSIDE_WINDOW
from omnicascade.channels.base import Message, PermanentSendError, SendResult
from omnicascade.channels.common import fit_into_activity, own_copy
from omnicascade.channels.ratelimit import limiter
from omnicascade.channels.twilio_sms import (
    TwilioSettings,
    account_of,
    callback_url,
    classify,
    create_message,
    e164,
    require_account,
    status_callback,
    twilio_client,
)
from omnicascade.config import Settings
from omnicascade.config.providers import WhatsAppSettings

PREFIX = "whatsapp:"
# https://www.twilio.com/docs/api/errors — WhatsApp answers that no retry can change.
# (Dead numbers and STOP share the SMS list: twilio_sms.DEAD_NUMBER.)
WHATSAPP_PERMANENT = {
    63016: "outside the 24 h customer-service window: use an approved template",
    63003: "the number is not on WhatsApp",
    63024: "invalid WhatsApp recipient",
    63049: "Meta chose not to deliver this marketing message",
    63027: "the template could not be delivered (Meta)",
    63028: "the number of template variables does not match the approved template",
    21656: "ContentVariables are invalid for this template",
    21655: "the ContentSid is invalid",
}


def whatsapp_classify(status: int, code: int | None, text: str,
                      retry_after: float | None = None) -> Exception:
    if code in WHATSAPP_PERMANENT:
        return PermanentSendError(f"{WHATSAPP_PERMANENT[code]} (Twilio {code})")
    return classify(status, code, text, retry_after)


def address(number: str) -> str:
    """`whatsapp:+E164` for a customer's phone (PermanentSendError if it is not one)."""
    return PREFIX + e164(number.removeprefix(PREFIX))


class WhatsAppChannel:
    provider = "twilio"

    def __init__(self, account: TwilioSettings, config: WhatsAppSettings, *,
                 callback_base: str | None = None, max_wait_s: float = 5.0):
        require_account(account)
        if not (config.messaging_service_sid or config.from_number):
            config.require("from_number")
        self.account, self.config = account, config
        self.client, self.http = twilio_client(account)
        self.callback = callback_url(account, callback_base)
        self.limiter = limiter(config.rate, config.burst, max_wait_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsAppChannel:
        account = account_of(settings)
        return cls(account, own_copy(settings.twilio_whatsapp),
                   callback_base=settings.link_base_url(),
                   max_wait_s=fit_into_activity(account, settings.send_timeout_s))

    def params(self, message: Message) -> dict[str, Any]:
        params: dict[str, Any] = {"to": address(message.to)}
        sid = message.data.get("content_sid")
        if sid:
            params["content_sid"] = sid
            params["content_variables"] = json.dumps(message.data.get("content_variables")
                                                     or {}, ensure_ascii=False)
        elif message.data.get("window_open"):
            params["body"] = message.body
        else:
            raise PermanentSendError(NO_TEMPLATE_OUTSIDE_WINDOW)
        if self.config.messaging_service_sid:
            params["messaging_service_sid"] = self.config.messaging_service_sid
        else:
            params["from_"] = address(str(self.config.from_number))
        if self.callback:
            params["status_callback"] = status_callback(self.callback, message.delivery_id)
        return params

    async def send(self, message: Message) -> SendResult:
        params = self.params(message)
        sent = await asyncio.to_thread(self._create, params)
        return SendResult(provider=self.provider, message_id=sent.sid)

    def _create(self, params: dict[str, Any]) -> Any:
        return create_message(self.client, self.http, params, whatsapp_classify)
