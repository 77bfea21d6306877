"""Database size per customer: `python -m bench.size [--customers 1000] [--postgres URL]
[--json]` (docs/operations.md, "Database size").

N customers go through the 4-step bench cascade (email, SMS, Telegram, push: bench's
campaign) — each step through the real deliver activity onto the outbox, as the worker
would run it, without Temporal (the app database is what is measured). Each customer also
leaves what a shop's traffic leaves: one trigger event with a cart, provider feedback for
each email and SMS (delivered; an open for half the emails) with a provider-sized payload,
and one in ten converts with an order. Then the database is measured (schema-only size
subtracted), pruned with `messages=90d,events=365d,feedback=180d` as of 400 days later,
and measured again. Sizes are after VACUUM (SQLite: the file; PostgreSQL: VACUUM FULL and
the sum of pg_total_relation_size over the tables: rows, indexes and TOAST): what the live
data takes, the figure that grows with customers.

--postgres takes a server URL (e.g. OMNICASCADE_TEST_POSTGRES_URL): a scratch database is
created on it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from temporalio.testing import ActivityEnvironment

from bench.__main__ import write_campaign
from omnicascade.activities.deliver import DeliverActivities
from omnicascade.campaign.load import load_campaign
from omnicascade.cascade.cascade_input import cascade_input
from omnicascade.cascade.conversions import ConversionIn, record_conversion
from omnicascade.cascade.enroll import create_run, enroll_customers
from omnicascade.cascade.events import EventIn, store_event
from omnicascade.cascade.retention import parse_retention, prune
from omnicascade.channels.outbox import OutboxChannel
from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.db.migrate import upgrade
from omnicascade.db.models import DeliveryEvent
from omnicascade.db.session import get_engine, session_scope
from omnicascade.vocabulary import CHANNELS
from omnicascade.workflows.types import DeliverInput

RETENTION = "messages=90d,events=365d,feedback=180d"
CART: dict[str, Any] = {
    "cart_id": "", "items": [{"sku": f"SKU-{i:04d}", "name": "Merino wool sweater, navy",
                              "qty": 1, "price": "89.00"} for i in range(3)],
    "total": "267.00", "currency": "EUR", "url": "https://shop.example/cart/recover?c="}


def provider_payload(event: str, address: str) -> dict[str, Any]:
    """About what SendGrid's event webhook posts per event (~400 bytes of JSON)."""
    return {"email": address, "event": event, "timestamp": int(time.time()),
            "sg_event_id": secrets.token_urlsafe(16), "sg_message_id": secrets.token_urlsafe(32),
            "smtp-id": f"<{secrets.token_hex(12)}@ismtpd0001p1lon1.sendgrid.net>",
            "category": ["omnicascade"], "useragent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 "
            "like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)", "ip": "203.0.113.7"}


def by_table(db_url: str) -> dict[str, int]:
    """PostgreSQL: bytes per table (rows, indexes, TOAST), largest first; SQLite: {}."""
    engine = get_engine(db_url)
    if engine.dialect.name == "sqlite":
        return {}
    with engine.connect() as conn:
        return {name: int(n) for name, n in conn.execute(text(
            "SELECT c.relname, pg_total_relation_size(c.oid) AS n FROM pg_class c JOIN "
            "pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND "
            "n.nspname = 'public' ORDER BY n DESC LIMIT 8"))}


def size(db_url: str) -> int:
    """Bytes the live data takes (after VACUUM)."""
    engine = get_engine(db_url)
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("VACUUM")
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.execute("PRAGMA page_count")
            pages = cur.fetchone()
            cur.execute("PRAGMA page_size")
            page = cur.fetchone()
            return int(pages[0] * page[0]) if pages and page else 0
        finally:
            raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM FULL"))
        return int(conn.scalar(text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'")))


async def run_customers(settings: Settings, n: int, workdir: Path) -> str:
    loaded = load_campaign(write_campaign(workdir, "bench-size", "1h"))
    ids = [f"cust-{i:06d}" for i in range(n)]
    with session_scope(settings.db_url) as s:
        upsert_customers([CustomerIn(
            id=c, email=f"{c}@example.com", phone=f"+4915{i:09d}",
            telegram_chat_id=str(7_000_000_000 + i), push_token=secrets.token_urlsafe(110),
            attributes={"first_name": "Alexandra", "city": "Berlin"})
            for i, c in enumerate(ids)], session=s)
        run = create_run(loaded, session=s, audience_total=n)
        rows = enroll_customers(run, ids, session=s)
        inputs = [cascade_input(run, e, settings) for e in rows]
        run_id = run.id
    outbox = OutboxChannel(settings.db_url)
    acts = DeliverActivities(settings, {c: outbox for c in CHANNELS})
    env = ActivityEnvironment()
    for inp in inputs:
        for step in inp.steps:
            result = await env.run(acts.deliver_step, DeliverInput(inp.enrollment_id, step))
            if result.status != "sent":
                raise SystemExit(f"{inp.enrollment_id} step {step.index}: {result}")
    with session_scope(settings.db_url) as s:
        for i, (c, inp) in enumerate(zip(ids, inputs, strict=True)):
            store_event(EventIn(event_id=f"ev-{c}", customer_id=c, type="cart_abandoned",
                                data={**CART, "cart_id": f"cart-{c}",
                                      "url": CART["url"] + c}), session=s)
            for index in (0, 1):  # email, sms
                delivery = f"{inp.enrollment_id}:{index}"
                events = ["delivered", "open"] if index == 0 and i % 2 else ["delivered"]
                s.add_all(DeliveryEvent(delivery_id=delivery, provider="sendgrid", event=e,
                                        provider_event_id=f"{delivery}:{e}",
                                        data=provider_payload(e, f"{c}@example.com"))
                          for e in events)
            if i % 10 == 0:
                record_conversion(ConversionIn(
                    event_id=f"order-{c}", type="order_placed", customer_id=c,
                    order_id=f"o-{c}", amount=Decimal("267.00"), currency="EUR",
                    data={**CART, "cart_id": f"cart-{c}"}), session=s)
        s.execute(text("UPDATE events SET processed_at = received_at"))
    return run_id


def scratch_postgres(server: str) -> tuple[str, Any]:
    name = f"omnicascade_size_{secrets.token_hex(4)}"
    admin = create_engine(make_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        get_engine(str(make_url(server).set(database=name).render_as_string(
            hide_password=False))).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


async def measure(n: int, postgres: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db_url, drop = scratch_postgres(postgres) if postgres else \
            (f"sqlite:///{workdir / 'size.db'}", lambda: None)
        try:
            settings = Settings(home=workdir / "home", database_url=db_url,
                                webhook_secret="b" * 40, search_attributes=False)
            upgrade(db_url)
            empty = size(db_url)
            t = time.perf_counter()
            await run_customers(settings, n, workdir)
            took = time.perf_counter() - t
            before = size(db_url)
            tables_before = by_table(db_url)
            pruned = prune(db_url, parse_retention(RETENTION),
                           now=now_utc() + timedelta(days=400))
            after = size(db_url)
            tables_after = by_table(db_url)
        finally:
            get_engine(db_url).dispose()
            drop()
    per = 1000 / n
    return {"database": "postgresql" if postgres else "sqlite",
            "customers": n, "messages": 4 * n, "seconds": round(took, 1),
            "schema_bytes": empty, "bytes_before_prune": before - empty,
            "bytes_after_prune": after - empty,
            "bytes_per_1000_customers": round((before - empty) * per),
            "bytes_per_1000_customers_after_prune": round((after - empty) * per),
            "pruned_rows": pruned.rows, "retention": RETENTION,
            **({"tables_before_prune": tables_before, "tables_after_prune": tables_after}
               if tables_before else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a scratch database "
                                           "is made on it); default: SQLite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.customers, args.postgres))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    mib = 1024 * 1024
    print(f"{result['database']}: {args.customers:,} customers, {result['messages']:,} "
          f"messages in {result['seconds']} s")
    print(f"  per 1,000 customers: {result['bytes_per_1000_customers'] / mib:.2f} MiB, "
          f"{result['bytes_per_1000_customers_after_prune'] / mib:.2f} MiB after prune "
          f"({RETENTION}); pruned {result['pruned_rows']}")


if __name__ == "__main__":
    main()
