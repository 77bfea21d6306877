"""Rendering: strict about missing variables, sandboxed, HTML escaped, text left alone."""

from __future__ import annotations

from typing import Any

import pytest

from omnicascade.campaign.templates.render import (
    Rendered,
    RenderError,
    build_context,
    render_message,
    render_part,
)


def context(customer: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return build_context(
        customer=customer if customer is not None else {"id": "c1", "email": "ann@example.com",
                                                        "attributes": {}},
        event=kw.get("event"), promo=kw.get("promo"),
        campaign=kw.get("campaign", {"name": "cart", "description": "Win back carts"}),
        unsubscribe_url=kw.get("unsubscribe_url", "https://shop.test/u/abc"))


def test_renders_every_context_name() -> None:
    ctx = context({"id": "c1", "email": "ann@example.com", "attributes": {"first_name": "Ann"}},
                  event={"items": [{"name": "Shoes"}]},
                  promo={"code": "CART-AB12", "discount": "30%"})
    out = render_part("{{ customer.first_name }} ({{ customer.id }}, {{ customer.email }}): "
                      "{{ event['items'][0].name }} {{ promo.code }} -{{ promo.discount }} "
                      "{{ campaign.name }} {{ unsubscribe_url }}", ctx)
    assert out == ("Ann (c1, ann@example.com): Shoes CART-AB12 -30% cart "
                   "https://shop.test/u/abc")


def test_missing_customer_attribute_raises_naming_it() -> None:
    with pytest.raises(RenderError) as info:
        render_part("Hi {{ customer.first_name }}", context(), name="cart.txt.j2")
    assert "first_name" in str(info.value)
    assert "cart.txt.j2" in str(info.value)


@pytest.mark.parametrize("source", ["{{ nobody }}", "{{ promo.code }}", "{{ event.cart.total }}",
                                    "{% if customer.vip %}x{% endif %}"])
def test_any_undefined_value_is_an_error_not_an_empty_string(source: str) -> None:
    with pytest.raises(RenderError):
        render_part(source, context())


def test_default_filter_covers_a_missing_value() -> None:
    assert render_part("Hi {{ customer.first_name | default('x') }}", context()) == "Hi x"
    assert render_part("{{ promo.code | default('') }}!", context()) == "!"
    assert render_part("{% if customer.first_name is defined %}A{% else %}B{% endif %}",
                       context()) == "B"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ (1).__class__.__base__.__subclasses__() }}",
    "{{ customer.update({'id': 'x'}) }}",
    "{{ event.setdefault('x', 1) }}",
])
def test_sandbox_refuses_escapes(source: str) -> None:
    with pytest.raises(RenderError) as info:
        render_part(source, context(event={"a": 1}))
    assert "sandbox" in str(info.value) or "unsafe" in str(info.value)


def test_sandbox_keeps_the_context_unchanged() -> None:
    ctx = context()
    with pytest.raises(RenderError):
        render_part("{{ customer.pop('email') }}", ctx)
    assert ctx["customer"]["email"] == "ann@example.com"


def test_attributes_are_reachable_and_core_fields_win() -> None:
    customer = {"id": "c1", "email": "ann@example.com", "phone": "+4915112345678",
                "attributes": {"first_name": "Ann", "loyalty_tier": "gold",
                               "id": "spoofed", "email": "spoofed@example.com"}}
    out = render_part("{{ customer.first_name }}|{{ customer.loyalty_tier }}|{{ customer.id }}|"
                      "{{ customer.email }}|{{ customer.phone }}", context(customer))
    assert out == "Ann|gold|c1|ann@example.com|+4915112345678"
    assert "attributes" not in context(customer)["customer"]


def test_html_part_is_autoescaped_text_is_not() -> None:
    ctx = context({"id": "c1", "attributes": {"first_name": "<b>Ann</b> & Co"}},
                  event={"note": "<script>alert(1)</script>"})
    parts = {
        "body": "Hi {{ customer.first_name }} {{ event.note }}",
        "subject": "For {{ customer.first_name }}",
        "html": "<p>Hi {{ customer.first_name }} {{ event.note }}</p>",
    }
    r = render_message(parts, ctx, template="cart")
    assert r.body == "Hi <b>Ann</b> & Co <script>alert(1)</script>"
    assert r.subject == "For <b>Ann</b> & Co"
    assert r.html == ("<p>Hi &lt;b&gt;Ann&lt;/b&gt; &amp; Co "
                      "&lt;script&gt;alert(1)&lt;/script&gt;</p>")
    assert r.title is None


def test_render_message_renders_only_existing_parts() -> None:
    r = render_message({"body": "  Body {{ customer.id }}\n", "title": "T"}, context(),
                       template="push")
    assert r == Rendered(body="Body c1", subject=None, html=None, title="T")


def test_render_message_error_names_the_part() -> None:
    with pytest.raises(RenderError) as info:
        render_message({"body": "ok", "subject": "{{ customer.first_name }}"}, context(),
                       template="cart")
    assert "cart.subject.j2" in str(info.value) and "first_name" in str(info.value)


def test_a_failing_filter_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        render_part("{{ event.total | int // 0 }}", context(event={"total": "5"}))
