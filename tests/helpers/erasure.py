"""Erasure tests: a person with distinctive data in every table that can hold them, and
searches for that data in the database (rows, the raw SQLite file, a pg_dump) and in
Temporal (every history and visibility record)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToJson
from sqlalchemy import select
from sqlalchemy.engine import make_url
from temporalio.client import Client

from omnicascade.cascade.conversions import ConversionIn, record_conversion
from omnicascade.cascade.events import EventIn, store_event
from omnicascade.config import Settings
from omnicascade.db.models import (
    Base,
    Delivery,
    DeliveryEvent,
    Suppression,
    TelegramLink,
)
from omnicascade.db.session import get_engine, session_scope

PERSON = {"id": "zq-cust-7731", "email": "Zelda.Quux@example.org", "phone": "+4915199887766",
          "telegram_chat_id": "778899001", "push_token": "ptok-zq-5566",
          "attributes": {"first_name": "Zeldaquux"}}
OTHER = {"id": "c-other", "email": "other@example.com", "phone": "+4915100000001",
         "telegram_chat_id": "4242",
         "attributes": {"first_name": "Olga"}}
# What must be found before and nowhere after (lower case: searches ignore case).
NEEDLES = ("zq-cust-7731", "zelda.quux@example.org", "4915199887766", "778899001",
           "ptok-zq-5566", "zeldaquux")
PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"


def rows_text(db_url: str) -> str:
    """Every row of every table, as text."""
    with session_scope(db_url) as s:
        return "\n".join(repr(tuple(r)) for t in Base.metadata.sorted_tables
                         for r in s.execute(select(t))).lower()


def found_in_rows(db_url: str) -> set[str]:
    text = rows_text(db_url)
    return {n for n in NEEDLES if n in text}


def holding(db_url: str) -> dict[str, list[str]]:
    """Which rows of which tables hold a needle (for a failing assertion's message)."""
    with session_scope(db_url) as s:
        return {t.name: hits for t in Base.metadata.sorted_tables
                if (hits := [repr(tuple(r)) for r in s.execute(select(t))
                             if any(n in repr(tuple(r)).lower() for n in NEEDLES)])}


def raw_bytes(db_url: str) -> bytes:
    """The SQLite file and its WAL as stored; a pg_dump of a PostgreSQL database."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    get_engine(db_url).dispose()
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run([PG_DUMP, "--no-owner", plain], check=True,
                          capture_output=True).stdout


def found_in_bytes(db_url: str) -> set[str]:
    data = raw_bytes(db_url).lower()
    return {n for n in NEEDLES if n.encode() in data}


def _texts(node: Any) -> list[str]:
    """Every string in a JSON tree, and each one's base64 decoding too: payloads (inputs,
    results, search attributes, memos) are base64 in the JSON form of a history."""
    if isinstance(node, dict):
        return [t for key, value in node.items() for t in (key, *_texts(value))]
    if isinstance(node, list):
        return [t for value in node for t in _texts(value)]
    if not isinstance(node, str):
        return [str(node)]
    found = [node]
    with contextlib.suppress(binascii.Error, ValueError):
        found.append(base64.b64decode(node, validate=True).decode("utf-8", "replace"))
    return found


async def temporal_text(client: Client) -> str:
    """Every workflow's visibility record and full history on the server, as text, with
    every payload decoded."""
    out: list[str] = []
    async for wf in client.list_workflows():
        out += _texts(json.loads(MessageToJson(wf.raw_info)))
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        history = await handle.fetch_history()
        out += _texts(history.to_json_dict())
    return "\n".join(out).lower()


async def found_in_history(client: Client, workflow_id: str) -> set[str]:
    """The needles in one workflow's visibility record and history."""
    handle = client.get_workflow_handle(workflow_id)
    text = "\n".join(_texts(json.loads(MessageToJson((await handle.describe()).raw_description)))
                     + _texts((await handle.fetch_history()).to_json_dict())).lower()
    return {n for n in NEEDLES if n in text}


async def found_in_temporal(client: Client) -> set[str]:
    text = await temporal_text(client)
    return {n for n in NEEDLES if n in text}


def personal_extras(settings: Settings, delivery_id: str) -> None:
    """The rest of what a person leaves: a conversion and a trigger event with data (and
    event ids that spell the person, as shops' ids sometimes do), provider feedback and an
    inbound message, a Telegram link, an unsubscribe."""
    with session_scope(settings.db_url) as s:
        record_conversion(ConversionIn(
            event_id="order-zeldaquux-1", type="order_placed", customer_id=PERSON["id"],
            order_id="order-zq", amount=Decimal("42.50"), currency="EUR",
            data={"ship_to": "Zeldaquux, 1 Main St"}), session=s)
        store_event(EventIn(event_id="view-zeldaquux-1", customer_id=PERSON["id"], type="page_view",
                            data={"email": PERSON["email"]}), session=s)
        s.add(DeliveryEvent(delivery_id=delivery_id, provider="outbox", event="delivered",
                            data={"email": PERSON["email"]}))
        s.add(DeliveryEvent(provider="twilio", event="reply", address=f"sms:{PERSON['phone']}",
                            data={"From": PERSON["phone"], "Body": "hi"}))
        s.add(TelegramLink(token="tg-token-zq", customer_id=PERSON["id"],
                           chat_id=PERSON["telegram_chat_id"]))
        s.add(Suppression(channel="email", address=PERSON["email"], reason="unsubscribed"))


def delivery_rows(settings: Settings) -> list[dict[str, Any]]:
    with session_scope(settings.db_url) as s:
        return [{"channel": d.channel, "step": d.step_key, "status": d.status,
                 "cost": d.cost, "sent_at": d.sent_at} for d in
                s.scalars(select(Delivery).order_by(Delivery.id))]
