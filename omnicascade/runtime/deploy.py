"""Scaled deployment pieces: a worker process and an API process, each started on its own."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import uvicorn

from omnicascade.api.app import create_app
from omnicascade.cascade.temporal import connect
from omnicascade.config import Settings
from omnicascade.runtime.worker import run_worker

QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "twilio.http_client", "telegram",
                 "alembic")  # migration chatter on every start; `db upgrade` reports itself


def configure_logging() -> None:
    """Every long-running process (server, worker, api) logs INFO and up to stderr with a
    timestamp: the reconciler's progress and the worker's garbage-collection warnings are
    otherwise dropped (no handler) or printed bare. The HTTP client libraries stay at
    WARNING: httpx logs every request's URL at INFO, and Telegram's URLs carry the bot
    token."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def run_worker_process(settings: Settings) -> None:
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"worker polling task queue '{settings.task_queue}' on "
          f"{settings.resolved_temporal_address()}", flush=True)
    await run_worker(client, settings, stop)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's X-Forwarded-For/-Proto handling: off unless OMNICASCADE_TRUSTED_PROXIES
    names the proxies allowed to set them (uvicorn's own default trusts 127.0.0.1, so any
    local client could claim to be https or another address)."""
    proxies = settings.trusted_proxy_list()
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies}


def bound_to(settings: Settings, host: str | None, port: int | None) -> Settings:
    """The settings with the address the API really listens on (--host/--port), which is
    where providers' webhooks are verified against when no public URL is set."""
    return settings.model_copy(update={"api_host": host or settings.api_host,
                                       "api_port": port or settings.api_port})


def run_api_process(settings: Settings, *, host: str | None = None,
                    port: int | None = None) -> None:
    settings = bound_to(settings, host, port)
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_level="info", **proxy_options(settings))
