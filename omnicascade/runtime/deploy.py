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
from omnicascade.runtime.exposure import check_exposure
from omnicascade.runtime.logs import JsonFormatter
from omnicascade.runtime.observe import WorkerMetrics
from omnicascade.runtime.worker import run_worker

QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "twilio.http_client", "telegram",
                 "alembic")  # migration chatter on every start; `db upgrade` reports itself


def configure_logging(log_format: str = "text") -> None:
    """Every long-running process (server, worker, api) logs INFO and up to stderr with a
    timestamp: the reconciler's progress and the worker's garbage-collection warnings are
    otherwise dropped (no handler) or printed bare. The HTTP client libraries stay at
    WARNING: httpx logs every request's URL at INFO, and Telegram's URLs carry the bot
    token. `json` (Settings.log_format): one JSON object per line (runtime/logs.py)."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def run_worker_process(settings: Settings) -> None:
    metrics = WorkerMetrics(settings)  # its Temporal runtime first: the client needs it
    client = await connect(settings, metrics.runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics.start()
    print(f"worker polling task queue '{settings.task_queue}' on "
          f"{settings.resolved_temporal_address()}", flush=True)
    if metrics.port is not None:
        print(f"worker metrics on http://{metrics.host}:{metrics.port}/metrics", flush=True)
    try:
        await run_worker(client, settings, stop)
    finally:
        metrics.stop()


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
    check_exposure(settings)
    # JSON: uvicorn's own lines go through the root logger's JSON handler, not its config
    logs: dict[str, Any] = {"log_config": None} if settings.log_format == "json" else {}
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_level="info", **proxy_options(settings), **logs)
