"""Issue 27 (6, 7, 10) in the console over HTTP: keys on the customer page and the outbox,
real time with a rehearsal's campaign time labelled, only the shop's channels offered,
search by a prefix of a name, plain words for "messages after a conversion", and a Stop
confirmation that says the run's promo codes stop being valid."""

from __future__ import annotations

import httpx
import pytest

from omnicascade.api.app import create_app
from omnicascade.config import Settings
from omnicascade.db.models import Run
from omnicascade.db.session import session_scope
from tests.helpers.cascades import add_customers
from tests.helpers.console import PASSWORD, signed_in_csrf
from tests.helpers.views import Seeded, seed
from tests.reports.test_keys_and_clocks import keyed

pytestmark = pytest.mark.db  # SQLite, and PostgreSQL when configured


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"console_password": PASSWORD})


@pytest.fixture
def seeded(console_settings: Settings, tmp_path) -> Seeded:  # noqa: ANN001
    made = seed(console_settings, tmp_path / "campaign")
    keyed(console_settings, made.run_id, {"ada": "A2", "dee": "D1"})
    return made


@pytest.fixture
async def http(console_settings: Settings):  # noqa: ANN201
    app = create_app(console_settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://console.test") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def page_of(http: httpx.AsyncClient, customer_id: str) -> str:
    return "/customers/" + http.app.state.console.ids.hide(customer_id)  # type: ignore


async def test_the_customer_page_names_keys_and_offers_only_the_shops_channels(
        http: httpx.AsyncClient, seeded: Seeded, console_settings: Settings) -> None:
    await signed_in_csrf(http)
    text = (await http.get(page_of(http, "ada"))).text
    assert "cart_id A2" in text  # the cascades table and the timeline
    assert 'id="unsubscribe-email"' in text
    assert "Unsubscribe from webhook" not in text and 'id="channel-webhook"' not in text
    assert (await http.get(f"/outbox?run={seeded.run_id}")).text.count("cart_id ") == 2
    with session_scope(console_settings.db_url) as s:
        run = s.get(Run, seeded.run_id)
        assert run is not None
        run.time_scale = 3600.0
    text = (await http.get(page_of(http, "ada"))).text
    assert "campaign time ×3600" in text and "1 h ago" in text  # real time, campaign beside
    assert " ago (real time)" in (await http.get(f"/runs/{seeded.run_id}")).text  # launched


async def test_search_finds_a_name_by_its_start_in_any_case(
        http: httpx.AsyncClient, console_settings: Settings) -> None:
    add_customers(console_settings,
                  {"id": "c-1", "email": "a@example.com", "attributes": {"first_name": "Anna"}},
                  {"id": "c-2", "email": "b@example.com", "attributes": {"first_name": "Anton"}})
    csrf = await signed_in_csrf(http)
    r = await http.post("/customers", data={"csrf": csrf, "q": "anna"})
    assert r.status_code == 303 and r.headers["location"] == page_of(http, "c-1")
    r = await http.post("/customers", data={"csrf": csrf, "q": "AN"})
    assert r.status_code == 200 and "2 customers match" in r.text
    assert "c-1" in r.text and "c-2" in r.text


async def test_the_run_page_and_stop_confirmation_speak_plainly(
        http: httpx.AsyncClient, seeded: Seeded) -> None:
    await signed_in_csrf(http)
    page = (await http.get(f"/runs/{seeded.run_id}")).text
    assert "Messages sent after a customer bought" in page and "never happens" in page
    assert "promise 1" not in page
    stop = (await http.get(f"/runs/{seeded.run_id}/confirm/stop")).text
    assert "promo codes stop being valid" in stop
