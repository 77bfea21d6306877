"""`runs winner RUN_ID`: the experiment's decision, a marketer's own (`--declare`), or the
split reopened (`--reset`). The decision itself is cascade/winner.py's."""

from __future__ import annotations

import typer

from omnicascade.cli import display
from omnicascade.cli.common import JSON, UserError, reading, runs_app, session


@runs_app.command("winner")
def runs_winner(run_id: str, as_json: bool = JSON,
                declare: str | None = typer.Option(None, "--declare", metavar="VARIANT",
                                                   help="Decide by hand: every later entrant "
                                                        "gets VARIANT (stored as manual)."),
                reset: bool = typer.Option(False, "--reset", help="Reopen the split: later "
                                           "entrants are split as written again, and a new "
                                           "experiment counts from now.")) -> None:
    """The experiment's winner (or "no winner yet" with the current evidence)."""
    from omnicascade.cascade import winner as decisions
    from omnicascade.db.models import Run
    from omnicascade.reports.winner import winner_answer, winner_line
    if declare and reset:
        raise UserError("--declare and --reset: choose one")
    if declare or reset:
        with session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise UserError(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
            if declare:
                decisions.declare(run, declare, session=s)
            else:
                decisions.reset(run, session=s)
    with reading() as s:
        run = s.get(Run, run_id)
        found = decisions.evidence(run, session=s) if run is not None else None
        answer = winner_answer(run_id, found.to_dict() if found else None, session=s)
    if as_json:
        display.print_json(answer)
        return
    display.console.print(winner_line(answer) or "no winner yet", highlight=False)
    found = answer.get("evidence")
    if not answer.get("winner") and found:
        display.console.print(found["reason"], highlight=False)
        sizes = ", ".join(f"{a}: {n}" for a, n in found["sample_sizes"].items())
        display.console.print(f"customers with a closed conversion window: {sizes}",
                              highlight=False)
    if answer.get("winner") is None and any(d["kind"] == "expired"
                                            for d in answer.get("decisions", [])):
        display.console.print("max_duration passed without a winner: the split continues",
                              highlight=False)
