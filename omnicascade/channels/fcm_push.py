"""Push through Firebase Cloud Messaging HTTP v1 (the official `firebase-admin` SDK).

title + body as the notification, the deep link and the opaque delivery id as data, and the
campaign as collapse key (Android `collapse_key`, APNs `apns-collapse-id`): a newer push of
the same campaign replaces an unread older one. firebase-admin is synchronous (requests),
so each send runs in a thread.

Error classes (see channels/base.py):
- UNREGISTERED, SENDER_ID_MISMATCH or an invalid registration token → permanent, and the
  token is removed from the customer (it will never work again);
- 429 QUOTA_EXCEEDED (Retry-After honoured), other 4xx and 5xx → retryable: FCM does not
  accept a message it answers with an error;
- no connection at all → retryable; a timeout or a dropped answer → ambiguous.
The SDK's own retries are switched off: they would resend after a read error, and Temporal
already retries what is safe to retry.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from typing import Any

import firebase_admin
import google.auth.exceptions
import requests
from firebase_admin import _http_client, credentials, exceptions, messaging
from google.auth.credentials import AnonymousCredentials

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError, SendResult
from omnicascade.channels.common import (
    fit_into_activity,
    never_connected,
    own_copy,
)
from omnicascade.channels.ratelimit import limiter
from omnicascade.channels.retry_after import retry_after_seconds
from omnicascade.config import Settings
from omnicascade.config.providers import FcmSettings
from omnicascade.errors import ConfigError

DELIVERY_KEY = "omnicascade_delivery_id"
_URL = re.compile(r"(?:https?|[a-z][a-z0-9+.-]*)://\S+", re.IGNORECASE)
_apps = itertools.count()


class AnonymousCredential(credentials.Base):
    """No authentication: for an FCM emulator or a test server (refused in production)."""

    def get_credential(self) -> AnonymousCredentials:
        return AnonymousCredentials()


class FcmChannel:
    provider = "fcm"

    def __init__(self, config: FcmSettings, *, credential: credentials.Base | None = None,
                 max_wait_s: float = 5.0):
        config.require("project_id")
        self.config = config
        try:
            if credential is None:
                credential = (credentials.Certificate(config.credentials_file)
                              if config.credentials_file else credentials.ApplicationDefault())
            self.app = firebase_admin.initialize_app(
                credential, {"projectId": config.project_id, "httpTimeout": config.timeout_s},
                name=f"omnicascade-fcm-{next(_apps)}")
            # firebase-admin has no public endpoint or retry option: adjust its service.
            service = messaging._get_messaging_service(self.app)
        except (google.auth.exceptions.GoogleAuthError, ValueError, OSError) as exc:
            raise ConfigError(f"FCM credentials: {exc} (set OMNICASCADE_FCM_CREDENTIALS_FILE "
                              f"to a service-account JSON file)") from None
        base = (config.endpoint or "https://fcm.googleapis.com").rstrip("/")
        service._fcm_url = f"{base}/v1/projects/{config.project_id}/messages:send"
        auth: dict[str, Any] = ({"session": requests.Session()}  # no auth header at all
                                if isinstance(credential, AnonymousCredential) else
                                {"credential": self.app.credential.get_credential()})
        service._client = _http_client.JsonHttpClient(timeout=config.timeout_s, retries=False,
                                                      **auth)
        self.limiter = limiter(config.rate, config.burst, max_wait_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> FcmChannel:
        config = own_copy(settings.fcm)
        anonymous = (config.credentials_file or "").lower() == "anonymous"
        if anonymous and settings.env == "production":
            raise ConfigError("OMNICASCADE_FCM_CREDENTIALS_FILE=anonymous is for emulators "
                              "and tests only, not OMNICASCADE_ENV=production")
        if anonymous:
            config.credentials_file = None
        return cls(config, credential=AnonymousCredential() if anonymous else None,
                   max_wait_s=fit_into_activity(config, settings.send_timeout_s))

    def build(self, message: Message) -> messaging.Message:
        data = {str(k): str(v) for k, v in message.data.items() if v is not None}
        found = _URL.search(message.body or "")
        link = data.get("link") or (found.group(0) if found else self.config.default_link)
        if link:
            data["link"] = link
        data.update({DELIVERY_KEY: message.delivery_id, "campaign": message.campaign})
        collapse = message.campaign[:64]
        return messaging.Message(
            token=message.to, data=data,
            notification=messaging.Notification(title=message.title, body=message.body),
            android=messaging.AndroidConfig(collapse_key=collapse),
            apns=messaging.APNSConfig(headers={"apns-collapse-id": collapse}),
            webpush=messaging.WebpushConfig(fcm_options=messaging.WebpushFCMOptions(link=link))
            if link and link.startswith("https://") else None)

    async def send(self, message: Message) -> SendResult:
        msg = self.build(message)
        if self.limiter:
            await self.limiter.acquire(message.delivery_id)
        name = await asyncio.to_thread(self._send, msg)
        return SendResult(provider=self.provider, message_id=name)

    def _send(self, msg: messaging.Message) -> str:
        try:
            return messaging.send(msg, app=self.app)
        except exceptions.FirebaseError as exc:
            raise classify(exc) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            # the access token could not be had: FCM was never asked (or refused with 401)
            raise RetryableSendError(f"FCM credentials: {exc}") from None

    def close(self) -> None:
        """Release the SDK's app. Its cleanup calls asyncio.run(), so inside a running event
        loop it runs on a short-lived thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            firebase_admin.delete_app(self.app)
            return
        worker = threading.Thread(target=firebase_admin.delete_app, args=(self.app,))
        worker.start()
        worker.join()


def classify(exc: exceptions.FirebaseError) -> Exception:
    response: Any = exc.http_response
    if response is None:  # no answer from FCM
        if never_connected(exc):
            return RetryableSendError(f"FCM unreachable: {exc}")
        return exc
    status = response.status_code
    text = str(exc)
    if isinstance(exc, (messaging.UnregisteredError, messaging.SenderIdMismatchError)) or (
            isinstance(exc, exceptions.InvalidArgumentError)
            and "registration token" in text.lower()):
        return PermanentSendError(f"push token no longer valid: {text}", forget=True)
    if status == 429:
        return RetryableSendError(f"FCM 429: {text}",
                                  retry_after=retry_after_seconds(response.headers))
    return RetryableSendError(f"FCM {status}: {text}")
