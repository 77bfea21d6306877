"""Render message parts with jinja2's sandbox and StrictUndefined.

A template that reaches for a variable the customer does not have fails loudly with the
variable's name instead of sending "Hi ," to ten thousand people.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, UndefinedError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from omnicascade.campaign.templates.helpers import FILTERS

CONTEXT_NAMES = frozenset({"customer", "event", "promo", "campaign", "unsubscribe_url",
                           "step", "variant", "cart", "favorite_product", "telegram_link"})
# What `{{ telegram_link }}` shows where no customer's link is made (campaign preview).
PREVIEW_TELEGRAM_LINK = "https://t.me/your_bot?start=PREVIEW"
MAX_OUTPUT = 100_000  # characters one operation may build: a message, not a memory bomb


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus limits on `*` and `**` so `{{ 'a' * 10**10 }}` is refused
    instead of exhausting the worker's memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64 and \
                    isinstance(left, (int, float)) and abs(left) > 1:
                raise SecurityError("exponent too large")
            return left ** right
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and \
                    len(seq) * n > MAX_OUTPUT:
                raise SecurityError(f"result longer than {MAX_OUTPUT} characters")
        return left * right


_env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_html_env = _Sandbox(undefined=StrictUndefined, autoescape=True)
for _e in (_env, _html_env):
    _e.filters.update(FILTERS)


class RenderError(Exception):
    """A template could not be rendered for this customer; the message says why."""


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None


GLOBALS = frozenset(_env.globals)  # range, lipsum, dict, … (jinja2's own)


def parse(source: str) -> nodes.Template:
    """The template's syntax tree (raises TemplateSyntaxError), for checks before a launch."""
    return _env.parse(source)


@lru_cache(maxsize=2048)
def _compile(source: str, html: bool) -> Template:
    return (_html_env if html else _env).from_string(source)


def render_part(source: str, context: dict[str, Any], *, html: bool = False,
                name: str = "template") -> str:
    try:
        return _compile(source, html).render(**context).strip()
    except UndefinedError as exc:
        raise RenderError(f"{name}: {exc.message} (missing variable)") from None
    except SecurityError as exc:
        raise RenderError(f"{name}: refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise RenderError(f"{name}: {exc}") from None
    except Exception as exc:  # a filter blew up on bad data: still the template's problem
        raise RenderError(f"{name}: {type(exc).__name__}: {exc}") from None


def render_message(parts: dict[str, str], context: dict[str, Any], *, template: str) -> Rendered:
    """Render every part a template has (body, subject, html, title)."""
    def part(key: str, suffix: str, html: bool = False) -> str | None:
        src = parts.get(key)
        return None if src is None else render_part(src, context, html=html,
                                                    name=f"{template}.{suffix}")
    return Rendered(body=part("body", "txt.j2") or "", subject=part("subject", "subject.j2"),
                    html=part("html", "html.j2", html=True), title=part("title", "title.j2"))


def build_context(*, customer: dict[str, Any], event: dict[str, Any] | None,
                  promo: dict[str, Any] | None, campaign: dict[str, Any],
                  unsubscribe_url: str, step: dict[str, Any] | None = None,
                  variant: str | None = None,
                  favorite_product: str | None = None,
                  telegram_link: str | None = None) -> dict[str, Any]:
    # Attributes first so the core fields (id, email, …) always win a name clash.
    cust = dict(customer.get("attributes") or {})
    cust.update({k: v for k, v in customer.items() if k != "attributes"})
    return {"customer": cust, "event": event or {}, "promo": promo or {},
            "campaign": campaign, "unsubscribe_url": unsubscribe_url,
            "step": step or {}, "variant": variant,
            # `cart` is the trigger's data under the name marketers use for it
            "cart": event or {}, "favorite_product": favorite_product,
            # the customer's one-time t.me deep link (channels/telegram_link.py)
            "telegram_link": telegram_link or PREVIEW_TELEGRAM_LINK}
