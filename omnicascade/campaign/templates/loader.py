"""Find and check the template files a campaign references.

`<name>.txt.j2` is the body for every channel; email also needs `<name>.subject.j2`
(and may have `<name>.html.j2`); push also needs `<name>.title.j2`; whatsapp may have
`<name>.whatsapp.yaml`, an approved template's Content SID and variables (whatsapp.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from omnicascade.campaign.model import CampaignSpec
from omnicascade.campaign.problems import Problem, position
from omnicascade.campaign.templates import whatsapp
from omnicascade.campaign.templates.references import KnownAttributes, check_references
from omnicascade.campaign.templates.render import CONTEXT_NAMES, GLOBALS, over_budget, parse

PARTS = {"body": ".txt.j2", "subject": ".subject.j2", "html": ".html.j2", "title": ".title.j2",
         whatsapp.PART: whatsapp.SUFFIX}
REQUIRED = {"email": ("body", "subject"), "sms": ("body",), "whatsapp": ("body",),
            "telegram": ("body",), "push": ("body", "title"), "webhook": ("body",)}
OPTIONAL = {"email": ("html",), "whatsapp": (whatsapp.PART,)}


Use = tuple[tuple[Any, ...], str, str]  # (yaml location of `template:`, name, channel)


@dataclass(frozen=True)
class TemplateUses:
    """What checking a campaign's templates needs from it: where they are, which are used
    on which channel, and the trigger (its sample data). Read from the validated spec, or,
    when the YAML has problems, from whatever of it is well-formed (`uses_in`): validate
    then reports the template problems in the same run as the YAML's."""
    templates_dir: str | None
    uses: list[Use]
    has_trigger: bool
    example: dict[str, Any] | None


def templates_dir(spec: CampaignSpec | TemplateUses, yaml_path: Path) -> Path:
    base = yaml_path.parent
    return (base / spec.templates_dir) if spec.templates_dir else base / "templates"


def uses_of(spec: CampaignSpec) -> TemplateUses:
    return TemplateUses(spec.templates_dir, _uses(spec), spec.trigger is not None,
                        spec.trigger.example if spec.trigger else None)


def uses_in(data: Any) -> TemplateUses | None:
    """The template uses of a campaign file that did not validate, as far as they can be
    read safely (a step whose channel or template name is itself wrong is left out: the
    YAML's problems already name it). None when even the templates folder is wrong."""
    from omnicascade.campaign.model import _example, _inside
    from omnicascade.campaign.steps import _plain_name
    data = data if isinstance(data, dict) else {}
    folder = data.get("templates_dir")
    try:
        folder = _inside(folder) if isinstance(folder, str) or folder is None else ""
    except ValueError:
        folder = ""
    if folder == "":
        return None

    def steps(loc: tuple[Any, ...], items: Any) -> list[Use]:
        out: list[Use] = []
        for i, step in enumerate(items if isinstance(items, list) else []):
            name, channel = (step.get("template"), step.get("channel")) \
                if isinstance(step, dict) else (None, None)
            try:
                if isinstance(name, str) and isinstance(channel, str) and \
                        channel in REQUIRED and _plain_name(name):
                    out.append(((*loc, i, "template"), name, str(channel)))
            except ValueError:
                continue
        return out
    uses = steps(("steps",), data.get("steps")) + \
        steps(("after_conversion",), data.get("after_conversion"))
    experiment = data.get("experiment")
    variants = experiment.get("variants") if isinstance(experiment, dict) else None
    for name, variant in (variants.items() if isinstance(variants, dict) else ()):
        if isinstance(variant, dict):
            uses += steps(("experiment", "variants", name, "steps"), variant.get("steps"))
    trigger = data.get("trigger")
    example = None
    if isinstance(trigger, dict):
        try:
            example = _example(trigger.get("example"))
        except ValueError:
            example = None
    return TemplateUses(folder, uses, isinstance(trigger, dict),
                        example if isinstance(example, dict) else None)


def _outside(path: Path, folder: Path) -> bool:
    """True when `path`, symlinks followed, is not inside `folder` (already resolved)."""
    try:
        return not path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError):  # a symlink loop
        return True


def _uses(spec: CampaignSpec) -> list[Use]:
    """(yaml location of the `template:` value, template name, channel) for every use."""
    uses: list[Use] = [
        (("steps", i, "template"), s.template, s.channel) for i, s in enumerate(spec.steps)]
    uses += [(("after_conversion", i, "template"), f.template, f.channel)
             for i, f in enumerate(spec.after_conversion)]
    if spec.experiment:
        for name, variant in spec.experiment.variants.items():
            for i, s in enumerate(variant.steps or []):
                uses.append((("experiment", "variants", name, "steps", i, "template"),
                             s.template, s.channel))
    return uses


def _check_source(path: Path, source: str, spec: TemplateUses,
                  attributes: KnownAttributes | None) -> list[Problem]:
    try:
        ast = parse(source)
    except TemplateSyntaxError as exc:
        return [Problem(str(path), exc.lineno, None, f"template syntax error: {exc.message}")]
    example = spec.example
    if (why := over_budget(source, example)) is not None:
        return [Problem(str(path), None, None, f"cannot render: {why} (README, Templates: limits)")]
    unknown = meta.find_undeclared_variables(ast) - CONTEXT_NAMES - GLOBALS
    problems = _private_names(path, ast)
    problems += check_references(str(path), source, ast, has_trigger=spec.has_trigger,
                                 example=example, attributes=attributes)
    for name in sorted(unknown):
        # The line of the first use, not of the first text that merely contains the name.
        line = next((n.lineno for n in ast.find_all(nodes.Name)
                     if n.name == name and n.ctx == "load"), None)
        problems.append(Problem(str(path), line, None,
                                f"unknown variable '{name}'; templates can use "
                                f"{', '.join(sorted(CONTEXT_NAMES))}"))
    return problems


def load_templates(campaign: CampaignSpec | TemplateUses, data: Any, yaml_path: Path,
                   attributes: KnownAttributes | None = None,
                   ) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    """Every template the campaign uses, checked; `attributes`: the customer attribute
    names a send can find (None: unknown, customer.<attr> is not checked)."""
    spec = campaign if isinstance(campaign, TemplateUses) else uses_of(campaign)
    folder = templates_dir(spec, yaml_path)
    loaded: dict[str, dict[str, str]] = {}
    problems: list[Problem] = []
    checked: set[Path] = set()
    home = yaml_path.parent.resolve()
    if _outside(folder, home):
        return loaded, [Problem(str(yaml_path), None, None,
                                f"the templates folder {folder} is outside the campaign's "
                                f"folder {home}: a campaign reads only its own files")]
    inside = folder.resolve()
    for loc, name, channel in spec.uses:
        line, col = position(data, loc, key_itself=False) or (None, None)
        parts = loaded.setdefault(name, {})
        for part in REQUIRED[channel] + OPTIONAL.get(channel, ()) + tuple(parts):
            if part in parts:
                continue
            path = folder / f"{name}{PARTS[part]}"
            if _outside(path, inside):
                problems.append(Problem(str(path), None, None,
                                        f"links to a file outside the templates folder "
                                        f"{inside}: a campaign reads only its own files"))
                continue
            if not path.is_file():
                if part in REQUIRED[channel]:
                    problems.append(Problem(str(yaml_path), line, col,
                                            f"{channel} template '{name}' needs the file "
                                            f"{path} which does not exist"))
                continue
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(str(path), None, None, f"cannot read: {exc}"))
                continue
            parts[part] = source
            if path not in checked:
                checked.add(path)
                check = _check_content if part == whatsapp.PART else _check_source
                problems.extend(check(path, source, spec, attributes))
    return loaded, problems


def _check_content(path: Path, source: str, spec: TemplateUses,
                   attributes: KnownAttributes | None) -> list[Problem]:
    """A content template file; each variable checked as a template, its problems placed
    at the variable's line (and column, for a problem on its first line) in the file."""
    try:
        content = whatsapp.read_content(source)
    except whatsapp.ContentError as exc:
        return [Problem(str(path), exc.line, exc.col, exc.message)]
    problems = []
    for key, src in content.variables.items():
        line, col = content.where[key]
        for p in _check_source(path, src, spec, attributes):
            first = p.line in (None, 1)
            problems.append(Problem(p.file, line + (p.line or 1) - 1, col if first else None,
                                    f"variable {key}: {p.message}"))
    return problems


def _private_names(path: Path, ast: nodes.Template) -> list[Problem]:
    """`x._y`, `x.__class__`, `x['_y']`: the sandbox refuses them when rendering; say so
    when validating, before anything is launched."""
    problems = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        # find_all yields only the two node types asked for
        name = node.attr if isinstance(node, nodes.Getattr) else (
            node.arg.value if isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const) else None)
        if isinstance(name, str) and name.startswith("_"):
            problems.append(Problem(str(path), node.lineno, None,
                                    f"'{name}' is not available in templates: names "
                                    f"starting with _ are private"))
    return problems
