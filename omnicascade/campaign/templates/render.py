"""Render message parts with jinja2's sandbox, StrictUndefined and the render budget.

A template that reaches for a variable the customer does not have fails loudly with the
variable's name instead of sending "Hi ," to ten thousand people; one that asks for more
time, steps or text than the budget allows (budget.py) fails instead of stalling a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, UndefinedError, nodes
from jinja2.sandbox import SecurityError

from omnicascade.campaign.templates.budget import Sandbox, budgeted, stream
from omnicascade.campaign.templates.helpers import FILTERS

CONTEXT_NAMES = frozenset({"customer", "event", "promo", "campaign", "unsubscribe_url",
                           "step", "variant", "cart", "favorite_product", "telegram_link"})
# What `{{ telegram_link }}` shows where no customer's link is made (campaign preview).
PREVIEW_TELEGRAM_LINK = "https://t.me/your_bot?start=PREVIEW"
_env = Sandbox(autoescape=False, filters=FILTERS)
_html_env = Sandbox(autoescape=True, filters=FILTERS)
# For the trial render at validation: no customer yet, so anything missing is empty.
_trial_env = Sandbox(autoescape=False, filters=FILTERS, undefined=ChainableUndefined)


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
        template = _compile(source, html)
        with budgeted():
            return stream(template.generate(**context)).strip()
    except UndefinedError as exc:
        raise RenderError(f"{name}: {exc.message} (missing variable)") from None
    except RecursionError:
        raise RenderError(f"{name}: recursion too deep") from None
    except SecurityError as exc:
        raise RenderError(f"{name}: refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise RenderError(f"{name}: {exc}") from None
    except Exception as exc:  # a filter blew up on bad data: still the template's problem
        raise RenderError(f"{name}: {type(exc).__name__}: {exc}") from None


def over_budget(source: str, example: dict[str, Any] | None = None) -> str | None:
    """Render a template once with no customer (everything missing reads as empty) and the
    trigger's example data, if any, and say why it is over the render budget, if it is:
    validation refuses it before a launch."""
    data = dict(example or {})
    try:
        template = _trial_env.from_string(source)
        with budgeted():
            stream(template.generate(**({"event": data, "cart": data} if example else {})))
    except SecurityError as exc:  # the budget's limits, and what the sandbox refuses
        return str(exc)
    except RecursionError:
        return "recursion too deep"
    except Exception:  # noqa: BLE001 — depends on customer data; the send will tell
        return None
    return None


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
