"""Customer import: CSV and JSONL, all rows or none, every bad row named by its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from omnicascade.config import Settings
from omnicascade.customers.importer import CustomerFileError, parse_customer_file
from omnicascade.customers.model import customer_dict, upsert_customers
from omnicascade.db.models import Customer
from omnicascade.db.session import session_scope
from tests.helpers.cli import home_env, run_cli

pytestmark = pytest.mark.db


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def import_file(path: Path, settings: Settings) -> tuple[int, int]:
    rows = parse_customer_file(path)
    with session_scope(settings.db_url) as s:
        return upsert_customers(rows, session=s)


def db_customers(settings: Settings) -> dict[str, dict]:
    with session_scope(settings.db_url) as s:
        return {c.id: customer_dict(c) for c in s.scalars(select(Customer))}


def problems(path: Path) -> dict[int, str]:
    with pytest.raises(CustomerFileError) as info:
        parse_customer_file(path)
    assert "nothing was imported" in str(info.value)
    return {p.line: p.message for p in info.value.problems}


GOOD_CSV = """\
id,email,phone,timezone,locale,first_name,tier
c1,ann@example.com,+49 151 1234-5678,Europe/Berlin,de-DE,Ann,gold
c2,bob@example.com,,America/New_York,,Bob,
c3,,+14155550100,,,,
"""


# ---- parsing ---------------------------------------------------------------------------------

def test_csv_core_fields_and_extra_columns_as_attributes(tmp_path: Path) -> None:
    rows = parse_customer_file(write(tmp_path, "c.csv", GOOD_CSV))
    by_id = {r.id: r for r in rows}
    assert list(by_id) == ["c1", "c2", "c3"]
    assert by_id["c1"].email == "ann@example.com"
    assert by_id["c1"].phone == "+4915112345678"  # normalised
    assert by_id["c1"].timezone == "Europe/Berlin" and by_id["c1"].locale == "de-DE"
    assert by_id["c1"].attributes == {"first_name": "Ann", "tier": "gold"}
    assert by_id["c2"].attributes == {"first_name": "Bob"}  # blank tier is not an attribute
    assert by_id["c3"].email is None and by_id["c3"].attributes == {}


def test_jsonl_with_attributes_object_and_top_level_extras(tmp_path: Path) -> None:
    text = ('{"id": "c1", "email": "ann@example.com", "first_name": "Ann", '
            '"attributes": {"tier": "gold", "ltv": 120.5}}\n'
            "\n"
            '{"id": 42, "telegram_chat_id": 123456, "push_token": "tok"}\n')
    rows = parse_customer_file(write(tmp_path, "c.jsonl", text))
    assert [r.id for r in rows] == ["c1", "42"]
    assert rows[0].attributes == {"tier": "gold", "ltv": 120.5, "first_name": "Ann"}
    assert rows[1].telegram_chat_id == "123456" and rows[1].push_token == "tok"


def test_customer_id_column_is_accepted_as_id(tmp_path: Path) -> None:
    rows = parse_customer_file(write(tmp_path, "c.csv", "customer_id,email\nc9,a@b.co\n"))
    assert rows[0].id == "c9" and rows[0].attributes == {}


def test_header_and_cells_with_spaces(tmp_path: Path) -> None:
    rows = parse_customer_file(write(tmp_path, "c.csv", " id , email \n c1 , a@b.co \n"))
    assert (rows[0].id, rows[0].email) == ("c1", "a@b.co")


def test_bad_csv_rows_reported_by_line(tmp_path: Path) -> None:
    text = ("id,email,phone,timezone\n"
            "ok1,ok@example.com,,\n"
            "c1,not-an-email,,\n"
            "c2,,12345,\n"
            "c3,,,Mars/Olympus\n"
            "ok1,,,\n"
            ",x@example.com,,\n"
            "c4,a@b.co,,,extra\n")
    found = problems(write(tmp_path, "c.csv", text))
    assert set(found) == {3, 4, 5, 6, 7, 8}
    assert "not-an-email" in found[3] and "email" in found[3]
    assert "12345" in found[4] and "phone" in found[4]
    assert "unknown time zone 'Mars/Olympus'" in found[5]
    assert "'ok1' already on line 2" in found[6]
    assert "id" in found[7] and "missing" in found[7]
    assert "more values than header columns" in found[8]


def test_error_message_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", "id,email\nc1,bad\n")
    with pytest.raises(CustomerFileError) as info:
        parse_customer_file(path)
    assert str(info.value).splitlines() == [
        f"{path}:line 2: email: 'bad' is not an email address (An email address must have "
        f"an @-sign.)", "nothing was imported"]


def test_addresses_that_could_inject_headers_or_never_receive_mail_are_row_errors(
        tmp_path: Path) -> None:
    """email-validator checks the syntax (no DNS look-up): CR/LF (a Bcc: header smuggled in),
    lone surrogates, and special-use domains are refused; ordinary addresses pass."""
    text = ('{"id": "c1", "email": "v@example.com\\r\\nBcc:x@evil.example"}\n'
            '{"id": "c2", "email": "a\\ud800@example.com"}\n'
            '{"id": "c3", "email": "ann@shop.test"}\n'
            '{"id": "c4", "email": "ann@localhost"}\n'
            '{"id": "ok1", "email": "ann@example.com"}\n'
            '{"id": "ok2", "email": "josé@münchen.de"}\n')
    found = problems(write(tmp_path, "c.jsonl", text))
    assert set(found) == {1, 2, 3, 4}, found
    assert all(found[n].startswith("email: ") for n in found), found
    assert "invalid characters" in found[1] and "special-use" in found[3]
    csv_text = 'id,email\nc1,"v@example.com\r\nBcc:x@evil.example"\nok,a@b.co\n'
    assert set(problems(write(tmp_path, "c.csv", csv_text))) == {3}


def test_bad_jsonl_lines_reported_by_line(tmp_path: Path) -> None:
    text = ('{"id": "c1"}\n'
            '{"id": "c2", "email": }\n'
            '\n'
            '["not", "an", "object"]\n'
            '{"email": "x@example.com"}\n'
            '{"id": "c1"}\n'
            '{"id": "c5", "phone": "0151"}\n')
    found = problems(write(tmp_path, "c.jsonl", text))
    assert set(found) == {2, 4, 5, 6, 7}
    assert found[2].startswith("invalid JSON")
    assert "JSON object" in found[4]
    assert "id" in found[5] and "missing" in found[5]
    assert "already on line 1" in found[6]
    assert "phone" in found[7]


def test_missing_id_column(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "c.csv", "email,first_name\na@b.co,Ann\n")) == {
        1: "the header needs an 'id' column"}
    assert 1 in problems(write(tmp_path, "empty.csv", ""))


def test_unsupported_file_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CustomerFileError) as info:
        parse_customer_file(write(tmp_path, "c.xlsx", "id\n"))
    assert ".csv or .jsonl" in str(info.value) and "line 0" not in str(info.value)
    with pytest.raises(CustomerFileError) as info:
        parse_customer_file(tmp_path / "missing.csv")
    assert "file not found" in str(info.value)


# ---- writing -----------------------------------------------------------------------------------

def test_import_and_reimport_upserts(tmp_path: Path, settings: Settings) -> None:
    assert import_file(write(tmp_path, "a.csv", GOOD_CSV), settings) == (3, 0)
    stored = db_customers(settings)
    assert stored["c1"]["email"] == "ann@example.com"
    assert stored["c1"]["attributes"] == {"first_name": "Ann", "tier": "gold"}

    # second file: blanks leave stored values alone; given values and attributes update
    again = ("id,email,phone,timezone,first_name,city\n"
             "c1,,,,Anna,Berlin\n"
             "c4,dan@example.com,,,,\n")
    assert import_file(write(tmp_path, "b.csv", again), settings) == (1, 1)
    stored = db_customers(settings)
    c1 = stored["c1"]
    assert c1["email"] == "ann@example.com"
    assert c1["phone"] == "+4915112345678"
    assert c1["timezone"] == "Europe/Berlin" and c1["locale"] == "de-DE"
    assert c1["attributes"] == {"first_name": "Anna", "tier": "gold", "city": "Berlin"}
    assert set(stored) == {"c1", "c2", "c3", "c4"}


def test_jsonl_null_does_not_erase(tmp_path: Path, settings: Settings) -> None:
    import_file(write(tmp_path, "a.jsonl", '{"id": "c1", "email": "a@b.co"}\n'), settings)
    import_file(write(tmp_path, "b.jsonl", '{"id": "c1", "email": null, "locale": "fr"}\n'),
                settings)
    c1 = db_customers(settings)["c1"]
    assert (c1["email"], c1["locale"]) == ("a@b.co", "fr")


def test_failing_import_changes_nothing(tmp_path: Path, settings: Settings) -> None:
    import_file(write(tmp_path, "a.csv", GOOD_CSV), settings)
    before = db_customers(settings)
    bad = ("id,email,first_name\n"
           "c1,changed@example.com,Changed\n"  # valid, but must not be written
           "new1,new@example.com,New\n"
           "c2,broken,\n")
    with pytest.raises(CustomerFileError):
        import_file(write(tmp_path, "bad.csv", bad), settings)
    assert db_customers(settings) == before


def test_many_rows_in_batches(tmp_path: Path, settings: Settings) -> None:
    text = "id,email\n" + "".join(f"c{i},u{i}@example.com\n" for i in range(1203))
    assert import_file(write(tmp_path, "many.csv", text), settings) == (1203, 0)
    assert len(db_customers(settings)) == 1203


# ---- the CLI, end to end -----------------------------------------------------------------------

def test_cli_import_good_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = write(tmp_path, "c.csv", GOOD_CSV)
    r = run_cli("customers", "import", str(path), env=home_env(home), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "imported 3 customers" in r.stdout
    assert (home / "omnicascade.db").is_file()

    r = run_cli("customers", "import", "--json", str(path), env=home_env(home), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"imported": 3, "created": 0, "updated": 3,
                                    "skipped": {"erased": 0}}


@pytest.mark.parametrize("name, text, line, words", [
    ("bad-email.csv", "id,email\nc1,a@b.co\nc2,nope\n", 3, "email"),
    ("bad-phone.csv", "id,phone\nc1,12345\n", 2, "phone"),
    ("bad-tz.csv", "id,timezone\nc1,Mars/Base\n", 2, "unknown time zone"),
    ("dup.csv", "id\nc1\nc2\nc1\n", 4, "already on line 2"),
    ("no-id.csv", "email\na@b.co\n", 1, "'id' column"),
    ("bad.jsonl", '{"id": "c1"}\n{"id": \n', 2, "invalid JSON"),
])
def test_cli_import_bad_file(tmp_path: Path, name: str, text: str, line: int,
                             words: str) -> None:
    home = tmp_path / "home"
    path = write(tmp_path, name, text)
    r = run_cli("customers", "import", str(path), env=home_env(home), cwd=tmp_path)
    assert r.returncode != 0
    assert f"{path}:line {line}:" in r.stderr and words in r.stderr
    assert "nothing was imported" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert not home.exists()  # rejected before the database was even opened


def test_cli_failed_import_leaves_database_unchanged(tmp_path: Path) -> None:
    home = tmp_path / "home"
    good = write(tmp_path, "good.csv", "id,email\nc1,a@b.co\n")
    assert run_cli("customers", "import", str(good), env=home_env(home), cwd=tmp_path).returncode == 0
    bad = write(tmp_path, "bad.csv", "id,email\nc1,changed@b.co\nc2,bad\n")
    r = run_cli("customers", "import", str(bad), env=home_env(home), cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'omnicascade.db'}")
    stored = db_customers(settings)
    assert list(stored) == ["c1"] and stored["c1"]["email"] == "a@b.co"


def test_cli_import_missing_file(tmp_path: Path) -> None:
    r = run_cli("customers", "import", str(tmp_path / "nope.csv"),
                env=home_env(tmp_path / "home"), cwd=tmp_path)
    assert r.returncode != 0
    assert "file not found" in r.stderr and "Traceback" not in r.stderr
