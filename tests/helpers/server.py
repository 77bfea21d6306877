"""`omnicascade server` in a subprocess, driven as a user would: the installed command, a
state directory of its own, free ports, the CLI and the signed HTTP API against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from omnicascade.api.signature import HEADER
from omnicascade.config import Settings
from omnicascade.runtime.server import free_port
from tests.helpers.api import FreshSigner
from tests.helpers.cli import OMNI, clean_env, home_env, run_cli


class ServerProcess:
    def __init__(self, home: Path):
        self.home, self.port = home, free_port()
        self.log = home.parent / "server.log"
        self.env = home_env(home, OMNICASCADE_TEMPORAL_PORT=str(free_port()),
                            OMNICASCADE_TEMPORAL_UI_PORT=str(free_port()))
        self.proc: subprocess.Popen[bytes] | None = None
        self.sign = FreshSigner()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Start and wait until the API answers with Temporal reachable."""
        self.home.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "a")  # noqa: SIM115 — owned by the child
        # own process group: kill -9 of the group takes the Temporal child down with it
        self.proc = subprocess.Popen([OMNI, "server", "--port", str(self.port)], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        for _ in range(600):
            try:
                if httpx.get(f"{self.base}/health", timeout=1).json()["temporal"] == "ok":
                    return self
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        """Ctrl-C, as a user stops it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)

    def kill_everything(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        time.sleep(0.5)  # let the orphaned Temporal child (PDEATHSIG) exit and free its port

    def cli(self, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env, ok=ok)

    def secret(self) -> str:
        return (self.home / "webhook_secret").read_text().strip()

    def post(self, path: str, payload: Any) -> httpx.Response:
        """A signed write, as the shop's backend sends it."""
        body = json.dumps(payload).encode()
        return httpx.post(self.base + path, content=body, timeout=30,
                          headers={HEADER: self.sign(self.secret(), "POST", path, body),
                                   "content-type": "application/json"})


def worker_process(settings: Settings, log: Path, **variables: str) -> subprocess.Popen[bytes]:
    """`omnicascade worker` in a subprocess, pointed at the test's Temporal, database and task
    queue (`variables`: more OMNICASCADE_* settings, e.g. a provider)."""
    env = clean_env(OMNICASCADE_TEMPORAL_ADDRESS=str(settings.temporal_address),
                    OMNICASCADE_DATABASE_URL=settings.db_url,
                    OMNICASCADE_TASK_QUEUE=settings.task_queue,
                    OMNICASCADE_WEBHOOK_SECRET=str(settings.webhook_secret),
                    OMNICASCADE_HOME=str(settings.home),
                    OMNICASCADE_SEARCH_ATTRIBUTES=str(settings.search_attributes).lower(),
                    **variables)
    with open(log, "a") as out:
        return subprocess.Popen([OMNI, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
