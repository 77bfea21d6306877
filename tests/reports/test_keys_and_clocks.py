"""Issue 27 (6, 7, 10): every view of a cascade names its key (`cart_id A2`), times read on
the wall clock with a rehearsal's campaign time beside them, labelled, and the console's
customer search finds a prefix of an id, e-mail, phone or name, any case."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta

import pytest

from omnicascade.db.models import Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.reports.outbox import outbox_page
from omnicascade.reports.paging import SEARCH_MATCHES
from omnicascade.reports.timeline import customer_page, find, offered_channels
from tests.helpers.cascades import add_customers
from tests.helpers.cli import home_env, run_cli
from tests.helpers.views import Seeded, seed

pytestmark = pytest.mark.db


def keyed(settings, run_id: str, keys: dict[str, str]) -> None:  # noqa: ANN001
    """The seeded run as if its trigger said `key: cart_id`, each cascade with its key."""
    with session_scope(settings.db_url) as s:
        run = s.get(Run, run_id)
        snapshot = copy.deepcopy(run.snapshot)
        snapshot["spec"]["trigger"]["key"] = "cart_id"
        run.snapshot = snapshot
        for customer, key in keys.items():
            s.get(Enrollment, f"enr_{customer}").entry_key = key


@pytest.fixture
def seeded(settings, tmp_path) -> Seeded:  # noqa: ANN001
    made = seed(settings, tmp_path / "campaign")
    keyed(settings, made.run_id, {"ada": "A2", "dee": "D1"})
    return made


@pytest.fixture
def cli(settings, tmp_path):  # noqa: ANN001
    env = home_env(tmp_path / "home", OMNICASCADE_DATABASE_URL=settings.db_url)
    return lambda *args: run_cli(*args, env=env, ok=True).stdout


def test_customers_show_names_each_cascades_key(seeded, cli):
    data = json.loads(cli("customers", "show", "ada", "--json"))
    [e] = data["enrollments"]
    [m] = data["messages"]
    assert (e["key"], m["key"]) == ("A2", "A2")  # JSON: the value; people read the field too
    text = cli("customers", "show", "ada")
    assert re.search(r"cart-test\s+│\s+cart_id A2", text), text  # the cascades table
    assert "email step 1 · cart_id A2" in text  # the timeline's message row
    bob = json.loads(cli("customers", "show", "bob", "--json"))  # no key: null, not ""
    assert bob["enrollments"][0]["key"] is None and bob["messages"][0]["key"] is None


def test_the_outbox_names_each_messages_key(seeded, cli, settings):
    rows = {m["customer_id"]: m for m in json.loads(cli("outbox", "--json"))}
    assert (rows["ada"]["key"], rows["dee"]["key"]) == ("A2", "D1")
    assert re.search(r"ada\s+│\s+A2\s+│\s+step 1", cli("outbox"))  # the `key` column
    with session_scope(settings.db_url) as s:  # the console's read, the same keys
        page = outbox_page(session=s, framed=True, newest_first=True)
    assert {m["customer_id"]: m["key_label"] for m in page.rows} == {
        "ada": "cart_id A2", "dee": "cart_id D1"}


def test_a_rehearsals_timeline_reads_real_time_with_campaign_time_labelled(
        seeded, cli, settings):
    """Two clocks, one per column: `at` and `ago` are real time, rows in real order, and a
    rehearsal's rows carry `… campaign time ×3600` — never the campaign time as `at`."""
    with session_scope(settings.db_url) as s:
        run = s.get(Run, seeded.run_id)
        run.time_scale = 3600.0
        run.created_at = seeded.now - timedelta(hours=3, minutes=1)
    with session_scope(settings.db_url) as s:
        rows = customer_page("ada", session=s)["timeline"]
    assert [r["order"] for r in rows] == sorted(r["order"] for r in rows)
    message = next(r for r in rows if r["kind"] == "message")
    assert message["ago"] == "1 h ago"  # wall time: sent an hour ago, not 120 d
    assert message["campaign"].endswith("campaign time ×3600")
    assert message["at"] not in message["campaign"]
    conversion = next(r for r in rows if r["kind"] == "conversion")
    assert conversion["ago"] == "30 min ago" and conversion["campaign"]
    text = cli("customers", "show", "ada")
    assert "1 h ago" in text and "campaign time ×3600" in text
    assert " d ago" not in text  # no campaign-clock distance posing as a real one
    assert "created: real time" in cli("runs", "list")  # `3 h ago` is not campaign time


def test_the_search_finds_a_prefix_of_id_email_phone_or_name_in_any_case(settings):
    add_customers(settings,
                  {"id": "c-101", "email": "Anna.Berg@Example.com", "phone": "+4915100000001",
                   "attributes": {"first_name": "Anna", "last_name": "Berg"}},
                  {"id": "c-102", "email": "bo@example.com",
                   "attributes": {"first_name": "Annika", "last_name": "Holm"}},
                  {"id": "c-200", "phone": "+4915100000002",
                   "attributes": {"name": "Zoë Quint"}},
                  {"id": "50%_off", "email": "x@example.com"})
    with session_scope(settings.db_url) as s:
        assert find("anna", session=s) == ["c-101"]  # first name (not Annika's 'Anni…')
        assert find("ANN", session=s) == ["c-101", "c-102"]
        assert find("anna berg", session=s) == ["c-101"]  # "first last"
        assert find("holm", session=s) == ["c-102"]  # last name
        assert find("zoë", session=s) == ["c-200"]  # `name`
        assert find("anna.berg@EXAMPLE", session=s) == ["c-101"]
        assert find("+49151000000", session=s) == ["c-101", "c-200"]
        assert find("C-1", session=s) == ["c-101", "c-102"]
        assert find("berg", session=s) == ["c-101"]  # a prefix of a word, not a substring
        assert find("nna", session=s) == []
        assert find("50%", session=s) == ["50%_off"] and find("5_", session=s) == []
        assert find("   ", session=s) == []


def test_the_search_stops_at_search_matches(settings):
    add_customers(settings, *({"id": f"p-{i:03d}"} for i in range(SEARCH_MATCHES + 5)))
    with session_scope(settings.db_url) as s:
        assert len(find("p-", session=s)) == SEARCH_MATCHES


def test_only_channels_the_shop_uses_are_offered(seeded, settings):
    """VIEWS_YAML sends email, SMS and push; nobody set up the webhook, WhatsApp or
    Telegram: configured providers add theirs."""
    with session_scope(settings.db_url) as s:
        assert offered_channels((), session=s) == {"email", "sms", "push"}
        assert offered_channels(["telegram"], session=s) == {"email", "sms", "push",
                                                             "telegram"}
        shown = {c["channel"]: c["offered"] for c in customer_page("ada", session=s)
                 ["channels"]}
    # the shop's channels (ada has an e-mail only: no address on the others); the webhook
    # channel, which addresses everyone by id, is not offered to a shop that never set it up
    assert shown == {"email": True, "sms": True, "push": True}
