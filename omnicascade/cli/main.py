"""`omnicascade`: the commands of every group, and errors shown without a traceback."""

from __future__ import annotations

import sys

from omnicascade.cli import (  # noqa: F401 (register commands)
    campaigns,
    configuration,
    console,
    customers,
    data_rights,
    display,
    erasure,
    experiments,
    runs,
    stack,
)
from omnicascade.cli.common import UserError, app


def main() -> None:
    from omnicascade.campaign.problems import SpecError
    from omnicascade.errors import UserFacingError
    try:
        app()
    except SpecError as exc:
        display.err_console.print(f"[red]invalid campaign[/] ({len(exc.problems)} problem"
                                  f"{'s' if len(exc.problems) != 1 else ''}):", highlight=False)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    except (UserFacingError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
