"""What a campaign file used to get away with (issue 23, item 5), now each a problem at its
line and column: an exit event that is the trigger, `skip_if` on a first step, an absurd
`send_time_min_events`, event names the API could never send, other scripts' digits in
durations."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnicascade.campaign.durations import parse_duration
from omnicascade.campaign.load import load_campaign
from omnicascade.campaign.problems import Problem
from tests.campaign.test_spec import EXPERIMENT, line_of, only_problem, problems_of
from tests.helpers.campaigns import CASCADE_YAML, write_campaign


def col_of(text: str, needle: str) -> int:
    return text.splitlines()[line_of(text, needle) - 1].index(needle) + 1


def at(p: Problem, text: str, needle: str) -> None:
    assert (p.line, p.col) == (line_of(text, needle), col_of(text, needle)), str(p)


# ---- exit.events and the trigger ------------------------------------------------------------

def test_exit_event_that_is_the_trigger_event_is_a_problem(tmp_path: Path) -> None:
    text = CASCADE_YAML + "exit: {events: [cart_emptied, cart_abandoned]}\n"
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "cart_emptied")
    assert p.col == text.splitlines()[p.line - 1].rindex("cart_abandoned") + 1
    assert "'cart_abandoned' is the trigger event" in p.message
    assert "re-sending the first step" in p.message


def test_exit_events_without_the_trigger_event_are_fine(tmp_path: Path) -> None:
    text = CASCADE_YAML + "exit: {events: [cart_emptied]}\n"
    assert load_campaign(write_campaign(tmp_path, text)).spec.exit_events == ["cart_emptied"]


# ---- skip_if on a first step ----------------------------------------------------------------

FIRST_SKIP = CASCADE_YAML.replace("template: t_email,    wait: 24h}",
                                  "template: t_email,    wait: 24h, skip_if: [opened]}")


def test_skip_if_on_the_first_step_is_a_problem(tmp_path: Path) -> None:
    p = only_problem(write_campaign(tmp_path, FIRST_SKIP))
    at(p, FIRST_SKIP, "[opened]")
    assert "skip_if on the first step never skips it" in p.message


def test_skip_if_on_a_variants_first_step_is_a_problem(tmp_path: Path) -> None:
    text = CASCADE_YAML + EXPERIMENT.replace("template: t_sms, wait: 1h30m}",
                                             "template: t_sms, wait: 1h30m, skip_if: [clicked]}")
    p = only_problem(write_campaign(tmp_path, text))
    at(p, text, "[clicked]")


def test_skip_if_on_a_later_step_is_fine(tmp_path: Path) -> None:
    text = CASCADE_YAML.replace("template: t_sms,      wait: 24h}",
                                "template: t_sms,      wait: 24h, skip_if: [clicked]}")
    assert load_campaign(write_campaign(tmp_path, text)).spec.steps[1].skip_if == ["clicked"]


@pytest.mark.parametrize("order", ["cost", "preference"])
def test_skip_if_on_the_first_written_step_is_fine_when_the_order_can_move_it(
        tmp_path: Path, order: str) -> None:
    # cheapest (or preferred) first: the email written first may go out after the SMS
    loaded = load_campaign(write_campaign(tmp_path, FIRST_SKIP + f"order: {order}\n"))
    assert loaded.spec.steps[0].skip_if == ["opened"]


def test_skip_if_first_is_a_problem_only_if_every_variant_sends_it_first(
        tmp_path: Path) -> None:
    by_cost = FIRST_SKIP + ("experiment:\n  variants:\n    a: {weight: 50}\n"
                            "    b: {weight: 50, order: cost}\n")
    assert load_campaign(write_campaign(tmp_path / "a", by_cost)).spec.steps[0].skip_if
    as_written = by_cost.replace("order: cost", "order: as_written")
    at(only_problem(write_campaign(tmp_path / "b", as_written)), as_written, "[opened]")


# ---- send_time_min_events -------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1e26", "10001", "3.0", "1.0e+3"])
def test_send_time_min_events_is_a_bounded_whole_number(tmp_path: Path, value: str) -> None:
    text = CASCADE_YAML + f"send_time_min_events: {value}\n"
    p = only_problem(write_campaign(tmp_path, text))
    at(p, text, value)
    assert "whole number from 1 to 10,000" in p.message


@pytest.mark.parametrize("value", [1, 3, 10_000])
def test_send_time_min_events_in_range(tmp_path: Path, value: int) -> None:
    text = CASCADE_YAML + f"send_time_min_events: {value}\n"
    assert load_campaign(write_campaign(tmp_path, text)).spec.send_time_min_events == value


# ---- event names ----------------------------------------------------------------------------

LONG = "e" * 100_000


@pytest.mark.parametrize("old, new, needle", [
    ("trigger: {event: cart_abandoned}", f"trigger: {{event: {LONG}}}", LONG[:50]),
    ("trigger: {event: cart_abandoned}", 'trigger: {event: "cart\\tabandoned"}', '"cart'),
    ("events: [order_placed, promo_redeemed]", 'events: [order_placed, ""]', '""'),
    ("events: [order_placed, promo_redeemed]", f"events: [order_placed, {LONG}]", LONG[:50]),
    ("events: [order_placed, promo_redeemed]", "events: [order_placed, 'заказ']", "'заказ'"),
])
def test_bad_event_names_are_problems(tmp_path: Path, old: str, new: str,
                                      needle: str) -> None:
    text = CASCADE_YAML.replace(old, new)
    p = only_problem(write_campaign(tmp_path, text))
    at(p, text, needle)
    assert "event name" in p.message and len(p.message) < 300  # never echoes the name


@pytest.mark.parametrize("name", ["", LONG, "  "])
def test_bad_exit_event_names_are_problems(tmp_path: Path, name: str) -> None:
    text = CASCADE_YAML + f'exit: {{events: ["{name}"]}}\n'
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "exit:") and "exit.events" in p.message


@pytest.mark.parametrize("name", ["order_placed", "Order Completed", "shop.order:paid/v2",
                                  "x", "e" * 100])
def test_good_event_names(tmp_path: Path, name: str) -> None:
    text = CASCADE_YAML.replace("[order_placed, promo_redeemed]", f'["{name}"]')
    assert load_campaign(write_campaign(tmp_path, text)).spec.conversion_events == [name]


# ---- durations are ASCII digits -------------------------------------------------------------

@pytest.mark.parametrize("bad", ["١٢h", "７d", "1٠m", "²h"])
def test_parse_duration_takes_only_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="write e.g."):
        parse_duration(bad)


@pytest.mark.parametrize("key, bad", [("wait", "١٢h"), ("lookback", "７d"),
                                      ("reentry", "７d"), ("delay", "٣d")])
def test_unicode_digits_in_a_duration_are_a_problem(tmp_path: Path, key: str,
                                                   bad: str) -> None:
    text = {"wait": CASCADE_YAML.replace("template: t_sms,      wait: 24h",
                                         f"template: t_sms,      wait: {bad}"),
            "lookback": CASCADE_YAML.replace("lookback: 1h", f"lookback: {bad}"),
            "reentry": CASCADE_YAML + f"reentry: {bad}\n",
            "delay": CASCADE_YAML.replace("delay: 3d", f"delay: {bad}")}[key]
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, bad)


def test_unicode_digits_in_quiet_hours_are_a_problem(tmp_path: Path) -> None:
    text = CASCADE_YAML + 'quiet_hours: {start: "２１:00", end: "09:00"}\n'
    [p] = problems_of(write_campaign(tmp_path, text))
    assert "not a time of day" in p.message
