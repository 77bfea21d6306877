"""The stack a benchmark measures: a Temporal dev server (the embedded stack's settings),
`omnicascade worker` process(es) and one `omnicascade api` process, on this machine."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sysconfig
from pathlib import Path

import httpx
from temporalio.client import Client

from omnicascade.config import Settings
from omnicascade.db.migrate import upgrade
from omnicascade.runtime.server import dev_server_args, free_port

OMNI = str(Path(sysconfig.get_path("scripts")) / "omnicascade")


class Stack:
    """Temporal dev server (the embedded stack's settings), `omnicascade worker` process(es)
    and one `omnicascade api` process."""

    def __init__(self, home: Path, env: dict[str, str] | None = None):
        self.home = home
        self.port, self.api_port = free_port(), free_port()
        # Only worker sizing passes through from the caller's environment.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OMNICASCADE_")
                    or k.startswith("OMNICASCADE_WORKER_")}
        self.env.update(OMNICASCADE_HOME=str(home), OMNICASCADE_WEBHOOK_SECRET="b" * 40,
                        OMNICASCADE_TEMPORAL_ADDRESS=f"127.0.0.1:{self.port}",
                        OMNICASCADE_API_PORT=str(self.api_port), **(env or {}))
        self.settings = Settings(home=home, webhook_secret="b" * 40,
                                 temporal_address=f"127.0.0.1:{self.port}",
                                 api_port=self.api_port)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, workers: int = 1) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        args = dev_server_args(self.port, self.home / "temporal.db",
                               binary=self.settings.temporal_bin)
        self.procs["temporal"] = subprocess.Popen(args + ["--headless", "--log-level", "error"],
                                                  stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL)
        upgrade(self.settings.db_url)
        log = open(self.home / "procs.log", "ab")  # noqa: SIM115
        commands = {f"worker{i + 1}": "worker" for i in range(workers)} | {"api": "api"}
        for name, command in commands.items():
            self.procs[name] = subprocess.Popen([OMNI, command], env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT)

    async def wait_ready(self) -> Client:
        for _ in range(300):
            try:
                client = await Client.connect(self.settings.temporal_address)
                r = httpx.get(f"http://127.0.0.1:{self.api_port}/health", timeout=1)
                if r.status_code == 200:
                    return client
            except Exception:  # noqa: BLE001 — still starting
                pass
            await asyncio.sleep(0.2)
        raise SystemExit("the stack did not come up; see " + str(self.home / "procs.log"))

    def peak_rss_mb(self, name: str) -> float:
        for line in Path(f"/proc/{self.procs[name].pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def logged_errors(self) -> int:
        """Tracebacks and ERROR lines the worker(s) and API printed (Temporal's deadlock
        detector, failed activities, reconciler failures …)."""
        text = (self.home / "procs.log").read_text(errors="replace")
        return sum(1 for line in text.splitlines()
                   if line.startswith("Traceback") or " ERROR " in line
                   or line.startswith("ERROR"))

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
