"""Templates are written by marketers, rendered with customer data: the jinja2 sandbox must
refuse every way out to Python objects. A template that tries is either refused at
validation (a problem naming the file) or fails with RenderError at preview and at send —
and nothing it asked for ever runs (a canary file it tries to create never appears)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnicascade.campaign.load import load_campaign
from omnicascade.campaign.problems import SpecError
from omnicascade.campaign.templates.render import RenderError, build_context, render_part
from omnicascade.cascade.preview import preview
from omnicascade.db.session import session_scope
from omnicascade.workflows.types import StepPlan
from tests.helpers.campaigns import FULL, TEMPLATES, write_campaign
from tests.helpers.cascades import add_customers, deliver_now, enroll, outbox

ONE_STEP = """\
campaign: sandbox
steps:
  - {channel: email, template: t_email}
"""

# Reads of internals: each must be refused.
PEEKS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ self.__dict__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ customer.__class__ }}",
    "{{ customer.__class__.__base__.__subclasses__() }}",
    "{{ customer._private }}",
    "{{ campaign._sa_instance_state }}",
    "{{ customer.items.__self__ }}",
    "{{ customer['__class__'] }}",
    "{{ customer | attr('__class__') }}",
    "{{ customer | attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ unsubscribe_url.__class__.__mro__ }}",
    "{{ '{0.__class__}'.format(customer) }}",
    "{{ '{0.__class__.__mro__}'.format_map({'0': customer}) }}",
    "{{ '%s' % customer.__class__ }}",
    "{{ [].append.__self__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{{ customer.update({'id': 'x'}) }}",
    "{% set x = event.clear() %}{{ x }}",
    "{{ range(10 ** 9) | list | length }}",
]

# Attempts to run something: if any of them worked, the canary file would exist.
RUNS = [
    "{{ cycler.__init__.__globals__.os.system('touch CANARY') }}",
    "{{ joiner.__init__.__globals__['os'].popen('touch CANARY').read() }}",
    "{{ lipsum.__globals__['os'].system('touch CANARY') }}",
    "{{ (lipsum | attr('__globals__')).os.system('touch CANARY') }}",
    "{{ namespace.__init__.__globals__.os.system('touch CANARY') }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('touch CANARY') }}",
    "{% set g = cycler.__init__.__globals__ %}{{ g.os.system('touch CANARY') }}",
    ("{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__['sys']"
     ".modules['os'].system('touch CANARY') }}"),
    ("{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == "
     "'catch_warnings' %}{{ c()._module.__builtins__['__import__']('os')"
     ".system('touch CANARY') }}{% endif %}{% endfor %}"),
    "{{ customer.__init__.__globals__['__builtins__']['open']('CANARY', 'w') }}",
]


def _context() -> dict:
    return build_context(customer={"id": "c1", "email": "a@example.com", "attributes": {}},
                         event={"a": 1}, promo={"code": "X-1"}, campaign={"name": "c"},
                         unsubscribe_url="https://x.test/u/1")


@pytest.mark.parametrize("source", PEEKS + RUNS)
def test_render_refuses_escapes(source: str, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    with pytest.raises(RenderError):
        render_part(source.replace("CANARY", str(canary)), _context())
    assert not canary.exists()


def test_the_context_is_left_as_it_was() -> None:
    ctx = _context()
    for source in ("{{ customer.update({'id': 'x'}) }}", "{{ event.clear() }}",
                   "{{ customer.pop('id') }}", "{% set _ = event.setdefault('b', 2) %}"):
        with pytest.raises(RenderError):
            render_part(source, ctx)
    assert ctx["customer"]["id"] == "c1" and ctx["event"] == {"a": 1}


@pytest.mark.db
@pytest.mark.parametrize("source", RUNS + [
    "{{ self.__dict__ }}", "{{ customer.__class__ }}", "{{ customer._private }}",
    "{{ cycler.__init__.__globals__ }}", "{{ '{0.__class__}'.format(customer) }}"])
async def test_escape_is_a_validation_problem_or_fails_preview_and_send(
        settings, tmp_path, source):
    canary = tmp_path / "canary"
    body = source.replace("CANARY", str(canary))
    campaign = write_campaign(tmp_path / "c", ONE_STEP, dict(TEMPLATES, **{"t_email.txt.j2": body}))
    try:
        loaded = load_campaign(campaign)
    except SpecError as exc:  # refused before launch, naming the template file
        assert any(p.file.endswith("t_email.txt.j2") for p in exc.problems), exc.problems
        assert not canary.exists()
        return
    add_customers(settings, {"id": "c1", **FULL})
    with session_scope(settings.db_url) as s:
        [entry] = preview(loaded, "c1", session=s, settings=settings)
    assert "error" in entry and "t_email.txt.j2" in entry["error"], entry
    assert "body" not in entry
    _, [e] = await enroll(None, settings, campaign, ["c1"], start=False)  # type: ignore[arg-type]
    result = await deliver_now(settings, e.id, StepPlan("0", 0, "email", "t_email", 0))
    assert result.status == "failed" and result.reason.startswith("template:"), result
    assert outbox(settings, "c1") == []
    assert not canary.exists()


@pytest.mark.parametrize("source", ["{{ 'a' * 10**10 }}", "{{ [0] * 10**9 }}",
                                    "{{ 10 ** 100000000 }}", "{{ (customer.id * 99999) * 99 }}"])
def test_arithmetic_memory_bombs_are_refused(source: str) -> None:
    from omnicascade.campaign.templates.render import RenderError, render_part
    with pytest.raises(RenderError, match="refused by the sandbox"):
        render_part(source, {"customer": {"id": "c-123"}})


def test_ordinary_arithmetic_still_works() -> None:
    from omnicascade.campaign.templates.render import render_part
    assert render_part("{{ '-' * 10 }} {{ 2 ** 8 }} {{ 3 * 4 }}", {}) == "---------- 256 12"
