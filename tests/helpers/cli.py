"""Running the installed `omnicascade` command (and the other binaries of the venv) the way a
user does: a clean environment (no OMNICASCADE_* from the caller), output captured, and a
traceback anywhere is a failure whatever the exit code."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

BIN = Path(sysconfig.get_path("scripts"))
OMNI = str(BIN / "omnicascade")


def binary(name: str) -> str:
    path = BIN / name
    assert path.is_file(), f"{path} missing: install the test extras (pip install -e '.[test]')"
    return str(path)


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without any OMNICASCADE_* setting, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNICASCADE_")}
    env.update(variables)
    return env


def home_env(home: Path, **variables: str) -> dict[str, str]:
    return clean_env(OMNICASCADE_HOME=str(home), **variables)


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None, ok: bool | None = None,
            timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`omnicascade ARGS…`; `ok=True` also requires exit code 0, `ok=False` a failure."""
    r = subprocess.run([OMNI, *args], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, input=stdin)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr + r.stdout
    if ok is True:
        assert r.returncode == 0, r.stderr + r.stdout
    elif ok is False:
        assert r.returncode != 0, r.stdout
    return r
