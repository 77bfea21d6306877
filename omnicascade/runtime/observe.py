"""A worker's own /metrics (OMNICASCADE_WORKER_METRICS_PORT; off by default): the
application's metrics (omnicascade/telemetry.py) and the Temporal SDK's, merged on one port.

The SDK measures itself (poll latency, task slots, sticky cache, activity and workflow
task durations, …): its Runtime serves them in Prometheus format, and we do not measure any
of that again. A Runtime is per process and a worker must use a client made with it, so
`WorkerMetrics.runtime` is what `cascade.temporal.connect` is given. The SDK's endpoint is
bound to a private loopback port; a scrape of ours fetches it and appends it, so Prometheus
scrapes one target per worker (its metrics are all `temporal_…`: the names cannot clash).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from omnicascade.config import Settings

log = logging.getLogger(__name__)
SDK_TIMEOUT_S = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerMetrics:
    """Off (`runtime` None, nothing served) unless settings.worker_metrics_port is set."""

    def __init__(self, settings: Settings):
        self.port = settings.worker_metrics_port
        self.host = settings.api_host  # the interface the operator chose for this machine
        self.runtime: Runtime | None = None
        self.sdk_url: str | None = None
        self._server: ThreadingHTTPServer | None = None
        if self.port is not None:
            sdk = f"127.0.0.1:{_free_port()}"
            self.runtime = Runtime(telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=sdk, durations_as_seconds=True)))
            self.sdk_url = f"http://{sdk}/metrics"

    def scrape(self) -> bytes:
        """Ours, then the SDK's (left out, with a warning, if it does not answer)."""
        text = generate_latest(REGISTRY)
        if self.sdk_url:
            try:
                with urllib.request.urlopen(self.sdk_url, timeout=SDK_TIMEOUT_S) as answer:
                    text += b"\n" + answer.read()
            except OSError as exc:
                log.warning("worker metrics: the Temporal SDK's did not answer: %s", exc)
        return text

    def start(self) -> None:
        if self.port is None:
            return
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — http.server's name
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = metrics.scrape()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # a scrape every 15 s is not news

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = int(self._server.server_address[1])  # 0 → the port it got
        threading.Thread(target=self._server.serve_forever, name="worker-metrics",
                         daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.shutdown()
                self._server.server_close()
            self._server = None
