"""Campaign file → validated CampaignSpec plus the source of every template it uses.

Everything is checked before anything is launched, in one run: the YAML (problems by line
and column) and every template the steps reference, the problems sorted by file and line.
A launch snapshots the result, so editing the files later never changes what a cascade in
flight sends.

Anchors and aliases are allowed (ordinary YAML: a value or a step list written once and
reused), but a document may stand for at most MAX_YAML_VALUES values once its aliases are
expanded. The parser shares an aliased node instead of copying it, so a few hundred bytes
of nested aliases (the "billion laughs") parse at once and would only explode when turned
into plain data, validated and snapshotted: `bounded` counts the expansion first, on the
shared nodes, and refuses past the cap with the line and column where it is passed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from omnicascade.campaign.checks import check
from omnicascade.campaign.model import CampaignSpec
from omnicascade.campaign.problems import Problem, SpecError, explain, position
from omnicascade.campaign.templates import whatsapp
from omnicascade.campaign.templates.loader import load_templates, uses_in, uses_of
from omnicascade.campaign.templates.references import KnownAttributes, event_fields
from omnicascade.campaign.templates.render import parse


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(str(path), None, None, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(str(path), None, None, f"cannot read: {exc}")]) from None
    try:
        data = YAML(typ="rt").load(text)
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
    bounded(path, data)
    return data


MAX_YAML_VALUES = 100_000  # a real campaign file stands for a few hundred values


def bounded(path: Path, data: Any) -> None:
    """SpecError if `data` stands for more than MAX_YAML_VALUES values (every key, value and
    item, counted once per place an alias puts it) or contains itself. Each shared node is
    sized once, so this takes time in the size of the file, not of the expansion."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def refuse(node: Any, why: str) -> SpecError:
        lc = getattr(node, "lc", None)
        line, col = (lc.line + 1, lc.col + 1) if lc is not None else (None, None)
        return SpecError([Problem(str(path), line, col, why)])

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_:
            raise refuse(node, "an alias refers to the mapping or list that contains it")
        open_.add(id(node))
        total = 1
        for child in ([*node.keys(), *node.values()] if isinstance(node, dict) else node):
            total += size(child)
            if total > MAX_YAML_VALUES:
                raise refuse(node, f"aliases expand this to more than {MAX_YAML_VALUES:,} "
                                   f"values (an alias bomb?); write it out instead")
        open_.discard(id(node))
        sizes[id(node)] = total
        return total
    size(data)


def parse_spec(path: Path) -> tuple[CampaignSpec, Any]:
    """Parse and validate the YAML itself (not its templates)."""
    data = load_yaml(path)
    spec, problems = _validate(path, data)
    if spec is None or problems:
        raise SpecError(problems)
    return spec, data


def _validate(path: Path, data: Any) -> tuple[CampaignSpec | None, list[Problem]]:
    """The spec (None if the YAML's shape is wrong) and every problem of the YAML."""
    if not isinstance(data, dict):
        return None, [Problem(str(path), 1, 1, "a campaign file must be a mapping with "
                                               "keys like campaign:, steps:")]
    try:
        spec = CampaignSpec.model_validate(plain_data(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
            pos = position(data, loc, key_itself=err["type"] == "extra_forbidden")
            line, col = pos or (None, None)
            problems.append(Problem(str(path), line, col, explain(err)))
        return None, problems
    problems = []
    for place, message in check(spec):
        line, col = position(data, place, key_itself=False) or (None, None)
        problems.append(Problem(str(path), line, col, message))
    return spec, problems


def in_order(problems: list[Problem]) -> list[Problem]:
    """Sorted by file and line (then column); a problem of the whole file comes first."""
    return sorted(problems, key=lambda p: (p.file, p.line or 0, p.col or 0))


def plain_data(node: Any) -> Any:
    """ruamel's commented maps and lists as plain dicts and lists."""
    if isinstance(node, dict):
        return {str(k): plain_data(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain_data(v) for v in node]
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


def load_campaign(path: Path | str, *,
                  attributes: KnownAttributes | None = None) -> LoadedCampaign:
    """Validate the YAML and every template it references; raise SpecError listing all.
    `attributes`: the customer attribute names a send can find, to check every
    customer.<attr> against (None: not known, not checked)."""
    path = Path(path)
    data = load_yaml(path)  # YAML that does not parse: nothing else can be read
    spec, problems = _validate(path, data)
    # The templates are checked even when the YAML has problems (as far as its steps can
    # be read), so one run reports every problem of the YAML, the templates and the data.
    uses = uses_of(spec) if spec is not None else uses_in(data)
    templates: dict[str, dict[str, str]] = {}
    if uses is not None:
        templates, more = load_templates(uses, data, path, attributes)
        problems += more
    if problems or spec is None:
        raise SpecError(in_order(problems))
    notes: list[str] = []
    if spec.trigger and spec.trigger.example is None:
        read = sorted({f for parts in templates.values() for part, text in parts.items()
                       for src in whatsapp.sources(part, text) for f in event_fields(parse(src))})
        if read:
            notes.append(f"the templates read {', '.join(read)} but trigger has no example: "
                         f"add trigger.example (sample event data) so validate can check "
                         f"those fields and preview can show them")
    notes += [f"whatsapp template '{name}': {whatsapp.describe(templates.get(name, {}))}"
              for name in sorted({s.template for s in _all_steps(spec)
                                  if s.channel == "whatsapp"})]
    return LoadedCampaign(spec=spec, path=path, templates=templates, notes=notes)


def _all_steps(spec: CampaignSpec) -> list[Any]:
    """Every step of every variant, and the follow-ups."""
    steps: list[Any] = [*spec.steps, *spec.after_conversion]
    for variant in (spec.experiment.variants.values() if spec.experiment else ()):
        steps += variant.steps or []
    return steps


def spec_from_snapshot(snapshot: dict[str, Any]) -> CampaignSpec:
    return CampaignSpec.model_validate(snapshot["spec"])
