"""A provider played by a local HTTP server on 127.0.0.1: it records every request exactly as
the real SDK sent it and answers from a script, so channel tests assert what the provider
would receive and how each kind of answer is classified. Runs in its own thread, so both
sync SDKs (in asyncio.to_thread) and async ones (httpx) can talk to it."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

DROP = -1  # read the request, then close the connection without answering


@dataclass
class Seen:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True)
                .items()}


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeProvider:
    def __init__(self, default: Reply | None = None):
        self.default = default or Reply(200, {})
        self.script: list[Reply] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                with fake._lock:
                    fake.seen.append(Seen(self.command, url.path, parse_qs(url.query),
                                          {k.lower(): v for k, v in self.headers.items()},
                                          body))
                    reply = fake.script.pop(0) if fake.script else fake.default
                if reply.status == DROP:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = reply.body if isinstance(reply.body, bytes) else \
                    json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, *replies: Reply) -> FakeProvider:
        self.script.extend(replies)
        return self

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


class SignalRecorder:
    """Stands in for the Temporal client in webhook tests: records the signals sent to
    cascades (the end-to-end test uses the real dev server instead)."""

    def __init__(self) -> None:
        self.signals: list[tuple[str, str, Any]] = []

    def get_workflow_handle(self, workflow_id: str) -> Any:
        recorder = self

        class Handle:
            async def signal(self, name: str, arg: Any = None) -> None:
                recorder.signals.append((workflow_id, name, arg))
        return Handle()
