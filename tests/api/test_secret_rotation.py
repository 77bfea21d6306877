"""One secret per purpose, each rotating without breakage (issue 26): a list `new,old` signs
with `new` and accepts both; with `old` dropped, what it signed is refused (401 / 404) and
nothing changes. Until OMNICASCADE_LINK_SECRET is set, links use the webhook secret, so
links already in inboxes keep working across the upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER, sign
from omnicascade.config import Settings, load_settings
from omnicascade.customers.links import read_unsubscribe_token, unsubscribe_token
from omnicascade.db.models import Customer, Suppression
from omnicascade.db.session import session_scope
from omnicascade.errors import ConfigError
from omnicascade.reports.run_views import status_of
from tests.helpers.api import SECRET
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, enroll
from tests.helpers.console import PASSWORD, csrf_of, login

pytestmark = pytest.mark.db  # SQLite, and PostgreSQL when configured

OLD, NEW = "old-key-0123456789abcdef0123", "new-key-fedcba9876543210fedc"


def client(settings: Settings) -> httpx.AsyncClient:
    """One API process with these settings (a restart with a new environment is a new app
    on the same database)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                             base_url="http://api.test")


def suppressions(settings: Settings) -> int:
    with session_scope(settings.db_url) as s:
        return int(s.scalar(select(func.count()).select_from(Suppression)) or 0)


async def test_unsubscribe_links_verify_while_their_key_is_listed(
        settings: Settings, campaign_file: Path) -> None:
    add_customers(settings, {"id": "c-1", **FULL})
    _, [e] = await enroll(None, settings, campaign_file, ["c-1"], start=False)  # type: ignore
    before = unsubscribe_token(settings, e.id, "email")  # no link secret yet: the webhook's
    old = unsubscribe_token(settings.model_copy(update={"link_secret": OLD}), e.id, "email")
    rotated = settings.model_copy(update={"link_secret": f"{NEW},{OLD},{SECRET}"})
    new = unsubscribe_token(rotated, e.id, "email")
    assert len({before, old, new}) == 3
    assert new == unsubscribe_token(settings.model_copy(update={"link_secret": NEW}),
                                    e.id, "email")  # the first key signs
    for token in (before, old, new):
        assert read_unsubscribe_token(rotated, token) == (e.id, "email")
    async with client(settings.model_copy(update={"link_secret": NEW})) as api:
        for token in (before, old):  # their keys dropped: refused, nothing changes
            assert (await api.get(f"/u/{token}")).status_code == 404
            r = await api.post(f"/u/{token}")
            assert r.status_code == 404 and "not valid" in r.text
        assert suppressions(settings) == 0
    async with client(rotated) as api:
        assert (await api.get(f"/u/{old}")).status_code == 200
        r = await api.post(f"/u/{before}")  # a link sent before the upgrade still works
        assert r.status_code == 200 and "Unsubscribed" in r.text
    assert suppressions(settings) == 1


async def test_api_signatures_verify_with_every_listed_key(settings: Settings) -> None:
    async def create(api: httpx.AsyncClient, key: str, customer: str) -> httpx.Response:
        body = json.dumps({"id": customer, "email": f"{customer}@example.com"}).encode()
        return await api.post("/v1/customers", content=body, headers={
            HEADER: sign(key, "POST", "/v1/customers", body),
            "content-type": "application/json"})

    async with client(settings.model_copy(update={"webhook_secret": f"{NEW},{OLD}"})) as api:
        assert (await create(api, OLD, "c-old")).status_code == 200
        assert (await create(api, NEW, "c-new")).status_code == 200
    async with client(settings.model_copy(update={"webhook_secret": NEW})) as api:
        r = await create(api, OLD, "c-dropped")
        assert r.status_code == 401 and "signature does not match" in r.json()["detail"]
        assert (await create(api, NEW, "c-new-2")).status_code == 200
    with session_scope(settings.db_url) as s:
        assert sorted(s.scalars(select(Customer.id))) == ["c-new", "c-new-2", "c-old"]


async def test_api_tokens_read_with_every_listed_token(settings: Settings) -> None:
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async with client(settings.model_copy(update={"api_token": f"{NEW},{OLD}"})) as api:
        assert (await api.get("/v1/runs", headers=bearer(OLD))).status_code == 200
        assert (await api.get("/v1/runs", headers=bearer(NEW))).status_code == 200
        assert (await api.get("/v1/runs", headers=bearer(f"{NEW},{OLD}"))).status_code == 401
    async with client(settings.model_copy(update={"api_token": NEW})) as api:
        r = await api.get("/v1/runs", headers=bearer(OLD))
        assert r.status_code == 401 and r.json()["detail"] == "wrong API token"


async def test_console_sessions_survive_a_rotation_until_the_old_key_goes(
        settings: Settings, campaign_file: Path) -> None:
    add_customers(settings, {"id": "c-1", **FULL})
    run_id, _ = await enroll(None, settings, campaign_file, ["c-1"], start=False)  # type: ignore
    base = settings.model_copy(update={"console_password": PASSWORD})
    async with client(base.model_copy(update={"session_secret": OLD})) as before:
        assert (await login(before)).status_code == 303
        cookie = before.cookies["oc_session"]
        csrf = csrf_of((await before.get("/customers")).text)
        customer_url = (await before.post("/customers", data={"csrf": csrf, "q": "c-1"})
                        ).headers["location"]
    async with client(base.model_copy(update={"session_secret": f"{NEW},{OLD}"})) as rotated:
        rotated.cookies.set("oc_session", cookie, domain="api.test")
        assert (await rotated.get("/")).status_code == 200
        assert csrf_of((await rotated.get("/customers")).text) == csrf  # the session's own
        assert (await rotated.get(customer_url)).status_code == 200  # an old customer URL
        r = await rotated.post(f"/runs/{run_id}/pause", data={"csrf": csrf})
        assert r.status_code == 303
        assert (await rotated.post(f"/runs/{run_id}/resume", data={"csrf": csrf})
                ).status_code == 303
    async with client(base.model_copy(update={"session_secret": NEW})) as dropped:
        dropped.cookies.set("oc_session", cookie, domain="api.test")
        r = await dropped.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        r = await dropped.post(f"/runs/{run_id}/stop", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert (await login(dropped)).status_code == 303  # a new login works
        assert (await dropped.get(customer_url)).status_code == 404  # old key gone
    with session_scope(settings.db_url) as s:
        assert status_of(run_id, session=s) == "listening"


def test_each_secret_is_its_own_setting_with_the_production_rules(tmp_path: Path) -> None:
    prod = {"env": "production", "webhook_secret": "w" * 32, "home": tmp_path / "p"}
    for variable, value in (("link_secret", "changeme"), ("session_secret", "short"),
                            ("link_secret", f"{NEW},dev"), ("webhook_secret", f"{NEW},"),
                            ("api_token", f"{NEW},test")):
        with pytest.raises(ConfigError, match=f"OMNICASCADE_{variable.upper()} must be"):
            load_settings(**{**prod, variable: value})
    s = load_settings(**{**prod, "link_secret": f" {NEW} , {OLD} ", "session_secret": NEW})
    assert s.keys("link_secret") == [NEW, OLD] and s.keys("session_secret") == [NEW]
    assert s.keys("webhook_secret") == ["w" * 32]
    unset = load_settings(**prod)  # an upgraded deployment: links and sessions as before
    assert unset.keys("link_secret") == unset.keys("session_secret") == ["w" * 32]
    dev = load_settings(home=tmp_path / "d", webhook_secret=f"{NEW},{OLD}")
    assert dev.resolved_webhook_secret() == NEW  # the first signs
    generated = load_settings(home=tmp_path / "g")
    key = generated.keys("link_secret", create=True)
    assert key == generated.keys("session_secret") == [generated.resolved_webhook_secret()]
