"""Versions: relaunching a trigger campaign never doubles a message. Identical → nothing is
created; changed → the new version listens and the old one is superseded in the same
transaction; customers in flight finish on their version unless `--in-flight stop`. And
one live cascade per entry, even when 20 events for it arrive at once (the database
decides, on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.events import EventIn, process_event, store_event
from omnicascade.cascade.launch import launch
from omnicascade.customers.model import CustomerIn
from omnicascade.db.models import Enrollment, Run
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import RunStatus
from tests.helpers.api import SECRET, FreshSigner, asgi_client
from tests.helpers.campaigns import CASCADE_YAML, FULL, TEMPLATES, write_campaign
from tests.helpers.cascades import add_customers

pytestmark = [pytest.mark.asyncio, pytest.mark.db]


@pytest.fixture
def live(dev_env, settings):  # noqa: ANN001
    return settings.model_copy(update={
        "temporal_address": dev_env.client.service_client.config.target_host})


async def _event(client: Any, settings: Any, event_id: str, customer: str = "c1") -> None:
    with session_scope(settings.db_url) as s:
        store_event(EventIn(event_id=event_id, customer_id=customer, type="cart_abandoned"),
                    session=s)
    await process_event(client, settings, event_id)


def _runs(settings: Any) -> list[Run]:
    with session_scope(settings.db_url) as s:
        rows = list(s.scalars(select(Run).order_by(Run.version, Run.created_at)))
        s.expunge_all()
        return rows


def _enrollments(settings: Any) -> list[Enrollment]:
    with session_scope(settings.db_url) as s:
        rows = list(s.scalars(select(Enrollment).order_by(Enrollment.enrolled_at)))
        s.expunge_all()
        return rows


async def test_an_identical_relaunch_creates_nothing(dev_env, live, tmp_path: Path):
    file = write_campaign(tmp_path / "c")
    first = await launch(load_campaign(file), live, audience=[])
    (file.parent / "campaign.yaml").write_text(  # the same campaign, defaults spelled out
        CASCADE_YAML.replace("campaign: test-cascade", "campaign: test-cascade\nreentry: "
                                                       "after_exit\norder: as_written"))
    again = await launch(load_campaign(file), live, audience=[])
    assert (again.unchanged, again.run_id, again.version) == (True, first.run_id, 1)
    assert again.json()["superseded"] is None
    assert [r.id for r in _runs(live)] == [first.run_id]


@pytest.mark.parametrize("in_flight", ["keep", "stop"])
async def test_a_changed_relaunch_supersedes_and_in_flight_customers_keep_or_stop(
        dev_env, live, tmp_path: Path, in_flight: str):
    add_customers(live, {"id": "c1", **FULL}, {"id": "c2", **FULL})
    file = write_campaign(tmp_path / "c")
    v1 = await launch(load_campaign(file), live, audience=[])
    await _event(dev_env.client, live, "e1", "c1")  # c1 is in flight on version 1
    write_campaign(tmp_path / "c", templates=dict(TEMPLATES, **{"t_email.txt.j2": "new text"}))
    v2 = await launch(load_campaign(file), live, audience=[], in_flight=in_flight)  # type: ignore[arg-type]
    assert (v2.version, v2.superseded, v2.unchanged) == (2, v1.run_id, False)
    old, new = _runs(live)
    assert (old.status, old.superseded_by, new.status) == ("superseded", new.id, "listening")
    await _event(dev_env.client, live, "e2", "c2")  # a new entrant: the new version only
    await _event(dev_env.client, live, "e3", "c1")  # c1 is still in flight (keep) or not
    rows = _enrollments(live)
    c1 = [(e.run_id, e.status, e.exit_reason) for e in rows if e.customer_id == "c1"]
    if in_flight == "keep":
        assert c1 == [(v1.run_id, "active", None)]  # finishes on version 1, not entered twice
    else:
        assert c1[0] == (v1.run_id, "stopped", "replaced") and len(c1) == 2
        assert c1[1][0] == v2.run_id
    assert [(e.run_id) for e in rows if e.customer_id == "c2"] == [v2.run_id]


async def test_two_enrolling_versions_are_impossible(live, tmp_path: Path):
    file = write_campaign(tmp_path / "c")
    loaded = load_campaign(file)
    from omnicascade.cascade.enroll import create_run
    with session_scope(live.db_url) as s:
        create_run(loaded, session=s)
    with pytest.raises(IntegrityError), session_scope(live.db_url) as s:
        create_run(loaded, session=s)  # a second version listening beside the first
    with session_scope(live.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Run).where(
            Run.status == RunStatus.LISTENING)) == 1


async def test_an_audience_launch_skips_customers_in_a_live_cascade(dev_env, live, tmp_path):
    add_customers(live, *({"id": f"a{i}", **FULL} for i in range(3)))
    file = write_campaign(tmp_path / "news", CASCADE_YAML.replace(
        "trigger: {event: cart_abandoned}\n", "").replace("test-cascade", "news"))
    first = await launch(load_campaign(file), live, audience=[CustomerIn(id="a0")])
    again = await launch(load_campaign(file), live,
                         audience=[CustomerIn(id=f"a{i}") for i in range(3)])
    assert (first.enrolled, again.enrolled, again.skipped) == (1, 2, 1)
    assert again.version == first.version == 1  # the same content, sent again


async def test_twenty_events_for_one_entry_at_once_make_one_cascade(dev_env, live, tmp_path):
    add_customers(live, {"id": "c1", **FULL})
    await launch(load_campaign(write_campaign(tmp_path / "c")), live, audience=[])
    app, sign = create_app(live, dev_env.client), FreshSigner()

    async def post(i: int) -> dict[str, Any]:
        body = json.dumps({"event_id": f"cart-{i}", "customer_id": "c1",
                           "type": "cart_abandoned"}).encode()
        r = await http.post("/v1/events", content=body, headers={
            HEADER: sign(SECRET, "POST", "/v1/events", body), "content-type": "application/json"})
        assert r.status_code == 202, r.text
        return r.json()

    async with asgi_client(app) as http:
        answers = await asyncio.gather(*(post(i) for i in range(20)))
    assert sum(a["enrolled"] for a in answers) == 1
    assert all(a["not_enrolled"][0]["reason"].startswith("already in a live cascade")
               for a in answers if not a["enrolled"])
    assert len(_enrollments(live)) == 1
