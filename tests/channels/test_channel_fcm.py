"""FCM push: the real firebase-admin SDK with its endpoint pointed at a local fake of the
HTTP v1 API and anonymous credentials; the exact request and every error class."""

from __future__ import annotations

import pytest

from omnicascade.channels.base import Message, PermanentSendError, RetryableSendError
from omnicascade.channels.fcm_push import AnonymousCredential, FcmChannel, FcmSettings
from omnicascade.channels.registry import build_channels
from omnicascade.errors import ConfigError
from tests.helpers.env import reread
from tests.helpers.fake_provider import DROP, FakeProvider, Reply, refused_url

MSG = Message(delivery_id="enr_abc:3", channel="push", to="device-token-xyz",
              title="Still there?", body="Your cart is saved: myshop://cart/42",
              customer_id="c1", run_id="run_1", step="3", campaign="abandoned-cart")
SENT = Reply(200, {"name": "projects/demo-shop/messages/0:1700000000%abc"})


@pytest.fixture
def fcm():
    made: list[FcmChannel] = []

    def make(url: str) -> FcmChannel:
        made.append(FcmChannel(FcmSettings(project_id="demo-shop", endpoint=url, timeout_s=5),
                               credential=AnonymousCredential()))
        return made[-1]
    yield make
    for channel in made:
        channel.close()


def fcm_error(status: int, state: str, message: str, code: str | None = None) -> Reply:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": code}] if code else []
    return Reply(status, {"error": {"code": status, "message": message, "status": state,
                                    "details": details}})


async def test_sends_exactly_what_fcm_expects(fcm):
    with FakeProvider(SENT) as fake:
        result = await fcm(fake.url).send(MSG)
    assert (result.provider, result.message_id) == ("fcm", SENT.body["name"])
    [req] = fake.seen
    assert (req.method, req.path) == ("POST", "/v1/projects/demo-shop/messages:send")
    assert "authorization" not in req.headers  # anonymous credentials
    assert req.headers["x-goog-api-format-version"] == "2"
    assert req.json() == {"message": {
        "token": "device-token-xyz",
        "notification": {"title": "Still there?", "body": "Your cart is saved: myshop://cart/42"},
        "data": {"link": "myshop://cart/42", "omnicascade_delivery_id": "enr_abc:3",
                 "campaign": "abandoned-cart"},
        "android": {"collapse_key": "abandoned-cart"},
        "apns": {"headers": {"apns-collapse-id": "abandoned-cart"}}}}


@pytest.mark.parametrize("reply, kind, retry_after", [
    (fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
     "dead", None),
    (fcm_error(400, "INVALID_ARGUMENT",
               "The registration token is not a valid FCM registration token"), "dead", None),
    (fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
     "dead", None),
    (fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), "retry", None),
    (fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
     "retry", None),
    (Reply(429, fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded",
                          "QUOTA_EXCEEDED").body, {"Retry-After": "12"}), "retry", 12.0),
    (fcm_error(500, "INTERNAL", "Internal error"), "retry", None),
    (fcm_error(503, "UNAVAILABLE", "The service is unavailable"), "retry", None),
])
async def test_answers_are_classified(fcm, reply: Reply, kind: str,
                                      retry_after: float | None):
    with FakeProvider().answer(reply) as fake, \
            pytest.raises((PermanentSendError, RetryableSendError)) as err:
        await fcm(fake.url).send(MSG)
    assert len(fake.seen) == 1  # the SDK's own retries (which resend after errors) are off
    if kind == "dead":
        assert isinstance(err.value, PermanentSendError) and err.value.forget
    else:
        assert isinstance(err.value, RetryableSendError), err.value
        assert err.value.retry_after == retry_after


async def test_unreachable_is_retryable_but_a_dropped_answer_is_ambiguous(fcm):
    with pytest.raises(RetryableSendError, match="unreachable"):
        await fcm(refused_url()).send(MSG)
    with FakeProvider().answer(Reply(DROP)) as fake, pytest.raises(Exception) as err:
        await fcm(fake.url).send(MSG)
    assert not isinstance(err.value, (RetryableSendError, PermanentSendError))
    assert len(fake.seen) == 1


def test_anonymous_credentials_are_refused_in_production(monkeypatch, settings):
    monkeypatch.setenv("OMNICASCADE_PUSH_PROVIDER", "fcm")
    monkeypatch.setenv("OMNICASCADE_FCM_PROJECT_ID", "demo-shop")
    monkeypatch.setenv("OMNICASCADE_FCM_CREDENTIALS_FILE", "anonymous")
    channels = build_channels(reread(settings))
    assert channels["push"].provider == "fcm"
    channels["push"].close()
    with pytest.raises(ConfigError, match="anonymous"):
        build_channels(reread(settings.model_copy(update={"env": "production"})))



async def test_service_account_token_is_sent_as_bearer(tmp_path):
    """A service-account key made here signs the OAuth token request (sent to the key file's
    token_uri, the fake); FCM then receives that token as the bearer."""
    import base64
    import json

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from firebase_admin import credentials

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    token = Reply(200, {"access_token": "ya29.test-token", "expires_in": 3600,
                        "token_type": "Bearer"})
    with FakeProvider(SENT).answer(token) as fake:
        path = tmp_path / "sa.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "demo-shop", "private_key_id": "k1",
            "private_key": pem, "client_email": "push@demo-shop.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": f"{fake.url}/token"}))
        channel = FcmChannel(FcmSettings(project_id="demo-shop", endpoint=fake.url),
                             credential=credentials.Certificate(str(path)))
        try:
            await channel.send(MSG)
        finally:
            channel.close()
    grant, send = fake.seen
    assert (grant.path, grant.form()["grant_type"]) == (
        "/token", "urn:ietf:params:oauth:grant-type:jwt-bearer")
    header, claims, signature = grant.form()["assertion"].split(".")
    key.public_key().verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
                            f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert send.path == "/v1/projects/demo-shop/messages:send"
    assert send.headers["authorization"] == "Bearer ya29.test-token"
