"""The read API: `GET /v1/runs`, `/v1/runs/{id}`, `/v1/runs/{id}/report`,
`/v1/customers/{id}`, `/v1/promo-codes/{code}` — the bearer token (401 without or wrong, with
WWW-Authenticate), answers equal to the installed CLI's `--json`, 404 for unknown ids, the
promo code's validity at checkout, and the token's configuration rules."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from omnicascade.api.app import create_app
from omnicascade.cascade.conversions import ConversionIn, record_conversion
from omnicascade.config import Settings, load_settings
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.errors import ConfigError
from tests.helpers.api import SECRET, asgi_client
from tests.helpers.cli import home_env, run_cli
from tests.helpers.views import ADA_CODE, Seeded, seed

pytestmark = pytest.mark.db
TOKEN = "read-token-for-tests-0123456789abcdef"


@pytest.fixture
def seeded(settings: Settings, tmp_path: Path) -> Seeded:
    return seed(settings, tmp_path / "campaign")


@pytest.fixture
async def http(settings: Settings, seeded: Seeded) -> Any:
    app = create_app(settings.model_copy(update={"api_token": TOKEN}))
    async with asgi_client(app) as client:
        yield client


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def paths(seeded: Seeded) -> list[str]:
    return ["/v1/runs", f"/v1/runs/{seeded.run_id}", f"/v1/runs/{seeded.run_id}/report",
            "/v1/customers/ada", f"/v1/promo-codes/{ADA_CODE}"]


async def test_every_read_needs_the_bearer_token(http, seeded):
    for path in paths(seeded):
        r = await http.get(path)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"] == 'Bearer realm="omnicascade"'
        assert "Authorization: Bearer" in r.json()["detail"]
        for headers in (auth("wrong-token"), auth(TOKEN + "x"), auth(TOKEN[:-1]),
                        {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN},
                        {"Authorization": "Bearer ünïcode".encode()}):  # type: ignore[dict-item]
            r = await http.get(path, headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            assert r.headers["www-authenticate"].startswith('Bearer realm="omnicascade"')
            assert "ada@example.com" not in r.text
        r = await http.get(path, headers=auth())
        assert r.status_code == 200, (path, r.text)


async def test_answers_equal_the_cli_json(http, seeded, settings, tmp_path):
    env = home_env(tmp_path / "cli-home", OMNICASCADE_DATABASE_URL=settings.db_url)

    def cli(*args: str) -> Any:
        return json.loads(run_cli(*args, "--json", env=env, ok=True).stdout)

    async def get(path: str) -> Any:
        r = await http.get(path, headers=auth())
        assert r.status_code == 200, r.text
        return r.json()

    rid = seeded.run_id
    assert await get("/v1/runs") == cli("runs", "list")
    assert await get(f"/v1/runs/{rid}") == cli("runs", "show", rid)
    # dee's cascade has ended: no time-dependent words in her timeline
    assert await get("/v1/customers/dee") == cli("customers", "show", "dee")
    api_report, cli_report = await get(f"/v1/runs/{rid}/report"), cli("report", rid)
    for rep in (api_report, cli_report):
        rep.pop("generated_at")
    assert api_report == cli_report
    [row] = await get("/v1/runs")
    assert (row["run_id"], row["unmatched"], row["rehearsal"]) == (rid, 1, None)


async def test_unknown_ids_are_404_and_never_a_server_error(http, seeded):
    for path in ("/v1/runs/run_nope", "/v1/runs/run_nope/report", "/v1/customers/ghost",
                 "/v1/promo-codes/NOPE-2345", "/v1/runs/a%00b", "/v1/customers/a%00b",
                 "/v1/promo-codes/%ED%A0%80", "/v1/promo-codes/" + "X" * 300,
                 "/v1/customers/a%2Fb"):
        r = await http.get(path, headers=auth())
        assert r.status_code == 404, (path, r.text)
        assert r.json()["detail"]


async def test_a_customer_id_with_a_slash_is_found(http, settings, seeded):
    from tests.helpers.cascades import add_customers
    add_customers(settings, {"id": "shop/42"})
    r = await http.get("/v1/customers/shop%2F42", headers=auth())
    assert r.status_code == 200 and r.json()["customer"]["id"] == "shop/42"


async def test_promo_code_at_checkout(http, seeded, settings):
    r = await http.get(f"/v1/promo-codes/{ADA_CODE.lower()}", headers=auth())  # any case
    assert r.status_code == 200
    assert r.json() == {"code": ADA_CODE, "valid": True, "discount": "30%",
                        "campaign": "cart-test", "customer_id": "ada", "redeemed": False}
    with session_scope(settings.db_url) as s:
        record_conversion(ConversionIn(event_id="used-code", type="order_placed",
                                       promo_code=ADA_CODE.lower()), session=s)
    r = await http.get(f"/v1/promo-codes/{ADA_CODE}", headers=auth())
    assert (r.json()["valid"], r.json()["redeemed"]) == (False, True)
    # a stopped run takes its codes back
    with session_scope(settings.db_url) as s:
        s.get(Enrollment, "enr_dee").promo_code = "CART-DEE234"
        s.get(Run, seeded.run_id).status = "stopped"
    r = await http.get("/v1/promo-codes/cart-dee234", headers=auth())
    assert r.json() == {"code": "CART-DEE234", "valid": False, "discount": "30%",
                        "campaign": "cart-test", "customer_id": "dee", "redeemed": False}


async def test_the_reads_are_in_the_openapi_document_with_bearer_auth(http, seeded):
    spec = (await http.get("/openapi.json")).json()
    reads = {"/v1/runs", "/v1/runs/{run_id}", "/v1/runs/{run_id}/report",
             "/v1/customers/{customer_id}", "/v1/promo-codes/{code}"}
    assert reads <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["api_token"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"][
            "securitySchemes"]["api_token"]["description"]}
    for path in reads:
        op = spec["paths"][path]["get"]
        assert op["security"] == [{"api_token": []}] and "401" in op["responses"], path


# ---- the token's configuration: exactly the webhook secret's rules -------------------------

def test_development_generates_a_private_token_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    s = load_settings(env="development", home=home, webhook_secret=SECRET)
    with pytest.raises(ConfigError, match="OMNICASCADE_API_TOKEN"):
        s.resolved_api_token()  # create=False: never generates
    app = create_app(s)
    token = s.api_token_file.read_text().strip()
    assert app.state.api_token == token and len(token) >= 32
    assert stat.S_IMODE(s.api_token_file.stat().st_mode) == 0o600
    # and the console's password (api/console), by the same rules
    assert sorted(p.name for p in home.iterdir()) == ["api_token", "console_password"]
    assert load_settings(env="development", home=home).resolved_api_token(create=True) == token


def test_the_token_from_the_environment_wins(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNICASCADE_API_TOKEN", TOKEN)
    s = load_settings(home=tmp_path / "home", webhook_secret=SECRET)
    assert create_app(s).state.api_token == TOKEN
    assert not s.api_token_file.exists()


@pytest.mark.parametrize("token", ["", "changeme", "secret", " dev ", "too-short-1234"])
def test_production_refuses_a_placeholder_token(tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError, match="OMNICASCADE_API_TOKEN"):
        load_settings(env="production", webhook_secret="x" * 32, api_token=token,
                      home=tmp_path / "h")


def test_production_api_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    s = load_settings(env="production", webhook_secret="x" * 32, home=tmp_path / "h")
    with pytest.raises(ConfigError, match="OMNICASCADE_API_TOKEN is required in production"):
        create_app(s)
    assert not (tmp_path / "h").exists()  # nothing generated
    s = load_settings(env="production", webhook_secret="x" * 32, api_token=TOKEN,
                      home=tmp_path / "h")
    assert create_app(s).state.api_token == TOKEN and not (tmp_path / "h").exists()
