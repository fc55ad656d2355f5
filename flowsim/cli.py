"""The ``flowsim`` command line (DESIGN section 10).

Bad input never shows a traceback: every command runs its work inside
``exit_on_flowsim_error()``, which prints each problem on its own line to
stderr and exits with ``EXIT_BAD_INPUT`` (2).  A usage error click finds while
parsing (a bad value, an unknown option) is one line and exit 2 as well
(``flowsim.cli_errors``, through the command classes of ``flowsim.cli_help``).
Commands are added to ``app`` with ``@app.command()``; ``main`` is the
console-script entry point.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from . import __version__
from .cli_errors import EXIT_BAD_INPUT
from .cli_help import FlowsimCommand, FlowsimGroup
from .errors import FlowsimError, ScenarioError, show
from .scenario import RuleRef, Scenario, load_scenario

app = typer.Typer(
    name="flowsim",
    cls=FlowsimGroup,
    help="Simulate a portfolio of projects competing for constrained teams, and compare policies.",
    no_args_is_help=True,
    add_completion=False,
    # A genuine bug should still show a traceback, but not every local variable.
    pretty_exceptions_show_locals=False,
)


@contextmanager
def exit_on_flowsim_error() -> Iterator[None]:
    """Turn a ``FlowsimError`` into its messages on stderr and exit code 2."""
    try:
        yield
    except FlowsimError as error:
        lines = [str(p) for p in error.problems] if isinstance(error, ScenarioError) else [str(error)]
        for line in lines:
            typer.echo(line, err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flowsim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    rules: list[str] = typer.Option(
        None, "--rules", help="A .py file or module of your own rules to import first (repeatable; docs/policies.md)."
    ),
) -> None:
    """Simulate a portfolio of projects competing for constrained teams, and compare policies."""
    from .policies.plugins import import_rules

    with exit_on_flowsim_error():
        for spec in rules or ():
            import_rules(spec)


@app.command(cls=FlowsimCommand)
def validate(scenario: Path = typer.Argument(..., help="The scenario file (YAML).")) -> None:
    """Check a scenario file and summarise it; exit 2 listing every problem found."""
    with exit_on_flowsim_error():
        loaded = load_scenario(scenario)
    typer.echo(summary(loaded))


@app.command(cls=FlowsimCommand)
def run(
    scenario: Path = typer.Argument(..., help="The scenario file (YAML)."),
    policy: list[str] = typer.Option(None, "--policy", help="Policy to run (repeat); default: all, first is baseline."),
    replications: int = typer.Option(
        None,
        "--replications",
        "-n",
        help="Number of worlds simulated (default 100; with --target-ci the minimum, default 30).",
    ),
    seed: int = typer.Option(None, "--seed", help="Seed of the worlds (default: the scenario's)."),
    workers: int = typer.Option(None, "--workers", "-w", help="Local processes (default: all cores)."),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler ADDRESS, or 'local' for a LocalCluster."),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default: results/<scenario file name>)."),
    resume: bool = typer.Option(False, "--resume", help="Complete an interrupted run in --out."),
    target_ci: float = typer.Option(
        None, "--target-ci", help="Stop once every paired 95% CI half-width <= X x the baseline's mean."
    ),
    target_metric: str = typer.Option(
        None, "--target-metric", help="The metric --target-ci judges (default value_delivered); only with --target-ci."
    ),
    max_replications: int = typer.Option(
        None, "--max-replications", help="Upper bound with --target-ci (default 1000)."
    ),
    timeline_step: float = typer.Option(None, "--timeline-step", help="Time between timeline points."),
    report: bool = typer.Option(False, "--report", help="Write report.html at the end."),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="No progress bar, results table or verdicts; with --report, only the report's path.",
    ),
) -> None:
    """Simulate every policy on the same worlds and write the run folder.

    Exit codes: 0 done, 2 bad input, 130 interrupted (partial results kept; add --resume).
    """
    from .cli_run import ProgressReporter, print_results, replacing_note, target_line
    from .runner import execute

    with exit_on_flowsim_error():
        loaded = load_scenario(scenario)
        folder = out if out is not None else Path("results") / scenario.stem
        if resume and not (folder / "manifest.json").is_file():
            typer.echo(f"note: no run to resume in {folder}/: starting it afresh", err=True)

        def replacing(old: dict) -> None:  # a fresh run replaces a folder's run: say which, even when quiet
            typer.echo(replacing_note(folder, old), err=True)

        try:
            with ProgressReporter(quiet, at_most=target_ci is not None) as progress:
                results = execute(
                    loaded, replications=replications, seed=seed, policies=policy or None, workers=workers,
                    scheduler=scheduler, out=folder, resume=resume, timeline_step=timeline_step,
                    target_ci=target_ci, target_metric=target_metric, max_replications=max_replications,
                    progress=progress, replacing=replacing,
                )  # fmt: skip
            results.write_summaries(folder)
            report_path = None
            if report:
                from .report import write_report

                report_path = write_report(folder)
        except KeyboardInterrupt:
            typer.echo(f"interrupted: partial results kept in {folder}/; complete them with --resume", err=True)
            raise typer.Exit(130) from None
        except OSError as error:
            from .store import write_failed

            raise write_failed(folder, error) from None
    if not quiet:
        if "target" in results.manifest:
            typer.echo(target_line(results.manifest["target"]))
        print_results(results, folder)
    if report_path is not None:
        typer.echo(f"report: {report_path}")


def summary(scenario: Scenario) -> str:
    """A short plain-text description of a valid scenario (what ``validate`` prints)."""
    unit = scenario.time_unit
    lines = [
        f"{scenario.name} ({scenario.source}): valid",
        f"horizon: {show(scenario.horizon)} {_units(unit, scenario.horizon)}",
        f"teams: {len(scenario.teams)}",
    ]
    width = max(map(len, scenario.teams))
    for name, team in scenario.teams.items():
        text = f"capacity {team.capacity}"
        for change in team.capacity_changes:
            text += f", {change.capacity} from {unit} {show(change.at)}"
        if team.focus == "shared":
            text += f", shared (switching {team.switching_curve().rule})"
        lines.append(f"  {name:<{width}}  {text}")
    lines.append(f"projects: {len(scenario.projects)} listed")
    if scenario.templates:
        lines.append(f"templates: {len(scenario.templates)} ({', '.join(scenario.templates)})")
    lines.append(f"arrivals: {len(scenario.arrivals)} {'stream' if len(scenario.arrivals) == 1 else 'streams'}")
    width = max((len(s.stream_name) for s in scenario.arrivals), default=0)
    for stream in scenario.arrivals:
        end = show(stream.end) if stream.end is not None else show(scenario.horizon)
        lines.append(
            f"  {stream.stream_name:<{width}}  template {stream.template}, {show(stream.rate)} per {unit}, "
            f"{unit}s {show(stream.start)}-{end}"
        )
    lines.append(f"policies: {len(scenario.policies)} (the first is the baseline)")
    width = max(map(len, scenario.policies))
    for name, policy in scenario.policies.items():
        parts = [f"intake {_rule(policy.intake)}", f"sequencing {_rule(policy.sequencing)}"]
        if policy.intervention is not None:
            parts.append(f"intervention {_rule(policy.intervention)}")
        parts += [flag for flag in ("preempt", "perfect_information") if getattr(policy, flag)]
        lines.append(f"  {name:<{width}}  {', '.join(parts)}")
    return "\n".join(lines)


def _units(unit: str, amount: float) -> str:
    return unit if amount == 1 else unit + "s"


def _rule(ref: RuleRef) -> str:
    if not ref.params:
        return ref.rule
    return f"{ref.rule}({', '.join(f'{k}={show(v)}' for k, v in ref.params.items())})"


@app.command(cls=FlowsimCommand)
def report(run_dir: Path = typer.Argument(..., metavar="DIR", help="A run folder written by flowsim run.")) -> None:
    """Write DIR/report.html: summary in money, verdicts, the observed constraint, projects at risk, plots."""
    from .report import write_report

    with exit_on_flowsim_error():
        if not run_dir.exists():
            raise FlowsimError(f"{run_dir}: must be a run folder with manifest.json, got no such folder")
        if not run_dir.is_dir():
            raise FlowsimError(f"{run_dir}: must be a run folder with manifest.json, got a file")
        if not (run_dir / "manifest.json").is_file():
            raise FlowsimError(f"{run_dir}: must be a run folder with manifest.json, got a folder without one")
        path = write_report(run_dir)
    typer.echo(f"report: {path}")


def _mount_analyses() -> None:
    # The analyses live in their own module; mounting here keeps one ``flowsim`` app.
    from .cli_analysis import sweep, whatif_app

    app.add_typer(whatif_app, name="whatif")
    app.command(cls=FlowsimCommand)(sweep)


_mount_analyses()


def main() -> None:
    """Console-script entry point (``flowsim = "flowsim.cli:main"``)."""
    app(prog_name="flowsim")


if __name__ == "__main__":
    main()
