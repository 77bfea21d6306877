"""Problems with a campaign, each at its place in the file: `cart.yaml:7:14: unknown channel
'fax'`. ruamel's round-trip loader keeps the line and column of every key and item; this
module maps a pydantic error's location back onto them and words the error plainly."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_origin

from pydantic import BaseModel
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from omnicascade.campaign.model import CampaignSpec
from omnicascade.vocabulary import CHANNELS, ENGAGEMENTS


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    col: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        return f"{where}: {self.message}"


class SpecError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def position(data: Any, loc: tuple[Any, ...], key_itself: bool) -> tuple[int, int] | None:
    node, pos = data, None
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            pos = node.lc.key(part) if (last and key_itself) else node.lc.value(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            pos = node.lc.item(part)
            node = node[part]
        else:
            break
    return (pos[0] + 1, pos[1] + 1) if pos else None


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: Any = CampaignSpec
    dict_key = False  # the next part is a key of a dict field (a variant's name), not a field
    for part in loc:
        if isinstance(part, int) or dict_key:
            dict_key = False
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return None
        ann = fields[part].annotation
        dict_key = get_origin(ann) is dict
        model = _unwrap(ann)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(ann: Any) -> Any:
    for arg in getattr(ann, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        found = _unwrap(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found  # not a plain type like the `str` keys of dict[str, Variant]
    return ann if isinstance(ann, type) else None


def explain(err: Mapping[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if p not in ("function-after",))
    kind, name = err["type"], loc[-1] if loc else ""
    if kind == "extra_forbidden":
        parent = _model_for(loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = difflib.get_close_matches(str(name), allowed, n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else \
            (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        return f"unknown key '{name}'{extra}"
    if kind == "missing":
        return f"missing required key '{name}'"
    if kind == "literal_error" and name == "channel" or (kind == "literal_error" and
                                                          "channels" in loc):
        return f"unknown channel {err['input']!r}; use one of {', '.join(CHANNELS)}"
    if kind == "literal_error" and "skip_if" in loc:
        return (f"unknown skip_if value {err['input']!r}; use one of "
                f"{', '.join(ENGAGEMENTS)}")
    if kind == "literal_error" and name == "send_time":
        return (f"unknown send_time value {err['input']!r}; use best (each customer's best "
                f"hour, at most max_delay later) or scheduled")
    if kind == "literal_error":
        return f"{err['input']!r} is not allowed here; {err['msg'].lower()}"
    if kind in ("too_short",) and isinstance(err.get("input"), list):
        return f"'{name}' must not be empty"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return f"{name}: {msg}" if name and not isinstance(name, int) else msg
