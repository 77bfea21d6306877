"""What templates read from the customer and the trigger's data, checked before a launch
(issue 15): misspelled attributes, event data without a trigger, `trigger.example`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnicascade.campaign.load import load_campaign, spec_from_snapshot
from omnicascade.campaign.problems import Problem, SpecError
from omnicascade.campaign.templates.references import (
    CUSTOMER_FIELDS,
    KnownAttributes,
    Reference,
    check_references,
    references,
)
from omnicascade.campaign.templates.render import build_context, parse
from omnicascade.cascade.versions import content_hash
from omnicascade.customers.model import attribute_names, customer_dict
from omnicascade.db.models import Customer
from omnicascade.db.session import session_scope
from tests.helpers.campaigns import CASCADE_YAML, TEMPLATES, four_steps, write_campaign
from tests.helpers.cascades import add_customers

KNOWN = KnownAttributes(frozenset({"first_name", "segment"}), ("the audience file a.csv",))


def check(source: str, *, trigger: bool = True, example: dict | None = None,
          attributes: KnownAttributes | None = KNOWN) -> list[Problem]:
    return check_references("t.txt.j2", source, parse(source), has_trigger=trigger,
                            example=example, attributes=attributes)


def problems_of(path: Path, **kwargs: object) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        load_campaign(path, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


# ---- finding references in the syntax tree --------------------------------------------------

def test_every_way_of_reading_an_attribute_is_found() -> None:
    source = ("{{ customer.first_name }}\n{{ customer['nick'] }}\n{{ customer.get('vip') }}\n"
              "{% for p in event.products %}{{ p.name }}{% endfor %}{{ cart['total'] }}\n"
              "{{ event }} {{ customer.items() | list }}")
    assert references(parse(source)) == [
        Reference("customer", "first_name", 1), Reference("customer", "nick", 2),
        Reference("customer", "vip", 3), Reference("event", "products", 4),
        Reference("cart", "total", 4), Reference("event", None, 5)]


def test_names_the_template_assigns_itself_are_its_own() -> None:
    source = ("{% set customer = {'x': 1} %}{{ customer.x }}"
              "{% for event in [1] %}{{ event.y }}{% endfor %}")
    assert references(parse(source)) == []


# ---- customer attributes ---------------------------------------------------------------------

def test_misspelled_attribute_names_its_place_the_known_names_and_a_suggestion() -> None:
    [p] = check("Hello,\nHi {{ customer.firstname | default('there') }}!")
    assert (p.file, p.line, p.col) == ("t.txt.j2", 2, 16)  # the 'f' of firstname
    assert "unknown customer attribute 'firstname' (did you mean 'first_name'?)" in p.message
    assert "the audience file a.csv" in p.message
    for name in ("email", "phone", "first_name", "segment", "id"):
        assert name in p.message


def test_fixed_fields_and_known_attributes_pass_in_every_spelling() -> None:
    source = ("{{ customer.id }} {{ customer.email }} {{ customer['first_name'] }} "
              "{{ customer.get('segment') }} {{ customer.locale }} {{ customer.consents }}")
    assert check(source) == []
    [p] = check("{{ customer['nick'] }} {{ customer.get('first_name') }}")
    assert "'nick'" in p.message and p.col == 14


def test_without_any_attribute_source_custom_attributes_are_not_judged() -> None:
    assert check("{{ customer.firstname }}", attributes=None) == []


def test_customer_fields_are_what_a_render_gets() -> None:
    row = Customer(id="c1", email="a@example.com", attributes={}, consents={})
    ctx = build_context(customer=customer_dict(row), event=None, promo=None, campaign={},
                        unsubscribe_url="u")
    assert set(ctx["customer"]) == CUSTOMER_FIELDS


# ---- event data ------------------------------------------------------------------------------

def test_event_data_in_a_campaign_without_a_trigger_is_an_error() -> None:
    problems = check("Total\n{{ cart.total }} {{ event }}", trigger=False)
    assert [(p.line, p.col) for p in problems] == [(2, 4), (2, 21)]
    assert all("this campaign has no trigger, so there is no event data" in p.message
               for p in problems)
    assert "'cart.total'" in problems[0].message


def test_event_fields_are_checked_against_the_example() -> None:
    example = {"currency": "EUR", "products": []}
    [p] = check("{{ event.curency }} {{ cart.products }} {{ event['currency'] }}",
                example=example)
    assert "'event.curency' is not in trigger.example (did you mean 'currency'?)" in p.message
    assert "currency, products" in p.message
    assert check("{{ event.anything }}", example=None) == []  # no example: not judged


# ---- through load_campaign -------------------------------------------------------------------

def test_load_campaign_refuses_a_misspelled_attribute_when_attributes_are_known(
        tmp_path: Path) -> None:
    path = write_campaign(tmp_path, templates={
        **TEMPLATES, "t_sms.txt.j2": "{{ customer.firstname }}: your cart"})
    assert load_campaign(path).spec  # launch and preview do not know the attributes
    [p] = problems_of(path, attributes=KNOWN)
    assert p.file == str(tmp_path / "templates" / "t_sms.txt.j2")
    assert (p.line, p.col) == (1, 13) and "did you mean 'first_name'?" in p.message


def test_a_campaign_without_trigger_cannot_read_the_cart(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, four_steps("no-trigger", "1h"),
                          {**TEMPLATES, "t_email.txt.j2": "Hi\nYour total: {{ cart.total }}"})
    [p] = problems_of(path)
    assert p.file.endswith("t_email.txt.j2") and (p.line, p.col) == (2, 16)
    assert "no trigger" in p.message


EXAMPLE_YAML = CASCADE_YAML.replace(
    "trigger: {event: cart_abandoned}",
    "trigger:\n  event: cart_abandoned\n  key: cart_id\n  example:\n    cart_id: c-1\n"
    "    opened: 2026-11-30\n    products: [{name: Tent, price: 240}]")


def test_trigger_example_is_data_in_the_spec_and_survives_a_snapshot(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, EXAMPLE_YAML, {
        **TEMPLATES, "t_sms.txt.j2": "{{ event.products[0].name }} {{ cart.opened }}"})
    loaded = load_campaign(path)
    assert loaded.spec.trigger is not None
    assert loaded.spec.trigger.example == {"cart_id": "c-1", "opened": "2026-11-30",
                                           "products": [{"name": "Tent", "price": 240}]}
    snapshot = json.loads(json.dumps(loaded.snapshot()))  # as the run stores it
    assert spec_from_snapshot(snapshot) == loaded.spec
    assert content_hash(snapshot) == content_hash(loaded.snapshot())
    assert loaded.notes == []


@pytest.mark.parametrize("example, where, reason", [
    ("[1, 2]", (5, 12), "example: must be a mapping of the trigger event's data"),
    ("{a: !!binary aGk=}", (5, 12), "example: example.a is not JSON data (bytes)"),
    ("{products: []}", (3, 3), "trigger: example has no 'cart_id' (trigger.key)"),
])
def test_a_bad_example_is_reported_at_its_place(tmp_path: Path, example: str,
                                                where: tuple[int, int], reason: str) -> None:
    text = CASCADE_YAML.replace("trigger: {event: cart_abandoned}",
                                f"trigger:\n  event: cart_abandoned\n  key: cart_id\n"
                                f"  example: {example}")
    [p] = problems_of(write_campaign(tmp_path, text))
    assert (p.line, p.col) == where and p.message.startswith(reason), p


def test_the_trial_render_uses_the_example(tmp_path: Path) -> None:
    body = "{{ 'x' * event.repeat }}"  # over the budget only with the example's data
    text = CASCADE_YAML.replace("trigger: {event: cart_abandoned}",
                                "trigger: {event: cart_abandoned, example: {repeat: 1000000}}")
    assert load_campaign(write_campaign(tmp_path / "a", CASCADE_YAML,
                                        {**TEMPLATES, "t_sms.txt.j2": body}))
    [p] = problems_of(write_campaign(tmp_path / "b", text, {**TEMPLATES, "t_sms.txt.j2": body}))
    assert p.file.endswith("t_sms.txt.j2") and "cannot render" in p.message


def test_a_trigger_without_example_gets_a_note_when_templates_read_event_data(
        tmp_path: Path) -> None:
    path = write_campaign(tmp_path, CASCADE_YAML,
                          {**TEMPLATES, "t_sms.txt.j2": "{{ event.total }}"})
    [note] = load_campaign(path).notes
    assert "event.total" in note and "trigger.example" in note


# ---- attribute names of the stored customers -------------------------------------------------

@pytest.mark.db
def test_attribute_names_of_the_stored_customers(settings) -> None:
    with session_scope(settings.db_url) as s:
        assert attribute_names(session=s) == (0, set())
    add_customers(settings, {"id": "a", "attributes": {"first_name": "A", "vip": True}},
                  {"id": "b", "attributes": {"segment": "new"}}, {"id": "c"})
    with session_scope(settings.db_url) as s:
        assert attribute_names(session=s) == (3, {"first_name", "vip", "segment"})
