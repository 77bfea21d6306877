"""README, *Configuration*: its table names every variable Settings reads, and nothing else
(`<CHANNEL>` stands for each channel)."""

from __future__ import annotations

import re
from pathlib import Path

from omnicascade.config.sources import variables

README = Path(__file__).parents[2] / "README.md"
CHANNELS = ("EMAIL", "SMS", "TELEGRAM", "PUSH", "WHATSAPP", "WEBHOOK")
NAME = re.compile(r"`(OMNICASCADE_[A-Z0-9_<>]+)")


def documented() -> set[str]:
    text = README.read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            for name in NAME.findall(first):
                names |= ({name.replace("<CHANNEL>", c) for c in CHANNELS}
                          if "<CHANNEL>" in name else {name})
    return names


def test_the_readme_table_names_every_setting_and_only_settings() -> None:
    read = set(variables())
    table = documented()
    assert not read - table, f"read by Settings, missing from README: {sorted(read - table)}"
    assert not table - read, f"in README, read by no setting: {sorted(table - read)}"
