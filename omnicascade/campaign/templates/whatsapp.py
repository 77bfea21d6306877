"""An approved WhatsApp template: `<name>.whatsapp.yaml` beside the template's body.

    content_sid: HX0123456789abcdef0123456789abcdef   # the Twilio Content SID
    variables:                                        # each a jinja2 template
      "1": "{{ customer.first_name }}"
      "2": "{{ promo.code }}"

Business-initiated WhatsApp messages must use a template Meta approved; Twilio names it by
its Content SID and fills its numbered placeholders from ContentVariables. Each variable
is rendered like every other template (the sandbox, StrictUndefined, the render budget).
With this file a whatsapp step always sends the template; without it, the step sends its
free-form body (`<name>.txt.j2`), which WhatsApp accepts only inside the 24 h
customer-service window: `needs_window` is a fact of the one send decision
(cascade/decision.py skips the step `window_closed`; cascade/conversations.py knows the
window), so the deliver activity and `campaign preview` see it alike. The renderer only
renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from omnicascade.campaign.templates.render import RenderError, render_part

PART = "whatsapp"                # the key of this file among a template's parts
SUFFIX = ".whatsapp.yaml"
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
VARIABLE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
KEYS = ("content_sid", "variables")
# The channel's last word on a message that carries neither a template nor the decision's
# "window open" (twilio_whatsapp.py): never reached through the deliver activity.
NO_TEMPLATE_OUTSIDE_WINDOW = ("whatsapp: no approved template (content_sid) and the 24 h "
                              "customer-service window is closed")


class ContentError(Exception):
    """The file is not a valid content template; `line`/`col` (1-based) say where."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None):
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


@dataclass(frozen=True)
class Content:
    sid: str
    variables: dict[str, str]                 # placeholder → jinja2 source
    where: dict[str, tuple[int, int]]         # placeholder → (line, col) of its value


def _at(node: Any, key: str) -> tuple[int | None, int | None]:
    if isinstance(node, CommentedMap) and key in node:
        line, col = node.lc.value(key)
        return line + 1, col + 1
    return None, None


@lru_cache(maxsize=256)
def read_content(source: str) -> Content:
    """The file's content SID and variables (raises ContentError naming the problem)."""
    try:
        data = YAML(typ="rt").load(source)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ContentError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                           mark.line + 1 if mark else None,
                           mark.column + 1 if mark else None) from None
    if not isinstance(data, CommentedMap):
        raise ContentError("expected `content_sid: HX…` and `variables: {\"1\": …}`", 1, 1)
    for key in data:
        if key not in KEYS:
            line, col = data.lc.key(key)
            raise ContentError(f"unknown key {key!r}; use {' and '.join(KEYS)}",
                               line + 1, col + 1)
    sid = data.get("content_sid")
    if not isinstance(sid, str) or not CONTENT_SID.fullmatch(sid.strip()):
        raise ContentError("content_sid must be a Twilio Content SID (HX and 32 hex digits) "
                           "of a template WhatsApp approved", *_at(data, "content_sid"))
    raw = data.get("variables") or {}
    if not isinstance(raw, CommentedMap):
        raise ContentError('variables must be a mapping like {"1": "{{ customer.first_name }}"}',
                           *_at(data, "variables"))
    variables: dict[str, str] = {}
    where: dict[str, tuple[int, int]] = {}
    for key, value in raw.items():
        line, col = raw.lc.value(key)
        if not VARIABLE_KEY.fullmatch(str(key)):
            raise ContentError(f"variable name {str(key)!r}: use the template's placeholder "
                               f"numbers (\"1\", \"2\", …)", line + 1, col + 1)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ContentError(f"variable {key}: expected text (a jinja2 template)",
                               line + 1, col + 1)
        variables[str(key)], where[str(key)] = str(value), (line + 1, col + 1)
    return Content(sid.strip(), variables, where)


def render_content(source: str, context: dict[str, Any], *, template: str) -> dict[str, Any]:
    """Message.data for a template send: the content SID and its rendered variables."""
    try:
        content = read_content(source)
    except ContentError as exc:  # validated at launch: only a damaged snapshot gets here
        raise RenderError(f"{template}{SUFFIX}: {exc.message}") from None
    variables = {}
    for key, src in content.variables.items():
        value = render_part(src, context, name=f"{template}{SUFFIX} variable {key}")
        if not value:
            raise RenderError(f"{template}{SUFFIX} variable {key} is empty: WhatsApp refuses "
                              f"a template with an empty variable")
        variables[key] = value
    return {"content_sid": content.sid, "content_variables": variables}


def needs_window(channel: str, parts: dict[str, str]) -> bool:
    """Whether a step sends WhatsApp's free-form body, which goes out only inside the 24 h
    window: a whatsapp step whose template has no approved content file."""
    return channel == "whatsapp" and PART not in parts


def message_data(parts: dict[str, str], context: dict[str, Any], *,
                 template: str) -> dict[str, Any]:
    """Message.data of a whatsapp step: the approved template when the campaign has one,
    else the free-form body — which the send decision lets through only while the window
    is open (`needs_window`), so it is marked open for the channel."""
    if PART in parts:
        return render_content(parts[PART], context, template=template)
    return {"window_open": True}


def describe(parts: dict[str, str]) -> str:
    """What a whatsapp step with these template parts sends, for `campaign validate`."""
    source = parts.get(PART)
    if source is None:
        return ("free-form body only inside the 24 h customer-service window (the step is "
                "skipped, window_closed, for a customer who has not written to us in 24 h; "
                f"add a {SUFFIX} with an approved content_sid to reach everyone)")
    content = read_content(source)
    n = len(content.variables)
    return f"template {content.sid} with {n} variable{'' if n == 1 else 's'}"


def sources(part: str, source: str) -> list[str]:
    """The jinja2 sources in one template part (a content file: its variables)."""
    if part != PART:
        return [source]
    try:
        return list(read_content(source).variables.values())
    except ContentError:
        return []
