"""Running the `omnicascade` command the way a user does: a clean environment (no
OMNICASCADE_* from the caller), output captured, and a traceback anywhere is a failure
whatever the exit code.

`run_cli` runs the command in this process (the same `main()` the installed script calls,
with its own argv, environment, working directory, stdin, stdout and stderr): a fresh Python
process costs about a second of imports, and most tests are about what a command does, not
about the process boundary. `process=True` runs the installed binary instead — for the tests
that are about the process itself (signals, exit codes of the real script, start-up)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sysconfig.get_path("scripts"))
OMNI = str(BIN / "omnicascade")
_IN_PROCESS = threading.Lock()  # one in-process command at a time: it swaps global state


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
            timeout: float = 120, stdin: str | None = None, process: bool = False
            ) -> subprocess.CompletedProcess[str]:
    """`omnicascade ARGS…`; `ok=True` also requires exit code 0, `ok=False` a failure."""
    if process:
        r = subprocess.run([OMNI, *args], env=env, cwd=cwd, capture_output=True, text=True,
                           timeout=timeout, input=stdin)
    else:
        r = _in_process(list(args), env, cwd, stdin)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr + r.stdout
    if ok is True:
        assert r.returncode == 0, r.stderr + r.stdout
    elif ok is False:
        assert r.returncode != 0, r.stdout
    return r


class _Text(io.StringIO):
    """A captured stream that says it is no terminal (as a pipe would)."""

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _environment(env: dict[str, str], cwd: Path | None) -> Iterator[None]:
    saved, here = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.environ.setdefault("COLUMNS", "80")  # what rich assumes of a pipe
    try:
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)


def _in_process(args: list[str], env: dict[str, str], cwd: Path | None,
                stdin: str | None) -> subprocess.CompletedProcess[str]:
    from omnicascade.cli.main import main
    out, err = _Text(), _Text()
    code: int = 0
    with _IN_PROCESS, _environment(env, cwd), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        saved_argv, saved_stdin = sys.argv, sys.stdin
        sys.argv, sys.stdin = [OMNI, *args], io.StringIO(stdin or "")
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        except BaseException:  # a traceback the user would see: fail the assertion above
            import traceback
            traceback.print_exc(file=err)
            code = 1
        finally:
            sys.argv, sys.stdin = saved_argv, saved_stdin
    return subprocess.CompletedProcess([OMNI, *args], code, out.getvalue(), err.getvalue())
