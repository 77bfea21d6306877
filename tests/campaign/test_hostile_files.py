"""Hostile files: random and mutated campaign YAML, random CSV/JSONL customer files.

Promise 4: bad input gets a clear error naming the problem and its location, and changes
nothing. So `load_campaign` either succeeds or raises SpecError (every problem with a file and
a plain message), and `parse_customer_file` either succeeds or raises CustomerFileError naming
lines — never any other exception, and a failed import writes nothing.
"""

from __future__ import annotations

import copy
import io
import json
import os
import string
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from sqlalchemy import func, select

from omnicascade.campaign.load import LoadedCampaign, load_campaign, spec_from_snapshot
from omnicascade.campaign.problems import SpecError
from omnicascade.campaign.variants import step_lists
from omnicascade.customers.importer import CustomerFileError, parse_customer_file
from omnicascade.customers.model import CustomerIn, upsert_customers
from omnicascade.db.models import Customer
from omnicascade.db.session import session_scope
from tests.helpers.campaigns import CASCADE_YAML, write_campaign

pytestmark = pytest.mark.db  # the customer imports also run on PostgreSQL

# Bounded for CI; OMNICASCADE_FUZZ_EXAMPLES=5000 digs deeper locally.
FUZZ = hsettings(max_examples=int(os.environ.get("OMNICASCADE_FUZZ_EXAMPLES", "150")), deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.filter_too_much])

# ---- campaign YAML ----------------------------------------------------------------------

_yaml = YAML(typ="rt")
BASE: dict[str, Any] = _yaml.load(CASCADE_YAML)
BASE = json.loads(json.dumps(BASE))  # plain dicts and lists, easy to mutate
BASE["quiet_hours"] = {"start": "21:00", "end": "09:00"}
BASE["frequency_cap"] = {"max": 3, "per": "24h"}
BASE["experiment"] = {"holdout": "10%", "variants": {
    "control": {"weight": 50},
    "sms_first": {"weight": 50, "steps": [{"channel": "sms", "template": "t_sms", "wait": "1h"},
                                          {"channel": "email", "template": "t_email"}]}}}

plain_text = st.characters(exclude_categories=("Cs",))  # files are UTF-8: no lone surrogates
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(plain_text, max_size=30),
    st.sampled_from(["email", "sms", "telegram", "push", "fax", "24h", "0", "3d", "-1h",
                     "99999999999999999999d", "1h30m", "10%", "150%", "-5%", "21:00", "25:61",
                     "CART-{random:6}", "{random:99}", "t_email", "missing_tpl", "", " ",
                     "Europe/Berlin", "Mars/Olympus", "x" * 300, "../../etc/passwd", "order_placed", "as_written", "cost"]))
structures = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.text(plain_text, max_size=12) | st.sampled_from(
                                         list(BASE) + ["channel", "template", "wait", "weight",
                                                       "steps", "events", "max", "per"]),
                                         inner, max_size=5)),
    max_leaves=20)


def _dump(data: Any) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, out)
    return out.getvalue()


def _check_outcome(path: Path) -> LoadedCampaign | None:
    """The only two allowed outcomes of load_campaign."""
    try:
        loaded = load_campaign(path)
    except SpecError as exc:
        assert exc.problems, "SpecError without problems"
        for p in exc.problems:
            assert isinstance(p.file, str) and p.file, p
            assert isinstance(p.message, str) and p.message.strip(), p
            assert "Traceback" not in p.message and "errors.pydantic.dev" not in p.message, p
            assert p.line is None or (isinstance(p.line, int) and p.line >= 1), p
            assert p.col is None or (isinstance(p.col, int) and p.col >= 1), p
        assert str(exc)
        return None
    # What was accepted must survive the launch snapshot and be usable as timer durations.
    snap = json.loads(json.dumps(loaded.snapshot()))
    assert spec_from_snapshot(snap) == loaded.spec
    spec = loaded.spec
    for steps in step_lists(spec).values():
        for s in steps:
            timedelta(seconds=s.wait)
    for f in spec.after_conversion:
        timedelta(seconds=f.delay)
    timedelta(seconds=spec.lookback_s)
    if spec.frequency_cap:
        timedelta(seconds=spec.frequency_cap.per)
    return loaded


@FUZZ
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=300))
@example(text="a: &x [*x]")  # an alias that contains itself
@example(text="&a [*a, *a]")
@example(text="campaign: x\ncampaign: y\nsteps: []")  # duplicate key
@example(text="!!python/object/apply:os.system ['touch /tmp/omni-pwned']")
@example(text="steps: !!binary aGVsbG8=")
@example(text="? [a, b]\n: c\n")
@example(text="\t- x")
def test_random_text_is_a_spec_or_a_spec_error(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("rnd")
    path = write_campaign(folder, "", name="c.yaml")
    path.write_text(text, encoding="utf-8")
    assert _check_outcome(path) is None  # nothing random is a valid campaign
    assert not Path("/tmp/omni-pwned").exists()


@FUZZ
@given(raw=st.binary(max_size=200))
@example(raw=b"campaign: \xff\xfe")
@example(raw=b"\xef\xbb\xbfcampaign: x")
@example(raw=b"\x00\x00\x00")
def test_random_bytes_are_a_spec_error(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("raw")
    path = write_campaign(folder, "", name="c.yaml")
    path.write_bytes(raw)
    assert _check_outcome(path) is None


@FUZZ
@given(data=structures)
def test_random_structures_are_a_spec_or_a_spec_error(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("struct")
    path = write_campaign(folder, _dump(data), name="c.yaml")
    _check_outcome(path)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


ALL_PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            key = path[-1]
            parent[key]
        except (KeyError, IndexError, TypeError):
            continue
        action = draw(st.sampled_from(["replace", "delete", "add", "wrap"]))
        if action == "replace":
            parent[key] = draw(structures)
        elif action == "delete":
            del parent[key]
        elif action == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"x": parent[key]}
        elif isinstance(parent, dict):
            parent[draw(st.text(plain_text, min_size=1, max_size=10))] = draw(scalars)
        else:
            parent.append(draw(structures))
    return data


@FUZZ
@given(data=mutated())
def test_mutated_campaigns_are_a_spec_or_a_spec_error(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("mut")
    path = write_campaign(folder, _dump(data), name="c.yaml")
    _check_outcome(path)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(CASCADE_YAML)),
                                st.integers(0, 8), st.text(string.printable, max_size=6)),
                      min_size=1, max_size=4))
def test_textually_mutated_yaml_is_a_spec_or_a_spec_error(tmp_path_factory, edits):
    text = CASCADE_YAML
    for pos, cut, insert in edits:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + cut:]
    folder = tmp_path_factory.mktemp("txt")
    path = write_campaign(folder, "", name="c.yaml")
    path.write_text(text)
    _check_outcome(path)


def test_the_unmutated_base_is_valid(tmp_path):
    """The mutation tests start from a campaign that loads (or they test nothing)."""
    assert _check_outcome(write_campaign(tmp_path / "ok", _dump(BASE))) is not None


# The YAML alias bomb: nine levels of nine aliases, ~10^9 values once expanded (see also
# tests/campaign/test_yaml_alias_bomb.py: refused in bounded memory by the real command).
BILLION_LAUGHS = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 9)}]\n" for i in range(1, 9))


def test_hostile_yaml_names_the_line(tmp_path):
    cases = {"a: &x [*x]\ncampaign: c\n": None,
             "campaign: x\ncampaign: y\n": 2,
             "campaign: ok\nsteps: [{channel: email, template: t_email, wait: 99999999999d}]\n": 2,
             BILLION_LAUGHS: 6}  # refused where the expansion passes the cap (f: 9^6 values)
    for text, line in cases.items():
        path = write_campaign(tmp_path / f"h{len(text)}", "", name="c.yaml")
        path.write_text(text)
        try:
            load_campaign(path)
        except SpecError as exc:
            if line is not None:
                assert any(p.line == line for p in exc.problems), exc.problems
        else:
            raise AssertionError(f"accepted: {text!r}")


# ---- customer files ---------------------------------------------------------------------

COLUMNS = ["id", "customer_id", "email", "phone", "telegram_chat_id", "push_token", "timezone",
           "locale", "consent_sms", "consent_email", "first_name", "attributes", "consents", ""]
cells = st.one_of(st.text(plain_text, max_size=20), st.sampled_from(
    ["a@example.com", "+4915112345678", "Europe/Berlin", "Nowhere/Else", "yes", "no", "maybe",
     "de-DE", "x" * 400, '"', '""', "\r", "\n", ",", "\x00", "1e309", "NaN", "-0"]))


@st.composite
def csv_files(draw: st.DrawFn) -> str:
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=8))
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(header) + 2), max_size=6))
    out = io.StringIO()
    import csv
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()):  # and some raw damage
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.text(plain_text, max_size=5)) + text[pos:]
    return text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(plain_text, max_size=15) | cells,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(COLUMNS) | st.text(plain_text, max_size=8), inner, max_size=5), max_leaves=15)


@st.composite
def jsonl_files(draw: st.DrawFn) -> str:
    lines = []
    for value in draw(st.lists(json_values, max_size=6)):
        line = json.dumps(value)
        if draw(st.integers(0, 9)) == 0:
            line = line[:draw(st.integers(0, len(line)))]  # truncated
        lines.append(line)
    return "\n".join(lines)


def _check_import(path: Path, db_url: str) -> None:
    with session_scope(db_url) as s:
        before = s.scalar(select(func.count()).select_from(Customer))
    try:
        customers = parse_customer_file(path)
    except CustomerFileError as exc:
        assert exc.problems
        for p in exc.problems:
            assert isinstance(p.line, int) and p.line >= 0 and p.message.strip(), p
            assert "Traceback" not in p.message
        assert "nothing was imported" in str(exc) and str(path) in str(exc)
        with session_scope(db_url) as s:
            assert s.scalar(select(func.count()).select_from(Customer)) == before
        return
    assert all(isinstance(c, CustomerIn) for c in customers)
    assert len({c.id for c in customers}) == len(customers)
    # Whatever the parser accepts, the database takes (lengths, JSON attributes, …).
    with session_scope(db_url) as s:
        upsert_customers(customers, session=s)


@FUZZ
@given(text=csv_files())
@example(text="id,email\n1,a@example.com,extra\n")
@example(text="id\n\x00\n")
@example(text="id,timezone\nc1," + "x" * 300 + "\n")  # ZoneInfo: file name too long
@example(text='id,first_name\n1,"unterminated\n')
def test_random_csv_imports_or_names_lines(tmp_path_factory, settings, text):
    path = tmp_path_factory.mktemp("csv") / "c.csv"
    path.write_text(text, encoding="utf-8")
    _check_import(path, settings.db_url)


@FUZZ
@given(text=jsonl_files() | st.text(plain_text, max_size=200))
@example(text='{"id": 1e999}')
@example(text='{"id": "a", "attributes": {"x": NaN}}')
@example(text='{"id": "a", "consents": {"sms": "maybe"}}')
@example(text='{"id": "a", "consents": ["sms"]}')
@example(text='{"id": ["a"]}')
@example(text='{"id": "a", "first_name": {"deep": [1, {"x": null}]}}')
@example(text='{"id": "\\u0000"}')
@example(text="[" * 5000)
def test_random_jsonl_imports_or_names_lines(tmp_path_factory, settings, text):
    path = tmp_path_factory.mktemp("jsonl") / "c.jsonl"
    path.write_text(text, encoding="utf-8")
    _check_import(path, settings.db_url)


def test_a_failing_import_after_a_good_one_changes_nothing(tmp_path, settings):
    good = tmp_path / "good.csv"
    good.write_text("id,email,first_name\nc1,a@example.com,Ann\n")
    with session_scope(settings.db_url) as s:
        upsert_customers(parse_customer_file(good), session=s)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(textwrap.dedent("""\
        {"id": "c1", "email": "changed@example.com"}
        {"id": "c2", "phone": "nope"}
        """))
    try:
        parse_customer_file(bad)
    except CustomerFileError as exc:
        assert [p.line for p in exc.problems] == [2]
    else:
        raise AssertionError("accepted a bad phone number")
    with session_scope(settings.db_url) as s:
        assert s.get(Customer, "c1").email == "a@example.com"
        assert s.get(Customer, "c2") is None
