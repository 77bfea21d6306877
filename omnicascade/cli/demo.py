"""`omnicascade demo`: the whole product in about half a minute, with nothing to configure.

Starts the embedded stack in a temporary state directory, imports sample customers,
launches the bundled abandoned-cart campaign with 24h waits compressed to 4s, sends cart
events and conversions through the real signed HTTP API, and prints the funnel.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from omnicascade.api.signature import HEADER, sign
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.launch import launch
from omnicascade.cli.display import console, funnel_table, run_summary
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.customers.importer import parse_customer_file
from omnicascade.customers.model import upsert_customers
from omnicascade.db.session import read_scope, session_scope
from omnicascade.reports.customers import customer_show
from omnicascade.reports.run_views import run_show
from omnicascade.runtime.server import EmbeddedStack, free_port
from omnicascade.vocabulary import reason_label

TIME_SCALE = 21600  # 24h → 4s, 3d → 12s
EXAMPLE = "examples/abandoned-cart"
PRODUCTS = {"c-ada": [("Trail shoes", 89.0)], "c-bo": [("Rain jacket", 120.0), ("Cap", 19.5)],
            "c-cy": [("Backpack", 64.0)], "c-di": [("Water bottle", 15.0)],
            "c-ed": [("Tent", 240.0)], "c-flo": [("Headlamp", 35.0)]}


class Api:
    def __init__(self, base: str, secret: str):
        self.http, self.secret = httpx.AsyncClient(base_url=base, timeout=30), secret

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = httpx.Request("POST", "http://x", json=payload).content
        r = await self.http.post(path, content=body, headers={
            HEADER: sign(self.secret, "POST", path, body), "content-type": "application/json"})
        r.raise_for_status()
        return r.json()


def _step(msg: str, started: float) -> None:
    console.print(f"[green]✓[/] {msg} [dim]({time.monotonic() - started:.1f}s)[/]")


async def run_demo(keep: bool = False) -> int:
    home = Path(tempfile.mkdtemp(prefix="omnicascade-demo-"))
    settings = Settings(home=home, database_url=None, temporal_address=None,
                        temporal_port=free_port(), temporal_ui_port=free_port(),
                        api_port=free_port(), webhook_secret=None, env="development",
                        cost_currency="EUR")  # the sample shop sells and pays in euros
    stack = EmbeddedStack(settings)
    t0 = time.monotonic()
    try:
        with console.status("starting the embedded stack (Temporal dev server, worker, API)…"):
            await stack.start()
        _step(f"embedded stack up: API {stack.api_url}, Temporal UI {stack.ui_url}", t0)
        return await _script(stack.settings, stack.api_url, t0)
    finally:
        with console.status("stopping the embedded stack…"):
            await stack.stop()
        if keep:
            console.print(f"state kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


async def _script(settings: Settings, api_url: str, t0: float) -> int:
    example = Path(__file__).parent.parent / EXAMPLE
    people = parse_customer_file(example / "customers.csv")
    with session_scope(settings.db_url) as s:
        upsert_customers(people, session=s)
    _step(f"imported {len(people)} sample customers", t0)
    loaded = load_campaign(example / "campaign.yaml")
    result = await launch(loaded, settings, audience=[], time_scale=TIME_SCALE)
    run_id = result.run_id
    _step(f"launched '{loaded.spec.campaign}' ({run_id}): 4 steps, waits 24h → "
          f"{24 * 3600 / TIME_SCALE:.0f}s; listening for cart_abandoned", t0)

    api = Api(api_url, settings.resolved_webhook_secret())
    now = now_utc(aware=True)
    # Cy bought five minutes ago (within the 1h look-back): must not be enrolled at all.
    await api.post("/v1/conversions", {"event_id": "demo-order-cy", "type": "order_placed",
                                       "customer_id": "c-cy", "amount": 64.0, "currency": "EUR",
                                       "occurred_at": (now - timedelta(minutes=5)).isoformat()})
    for cid, items in PRODUCTS.items():
        await api.post("/v1/events", {"event_id": f"demo-cart-{cid}", "customer_id": cid,
                                      "type": "cart_abandoned", "data": {
                                          "currency": "EUR", "products": [
                                              {"name": n, "price": p} for n, p in items]}})
    _step(f"{len(PRODUCTS)} cart_abandoned events sent to POST /v1/events", t0)

    await asyncio.sleep(2)  # Ada reads the email and redeems her code
    with read_scope(settings.db_url) as s:
        code = next(e["promo_code"] for e in customer_show("c-ada", session=s)["enrollments"]
                    if e["run_id"] == run_id)
    r = await api.post("/v1/conversions", {"event_id": "demo-promo-ada",
                                           "type": "promo_redeemed", "promo_code": code,
                                           "amount": 62.3, "currency": "EUR"})
    _step(f"Ada redeemed {code} → customer {r['customer_id']}, stopped {r['stopped']} cascade", t0)
    await asyncio.sleep(4)  # Bo orders after the SMS
    r = await api.post("/v1/conversions", {"event_id": "demo-order-bo", "type": "order_placed",
                                           "customer_id": "c-bo", "order_id": "A-1002",
                                           "amount": 139.5, "currency": "EUR"})
    await asyncio.sleep(1)  # the shop's webhook retries a second later, signed afresh
    await api.post("/v1/conversions", {"event_id": "demo-order-bo", "type": "order_placed",
                                       "customer_id": "c-bo", "order_id": "A-1002",
                                       "amount": 139.5, "currency": "EUR"})
    _step(f"Bo placed an order (sent twice, recorded once), stopped {r['stopped']} cascade", t0)

    with console.status("cascades running…") as status:
        while True:
            with read_scope(settings.db_url) as s:
                data = run_show(run_id, session=s)
            live = data["active"]  # pending or active cascades
            status.update(f"cascades running: {live} active, {data['converted']} converted, "
                          f"{sum(x['sent'] for x in data['steps'])} messages so far…")
            if not live:
                break
            await asyncio.sleep(0.5)
    _step("every cascade finished", t0)

    with session_scope(settings.db_url) as s:
        data = run_show(run_id, session=s)
        people_rows = [customer_show(p.id, session=s) for p in people]
    console.print(funnel_table(data))
    console.print(_who_got_what(people_rows, run_id))
    console.print(run_summary(data))
    ok = data["sent_after_conversion"] == 0 and data["excluded"] == 1 and data["converted"] == 2
    if ok:
        console.print("[bold green]Nobody was messaged after converting.[/] "
                      "Try it yourself: `omnicascade server`, then the README's walkthrough.")
        return 0
    console.print("[bold red]The demo did not end as expected[/] — please report this.")
    return 1


def _who_got_what(people: list[dict[str, Any]], run_id: str) -> Table:
    t = Table(title="Who got what")
    for col in ("customer", "email", "sms", "telegram", "push", "converted", "review request"):
        t.add_column(col)
    mark = {"sent": "[green]sent[/]", "skipped": "[dim]skipped[/]", "failed": "[red]failed[/]"}
    for p in people:
        msgs = {m["step"]: m for m in p["messages"] if m["run_id"] == run_id}
        enr = next((e for e in p["enrollments"] if e["run_id"] == run_id), None)
        cells = []
        for i in range(4):
            m = msgs.get(str(i))
            why = f" ({reason_label(m['reason'])})" if m and m["reason"] and \
                m["status"] != "sent" else ""
            cells.append("–" if m is None else mark.get(m["status"], m["status"]) + why)
        if enr and enr["status"] == "excluded":
            cells = ["[dim]excluded: bought before[/]"] + [""] * 3
        conv = ", ".join(c["type"] for c in p["conversions"]) or "–"
        review = msgs.get("ac0")
        t.add_row(p["customer"]["id"], *cells, conv, mark.get(review["status"], "")
                  if review else "–")
    return t
