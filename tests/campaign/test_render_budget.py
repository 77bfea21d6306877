"""The render budget (campaign/templates/budget.py) and what a campaign folder may read.

The probe's templates (tests/hostile/templates.json) passed `validate`, then hung or
ballooned `preview` and sends: now each is refused at validation, fails preview with a
clear message and fails its send with reason `template`, quickly and with little memory.
Ordinary templates keep rendering as before.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from omnicascade.campaign.load import load_campaign
from omnicascade.campaign.problems import SpecError
from omnicascade.campaign.templates.budget import MAX_STEPS, MAX_TEXT
from omnicascade.campaign.templates.render import RenderError, over_budget, render_part
from omnicascade.cascade.preview import preview
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import StepPlan
from tests.helpers.campaigns import FULL, TEMPLATES, write_campaign
from tests.helpers.cascades import add_customers, deliver_now, enroll, outbox

HOSTILE = json.loads((Path(__file__).parents[1] / "hostile" / "templates.json").read_text())
CASES = {case["name"]: case["source"] for case in HOSTILE["cases"]}
ONE_STEP = "campaign: budget\nsteps:\n  - {channel: email, template: t_email}\n"
# Data-dependent: passes the trial render at validation, blows up with this customer's data.
SLOW = "{% for i in range(customer.loops) %}{% for j in range(customer.loops) %}{% endfor %}" \
       "{% endfor %}done"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_template_is_refused_quickly_and_small(name: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(RenderError, match="refused by the sandbox|recursion"):
            render_part(CASES[name], {"customer": {"id": "c1"}})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{name}: {peak / 2**20:.0f} MiB allocated before it was refused"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_template_is_a_validation_problem(name: str, tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", ONE_STEP, dict(TEMPLATES, **{
        "t_email.txt.j2": CASES[name]}))
    with pytest.raises(SpecError) as err:
        load_campaign(campaign)
    [problem] = err.value.problems
    assert problem.file.endswith("t_email.txt.j2"), problem
    assert "cannot render" in problem.message, problem


def test_ordinary_templates_render_as_before() -> None:
    ctx = {"customer": {"first_name": "Ann"}, "cart": {"items": [{"name": "a"}, {"name": "b"}]}}
    source = ("Hi {{ customer.first_name }}, {% for i in cart['items'] %}{{ i.name }}"
              "{% if not loop.last %}, {% endif %}{% endfor %} {{ '%05.1f' % 3.14159 }} "
              "{{ '{:>6}'.format('x') }} {{ 'ab'|center(6) }}|{{ [1, 2, 3]|join('-') }} "
              "{{ 2 ** 100 }} {{ ('x' ~ 'y') * 3 }} {{ range(3)|list|tojson }}")
    assert render_part(source, ctx) == (
        "Hi Ann, a, b 003.1      x   ab  |1-2-3 1267650600228229401496703205376 xyxyxy "
        "[0, 1, 2]")
    # a long but reasonable message: a cart of 1,000 lines
    many = {"cart": {"items": [{"name": f"item {i}"} for i in range(1000)]}}
    assert render_part("{% for i in cart['items'] %}{{ i.name }}\n{% endfor %}",
                       many).count("\n") == 999
    assert over_budget(source) is None


def test_the_limits_are_the_documented_ones() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"{MAX_STEPS:,}" in readme and f"{MAX_TEXT:,}" in readme


@pytest.mark.db
async def test_over_budget_with_real_data_fails_preview_and_send_but_not_validation(
        settings, tmp_path):
    campaign = write_campaign(tmp_path / "c", ONE_STEP, dict(TEMPLATES, **{"t_email.txt.j2": SLOW}))
    loaded = load_campaign(campaign)  # the trial render has no customer: it cannot know
    add_customers(settings, {"id": "c1", **FULL, "attributes": {"loops": 100000}})
    with session_scope(settings.db_url) as s:
        [entry] = preview(loaded, "c1", session=s, settings=settings)
    assert "render budget" in entry["error"] and "t_email.txt.j2" in entry["error"], entry
    _, [e] = await enroll(None, settings, campaign, ["c1"], start=False)  # type: ignore[arg-type]
    result = await deliver_now(settings, e.id, StepPlan("0", 0, "email", "t_email", 0))
    assert result.status == "failed" and result.reason.startswith("template:"), result
    assert "render budget" in result.reason
    assert outbox(settings, "c1") == []


# ---- what a campaign folder may read ----------------------------------------------------

def _problems(campaign: Path) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_campaign(campaign)
    return [f"{p.file}: {p.message}" for p in err.value.problems]


def test_a_template_symlinked_outside_the_folder_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash")
    campaign = write_campaign(tmp_path / "c", ONE_STEP)
    link = campaign.parent / "templates" / "t_email.txt.j2"
    link.unlink()
    link.symlink_to(secret)
    [problem] = _problems(campaign)
    assert "t_email.txt.j2" in problem and "outside the templates folder" in problem
    assert "root:x" not in problem


def test_a_symlink_inside_the_folder_is_fine(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", ONE_STEP)
    folder = campaign.parent / "templates"
    (folder / "shared.txt.j2").write_text("shared body")
    (folder / "t_email.txt.j2").unlink()
    (folder / "t_email.txt.j2").symlink_to(folder / "shared.txt.j2")
    assert load_campaign(campaign).templates["t_email"]["body"] == "shared body"


@pytest.mark.parametrize("name", ["../../../outside/t", "../t_email", "/etc/passwd",
                                  "sub/t_email", ".hidden", "t email", "a\\b"])
def test_template_names_are_plain_names(name: str, tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", ONE_STEP.replace("t_email}", f"'{name}'}}"))
    problems = _problems(campaign)
    assert any("is not a template name" in p and "campaign.yaml" in p for p in problems), problems


@pytest.mark.parametrize("folder", ["/etc", "../elsewhere", "templates/../../elsewhere", "~/x",
                                    "C:\\templates"])
def test_templates_dir_stays_inside_the_campaign_folder(folder: str, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    campaign = write_campaign(tmp_path / "c", f"templates_dir: '{folder}'\n" + ONE_STEP)
    problems = _problems(campaign)
    assert any("not inside the campaign's folder" in p for p in problems), problems


def test_a_templates_dir_symlinked_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    write_campaign(outside, ONE_STEP)  # a complete set of templates, outside
    campaign = write_campaign(tmp_path / "c", "templates_dir: shared\n" + ONE_STEP)
    os.symlink(outside / "templates", campaign.parent / "shared")
    [problem] = _problems(campaign)
    assert "outside the campaign's folder" in problem, problem


def test_a_templates_dir_inside_the_folder_works(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", "templates_dir: mail/v2\n" + ONE_STEP)
    (campaign.parent / "mail").mkdir()
    (campaign.parent / "templates").rename(campaign.parent / "mail" / "v2")
    assert "t_email" in load_campaign(campaign).templates
