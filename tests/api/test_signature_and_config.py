"""Our Stripe-style HMAC signatures, and the settings that refuse placeholder secrets."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from pathlib import Path

import pytest

from omnicascade.api.signature import HEADER, sign, verify
from omnicascade.config import load_settings
from omnicascade.errors import ConfigError

SECRET = "whsec-" + "a1" * 16
BODY = b'{"event_id":"e1","type":"order_placed","customer_id":"c1"}'
NOW = 1_700_000_000


# ---- signatures --------------------------------------------------------------------------------

def test_header_format_is_stripe_style() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    mac = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={mac}"


def test_valid_signature_is_accepted() -> None:
    assert verify(SECRET, sign(SECRET, BODY, timestamp=NOW), BODY, now=NOW) is None
    assert verify(SECRET, sign(SECRET, BODY), BODY) is None  # against the real clock
    assert verify(SECRET, sign(SECRET, b""), b"") is None


def test_signature_at_the_edge_of_the_tolerance_is_accepted() -> None:
    assert verify(SECRET, sign(SECRET, BODY, timestamp=NOW - 300), BODY, now=NOW) is None
    assert verify(SECRET, sign(SECRET, BODY, timestamp=NOW + 300), BODY, now=NOW) is None


def test_one_of_several_v1_signatures_may_match() -> None:
    good = sign(SECRET, BODY, timestamp=NOW)
    header = f"t={NOW},v1={'0' * 64},{good.split(',')[1]}"
    assert verify(SECRET, header, BODY, now=NOW) is None


def test_wrong_secret_is_refused() -> None:
    reason = verify(SECRET, sign("another-secret-entirely-1234", BODY, timestamp=NOW), BODY,
                    now=NOW)
    assert reason == "signature does not match"


@pytest.mark.parametrize("tampered", [BODY.replace(b"c1", b"c2"), BODY + b" ", b""])
def test_tampered_body_is_refused(tampered: bytes) -> None:
    assert verify(SECRET, sign(SECRET, BODY, timestamp=NOW), tampered, now=NOW) is not None


def test_signature_for_another_timestamp_is_refused() -> None:
    mac = sign(SECRET, BODY, timestamp=NOW).split("v1=")[1]
    assert verify(SECRET, f"t={NOW + 1},v1={mac}", BODY, now=NOW) is not None


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_refused(header: str | None) -> None:
    reason = verify(SECRET, header, BODY, now=NOW)
    assert reason is not None and "missing" in reason and HEADER in reason


@pytest.mark.parametrize("header", [
    "garbage", "t=,v1=abc", "t=abc,v1=abc", f"v1={'0' * 64}", f"t={NOW}", f"t={NOW},v1=",
    f"t={NOW},v0={sign(SECRET, BODY, timestamp=NOW).split('v1=')[1]}",
    f"t={NOW};v1={sign(SECRET, BODY, timestamp=NOW).split('v1=')[1]}",
])
def test_malformed_header_is_refused(header: str) -> None:
    reason = verify(SECRET, header, BODY, now=NOW)
    assert isinstance(reason, str) and reason


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_stale_or_future_timestamp_is_refused(offset: int) -> None:
    header = sign(SECRET, BODY, timestamp=NOW + offset)
    reason = verify(SECRET, header, BODY, now=NOW)
    assert reason is not None and "300s" in reason


def test_stale_timestamp_against_the_real_clock() -> None:
    header = sign(SECRET, BODY, timestamp=int(time.time()) - 301)
    assert verify(SECRET, header, BODY) is not None


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
