"""Our HMAC request signatures (v2: time, method, path and body), and the settings that
refuse placeholder secrets."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from pathlib import Path

import pytest

from omnicascade.api.signature import HEADER, V1_REFUSED, SignatureError, sign, verify
from omnicascade.config import load_settings
from omnicascade.errors import ConfigError

SECRET = "whsec-" + "a1" * 16
BODY = b'{"event_id":"e1","type":"order_placed","customer_id":"c1"}'
NOW = 1_700_000_000
PATH = "/v1/events"


def refusal(header: str | None, body: bytes = BODY, *, method: str = "POST",
            path: str = PATH, now: float | None = NOW, secret: str = SECRET) -> str | None:
    """None if verify accepts the signature, else its reason."""
    try:
        verify(secret, header, method, path, body, now=now)
    except SignatureError as exc:
        return str(exc)
    return None


# ---- signatures --------------------------------------------------------------------------------

def test_header_format_is_v2_over_time_method_path_and_body() -> None:
    header = sign(SECRET, "post", PATH, BODY, timestamp=NOW)
    signed = f"{NOW}.POST.{PATH}.".encode() + BODY
    mac = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v2={mac}"
    accepted = verify(SECRET, header, "POST", PATH, BODY, now=NOW)
    assert (accepted.t, accepted.mac) == (NOW, mac)


def test_valid_signature_is_accepted() -> None:
    assert refusal(sign(SECRET, "POST", PATH, BODY, timestamp=NOW)) is None
    assert refusal(sign(SECRET, "POST", PATH, BODY), now=None) is None  # the real clock
    assert refusal(sign(SECRET, "POST", PATH, b""), b"", now=None) is None


def test_signature_at_the_edge_of_the_tolerance_is_accepted() -> None:
    assert refusal(sign(SECRET, "POST", PATH, BODY, timestamp=NOW - 300)) is None
    assert refusal(sign(SECRET, "POST", PATH, BODY, timestamp=NOW + 300)) is None


def test_one_of_several_v2_signatures_may_match() -> None:
    good = sign(SECRET, "POST", PATH, BODY, timestamp=NOW)
    assert refusal(f"t={NOW},v2={'0' * 64},{good.split(',')[1]}") is None
    assert refusal(f"{good},v2={'0' * 64}") is None


def test_wrong_secret_is_refused() -> None:
    reason = refusal(sign("another-secret-entirely-1234", "POST", PATH, BODY, timestamp=NOW))
    assert reason is not None and reason.startswith("signature does not match")


@pytest.mark.parametrize("tampered", [BODY.replace(b"c1", b"c2"), BODY + b" ", b""])
def test_tampered_body_is_refused(tampered: bytes) -> None:
    assert refusal(sign(SECRET, "POST", PATH, BODY, timestamp=NOW), tampered) is not None


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/conversions"), ("POST", "/v1/customers"), ("PUT", PATH), ("GET", PATH),
    ("POST", PATH + "?x=1"), ("POST", PATH + "/"), ("POST", "/V1/EVENTS")])
def test_a_signature_for_another_method_or_path_is_refused(method: str, path: str) -> None:
    header = sign(SECRET, "POST", PATH, BODY, timestamp=NOW)
    assert refusal(header, method=method, path=path) is not None
    assert refusal(sign(SECRET, method, path, BODY, timestamp=NOW), method=method,
                   path=path) is None


def test_the_method_is_signed_upper_case() -> None:
    assert sign(SECRET, "post", PATH, BODY, NOW) == sign(SECRET, "POST", PATH, BODY, NOW)
    assert refusal(sign(SECRET, "post", PATH, BODY, NOW), method="post") is None


def test_sign_wants_the_path_not_a_url() -> None:
    with pytest.raises(ValueError, match="path"):
        sign(SECRET, "POST", "http://127.0.0.1:8787/v1/events", BODY)


def test_signature_for_another_timestamp_is_refused() -> None:
    mac = sign(SECRET, "POST", PATH, BODY, timestamp=NOW).split("v2=")[1]
    assert refusal(f"t={NOW + 1},v2={mac}") is not None


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_refused(header: str | None) -> None:
    reason = refusal(header)
    assert reason is not None and "missing" in reason and HEADER in reason


def test_a_v1_signature_is_refused_with_how_to_sign_now() -> None:
    mac = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    reason = refusal(f"t={NOW},v1={mac}")
    assert reason == V1_REFUSED
    assert "v1 signatures (t + body only) are no longer accepted" in reason
    assert '"<t>.<METHOD>.<path>.<body>"' in reason and "v2=" in reason and "README" in reason


@pytest.mark.parametrize("header", [
    "garbage", "t=,v2=abc", "t=abc,v2=abc", f"v2={'0' * 64}", f"t={NOW}", f"t={NOW},v2=",
    f"t={NOW},v0={sign(SECRET, 'POST', PATH, BODY, timestamp=NOW).split('v2=')[1]}",
    f"t={NOW};v2={sign(SECRET, 'POST', PATH, BODY, timestamp=NOW).split('v2=')[1]}",
    f"t=0{NOW},v2={sign(SECRET, 'POST', PATH, BODY, timestamp=NOW).split('v2=')[1]}",
    f"t={NOW}0,v2={sign(SECRET, 'POST', PATH, BODY, timestamp=NOW).split('v2=')[1]}",
    f"t=١٧٠٠٠٠٠٠٠٠,v2={'0' * 64}", f"t={'9' * 400},v2={'0' * 64}", "t=1_700_000_000,v2=00",
])
def test_malformed_header_is_refused(header: str) -> None:
    reason = refusal(header)
    assert isinstance(reason, str) and reason


@pytest.mark.parametrize("bad", ["é" * 64, "０" * 64, "\u0661" * 64])
def test_non_ascii_values_never_match(bad: str) -> None:
    good = sign(SECRET, "POST", PATH, BODY, timestamp=NOW)
    assert refusal(f"t={NOW},v2={bad}") is not None
    assert refusal(f"t={NOW},v2={bad},{good.split(',')[1]}") is None  # and never crash


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_stale_or_future_timestamp_is_refused(offset: int) -> None:
    reason = refusal(sign(SECRET, "POST", PATH, BODY, timestamp=NOW + offset))
    assert reason is not None and "300s" in reason


def test_stale_timestamp_against_the_real_clock() -> None:
    header = sign(SECRET, "POST", PATH, BODY, timestamp=int(time.time()) - 301)
    assert refusal(header, now=None) is not None


# ---- settings ----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings read OMNICASCADE_* variables and ./.env: keep both out of these tests."""
    for key in list(os.environ):
        if key.startswith("OMNICASCADE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("secret", [None, "", "changeme", "CHANGEME", "secret", " dev ",
                                    "too-short-1234"])
def test_production_refuses_placeholder_secrets(tmp_path: Path, secret: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env="production", webhook_secret=secret, home=tmp_path / "h")
    assert "OMNICASCADE_WEBHOOK_SECRET" in str(info.value)


def test_production_refuses_placeholder_from_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNICASCADE_ENV", "production")
    monkeypatch.setenv("OMNICASCADE_WEBHOOK_SECRET", "changeme")
    with pytest.raises(ConfigError):
        load_settings()


def test_production_accepts_a_real_secret(tmp_path: Path) -> None:
    real = secrets.token_urlsafe(24)
    assert len(real) == 32
    s = load_settings(env="production", webhook_secret=real, home=tmp_path / "h")
    assert s.resolved_webhook_secret() == real
    assert not (tmp_path / "h").exists()  # nothing generated when the secret is given


def test_development_generates_a_private_secret_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    s = load_settings(env="development", home=home)
    with pytest.raises(ConfigError):
        s.resolved_webhook_secret()  # create=False: never generates
    assert not s.secret_file.exists()

    value = s.resolved_webhook_secret(create=True)
    assert len(value) >= 32
    assert s.secret_file.parent == home.resolve()
    assert stat.S_IMODE(s.secret_file.stat().st_mode) == 0o600
    assert s.secret_file.read_text().strip() == value
    assert [p.name for p in home.iterdir()] == ["webhook_secret"]  # no temp files left

    assert s.resolved_webhook_secret(create=True) == value
    assert load_settings(env="development", home=home).resolved_webhook_secret() == value


def test_secret_from_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNICASCADE_WEBHOOK_SECRET", SECRET)
    s = load_settings(home=tmp_path / "home")
    assert s.resolved_webhook_secret(create=True) == SECRET
    assert not s.secret_file.exists()


def test_production_without_secret_never_generates_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(env="production", home=tmp_path / "h")
    assert not (tmp_path / "h").exists()
