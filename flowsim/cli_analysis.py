"""``flowsim whatif ...`` and ``flowsim sweep``: the analyses on the command line.

``whatif_app`` (commands ``admit``, ``stop``, ``capacity``, ``benefits``) and
``sweep`` are mounted on the main app in ``flowsim.cli``
(``app.add_typer(whatif_app, name="whatif")``, ``app.command()(sweep)``).
Each prints its answer in one sentence in money, then a table; ``--out DIR``
also writes the tables as CSV.  Bad input exits with code 2 and a message
naming the file, the key and the value (``flowsim.cli.exit_on_flowsim_error``,
imported inside each command because ``flowsim.cli`` imports this module).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from .cli_help import FlowsimCommand, FlowsimGroup
from .pages import text_table  # imports neither pandas nor matplotlib: `flowsim --help` should start fast

__all__ = ["sweep", "whatif_app"]


whatif_app = typer.Typer(
    cls=FlowsimGroup,
    help=(
        "Answer the portfolio questions on paired runs (same worlds, one policy, today's portfolio): "
        "admit a new initiative, stop an active project, add capacity to a team, check the business cases."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# Options shared by every analysis.
_SCENARIO = typer.Argument(..., help="The scenario file (YAML).")
# No Typer bounds (min=1): the analyses check these as `flowsim run` does, in one line
# ("replications (--replications) must be a whole number of at least 1, got 0"), not in a box.
_REPLICATIONS = typer.Option(100, "--replications", "-n", help="Worlds simulated per scenario compared.")
_SEED = typer.Option(None, "--seed", help="Seed of the worlds (default: the scenario's).")
_WORKERS = typer.Option(None, "--workers", "-w", help="Local processes (default: all cores).")
# A list, so that a repeated --policy is refused (``_one_policy``) rather than the last one silently kept.
_POLICY = typer.Option(
    None, "--policy", metavar="<str>", help="The one policy simulated (default: the scenario's first)."
)
_OUT = typer.Option(
    None, "--out", "-o",
    help="Also write the tables as CSV and the answer as a page, whatif_<question>.html, into this folder.",
)  # fmt: skip
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr.")


def _progress(quiet: bool) -> Callable[[str], None] | None:
    if quiet:
        return None
    return lambda label: typer.echo(f"simulating {label} ...", err=True)


def _one_policy(policy: list[str] | None, what: str) -> str | None:
    """The one ``--policy`` given (None: the default); refuse it given more than once
    (a name repeated is worded as ``flowsim run`` words it)."""
    if not policy:
        return None
    if len(policy) > 1:
        from .errors import FlowsimError, each_once

        each_once(policy, "--policy", "policy")
        raise FlowsimError(
            f"policy (--policy) must be given at most once ({what} simulates one policy), got {', '.join(policy)}"
        )
    return policy[0]


def _check_out(out: Path | None) -> None:
    """Refuse an ``--out`` that cannot be a folder before anything is simulated (exit 2, no traceback)."""
    from .store import check_out_folder

    if out is not None:
        check_out_folder(out)


# ------------------------------------------------------------------ output


def _show(result, text: str, out: Path | None, name: str) -> None:
    from .pages import facts

    settings = result.settings
    typer.echo(f"{settings['scenario']} ({settings['source']}): {facts(settings)}")
    typer.echo("")
    typer.echo(result.answer)
    typer.echo("")
    typer.echo(text)
    for note in result.notes:
        typer.echo(f"note: {note}")
    if out is not None:
        from .cli import exit_on_flowsim_error

        with exit_on_flowsim_error():
            try:
                written = _write(result, out, name)
            except OSError as error:
                from .store import write_failed

                raise write_failed(out, error) from None
        typer.echo("wrote " + ", ".join(map(str, written)))


def _write(result, out: Path, name: str) -> list[Path]:
    from .pages import whatif_page

    out.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out / f"{name}.csv", index=False)
    written = [out / f"{name}.csv"]
    totals = getattr(result, "totals", None)
    if totals is not None and len(totals):
        totals.to_csv(out / f"{name}_totals.csv", index=False)
        written.append(out / f"{name}_totals.csv")
    (out / f"{name}.html").write_text(whatif_page(result, name))
    written.append(out / f"{name}.html")
    return written


# ------------------------------------------------------------------ commands


@whatif_app.command(cls=FlowsimCommand)
def admit(
    scenario: Path = _SCENARIO,
    project: str = typer.Option(
        ..., "--project", "-p", help="A YAML file holding one new project, or the id of a listed project."
    ),
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: list[str] = _POLICY,
    out: Path = _OUT,
    quiet: bool = _QUIET,
) -> None:
    """If we accept this initiative, what will it delay, and what does that delay cost?

    Compares the scenario with and without the project on the same worlds: per
    other project, the delay (an undelivered project counts as delivered at the
    horizon) and its cost in delayed value; the initiative's own value; the net
    change in total value delivered.
    """
    from .analysis.whatif import admit as run_admit
    from .cli import exit_on_flowsim_error

    with exit_on_flowsim_error():
        policy = _one_policy(policy, "a what-if")
        _check_out(out)
        result = run_admit(
            scenario, project, replications=replications, seed=seed, policy=policy, workers=workers,
            progress=_progress(quiet),
        )  # fmt: skip
    text = text_table(result, "whatif_admit")
    _show(result, text, out, "whatif_admit")


@whatif_app.command(cls=FlowsimCommand)
def stop(
    scenario: Path = _SCENARIO,
    project: list[str] = typer.Option(
        None, "--project", "-p", help="A listed project to consider stopping (repeat); default: all active at time 0."
    ),
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: list[str] = _POLICY,
    out: Path = _OUT,
    quiet: bool = _QUIET,
) -> None:
    """Which active projects, if stopped today, would we miss least?

    For each project active at time 0 (in flight, or arrived at 0 and not
    waiting for a project it depends on), or each named, the change in total
    value delivered if it (and its dependants) were stopped now: its own lost
    value against what its freed capacity brings the others. Ranked: the first would be missed least.
    """
    from .analysis.whatif import stop as run_stop
    from .cli import exit_on_flowsim_error

    with exit_on_flowsim_error():
        policy = _one_policy(policy, "a what-if")
        _check_out(out)
        result = run_stop(
            scenario, project or None, replications=replications, seed=seed, policy=policy, workers=workers,
            progress=_progress(quiet),
        )  # fmt: skip
    text = text_table(result, "whatif_stop")
    _show(result, text, out, "whatif_stop")


@whatif_app.command(cls=FlowsimCommand)
def capacity(
    scenario: Path = _SCENARIO,
    team: list[str] = typer.Option(None, "--team", "-t", help="A team to change (repeat); default: every team."),
    delta: int = typer.Option(1, "--delta", "-d", help="Capacity units added (negative: removed), at every date."),
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: list[str] = _POLICY,
    out: Path = _OUT,
    quiet: bool = _QUIET,
) -> None:
    """Where is the portfolio constrained, and what is relaxing that constraint worth?

    For each team (or each named), the scenario with its capacity and every
    capacity change shifted by --delta, on the same worlds: the paired change
    in value delivered, ranked by value per unit, beside the team's
    utilisation and mean queue today.
    """
    from .analysis.whatif import capacity as run_capacity
    from .cli import exit_on_flowsim_error

    with exit_on_flowsim_error():
        policy = _one_policy(policy, "a what-if")
        _check_out(out)
        result = run_capacity(
            scenario, team or None, delta, replications=replications, seed=seed, policy=policy, workers=workers,
            progress=_progress(quiet),
        )  # fmt: skip
    text = text_table(result, "whatif_capacity")
    _show(result, text, out, "whatif_capacity")


@whatif_app.command(cls=FlowsimCommand)
def benefits(
    scenario: Path = _SCENARIO,
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: list[str] = _POLICY,
    out: Path = _OUT,
    quiet: bool = _QUIET,
) -> None:
    """Are the benefits promised in the business cases on track?

    Per listed project: the probability of delivery by its promised date (else
    due, else closes, else its estimated ideal delivery) and of realising its
    business-case value within the horizon; most at risk first.
    """
    from .analysis.whatif import benefits as run_benefits
    from .cli import exit_on_flowsim_error

    with exit_on_flowsim_error():
        policy = _one_policy(policy, "a what-if")
        _check_out(out)
        result = run_benefits(
            scenario, replications=replications, seed=seed, policy=policy, workers=workers, progress=_progress(quiet)
        )
    text = text_table(result, "whatif_benefits")
    _show(result, text, out, "whatif_benefits")


def sweep(
    scenario: Path = typer.Argument(..., help="The scenario file (YAML)."),
    set_: list[str] = typer.Option(
        ...,
        "--set",
        "-s",
        help="KEY=v1,v2,...: a dotted path into the scenario and its values (repeat for a grid), "
        "e.g. policies.wip5-cd3.intake.limit=2,4,6,8",
    ),
    metric: str = typer.Option("value_delivered", "--metric", "-m", help="The metric compared (a replication metric)."),
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: list[str] = typer.Option(
        None,
        "--policy",
        metavar="<str>",
        help="The one policy simulated (default: the policy the --set keys edit; the scenario's first when they "
        "edit none).",
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Write sweep.csv, the plot sweep.png and the page sweep.html into this folder."
    ),
    quiet: bool = _QUIET,
) -> None:
    """Run a parameter grid on the same worlds and compare a metric with the first value.

    Every value (every combination, with several --set) is simulated with the
    same seed and replications under one policy; the table gives the metric's
    mean and CI and its paired difference from the first value, and marks the
    best. Keys under policies.NAME change only policy NAME, so every such key
    must edit the policy simulated; keys outside policies change every policy.
    """
    from .analysis.sweep import sweep as run_sweep
    from .analysis.sweep import write_sweep
    from .cli import exit_on_flowsim_error

    with exit_on_flowsim_error():
        policy = _one_policy(policy, "a sweep")
        _check_out(out)
        result = run_sweep(
            scenario, set_, metric=metric, replications=replications, seed=seed, policy=policy, workers=workers,
            progress=_progress(quiet),
        )  # fmt: skip
    text = text_table(result, "sweep")
    _show(result, text, None, "sweep")
    if out is not None:
        with exit_on_flowsim_error():
            try:
                lines = write_sweep(result, out)
            except OSError as error:
                from .store import write_failed

                raise write_failed(out, error) from None
        for line in lines:
            typer.echo(line)


