"""The webhook channel reads at most ANSWER_CAP bytes of the receiver's answer, within one
deadline for the whole exchange: a receiver answering 200 with an endless (chunked) body,
or trickling its answer a byte at a time, can neither fill the worker's memory nor hold
the activity. The status decides; the rest is ignored with a WARNING naming no customer."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from omnicascade.channels.webhook_channel import ANSWER_CAP, NoAnswer
from tests.channels.test_channel_webhook import _deliver, _message, channel
from tests.helpers.campaigns import FULL
from tests.helpers.cascades import add_customers, enroll
from tests.helpers.waiting import wait_until
from tests.helpers.webhook import hook_campaign

pytestmark = pytest.mark.db

MB = 1024 * 1024
SECRETISH = b'{"note": "customer-name-Ada-Lovelace", "pad": "'  # must never reach the log


class RawReceiver:
    """A receiver on a raw socket: reads one request, then runs `answer(conn)`; counts the
    bytes it managed to write and whether the client hung up before it was done."""

    def __init__(self, answer: Callable[[RawReceiver, socket.socket], None]):
        self.answer = answer
        self.written = 0
        self.hung_up = threading.Event()
        self.done = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.written += len(data)

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += conn.recv(65536)
            try:
                self.answer(self, conn)
            except OSError:  # broken pipe / reset: the client closed the connection
                self.hung_up.set()
            self.done.set()

    def __enter__(self) -> RawReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def endless_200(total: int) -> Callable[[RawReceiver, socket.socket], None]:
    """200, chunked, `total` bytes of a JSON-looking body, 64 KB per chunk."""
    def answer(r: RawReceiver, conn: socket.socket) -> None:
        r.send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        first = SECRETISH + b"x" * (65536 - len(SECRETISH))
        for i in range(total // 65536):
            chunk = first if i == 0 else b"x" * 65536
            r.send(conn, b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        r.send(conn, b"0\r\n\r\n")
    return answer


def trickle(head: bytes, every_s: float = 0.1, limit_s: float = 20.0
            ) -> Callable[[RawReceiver, socket.socket], None]:
    """`head` at once, then one more byte every `every_s` (for up to `limit_s`)."""
    def answer(r: RawReceiver, conn: socket.socket) -> None:
        r.send(conn, head)
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            r.send(conn, b"1\r\nx\r\n" if b"chunked" in head else b"x")
            time.sleep(every_s)
    return answer


@pytest.fixture
async def enrolled(settings, tmp_path) -> tuple[Any, str]:  # noqa: ANN001
    """As in test_channel_webhook.py: one customer enrolled, its cascade not started."""
    add_customers(settings, {"id": "c1", **FULL})
    _, [e] = await enroll(None, settings, hook_campaign(tmp_path / "hook"), ["c1"],
                          start=False)  # type: ignore[arg-type]
    return settings, e.id


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="omnicascade.channels.webhook"):
        yield caplog


def _webhook_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "omnicascade.channels.webhook"]


async def test_a_huge_chunked_200_is_sent_and_read_only_to_the_cap(enrolled, warnings):
    settings, eid = enrolled
    with RawReceiver(endless_200(50 * MB)) as receiver:
        result = await asyncio.wait_for(_deliver(settings, eid, channel(receiver.url)), 30)
        wait_until(receiver.done.is_set, "the receiver to finish or be hung up on", 10)
    assert result.status == "sent" and result.provider_message_id == f"{eid}:0"
    assert receiver.hung_up.is_set()  # we closed the connection early…
    assert receiver.written < 20 * MB, receiver.written  # …so most of it was never sent
    [line] = _webhook_warnings(warnings)
    assert "over 64 KB" in line and "status=200" in line and f"delivery={eid}:0" in line
    assert "Ada" not in warnings.text and "customer" not in line


async def test_a_trickling_body_counts_by_its_status_within_the_deadline(enrolled, warnings):
    settings, eid = enrolled
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    with RawReceiver(trickle(head)) as receiver:
        started = time.monotonic()
        result = await asyncio.wait_for(
            _deliver(settings, eid, channel(receiver.url, timeout_s=1.0)), 10)
        took = time.monotonic() - started
    assert result.status == "sent" and took < 3, took
    [line] = _webhook_warnings(warnings)
    assert "timed out" in line and "status=200" in line


async def test_a_trickling_status_line_is_ambiguous_at_the_deadline():
    with RawReceiver(trickle(b"HTTP/1.1 2", every_s=0.2)) as receiver:
        hook = channel(receiver.url, timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(NoAnswer, match="1s deadline; it may have the message"):
            await asyncio.wait_for(hook.send(_message()), 10)
        await hook.aclose()
    assert time.monotonic() - started < 3


async def test_a_small_answer_is_read_whole(enrolled: Any):
    """The cap is far above what a receiver says: a message id is still read."""
    settings, eid = enrolled
    body = b'{"message_id": "inbox-9", "pad": "' + b"y" * (ANSWER_CAP - 100) + b'"}'

    def answer(r: RawReceiver, conn: socket.socket) -> None:
        r.send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    with RawReceiver(answer) as receiver:
        result = await _deliver(settings, eid, channel(receiver.url))
    assert (result.status, result.provider_message_id) == ("sent", "inbox-9")
