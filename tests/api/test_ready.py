"""GET /ready: 200 only when the database answers and Temporal answers; else 503 naming which
is down — a PostgreSQL that does not listen, a Temporal that does not listen — while
GET /health (the process is alive) is left as it was."""

from __future__ import annotations

import asyncio
import socket

from omnicascade.api.app import create_app
from tests.helpers.api import asgi_client


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ready(app) -> tuple[int, dict]:  # noqa: ANN001
    async with asgi_client(app) as http:
        r = await http.get("/ready")
        return r.status_code, r.json()


async def test_ready_when_the_database_and_temporal_answer(settings, dev_env):
    assert await ready(create_app(settings, dev_env.client)) == (
        200, {"ready": True, "database": "ok", "temporal": "ok"})


async def test_not_ready_when_postgresql_is_down(settings, dev_env):
    down = settings.model_copy(update={
        "database_url": f"postgresql+psycopg://omni:omni@127.0.0.1:{closed_port()}/omni"})
    assert await ready(create_app(down, dev_env.client)) == (
        503, {"ready": False, "database": "down", "temporal": "ok"})


async def test_not_ready_when_temporal_is_down(settings):
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{closed_port()}"})
    # a probe answers, whatever is down: the timeout fails a probe that hangs on Temporal
    assert await asyncio.wait_for(ready(create_app(down)), 10) == (
        503, {"ready": False, "database": "ok", "temporal": "down"})
