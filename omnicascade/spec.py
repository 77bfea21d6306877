"""Campaign YAML → validated CampaignSpec, with every problem reported as file:line:col.

The YAML is read with ruamel's round-trip loader because it keeps the line and column
of every key and item; pydantic does the validation and its error locations are mapped
back onto the file so a marketer sees `cart.yaml:7:14: unknown channel 'fax'`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from omnicascade.durations import format_duration, parse_duration
from omnicascade.validation import time_zone

CHANNELS = ("email", "sms", "telegram", "push")
Channel = Literal["email", "sms", "telegram", "push"]
Duration = Annotated[int, BeforeValidator(parse_duration),
                     PlainSerializer(format_duration, return_type=str, when_used="json")]
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_RANDOM = re.compile(r"\{random:(\d+)\}")


def _percent(value: object) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        value = float(value.strip()[:-1])
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
        value = float(value) * 100
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a percentage; write e.g. 10%")
    return float(value)


# Serialised as "10.0%", not 10.0: a bare number below 1 reads back as a fraction
# (0.5 → 50%), so a snapshot of `holdout: 0.5%` would otherwise come back as 50%.
Percent = Annotated[float, BeforeValidator(_percent),
                    PlainSerializer(lambda v: f"{v}%", return_type=str, when_used="json")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Model):
    event: str = Field(min_length=1)


class Conversion(_Model):
    events: list[str] = Field(min_length=1)
    lookback: Duration = 0


class Promo(_Model):
    pattern: str
    discount: str | None = None

    @field_validator("pattern")
    @classmethod
    def _has_random(cls, v: str) -> str:
        m = _RANDOM.search(v)
        if not m or not 4 <= int(m.group(1)) <= 32:
            raise ValueError("pattern needs a {random:N} part (4 ≤ N ≤ 32) so every code "
                             "is unique, e.g. CART-{random:6}")
        return v


class Step(_Model):
    channel: Channel
    template: str = Field(min_length=1)
    wait: Duration = 0


class FollowUp(_Model):
    channel: Channel
    template: str = Field(min_length=1)
    delay: Duration = 0


class QuietHours(_Model):
    start: str
    end: str
    mode: Literal["defer", "skip"] = "defer"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        if not _CLOCK.match(str(v)):
            raise ValueError(f"{v!r} is not a time of day; write HH:MM, e.g. 21:00")
        return v


class FrequencyCap(_Model):
    max: int = Field(ge=1)
    per: Duration
    channels: list[Channel] | None = None


Order = Literal["as_written", "cost", "preference"]


class Variant(_Model):
    weight: float = Field(ge=0)
    steps: list[Step] | None = Field(default=None, min_length=1)
    promo: Promo | None = None
    order: Order | None = None


class Experiment(_Model):
    holdout: Percent = 0.0
    variants: dict[str, Variant] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights(self) -> Experiment:
        if not 0 <= self.holdout < 100:
            raise ValueError("holdout must be at least 0% and below 100%")
        total = sum(v.weight for v in self.variants.values())
        if abs(total - 100) > 1e-6:
            raise ValueError(f"variant weights must add up to 100 (they add up to {total:g})")
        for name in self.variants:
            if name in ("holdout", "default") or not _SLUG.match(name):
                raise ValueError(f"variant name {name!r} is not allowed: use lowercase letters, "
                                 f"digits, - and _ (and not 'holdout' or 'default')")
        return self


class CampaignSpec(_Model):
    campaign: str
    description: str = ""
    trigger: Trigger | None = None
    conversion: Conversion | None = None
    promo: Promo | None = None
    steps: list[Step] = Field(min_length=1)
    after_conversion: list[FollowUp] = Field(default_factory=list)
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    experiment: Experiment | None = None
    order: Order = "as_written"
    timezone: str | None = None
    templates_dir: str | None = None

    @field_validator("campaign")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"{v!r} is not a slug: use lowercase letters, digits, - and _")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return time_zone(v)

    @property
    def conversion_events(self) -> list[str]:
        return list(self.conversion.events) if self.conversion else []

    @property
    def lookback_s(self) -> int:
        return self.conversion.lookback if self.conversion else 0

    def all_step_lists(self) -> dict[str, list[Step]]:
        lists = {"": list(self.steps)}
        if self.experiment:
            for name, variant in self.experiment.variants.items():
                if variant.steps:
                    lists[name] = list(variant.steps)
        return lists


# ---- problems and their locations -----------------------------------------------------

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


def _position(data: Any, loc: tuple[Any, ...], key_itself: bool) -> tuple[int, int] | None:
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


def _plain(err: Mapping[str, Any]) -> str:
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
    if kind == "literal_error":
        return f"{err['input']!r} is not allowed here; {err['msg'].lower()}"
    if kind in ("too_short",) and isinstance(err.get("input"), list):
        return f"'{name}' must not be empty"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return f"{name}: {msg}" if name and not isinstance(name, int) else msg


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(str(path), None, None, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(str(path), None, None, f"cannot read: {exc}")]) from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SpecError([Problem(str(path), line, col, f"invalid YAML: {reason}")]) from None
    except ReaderError as exc:  # a control character YAML does not allow in a file
        before = text[:exc.position]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        raise SpecError([Problem(str(path), line, col, f"invalid YAML: character "
                                 f"#x{exc.character:04x} is not allowed in YAML")]) from None
    except YAMLError as exc:
        raise SpecError([Problem(str(path), None, None, f"invalid YAML: {exc}")]) from None


def parse_spec(path: Path) -> tuple[CampaignSpec, Any]:
    """Parse and validate the YAML itself (not its templates)."""
    data = _load_yaml(path)
    if not isinstance(data, dict):
        raise SpecError([Problem(str(path), 1, 1, "a campaign file must be a mapping with "
                                                  "keys like campaign:, steps:")])
    try:
        spec = CampaignSpec.model_validate(_plain_data(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
            pos = _position(data, loc, key_itself=err["type"] == "extra_forbidden")
            line, col = pos or (None, None)
            problems.append(Problem(str(path), line, col, _plain(err)))
        raise SpecError(problems) from None
    return spec, data


def _plain_data(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain_data(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain_data(v) for v in node]
    return node


@dataclass
class LoadedCampaign:
    """A validated spec plus the source of every template it uses (snapshotted at launch)."""
    spec: CampaignSpec
    path: Path
    templates: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return {"spec": self.spec.model_dump(mode="json"), "templates": self.templates}


def load_campaign(path: Path | str) -> LoadedCampaign:
    """Validate the YAML and every template it references; raise SpecError listing all."""
    from omnicascade.templates.loader import load_templates

    path = Path(path)
    spec, data = parse_spec(path)
    templates, problems = load_templates(spec, data, path)
    if problems:
        raise SpecError(problems)
    notes: list[str] = []
    return LoadedCampaign(spec=spec, path=path, templates=templates, notes=notes)


def spec_from_snapshot(snapshot: dict[str, Any]) -> CampaignSpec:
    return CampaignSpec.model_validate(snapshot["spec"])
