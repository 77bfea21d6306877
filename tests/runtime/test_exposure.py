"""Development defaults do not travel (issue 23): `omnicascade server` / `omnicascade api`
on an address other machines can reach refuse generated and weak secrets as production
does, with a message that says how to fix it; on loopback a weak console password starts
with a loud warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from omnicascade.runtime import deploy, server
from omnicascade.runtime.exposure import is_loopback
from tests.helpers.cli import home_env, run_cli

STRONG = {"OMNICASCADE_WEBHOOK_SECRET": "w" * 8 + "3f9c1a7e5d2b4c6e",
          "OMNICASCADE_API_TOKEN": "t" * 8 + "8d0e2f4a6b1c3e5f",
          "OMNICASCADE_CONSOLE_PASSWORD": "correct horse battery staple"}
VARIABLES = tuple(STRONG)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What really started: the embedded stack (stopped again at once) or uvicorn."""
    seen: list[str] = []

    async def start(stack: server.EmbeddedStack) -> None:
        seen.append(f"server {stack.host}")
        stack.settings = stack.settings.model_copy(update={  # what the banner shows
            "temporal_address": "127.0.0.1:7233"})
        stack.request_stop()
    monkeypatch.setattr(server.EmbeddedStack, "start", start)
    monkeypatch.setattr(server.EmbeddedStack, "stop", lambda stack: _nothing())
    monkeypatch.setattr(deploy.uvicorn, "run",
                        lambda app, **kw: seen.append(f"api {kw['host']}"))
    return seen


async def _nothing() -> None:
    return None


def cli(tmp_path: Path, *args: str, ok: bool, **variables: str) -> Any:
    return run_cli(*args, env=home_env(tmp_path / "home", **variables), cwd=tmp_path, ok=ok)


@pytest.mark.parametrize("command", ["server", "api"])
@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "shop.example.com"])
def test_a_reachable_address_refuses_generated_secrets(tmp_path: Path, started: list[str],
                                                       command: str, host: str) -> None:
    r = cli(tmp_path, command, "--host", host, ok=False)
    assert r.returncode == 1 and not started
    message = " ".join(r.stderr.split())
    assert message.startswith("error: the API would listen on") and "reachable" in message
    assert all(v in message for v in VARIABLES) and "--host 127.0.0.1" in message
    assert not (tmp_path / "home" / "console_password").exists()  # nothing generated


@pytest.mark.parametrize("command", ["server", "api"])
def test_a_reachable_address_refuses_a_weak_console_password(
        tmp_path: Path, started: list[str], command: str) -> None:
    r = cli(tmp_path, command, "--host", "0.0.0.0", ok=False,
            **{**STRONG, "OMNICASCADE_CONSOLE_PASSWORD": "x"})
    message = " ".join(r.stderr.split())
    assert "set OMNICASCADE_CONSOLE_PASSWORD to real secrets" in message and not started
    assert "OMNICASCADE_API_TOKEN" not in message


@pytest.mark.parametrize("command", ["server", "api"])
def test_a_reachable_address_starts_with_real_secrets(tmp_path: Path, started: list[str],
                                                      command: str) -> None:
    r = cli(tmp_path, command, "--host", "0.0.0.0", ok=True, **STRONG)
    assert started == [f"{command} 0.0.0.0"] and "WARNING" not in r.stderr


@pytest.mark.parametrize("command", ["server", "api"])
def test_loopback_warns_about_a_weak_console_password(tmp_path: Path, started: list[str],
                                                      command: str) -> None:
    r = cli(tmp_path, command, ok=True, OMNICASCADE_CONSOLE_PASSWORD="x")
    assert started == [f"{command} 127.0.0.1"]
    assert "WARNING: OMNICASCADE_CONSOLE_PASSWORD is weak" in " ".join(r.stderr.split())
    quiet = cli(tmp_path, command, ok=True)  # generated secrets on loopback: the default
    assert "WARNING" not in quiet.stderr


def test_which_addresses_are_loopback() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.5", "", "shop.example.com", "127.0.0.1.nip.io"):
        assert not is_loopback(host), host
