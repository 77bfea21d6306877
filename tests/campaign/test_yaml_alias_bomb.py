"""The YAML alias bomb ("billion laughs"): a few hundred bytes of anchors and aliases that
stand for ~10^9 values once expanded. The campaign loader refuses it, naming file:line:col,
before anything expands it (the parse itself shares aliased nodes and is cheap; what used to
blow up was turning the parsed document into plain data, then validating and snapshotting
it), so `omnicascade campaign validate` answers at once, in bounded memory.
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path
from typing import Any

import pytest

from omnicascade.campaign import load
from omnicascade.campaign.load import MAX_YAML_VALUES, load_campaign
from omnicascade.campaign.problems import SpecError
from tests.helpers.campaigns import CASCADE_YAML, write_campaign
from tests.helpers.cli import OMNI, clean_env

LAUGHS = "".join(
    [f'{chr(97 + i)}: &{chr(97 + i)} [{", ".join([f"*{chr(96 + i)}"] * 9)}]\n'
     for i in range(1, 9)])
# 9 strings, then eight levels of nine aliases to the level before: 9^9 ≈ 3.9e8 strings,
# and the campaign itself after it, valid, so nothing else is wrong with the file.
BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + LAUGHS
BOMB_LINES = BOMB.count("\n")
MEMORY_CAP = 1024 ** 3  # far below what expanding it needs (tens of GB)


def _bomb(tmp_path: Path) -> Path:
    return write_campaign(tmp_path / "bomb", CASCADE_YAML + "x_bomb:\n" + "".join(
        "  " + line + "\n" for line in BOMB.splitlines()), name="bomb.yaml")


def test_billion_laughs_is_refused_before_anything_expands_it(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Event-based, not timed: plain_data (which copies what aliases share) is never asked
    to walk the bomb, and the problem names the line where the expansion passes the cap."""
    calls = 0
    plain = load.plain_data

    def counting(node: Any) -> Any:
        nonlocal calls
        calls += 1
        assert calls < 10 * MAX_YAML_VALUES, "the loader is expanding the alias bomb"
        return plain(node)
    monkeypatch.setattr(load, "plain_data", counting)
    path = _bomb(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_campaign(path)
    [problem] = caught.value.problems
    assert problem.file == str(path) and "aliases" in problem.message, problem
    first = CASCADE_YAML.count("\n") + 2  # the bomb's first line in the file
    assert problem.line is not None and first <= problem.line < first + BOMB_LINES, problem
    assert problem.col is not None and problem.col > 1, problem


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    """Anchors and aliases are ordinary YAML (a shared step list, a repeated value): only
    an expansion past the cap is refused."""
    text = CASCADE_YAML.replace("wait: 24h}", "wait: *w }").replace(
        "wait: *w }", "wait: &w 24h }", 1)
    assert "&w" in text and "*w" in text
    loaded = load_campaign(write_campaign(tmp_path / "ok", text))
    assert loaded.spec.steps[0].wait == loaded.spec.steps[1].wait


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.mark.timeout(120)
def test_campaign_validate_refuses_the_bomb_in_bounded_memory(tmp_path: Path) -> None:
    """The real command under a 1 GiB address-space limit: a clear problem and exit 1, not
    a MemoryError, a traceback or a kill. (The timeout only stops a broken loader from
    hanging the suite; it is not what the test measures.)"""
    path = _bomb(tmp_path)
    r = subprocess.run([OMNI, "campaign", "validate", str(path)], env=clean_env(),
                       capture_output=True, text=True, timeout=90, preexec_fn=_limit_memory)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out and "MemoryError" not in out, out
    assert f"{path}:" in out and "aliases" in out, out
