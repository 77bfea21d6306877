"""The web console in a real headless Chromium (Debian's `chromium`, driven by Playwright's
async API with executable_path: nothing downloads a browser), against the real worker on
the Temporal dev server and the API served by uvicorn in this process. One server and one
browser for the module; the tests run in order, as a marketer's day would.

axe-core (axe-playwright-python) checks every page at 1280 px and at a phone's 390 px: no
serious or critical violation (tables and charts scroll in focusable regions). With
OMNICASCADE_CONSOLE_SCREENSHOTS=DIR each page's 1280 px screenshot is saved there (the
README's are made so: OMNICASCADE_CONSOLE_SCREENSHOTS=docs/console).

Without chromium or Playwright the tests are skipped loudly, or fail when
OMNICASCADE_REQUIRE_BROWSER=1 (CI sets it: a missing browser can never pass silently)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from omnicascade.api.app import create_app
from omnicascade.api.signature import HEADER
from omnicascade.cascade.conversions import ConversionIn, record_conversion, tell_cascades
from omnicascade.config import Settings
from omnicascade.db.migrate import upgrade
from omnicascade.db.models import Enrollment, OutboxMessage
from omnicascade.db.session import session_scope
from omnicascade.runtime.server import free_port
from tests.helpers.api import SECRET, FreshSigner
from tests.helpers.campaigns import write_campaign
from tests.helpers.cascades import add_customers, enroll, running_worker
from tests.helpers.console import PASSWORD
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
TEMPLATES = {
    "cart_email.subject.j2": "{{ customer.first_name }}, your cart is waiting",
    "cart_email.txt.j2": "Hi {{ customer.first_name }}, your tent is still in the cart. "
                         "Code {{ promo.code }} takes 30% off. Unsubscribe: {{ unsubscribe_url }}",
    "cart_email.html.j2": "<div style='font-family:sans-serif;max-width:520px'>"
                          "<h1 style='color:#2563eb'>Your cart is waiting, "
                          "{{ customer.first_name }}</h1><p>Your tent is still in the cart. "
                          "Code <b>{{ promo.code }}</b> takes 30% off today.</p>"
                          "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p></div>",
    "cart_sms.txt.j2": "{{ customer.first_name }}, 30% off your cart with {{ promo.code }}",
    "cart_telegram.txt.j2": "Still thinking about the tent? {{ promo.code }} = 30% off",
    "cart_push.title.j2": "Your cart misses you",
    "cart_push.txt.j2": "30% off with {{ promo.code }}",
    "review.subject.j2": "How is the tent?",
    "review.txt.j2": "Tell us how you like it.",
}
CAMPAIGN = """\
campaign: abandoned-cart
description: Win back abandoned carts
trigger: {event: cart_abandoned}
conversion: {events: [order_placed], lookback: 1h}
promo: {pattern: "CART-{random:6}", discount: "30%"}
timezone: Europe/Berlin
steps:
  - {channel: email,    template: cart_email,    wait: WAIT}
  - {channel: sms,      template: cart_sms,      wait: WAIT}
  - {channel: telegram, template: cart_telegram, wait: WAIT}
  - {channel: push,     template: cart_push}
after_conversion:
  - {channel: email, template: review, delay: 3d}
"""
# Version 2 adds an A/B test (by the stable hash: Ada, Gus and Hal get `control`, Bob, Cy,
# Dan and Eve `sms_first`, Fay is in the holdout).
EXPERIMENT = """\
experiment:
  holdout: 10%
  variants:
    control: {weight: 50}
    sms_first:
      weight: 50
      steps:
        - {channel: sms,   template: cart_sms,   wait: 6s}
        - {channel: email, template: cart_email, wait: 6s}
        - {channel: push,  template: cart_push}
"""
PEOPLE = [{"id": f"c-{name.lower()}", "email": f"{name.lower()}@example.com",
           "phone": phone, "telegram_chat_id": str(100 + i), "push_token": f"tok-{i}",
           "timezone": zone, "attributes": {"first_name": name}}
          for i, (name, phone, zone) in enumerate([
              ("Ada", "+4915112345678", "Europe/Berlin"), ("Bob", "+14155550101", None),
              ("Cy", "+447700900123", "Europe/London"), ("Dan", "+4915187654321", None),
              ("Eve", "+33612345678", "Europe/Paris"), ("Fay", "+4915100000001", None),
              ("Gus", "+14155550123", "America/Los_Angeles"), ("Hal", None, None)])]
TRIGGERED = ["c-ada", "c-bob", "c-cy", "c-eve", "c-fay", "c-gus", "c-hal"]


def _browser_or_fail() -> str:
    """Debian's chromium, with Playwright and axe-core importable; else fail (CI) or skip."""
    missing = []
    binary = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not binary:
        missing.append("chromium (apt-get install chromium)")
    try:
        import axe_playwright_python  # noqa: F401
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("playwright / axe-playwright-python (pip install -e '.[test]')")
    if missing:
        reason = "THE WEB CONSOLE WAS NOT CHECKED IN A BROWSER: missing " + ", ".join(missing)
        if os.environ.get("OMNICASCADE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " and OMNICASCADE_REQUIRE_BROWSER=1")
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason)
    assert binary
    return binary


@dataclass
class Stack:
    settings: Settings
    app: FastAPI
    url: str
    run_id: str
    client: Any
    chromium: str


@pytest.fixture(scope="module")
async def stack(dev_env: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    chromium = _browser_or_fail()
    tmp = tmp_path_factory.mktemp("console")
    s = Settings(home=tmp / "home", database_url=f"sqlite:///{tmp / 'app.db'}",
                 webhook_secret=SECRET, console_password=PASSWORD, search_attributes=False,
                 task_queue=f"tq-{os.urandom(4).hex()}", send_initial_retry_s=0.05,
                 temporal_address=dev_env.client.service_client.config.target_host)
    upgrade(s.db_url)
    add_customers(s, *PEOPLE)
    async with running_worker(dev_env, s):
        # version 1 (long waits), then version 2 — the live one — with 6 s waits
        await enroll(dev_env.client, s, write_campaign(tmp / "v1", CAMPAIGN.replace(
            "WAIT", "24h"), {**TEMPLATES, "cart_sms.txt.j2": "30% off: {{ promo.code }}"}), [])
        run_id, _ = await enroll(dev_env.client, s, write_campaign(
            tmp / "v2", CAMPAIGN.replace("WAIT", "6s") + EXPERIMENT, TEMPLATES), TRIGGERED)
        app = create_app(s, dev_env.client)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.02)
        try:
            yield Stack(s, app, f"http://127.0.0.1:{port}", run_id, dev_env.client, chromium)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)


@pytest.fixture(scope="module")
async def page(stack: Stack) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=stack.chromium,
                                          args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = await browser.new_context(viewport={"width": 1280, "height": 900},
                                            base_url=stack.url)
        tab = await context.new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.errors = errors
        yield tab
        await browser.close()


async def check(page: Any, name: str) -> None:
    """No serious or critical axe-core violation at 1280 px nor at 390 px (a phone), no CSP
    or script error in the console; a 1280 px screenshot when asked for."""
    from axe_playwright_python.async_playwright import Axe
    for width, height in ((1280, 900), (390, 844)):
        await page.set_viewport_size({"width": width, "height": height})
        results = await Axe().run(page, options={"resultTypes": ["violations"],
                                                 "iframes": False})
        bad = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                "nodes": [n["html"][:160] for n in v["nodes"][:3]]}
               for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name} at {width} px: accessibility violations\n" \
                        f"{json.dumps(bad, indent=1)}"
    await page.set_viewport_size({"width": 1280, "height": 900})
    assert not page.errors, f"{name}: browser console errors: {page.errors}"
    folder = os.environ.get("OMNICASCADE_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        # the whole page in one viewport, so that every email frame is laid out and painted
        height = await page.evaluate("document.documentElement.scrollHeight")
        await page.set_viewport_size({"width": 1280, "height": height})
        await page.wait_for_timeout(400)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"))
        await page.set_viewport_size({"width": 1280, "height": 900})
        if name in ("run", "customer"):  # and as a phone shows it
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.screenshot(path=str(Path(folder) / f"{name}-phone.png"), full_page=True)
            await page.set_viewport_size({"width": 1280, "height": 900})


def outbox(settings: Settings, customer_id: str) -> list[str]:
    with session_scope(settings.db_url) as s:
        return list(s.scalars(select(OutboxMessage.step).where(
            OutboxMessage.customer_id == customer_id).order_by(OutboxMessage.id)))


async def test_a_wrong_password_is_refused_and_the_right_one_logs_in(page: Any) -> None:
    from playwright.async_api import expect
    await page.goto("/runs/nope")
    assert "/login?next=/runs/nope" in page.url
    await check(page, "login")
    await page.fill("#password", "not the password")
    await page.click("button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("Wrong password.")
    page.errors.clear()
    await page.goto("/login")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Campaigns")
    await expect(page.locator("#campaigns")).to_contain_text("abandoned-cart")
    await check(page, "campaigns")


async def test_versions_show_what_changed(page: Any) -> None:
    from playwright.async_api import expect
    await page.click("text=abandoned-cart")
    await expect(page.locator("#version-2")).to_contain_text("What changed")
    await expect(page.locator("#version-2")).to_contain_text("email · cart_email, wait 6s")
    await expect(page.locator("#version-2 pre.diff")).to_contain_text("+{{ customer.first_name }}")
    await check(page, "campaign")


async def test_a_live_run_shows_a_conversion_as_it_arrives(page: Any, stack: Stack) -> None:
    from playwright.async_api import expect
    await eventually(lambda: len(outbox(stack.settings, "c-ada")) >= 1,
                     "Ada's first email", 20)
    await page.goto(f"/runs/{stack.run_id}")
    await expect(page.locator("#no-conversions")).to_be_visible()
    await page.evaluate("window.stillTheSamePage = true")
    with session_scope(stack.settings.db_url) as s:
        outcome = record_conversion(ConversionIn(event_id="order-ada-1", type="order_placed",
                                                 customer_id="c-ada", amount=240.0,
                                                 currency="EUR"), session=s)
    await tell_cascades(stack.client, outcome)
    row = page.locator("#conversions tr.conversion")
    await expect(row).to_have_count(1, timeout=15_000)  # htmx polling, no reload
    await expect(row).to_contain_text("c-ada")
    await expect(row).to_contain_text("240.00 EUR")
    await expect(page.locator("#kpi-converted")).to_have_text("1")
    assert await page.evaluate("window.stillTheSamePage") is True
    await page.reload()
    await expect(page.locator("#verdicts")).to_be_visible()
    for chart in ("chart-rates", "chart-funnel", "chart-timeline", "chart-attribution"):
        assert await page.locator(f"svg#{chart}").bounding_box(), chart
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone: labels ≥ 9 px
    smallest = await page.evaluate("""Math.min(...[...document.querySelectorAll(
        'svg.chart')].map(s => s.getBoundingClientRect().width / s.viewBox.baseVal.width
        * Math.min(...[...s.querySelectorAll('text')].map(t => +t.getAttribute('font-size')))))""")
    await page.set_viewport_size({"width": 1280, "height": 900})
    assert smallest >= 9, f"chart labels {smallest:.1f} px on a phone"
    await check(page, "run")


async def test_pause_and_resume_say_how_many_customers(page: Any, stack: Stack) -> None:
    from playwright.async_api import expect
    await page.goto(f"/runs/{stack.run_id}")
    await page.click("#control-pause")
    await expect(page.locator("#confirm-text")).to_contain_text("customers in flight")
    await check(page, "confirm-pause")
    await page.click("#confirm")
    await expect(page.locator("#run-status")).to_have_text("paused")
    await page.click("#control-resume")
    await expect(page.locator("#confirm-text")).to_contain_text("held send")
    await page.click("#confirm")
    await expect(page.locator("#run-status")).to_have_text("listening")


async def test_after_a_stop_no_message_goes_out(page: Any, stack: Stack) -> None:
    from playwright.async_api import expect
    body = json.dumps({"event_id": "cart-dan-1", "customer_id": "c-dan",
                       "type": "cart_abandoned"}).encode()
    async with httpx.AsyncClient(base_url=stack.url) as http:  # the shop's backend
        r = await http.post("/v1/events", content=body, headers={
            HEADER: FreshSigner()(SECRET, "POST", "/v1/events", body),
            "content-type": "application/json"})
    assert r.status_code == 202 and r.json()["enrolled"] == 1, r.text
    await eventually(lambda: outbox(stack.settings, "c-dan") == ["0"],
                     "Dan's first email", 20)
    await page.goto(f"/runs/{stack.run_id}")
    await page.click("#control-stop")
    await expect(page.locator("#confirm-text")).to_contain_text("end stopped at once")
    await page.click("#confirm")
    await expect(page.locator("#run-status")).to_have_text("stopped")
    stopped_at = time.monotonic()
    await expect(page.locator("#control-resume")).to_have_count(0)
    await asyncio.sleep(max(0.0, 8 - (time.monotonic() - stopped_at)))  # past the 6 s wait
    assert outbox(stack.settings, "c-dan") == ["0"]  # step 2 was due: it never went out
    with session_scope(stack.settings.db_url) as s:
        dan = s.scalars(select(Enrollment).where(Enrollment.customer_id == "c-dan")).one()
        assert (dan.status, dan.exit_reason) == ("stopped", "stopped")
    await expect(page.locator("#ended-reasons")).to_contain_text("stopped: run stopped")


async def test_find_a_customer_and_read_the_timeline(page: Any, stack: Stack) -> None:
    from playwright.async_api import expect
    await page.goto("/customers")
    await check(page, "customers")
    await page.fill("#q", "ada@example.com")
    await page.click("form.search button")
    await expect(page.locator("h1")).to_have_text("c-ada")
    assert "ada" not in page.url.split("/customers/")[1].lower()
    await expect(page.locator("#zone")).to_have_text("Europe/Berlin")
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("entered abandoned-cart")
    await expect(timeline).to_contain_text("Ada, your cart is waiting")
    await expect(timeline).to_contain_text("converted: order_placed")
    await check(page, "customer")
    await page.click("#unsubscribe-sms")
    await expect(page.locator("#done")).to_contain_text("Unsubscribed from sms")
    await expect(page.locator("#channel-sms")).to_contain_text("unsubscribed")
    await expect(timeline).to_contain_text("sms suppressed")


async def test_open_an_outbox_email(page: Any, stack: Stack) -> None:
    from playwright.async_api import expect
    await page.goto(f"/outbox?run={stack.run_id}")
    card = page.locator("li.card.email", has_text="c-ada").last
    await expect(card).to_contain_text("Ada, your cart is waiting")
    await card.scroll_into_view_if_needed()  # frames further down load when seen (lazy)
    frame = card.frame_locator("iframe.mail")
    await expect(frame.locator("h1")).to_have_text("Your cart is waiting, Ada")
    await expect(page.locator("li.card.sms").first).to_be_visible()
    await check(page, "outbox")


async def test_a_missing_csrf_token_and_an_expired_session_are_refused(
        page: Any, stack: Stack) -> None:
    from playwright.async_api import expect
    await page.goto("/customers")
    await page.evaluate("document.querySelector('form.search input[name=csrf]').remove()")
    await page.fill("#q", "c-bob")
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.click("form.search button")
    assert (await answer.value).status == 403
    await expect(page.locator("#error-message")).to_contain_text("security token")
    page.errors.clear()  # the 403 is logged by the browser
    sessions = stack.app.state.console.sessions
    sessions.clock = lambda: time.time() + stack.settings.console_session_s + 60
    try:
        await page.goto("/outbox")
        assert "/login?next=/outbox" in page.url
    finally:
        sessions.clock = time.time
    await page.goto("/outbox")
    await expect(page.locator("h1")).to_have_text("Outbox")


async def test_pages_read_and_work_with_javascript_off(page: Any, stack: Stack) -> None:
    from playwright.async_api import expect
    context = await page.context.browser.new_context(java_script_enabled=False,
                                                     base_url=stack.url)
    try:
        tab = await context.new_page()
        await tab.goto("/login")
        await tab.fill("#password", PASSWORD)
        await tab.click("button[type=submit]")
        await expect(tab.locator("h1")).to_have_text("Campaigns")
        await tab.goto(f"/runs/{stack.run_id}")
        await expect(tab.locator("#live-funnel")).to_contain_text("step 1")
        await expect(tab.locator("#conversions tr.conversion")).to_have_count(1)
        assert await tab.locator("svg#chart-funnel").bounding_box()
        await tab.goto("/customers")
        await tab.fill("#q", "c-bob")
        await tab.click("form.search button")
        await expect(tab.locator("h1")).to_have_text("c-bob")
    finally:
        await context.close()
