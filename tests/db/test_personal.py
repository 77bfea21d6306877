"""The one list of where a person is stored (db/personal.py) stays complete: a new table
with a customer-looking column must be added to it — and so to export — or allow-listed
with a reason. Export has a section for every table on the list."""

from __future__ import annotations

import omnicascade.db.erasure_models  # noqa: F401 (its tables in the metadata)
from omnicascade.db.models import Base
from omnicascade.db.personal import NOT_PERSONAL, PERSON_COLUMN_NAMES, PERSON_TABLES
from omnicascade.reports.export_person import SECTIONS


def test_every_table_with_a_customer_column_is_exported_or_allow_listed():
    suspects = {t.name: sorted(c.name for c in t.columns if c.name in PERSON_COLUMN_NAMES)
                for t in Base.metadata.sorted_tables}
    forgotten = {name: cols for name, cols in suspects.items()
                 if cols and name not in PERSON_TABLES and name not in NOT_PERSONAL}
    assert not forgotten, (
        f"tables holding what looks like a person, unknown to export and erasure: "
        f"{forgotten}; add them to PERSON_TABLES (and export them: reports/"
        f"export_person.py, erase them: cascade/erasure.py) or to NOT_PERSONAL with why")


def test_the_lists_name_real_tables_and_columns_and_export_covers_each():
    tables = {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}
    for name, columns in PERSON_TABLES.items():
        assert name in tables, name
        assert set(columns) <= tables[name], (name, set(columns) - tables[name])
    assert set(NOT_PERSONAL) <= set(tables)
    assert not set(NOT_PERSONAL) & set(PERSON_TABLES)
    assert set(SECTIONS) == set(PERSON_TABLES)


def test_a_new_table_with_a_customer_id_would_be_caught():
    from sqlalchemy import Column, MetaData, String, Table
    extra = Table("loyalty_points", MetaData(), Column("customer_id", String))
    cols = [c.name for c in extra.columns if c.name in PERSON_COLUMN_NAMES]
    assert cols == ["customer_id"] and extra.name not in PERSON_TABLES | NOT_PERSONAL
