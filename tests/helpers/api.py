"""The HTTP API in the test process: the app over ASGI (no socket), the secret the test
settings sign with, and a signer that signs every attempt afresh."""

from __future__ import annotations

import time

import httpx
from fastapi import FastAPI

from omnicascade.api.signature import sign

SECRET = "test-webhook-secret-0123456789abcdef"


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    """An HTTP client for `app` without a server (close it, or use `async with`)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


class FreshSigner:
    """Signs as the shop's backend does, every attempt afresh. Each signature takes effect
    once, and an identical request (a retry) signed in the same second would carry the same
    signature: a repeat is dated a second earlier instead, well inside the tolerance."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str, str, bytes], set[int]] = {}

    def __call__(self, secret: str, method: str, path: str, body: bytes) -> str:
        used = self.used.setdefault((secret, method, path, body), set())
        t = int(time.time())
        while t in used:
            t -= 1
        used.add(t)
        return sign(secret, method, path, body, t)
