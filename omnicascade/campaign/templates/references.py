"""What a template reads from the customer and from the trigger's data, found in jinja2's
syntax tree and checked before a launch against what a send will really have: the customer
fields plus the attributes known from imported customers and the audience file, and the
trigger's sample data (`trigger.example`). `{{ customer.firstname }}` where the column is
`first_name` is refused here with "did you mean 'first_name'?" instead of failing every
send."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from omnicascade.campaign.problems import Problem

# The keys of `customer` in every render (render.build_context of customers.customer_dict);
# every other name is an attribute of the customer (a column of their file).
CUSTOMER_FIELDS = frozenset({"id", "email", "phone", "telegram_chat_id", "push_token",
                             "timezone", "locale", "consents"})
EVENT_NAMES = ("event", "cart")  # the trigger's data, under both names
_WATCHED = ("customer", *EVENT_NAMES)
_SHOWN = 40  # known names listed in a problem, at most


@dataclass(frozen=True)
class KnownAttributes:
    """Customer attribute names a send can find, and where they were learned (for the
    message): imported customers, the audience file."""
    names: frozenset[str]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Reference:
    name: str        # customer | event | cart
    attr: str | None  # None: the bare name ({{ event }})
    line: int


def references(ast: nodes.Template) -> list[Reference]:
    """`customer.x`, `customer['x']`, `customer.get('x')` (and the same of event and cart),
    in source order. A name the template assigns itself ({% set customer = … %}, a loop
    variable) is its own, not the context's, and is left alone."""
    own = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    callee = {id(call.node): call for call in ast.find_all(nodes.Call)}
    used: set[int] = set()
    out: list[Reference] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
            continue  # find_all yields only these; this tells the type checker
        target = node.node
        if not (isinstance(target, nodes.Name) and target.ctx == "load"
                and target.name in _WATCHED and target.name not in own):
            continue
        attr: Any = None
        if isinstance(node, nodes.Getattr):
            call = callee.get(id(node))
            if call is None:
                attr = node.attr
            elif node.attr == "get" and call.args and isinstance(call.args[0], nodes.Const):
                attr = call.args[0].value
            else:
                continue  # a method (customer.items()): reads no one attribute
        elif isinstance(node.arg, nodes.Const):
            attr = node.arg.value
        if isinstance(attr, str):
            used.add(id(target))
            out.append(Reference(target.name, attr, node.lineno))
    for name in ast.find_all(nodes.Name):
        if name.ctx == "load" and name.name in EVENT_NAMES and name.name not in own \
                and id(name) not in used:
            out.append(Reference(name.name, None, name.lineno))
    return sorted(out, key=lambda r: r.line)


def _column(source: str, ref: Reference, at_name: bool) -> int | None:
    """Where on its line the reference is (jinja2 keeps lines only): the attribute's name,
    or the name itself (`at_name`, or a bare name)."""
    lines = source.splitlines()
    if not 0 < ref.line <= len(lines):
        return None
    text = lines[ref.line - 1]
    if ref.attr is None:
        m = re.search(rf"\b{ref.name}\b", text)
        return m.start() + 1 if m else None
    m = re.search(rf"\b{ref.name}\s*(?:\.\s*|\[\s*['\"]|\.\s*get\s*\(\s*['\"])"
                  rf"{re.escape(ref.attr)}", text)
    if m is None:
        return None
    return m.start() + 1 if at_name else m.end() - len(ref.attr) + 1


def _hint(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _listed(names: Collection[str]) -> str:
    shown = sorted(names)
    more = f", … and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
    return ", ".join(shown[:_SHOWN]) + more


def check_references(path: str, source: str, ast: nodes.Template, *, has_trigger: bool,
                     example: dict[str, Any] | None,
                     attributes: KnownAttributes | None) -> list[Problem]:
    """Problems with what the template reads: event data in a campaign without a trigger,
    event fields the trigger's example lacks (when it has one), customer attributes nobody
    has (when attribute names are known at all)."""
    problems = []
    seen: set[tuple[str, str | None, int]] = set()
    for ref in references(ast):
        if (ref.name, ref.attr, ref.line) in seen:
            continue
        seen.add((ref.name, ref.attr, ref.line))
        message = _message(ref, has_trigger, example, attributes)
        if message:  # event data without a trigger: the name is wrong, not the field
            at_name = ref.name in EVENT_NAMES and not has_trigger
            problems.append(Problem(path, ref.line, _column(source, ref, at_name), message))
    return problems


def _message(ref: Reference, has_trigger: bool, example: dict[str, Any] | None,
             attributes: KnownAttributes | None) -> str | None:
    what = ref.name if ref.attr is None else f"{ref.name}.{ref.attr}"
    if ref.name in EVENT_NAMES and not has_trigger:
        return (f"'{what}': this campaign has no trigger, so there is no event data (an "
                f"audience launch has only the customer: use a column of the audience "
                f"file as customer.<column>)")
    if ref.name in EVENT_NAMES and example is not None and ref.attr is not None \
            and ref.attr not in example:
        return (f"'{what}' is not in trigger.example{_hint(ref.attr, example)}; the "
                f"example has: {_listed(example) or 'nothing'} (add the field to the "
                f"example if the events carry it)")
    if ref.name == "customer" and attributes is not None and ref.attr is not None \
            and ref.attr not in CUSTOMER_FIELDS | attributes.names:
        known = CUSTOMER_FIELDS | attributes.names
        return (f"unknown customer attribute '{ref.attr}'{_hint(ref.attr, known)}; known "
                f"from {' and '.join(attributes.sources)}: {_listed(known)}")
    return None


def event_fields(ast: nodes.Template) -> Iterator[str]:
    """The event fields a template reads (event.x, cart.x), for notes."""
    return (f"{r.name}.{r.attr}" for r in references(ast)
            if r.name in EVENT_NAMES and r.attr is not None)
