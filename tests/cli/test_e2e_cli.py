"""End to end through the installed `omnicascade` command: `server` (embedded Temporal dev
server + worker + API) on a temporary state dir, then the CLI and signed HTTP calls."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.campaigns import write_campaign
from tests.helpers.server import ServerProcess
from tests.helpers.waiting import wait_until

AUDIENCE_YAML = """\
campaign: winback
description: Win back lapsed customers
conversion: {events: [order_placed]}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms,   wait: 24h}
  - {channel: push,  template: t_push}
"""
TRIGGER_YAML = """\
campaign: cart
trigger: {event: cart_abandoned}
conversion: {events: [order_placed], lookback: 1h}
promo: {pattern: "E2E-{random:6}", discount: "20%"}
steps:
  - {channel: email, template: t_email, wait: 24h}
  - {channel: sms,   template: t_sms}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("e2e") / "state").start()
    yield server
    server.stop()


def test_server_prints_where_everything_is(server):
    text = wait_until(lambda: server.log.read_text() if "Press Ctrl-C" in
                      server.log.read_text() else None, "the server's banner")
    assert "Temporal UI" in text and "HTTP API" in text and str(server.home) in text
    assert "API token" in text and str(server.home / "api_token") in text
    # the web console, served by the same process at /, and where its password is
    assert f"Console       {server.base}/" in text
    assert str(server.home / "console_password") in text
    # the worker's metrics on the free port it printed: ours and the Temporal SDK's
    found = re.search(r"Worker metrics (http://\S+/metrics)", text)
    assert found, text
    scraped = httpx.get(found.group(1), timeout=10).text
    assert "omnicascade_worker_up 1.0" in scraped and "\ntemporal_" in scraped, scraped[:500]
    assert httpx.get(f"{server.base}/metrics", timeout=10).status_code == 401  # the token
    page = httpx.get(f"{server.base}/", follow_redirects=True, timeout=10)
    assert page.url.path == "/login" and "Content-Security-Policy" in page.headers


def test_audience_launch_cascade_convert_and_inspect(server, tmp_path):
    campaign = write_campaign(tmp_path / "winback", AUDIENCE_YAML)
    people = tmp_path / "people.csv"
    people.write_text("id,email,phone,push_token,first_name\n"
                      "p1,p1@example.com,+4915112340001,tok1,Pia\n"
                      "p2,p2@example.com,,tok2,Paul\n")
    assert "imported 2 customers" in server.cli("customers", "import", str(people)).stdout
    launched = json.loads(server.cli("campaign", "launch", str(campaign), "--audience",
                              str(people), "--time-scale", "8640", "--json").stdout)
    assert set(launched) == {"run_id", "campaign", "enrolled", "excluded", "version",
                             "superseded", "unchanged"}
    assert (launched["version"], launched["superseded"], launched["unchanged"]) == (1, None, False)
    assert (launched["campaign"], launched["enrolled"], launched["excluded"]) == ("winback", 2, 0)
    run_id = launched["run_id"]
    # p1 converts after the first email (waits are 10s at this time scale)
    wait_until(lambda: json.loads(server.cli("outbox", "--customer", "p1", "--json").stdout),
               "p1's first message")
    r = json.loads(server.cli("convert", "--customer", "p1", "--type", "order_placed",
                       "--json").stdout)
    assert r["customer_id"] == "p1" and r["stopped"] == 1
    show = wait_until(lambda: (lambda d: d if d["status"] == "completed" else None)(
        json.loads(server.cli("runs", "show", run_id, "--json").stdout)), "the run completed")
    assert {"run_id", "campaign", "status", "enrolled", "converted", "steps",
            "variants"} <= set(show)
    assert (show["enrolled"], show["converted"]) == (2, 1)
    steps = {s["index"]: s for s in show["steps"]}
    assert set(steps[0]) >= {"index", "channel", "sent", "skipped", "failed"}
    assert (steps[0]["channel"], steps[0]["sent"]) == ("email", 2)
    assert (steps[1]["sent"], steps[1]["skipped"]) == (0, 1)  # p1 converted; p2 has no phone
    assert steps[2]["sent"] == 1 and show["sent_after_conversion"] == 0
    assert show["variants"] == {"default": {"enrolled": 2, "converted": 1}}
    box = json.loads(server.cli("outbox", "--run", run_id, "--json").stdout)
    assert {(m["customer_id"], m["channel"]) for m in box} == {("p1", "email"),
                                                                 ("p2", "email"), ("p2", "push")}
    # the documented keys (docs/architecture.md §4), and the ones later issues added
    assert set(box[0]) >= {"customer_id", "run_id", "step", "label", "channel", "to",
                           "subject", "body", "sent_at"}
    assert set(box[0]) - {"customer_id", "run_id", "step", "label", "channel", "to", "subject",
                          "body", "sent_at"} <= {"body_pruned", "key"}
    assert {(m["step"], m["label"]) for m in box} == {("0", "step 1"), ("2", "step 3")}
    timeline = json.loads(server.cli("customers", "show", "p1", "--json").stdout)
    assert set(timeline) == {"customer", "enrollments", "messages", "conversions"}
    assert timeline["customer"]["attributes"] == {"first_name": "Pia"}
    assert [c["type"] for c in timeline["conversions"]] == ["order_placed"]
    listing = json.loads(server.cli("runs", "list", "--json").stdout)
    assert any(x["run_id"] == run_id and x["converted"] == 1 for x in listing)
    assert run_id in server.cli("runs", "list").stdout  # the human table
    # the read API answers what the CLI prints, to the bearer of the token only
    token = (server.home / "api_token").read_text().strip()
    url = f"{server.base}/v1/runs/{run_id}"
    assert httpx.get(url, timeout=30).status_code == 401
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200 and r.json() == show
    assert show["rehearsal"]["label"] == "rehearsal ×8640"


def test_trigger_campaign_listens_for_events(server, tmp_path):
    campaign = write_campaign(tmp_path / "cart", TRIGGER_YAML)
    out = server.cli("campaign", "launch", str(campaign), "--time-scale", "43200").stdout
    run_id = out.strip().splitlines()[-1]
    assert run_id.startswith("run_") and "listening for 'cart_abandoned'" in out
    assert server.post("/v1/customers", {"id": "t1", "email": "t1@example.com",
                                          "phone": "+4915112340009"}).status_code == 200
    r = server.post("/v1/events", {"event_id": "ev-1", "customer_id": "t1",
                                    "type": "cart_abandoned", "data": {"total": 10}})
    assert r.status_code == 202 and r.json()["enrolled"] == 1
    wait_until(lambda: len(json.loads(server.cli("outbox", "--run", run_id,
                                          "--json").stdout)) == 2, "t1's two messages")
    preview = json.loads(server.cli("campaign", "preview", str(campaign), "--customer", "t1",
                             "--json").stdout)
    assert [p["channel"] for p in preview] == ["email", "sms"]


def test_user_mistakes_are_clear_and_change_nothing(server, tmp_path):
    r = server.cli("runs", "show", "run_nope", ok=False)
    assert r.returncode == 1 and "no run 'run_nope'" in r.stderr
    r = server.cli("customers", "show", "ghost", ok=False)
    assert r.returncode == 1 and "no customer" in r.stderr
    campaign = write_campaign(tmp_path / "w", AUDIENCE_YAML)
    r = server.cli("campaign", "launch", str(campaign), ok=False)
    assert r.returncode == 1 and "needs --audience" in r.stderr
    ghosts = tmp_path / "ghosts.csv"
    ghosts.write_text("id\nnobody-1\n")
    before = {r["run_id"] for r in json.loads(server.cli("runs", "list", "--json").stdout)}
    r = server.cli("campaign", "launch", str(campaign), "--audience", str(ghosts), ok=False)
    assert r.returncode == 1 and "unknown" in r.stderr and "nobody-1" in r.stderr
    # no new run was created (other runs' counts may still be moving)
    assert {r["run_id"] for r in json.loads(server.cli("runs", "list",
                                                "--json").stdout)} == before
    r = server.cli("convert", "--type", "order_placed", ok=False)
    assert r.returncode == 1 and "customer_id or promo_code" in r.stderr


def test_relaunch_with_a_changed_template_is_a_new_version_and_sends_each_step_once(
        server, tmp_path):
    """Relaunch through the installed CLI: customers in flight keep version 1's text, new
    entrants get version 2's, every step goes out once; an identical relaunch creates
    nothing; `campaign plan` shows the template diff and who is in flight."""
    yaml = TRIGGER_YAML.replace("campaign: cart", "campaign: relaunch").replace(
        "cart_abandoned", "basket_abandoned").replace(
        "promo: {pattern: \"E2E-{random:6}\", discount: \"20%\"}\n", "")
    templates = {"t_email.subject.j2": "Your cart", "t_email.txt.j2": "old email",
                 "t_sms.txt.j2": "old sms"}
    campaign = write_campaign(tmp_path / "relaunch", yaml, templates)
    v1 = json.loads(server.cli("campaign", "launch", str(campaign), "--time-scale", "8640",
                               "--json").stdout)
    for cid in ("u1", "u2"):
        assert server.post("/v1/customers", {"id": cid, "email": f"{cid}@example.com",
                                             "phone": "+4915112340009"}).status_code == 200
    assert server.post("/v1/events", {"event_id": "u1-cart", "customer_id": "u1",
                                      "type": "basket_abandoned"}).json()["enrolled"] == 1

    def outbox(cid: str) -> list[dict]:
        return json.loads(server.cli("outbox", "--customer", cid, "--json").stdout)
    wait_until(lambda: outbox("u1"), "u1's first email")

    write_campaign(tmp_path / "relaunch", yaml, dict(templates, **{
        "t_email.txt.j2": "new email", "t_sms.txt.j2": "new sms"}))
    plan = json.loads(server.cli("campaign", "plan", str(campaign), "--json").stdout)
    assert plan["action"].startswith("create version 2") and not plan["unchanged"]
    diffs = {t["template"]: t["diff"] for t in plan["templates"]}
    assert "-old email" in diffs["t_email.txt.j2"] and "+new email" in diffs["t_email.txt.j2"]
    assert plan["in_flight"]["total"] == 1
    assert "version 1: after step 1" in "".join(plan["in_flight"]["by_step"])
    text = server.cli("campaign", "plan", str(campaign)).stdout
    assert "+new email" in text and "in flight: 1 customer" in text

    v2 = json.loads(server.cli("campaign", "launch", str(campaign), "--time-scale", "8640",
                               "--json").stdout)
    assert (v2["version"], v2["superseded"], v2["unchanged"]) == (2, v1["run_id"], False)
    # the same campaign on the same clock (another --time-scale would be another launch)
    same = json.loads(server.cli("campaign", "launch", str(campaign), "--time-scale", "8640",
                                 "--json").stdout)
    assert (same["unchanged"], same["run_id"], same["version"]) == (True, v2["run_id"], 2)
    assert server.post("/v1/events", {"event_id": "u2-cart", "customer_id": "u2",
                                      "type": "basket_abandoned"}).json()["enrolled"] == 1

    wait_until(lambda: len(outbox("u1")) == 2 and len(outbox("u2")) == 2,
               "both customers' email and sms", timeout=90)
    assert sorted(m["body"] for m in outbox("u1")) == ["old email", "old sms"]
    assert sorted(m["body"] for m in outbox("u2")) == ["new email", "new sms"]
    [row] = [r for r in json.loads(server.cli("campaign", "list", "--json").stdout)
             if r["campaign"] == "relaunch"]
    assert (row["version"], row["run_id"], row["status"], row["enrolled"]) == (
        2, v2["run_id"], "listening", 2)
    runs = {r["run_id"]: r for r in json.loads(server.cli("runs", "list", "--json").stdout)}
    assert runs[v1["run_id"]]["status"] == "superseded"


def test_ctrl_c_stops_everything_cleanly(server):
    proc = server.proc
    assert proc is not None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    assert not (server.home / "server.json").exists()
    # the Temporal dev server child is gone too: its port is free again
    import socket
    port = int(server.env["OMNICASCADE_TEMPORAL_PORT"])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
