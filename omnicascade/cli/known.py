"""What `campaign validate` knows about customers, to check every `customer.<attr>` of the
templates: the attribute names of the customers already imported (read-only, and only if
the database exists — validate never creates or migrates it) and of the `--audience` file
(parsed exactly as `customers import` and `campaign launch --audience` parse it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from omnicascade.campaign.templates.references import KnownAttributes
from omnicascade.config import Settings, load_settings
from omnicascade.errors import ConfigError, UserFacingError

if TYPE_CHECKING:
    from omnicascade.customers.model import CustomerIn


def read_audience(path: Path) -> list[CustomerIn]:
    """An audience file read as `campaign launch --audience` reads it; a bad one is a user
    error naming every bad line (and, as nothing is imported here, says nothing of it)."""
    from omnicascade.customers.importer import CustomerFileError, parse_customer_file
    try:
        return parse_customer_file(path)
    except CustomerFileError as exc:
        raise UserFacingError(str(exc).removesuffix("\nnothing was imported")) from None


def _imported(s: Settings) -> tuple[int, set[str]] | str | None:
    """(customers, attribute names) from the app database; None when there is no database
    yet; a note when it cannot be read."""
    from sqlalchemy.exc import SQLAlchemyError

    from omnicascade.customers.model import attribute_names
    from omnicascade.db.session import read_scope
    url = s.db_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    try:
        with read_scope(url) as db:
            return attribute_names(session=db)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return f"could not read the imported customers ({reason})"


def known_attributes(audience: Path | None) -> tuple[KnownAttributes | None, list[str]]:
    """The attribute names a send can find and where they come from, plus notes. None when
    there is no source at all (nothing imported, no audience file): then nobody can say
    which attributes exist, and customer.<attr> is not checked."""
    names: set[str] = set()
    sources: list[str] = []
    notes: list[str] = []
    if audience is not None:
        people = read_audience(audience)
        names.update(k for c in people for k in c.attributes)
        sources.append(f"the audience file {audience.name}")
    try:
        imported = _imported(load_settings())
    except ConfigError as exc:  # validating needs no server settings: say, and go on
        lines = [ln.strip() for ln in str(exc).splitlines()
                 if ln.strip() and not ln.strip().startswith("For further information")]
        imported = (f"could not read the imported customers (settings: "
                    f"{lines[-1].removeprefix('Value error, ') if lines else exc})")
    if isinstance(imported, str):
        notes.append(imported)
    elif imported is not None and imported[0]:
        names.update(imported[1])
        sources.insert(0, f"{imported[0]} imported customer{'s' if imported[0] != 1 else ''}")
    if not sources:
        nothing = "no --audience FILE" if isinstance(imported, str) else \
            "no customers imported yet and no --audience FILE"
        notes.append(f"{nothing}: customer attributes (customer.first_name, …) were not "
                     f"checked against any data; import customers or give --audience FILE "
                     f"to check them")
        return None, notes
    return KnownAttributes(frozenset(names), tuple(sources)), notes
