"""Campaign YAML validation: every problem names its file, line and a plain reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from omnicascade.campaign.durations import format_duration, parse_duration
from omnicascade.campaign.load import load_campaign, parse_spec, spec_from_snapshot
from omnicascade.campaign.problems import Problem, SpecError
from omnicascade.campaign.variants import step_lists
from omnicascade.vocabulary import CHANNELS
from tests.helpers.campaigns import CASCADE_YAML, TEMPLATES, write_campaign

EXPERIMENT = """\
quiet_hours: {start: "21:00", end: "09:00"}
frequency_cap: {max: 3, per: 24h}
experiment:
  holdout: 10%
  variants:
    control: {weight: 50}
    sms_first:
      weight: 50
      steps:
        - {channel: sms, template: t_sms, wait: 1h30m}
        - {channel: email, template: t_email}
"""


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line of `text` containing `needle`."""
    hits = [n for n, line in enumerate(textwrap.dedent(text).splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        load_campaign(path)
    problems = info.value.problems
    assert problems, "SpecError without problems"
    assert str(info.value) == "\n".join(str(p) for p in problems)
    return problems


def only_problem(path: Path) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# ---- the valid example ---------------------------------------------------------------------

def test_conftest_example_is_valid(campaign_file: Path) -> None:
    loaded = load_campaign(campaign_file)
    spec = loaded.spec
    assert spec.campaign == "test-cascade"
    assert spec.trigger is not None and spec.trigger.event == "cart_abandoned"
    assert spec.conversion_events == ["order_placed", "promo_redeemed"]
    assert spec.lookback_s == 3600
    assert [(s.channel, s.template, s.wait) for s in spec.steps] == [
        ("email", "t_email", 86400), ("sms", "t_sms", 86400),
        ("telegram", "t_telegram", 86400), ("push", "t_push", 0)]
    assert [(f.channel, f.template, f.delay) for f in spec.after_conversion] == [
        ("email", "review", 259200)]
    assert spec.promo is not None and spec.promo.pattern == "T-{random:6}"
    # every part each channel needs was read, and only what exists
    assert loaded.templates["t_email"] == {"body": TEMPLATES["t_email.txt.j2"],
                                           "subject": TEMPLATES["t_email.subject.j2"]}
    assert loaded.templates["t_push"] == {"body": TEMPLATES["t_push.txt.j2"],
                                          "title": TEMPLATES["t_push.title.j2"]}
    assert loaded.templates["t_sms"] == {"body": TEMPLATES["t_sms.txt.j2"]}
    assert loaded.notes == []


def test_parse_spec_checks_only_the_yaml(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, templates={})  # no template files at all
    spec, data = parse_spec(path)
    assert spec.campaign == "test-cascade"
    assert data["steps"][0]["channel"] == "email"
    with pytest.raises(SpecError):
        load_campaign(path)


def test_html_part_is_loaded_when_present(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, templates={**TEMPLATES, "t_email.html.j2": "<p>hi</p>"})
    assert load_campaign(path).templates["t_email"]["html"] == "<p>hi</p>"


def test_experiment_campaign_is_valid(tmp_path: Path) -> None:
    loaded = load_campaign(write_campaign(tmp_path, CASCADE_YAML + EXPERIMENT))
    exp = loaded.spec.experiment
    assert exp is not None and exp.holdout == 10.0
    assert [s.wait for s in exp.variants["sms_first"].steps or []] == [5400, 0]
    assert set(step_lists(loaded.spec)) == {"", "sms_first"}
    assert loaded.notes == []  # every section is enforced: nothing to warn about


SMALL_HOLDOUT = "experiment:\n  holdout: 0.5%\n  variants:\n    a: {weight: 100}\n"


@pytest.mark.parametrize("extra", ["", EXPERIMENT, SMALL_HOLDOUT])
def test_snapshot_round_trips_to_an_equal_spec(tmp_path: Path, extra: str) -> None:
    loaded = load_campaign(write_campaign(tmp_path, CASCADE_YAML + extra))
    snap = loaded.snapshot()
    assert snap["templates"] == loaded.templates
    assert spec_from_snapshot(snap) == loaded.spec


def test_problem_str_is_file_line_col_message() -> None:
    assert str(Problem("c.yaml", 7, 14, "unknown channel 'fax'")) == \
        "c.yaml:7:14: unknown channel 'fax'"
    assert str(Problem("c.yaml", 7, None, "bad")) == "c.yaml:7: bad"
    assert str(Problem("c.yaml", None, None, "file not found")) == "c.yaml: file not found"


# ---- YAML mistakes, located -------------------------------------------------------------------

def test_misspelled_key_in_a_step_has_line_and_hint(tmp_path: Path) -> None:
    text = CASCADE_YAML.replace("template: t_sms,      wait: 24h", "template: t_sms, wiat: 24h")
    path = write_campaign(tmp_path, text)
    p = only_problem(path)
    assert p.file == str(path)
    assert p.line == line_of(text, "wiat") == 9
    assert p.col == text.splitlines()[8].index("wiat") + 1
    assert "'wiat'" in p.message and "did you mean 'wait'" in p.message
    assert str(p).startswith(f"{path}:9:{p.col}: ")


def test_misspelled_top_level_key(tmp_path: Path) -> None:
    text = CASCADE_YAML.replace("after_conversion:", "after_convresion:")
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "after_convresion")
    assert "did you mean 'after_conversion'" in p.message


def test_unrelated_key_lists_allowed_keys(tmp_path: Path) -> None:
    text = CASCADE_YAML.replace("template: t_sms,      wait: 24h", "template: t_sms, zzzz: 1")
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == 9
    assert "unknown key 'zzzz'" in p.message
    assert "channel, max_delay, send_time, skip_if, template, wait" in p.message


def test_misspelled_key_inside_an_experiment_variant_gets_a_hint(tmp_path: Path) -> None:
    text = CASCADE_YAML + EXPERIMENT.replace("template: t_sms, wait: 1h30m",
                                             "template: t_sms, wiat: 1h30m")
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "wiat")
    assert "did you mean 'wait'" in p.message
    text = CASCADE_YAML + EXPERIMENT.replace("control: {weight: 50}", "control: {weigth: 50}")
    messages = [pr.message for pr in problems_of(write_campaign(tmp_path / "b", text))]
    assert any("did you mean 'weight'" in m for m in messages), messages


def test_bad_duration_has_its_line(tmp_path: Path) -> None:
    text = CASCADE_YAML.replace("template: t_sms,      wait: 24h",
                                "template: t_sms, wait: 24 hours")
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == 9
    assert "wait" in p.message and "'24 hours' is not a duration" in p.message
    assert "24h" in p.message  # says how to write it


def test_duration_without_unit_is_rejected(tmp_path: Path) -> None:
    text = CASCADE_YAML.replace("lookback: 1h", "lookback: 60")
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "lookback") == 5
    assert "no unit" in p.message


def test_unknown_channel_has_its_line_and_the_channels(tmp_path: Path) -> None:
    text = CASCADE_YAML.replace("{channel: sms, ", "{channel: fax, ")
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "fax") == 9
    assert p.col == text.splitlines()[8].index("fax") + 1
    assert "unknown channel 'fax'" in p.message
    assert all(c in p.message for c in CHANNELS)


def test_unknown_channel_in_frequency_cap(tmp_path: Path) -> None:
    text = CASCADE_YAML + "frequency_cap: {max: 3, per: 24h, channels: [sms, fax]}\n"
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "frequency_cap")
    assert "unknown channel 'fax'" in p.message


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    text = CASCADE_YAML.replace("{channel: sms, ", "{channel: fax, ") \
                       .replace("wait: 24h}\n  - {channel: telegram",
                                "wait: soon}\n  - {channel: telegram")
    lines = sorted(p.line for p in problems_of(write_campaign(tmp_path, text)))
    assert lines == [9, 9]


@pytest.mark.parametrize("text, line, words", [
    ("campaign: x\nsteps:\n  - channel: email\n     template: t_email\n", 4, "invalid YAML"),
    ("campaign: x\nsteps: [{channel: sms, template: t_sms}]\ncampaign: y\n", 3, "duplicate key"),
    ("campaign: x\nsteps: [{channel: sms, template: t_sms}\n", None, "invalid YAML"),
])
def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path, text: str, line: int | None,
                                                 words: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        parse_spec(path)
    [p] = info.value.problems
    assert p.file == str(path)
    assert words in p.message
    assert p.line is not None
    if line is not None:
        assert p.line == line


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- just\n- a list\n")
    [p] = problems_of(path)
    assert p.line == 1 and "mapping" in p.message


def test_missing_file(tmp_path: Path) -> None:
    [p] = problems_of(tmp_path / "nope.yaml")
    assert p.file == str(tmp_path / "nope.yaml") and "not found" in p.message


@pytest.mark.parametrize("name", ["Abandoned Cart", "cart!", "-cart", "CART"])
def test_campaign_name_must_be_a_slug(tmp_path: Path, name: str) -> None:
    text = CASCADE_YAML.replace("campaign: test-cascade", f'campaign: "{name}"')
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == 1 and "not a slug" in p.message


def test_empty_steps(tmp_path: Path) -> None:
    text = "campaign: x\nsteps: []\n"
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == 2 and "'steps' must not be empty" in p.message


def test_missing_steps(tmp_path: Path) -> None:
    p = only_problem(write_campaign(tmp_path, "campaign: x\n"))
    assert "missing required key 'steps'" in p.message


def test_experiment_weights_summing_to_zero(tmp_path: Path) -> None:
    text = CASCADE_YAML + "experiment:\n  variants:\n    a: {weight: 0}\n    b: {weight: 0}\n"
    p = only_problem(write_campaign(tmp_path, text))
    assert "weights must add up to 100" in p.message
    assert p.line is not None and p.line >= line_of(text, "experiment:")


@pytest.mark.parametrize("holdout", ["100%", "150%"])
def test_holdout_of_100_percent_or_more(tmp_path: Path, holdout: str) -> None:
    text = CASCADE_YAML + f"experiment:\n  holdout: {holdout}\n  variants:\n    a: {{weight: 100}}\n"
    p = only_problem(write_campaign(tmp_path, text))
    assert "holdout must be at least 0% and below 100%" in p.message
    assert p.line is not None and p.line >= line_of(text, "experiment:")


def test_holdout_that_is_not_a_percentage(tmp_path: Path) -> None:
    text = CASCADE_YAML + "experiment:\n  holdout: lots\n  variants:\n    a: {weight: 100}\n"
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "holdout") and "not a percentage" in p.message


@pytest.mark.parametrize("pattern", ["T-FIXED", "T-{random}", "T-{random:2}"])
def test_promo_pattern_needs_random_part(tmp_path: Path, pattern: str) -> None:
    text = CASCADE_YAML.replace("T-{random:6}", pattern)
    p = only_problem(write_campaign(tmp_path, text))
    assert p.line == line_of(text, "promo:") and "{random:N}" in p.message


def test_bad_quiet_hours_and_time_zone(tmp_path: Path) -> None:
    text = CASCADE_YAML + 'quiet_hours: {start: "25:00", end: "09:00"}\ntimezone: Mars/Base\n'
    problems = problems_of(write_campaign(tmp_path, text))
    by_line = {p.line: p.message for p in problems}
    assert "not a time of day" in by_line[line_of(text, "quiet_hours")]
    assert "unknown time zone 'Mars/Base'" in by_line[line_of(text, "timezone")]


# ---- template problems ----------------------------------------------------------------------

def test_missing_template_points_at_the_steps_template_line(tmp_path: Path) -> None:
    templates = {k: v for k, v in TEMPLATES.items() if k != "t_sms.txt.j2"}
    path = write_campaign(tmp_path, templates=templates)
    p = only_problem(path)
    assert p.file == str(path)
    assert p.line == line_of(CASCADE_YAML, "t_sms") == 9
    assert p.col == CASCADE_YAML.splitlines()[8].index("t_sms") + 1
    assert "t_sms.txt.j2" in p.message and "does not exist" in p.message


def test_email_without_subject(tmp_path: Path) -> None:
    templates = {k: v for k, v in TEMPLATES.items() if k != "t_email.subject.j2"}
    p = only_problem(write_campaign(tmp_path, templates=templates))
    assert p.line == line_of(CASCADE_YAML, "t_email") == 8
    assert "email template 't_email'" in p.message and "t_email.subject.j2" in p.message


def test_push_without_title(tmp_path: Path) -> None:
    templates = {k: v for k, v in TEMPLATES.items() if k != "t_push.title.j2"}
    p = only_problem(write_campaign(tmp_path, templates=templates))
    assert p.line == line_of(CASCADE_YAML, "t_push") == 11
    assert "push template 't_push'" in p.message and "t_push.title.j2" in p.message


def test_missing_follow_up_template(tmp_path: Path) -> None:
    templates = {k: v for k, v in TEMPLATES.items() if not k.startswith("review.")}
    problems = problems_of(write_campaign(tmp_path, templates=templates))
    assert {p.line for p in problems} == {line_of(CASCADE_YAML, "review")}
    assert any("review.txt.j2" in p.message for p in problems)


def test_templates_dir_option(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    path = write_campaign(folder, CASCADE_YAML + "templates_dir: msgs\n")
    with pytest.raises(SpecError) as info:
        load_campaign(path)
    assert all(str(folder / "msgs") in p.message for p in info.value.problems)
    (folder / "templates").rename(folder / "msgs")
    assert load_campaign(path).templates["t_sms"]["body"] == TEMPLATES["t_sms.txt.j2"]


@pytest.mark.parametrize("source, line", [
    ("Hello\n{% if %}\nbody", 2),
    ("Hello\nthere\n{% if customer.id %}\nyes", 3),
    ("Hi {{ customer.id }\n", 1),
])
def test_template_syntax_error_names_template_file_and_line(tmp_path: Path, source: str,
                                                            line: int) -> None:
    path = write_campaign(tmp_path, templates={**TEMPLATES, "t_telegram.txt.j2": source})
    p = only_problem(path)
    assert p.file == str(tmp_path / "templates" / "t_telegram.txt.j2")
    assert p.line == line
    assert "template syntax error" in p.message


def test_unknown_template_variable(tmp_path: Path) -> None:
    source = "Thanks for your order\n\nHi {{ custmer.id }}"
    path = write_campaign(tmp_path, templates={**TEMPLATES, "t_sms.txt.j2": source})
    p = only_problem(path)
    assert p.file == str(tmp_path / "templates" / "t_sms.txt.j2")
    assert p.line == 3
    assert "unknown variable 'custmer'" in p.message and "customer" in p.message


def test_unknown_variable_line_is_its_use_not_a_text_mention(tmp_path: Path) -> None:
    source = "Thanks for your order!\n{{ customer.order }}\n{{ order.total }}"
    p = only_problem(write_campaign(tmp_path,
                                    templates={**TEMPLATES, "t_sms.txt.j2": source}))
    assert "unknown variable 'order'" in p.message
    assert p.line == 3


def test_loop_and_set_variables_are_not_unknown(tmp_path: Path) -> None:
    source = ("{% set n = event['items'] | length %}{{ n }}"
              "{% for item in event['items'] %}{{ item }}{% endfor %}")
    path = write_campaign(tmp_path, templates={**TEMPLATES, "t_sms.txt.j2": source})
    assert load_campaign(path).templates["t_sms"]["body"] == source


def test_html_part_is_checked_too(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, templates={**TEMPLATES,
                                               "t_email.html.j2": "<p>{{ basket.total }}</p>"})
    p = only_problem(path)
    assert p.file.endswith("t_email.html.j2") and "unknown variable 'basket'" in p.message


# ---- durations ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("15m", 900), ("24h", 86400), ("3d", 259200), ("1h30m", 5400),
    ("0", 0), (0, 0), ("2w", 1209600), (" 24H ", 86400),
])
def test_parse_duration(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["24", 24, "abc", True, False, "", "24 hours", "1.5h", "-1h",
                                 "h", None, 1.5])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(bad)
    assert "write e.g." in str(info.value)


@pytest.mark.parametrize("seconds", [0, 90, 900, 5400, 86400, 90061])
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
