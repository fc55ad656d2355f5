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

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .format import money

if TYPE_CHECKING:  # pandas only for the hints: `flowsim --help` should start fast
    import pandas as pd

__all__ = ["sweep", "whatif_app"]

whatif_app = typer.Typer(
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
_REPLICATIONS = typer.Option(100, "--replications", "-n", min=1, help="Worlds simulated per scenario compared.")
_SEED = typer.Option(None, "--seed", help="Seed of the worlds (default: the scenario's).")
_WORKERS = typer.Option(None, "--workers", "-w", min=1, help="Local processes (default: all cores).")
_POLICY = typer.Option(None, "--policy", help="The one policy simulated (default: the scenario's first).")
_OUT = typer.Option(
    None, "--out", "-o",
    help="Also write the tables as CSV and the answer as a page, whatif_<question>.html, into this folder.",
)  # fmt: skip
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr.")


def _progress(quiet: bool) -> Callable[[str], None] | None:
    if quiet:
        return None
    return lambda label: typer.echo(f"simulating {label} ...", err=True)


# --------------------------------------------------------------- text tables


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.0%}"


def _num(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.1f}"


def _signed(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else ("+" if x > 0 else "") + money(x)


def _ci(fmt: Callable[[float], str], prefix: str) -> Callable[[pd.Series], str]:
    """A cell ``mean [low, high]`` from the columns ``<prefix>_mean``, ``_ci_low``, ``_ci_high``."""

    def cell(row: pd.Series) -> str:
        mean, low, high = row[f"{prefix}_mean"], row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"]
        if mean is None or math.isnan(mean):
            return ""
        if math.isnan(low) or math.isnan(high):
            return fmt(mean)
        return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"

    return cell


def _render(table: pd.DataFrame, columns: list[tuple[str, Callable[[pd.Series], str]]]) -> str:
    """A plain-text table: a header, then one line per row, columns left-aligned."""
    cells = [[header for header, _ in columns]]
    cells += [[str(get(row)) for _, get in columns] for _, row in table.iterrows()]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells)


def _show(result, text: str, out: Path | None, name: str) -> None:
    settings = result.settings
    typer.echo(
        f"{settings['scenario']} ({settings['source']}): policy {settings['policy']}, "
        f"{settings['replications']} worlds, seed {settings['seed']}; money over the horizon "
        f"({settings['horizon']:g} {settings['time_unit']}s), [95% CI]"
    )
    typer.echo("")
    typer.echo(result.answer)
    typer.echo("")
    typer.echo(text)
    for note in result.notes:
        typer.echo(f"note: {note}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        result.table.to_csv(out / f"{name}.csv", index=False)
        written = [out / f"{name}.csv"]
        totals = getattr(result, "totals", None)
        if totals is not None and len(totals):
            totals.to_csv(out / f"{name}_totals.csv", index=False)
            written.append(out / f"{name}_totals.csv")
        (out / f"{name}.html").write_text(_page(result, name))
        written.append(out / f"{name}.html")
        typer.echo("wrote " + ", ".join(map(str, written)))


# Per what-if: the ranked column drawn (a forest of means with 95% CIs), its rows, axis label, title, caption.
_FIGURES = {
    "whatif_capacity": (
        "value_change", "team", lambda r: r.table,
        "change in value delivered (95% CI)", "Value of the capacity change, per team",
        "Each dot is the paired change in value delivered when that team gets the change, in the same worlds; "
        "the bar is its 95% CI: green when the whole interval is a gain, grey when it straddles zero.",
    ),
    "whatif_stop": (
        "net", "project", lambda r: r.table,
        "net change in portfolio value if stopped now (95% CI)", "Stopping a project: what the portfolio gains",
        "Top first: the project we would miss least. Net = what the freed capacity brings the others minus the "
        "project's own lost value; right of zero, stopping it pays.",
    ),
    "whatif_admit": (
        "cost", "project", lambda r: r.table[r.table["role"] != "initiative"],
        "value delayed by the initiative (95% CI)", "What the initiative delays, per project",
        "Each dot is the value another project loses, in the same worlds, when the initiative is admitted; "
        "the bar is its 95% CI.",
    ),
}


def _figure(result, name: str) -> str:
    """The what-if's ranked answer as an embedded figure ('' for kinds without one)."""
    spec = _FIGURES.get(name)
    if spec is None:
        return ""
    from . import plots
    from .report import embed_figure

    column, label, rows, xlabel, title, caption = spec
    shown = rows(result)
    if not len(shown):
        return ""
    ax = plots.ranked_effects(shown, column, label=label, xlabel=xlabel, title=title)
    html = embed_figure(ax.figure, title, caption)
    plots.plt.close(ax.figure)
    return html


def _page(result, name: str) -> str:
    """The answer and its tables as a self-contained page in the report's style."""
    from html import escape

    from .report import analysis_page, table_number

    settings = result.settings
    title = f"flowsim {name.replace('_', ' ')}: {settings['scenario']}"
    facts = (
        f"Policy {settings['policy']}, {settings['replications']} paired worlds, seed {settings['seed']}; "
        f"money over the horizon ({settings['horizon']:g} {settings['time_unit']}s)."
    )
    tables = [_figure(result, name), result.table.to_html(index=False, float_format=table_number, border=0)]
    totals = getattr(result, "totals", None)
    if totals is not None and len(totals):
        tables.append("<h3>Portfolio</h3>" + totals.to_html(index=False, float_format=table_number, border=0))
    notes = "".join(f"<li>{escape(note)}</li>" for note in result.notes)
    rows = "team" if name == "whatif_capacity" else "project"
    return analysis_page(
        title,
        f"<p class='sub'>{escape(facts)}</p><p><strong>{escape(result.answer)}</strong></p>"
        f"<h3>By {rows}</h3>{''.join(tables)}{f'<ul>{notes}</ul>' if notes else ''}",
        settings.get("scenario_hash"),
    )


# ------------------------------------------------------------------ commands


@whatif_app.command()
def admit(
    scenario: Path = _SCENARIO,
    project: str = typer.Option(
        ..., "--project", "-p", help="A YAML file holding one new project, or the id of a listed project."
    ),
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: str = _POLICY,
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
        result = run_admit(
            scenario, project, replications=replications, seed=seed, policy=policy, workers=workers,
            progress=_progress(quiet),
        )  # fmt: skip
    unit = result.settings["time_unit"]
    table = result.table
    tol = 1e-9 * max(1.0, result.settings["horizon"])
    affected = table[(table["role"].isin(["initiative", "dependant"])) | (table["delay_mean"].abs() > tol)
                     | (table["cost_mean"].abs() > 1e-6)]  # fmt: skip
    text = _render(affected, [
        ("project", lambda r: r["project"]),
        ("role", lambda r: r["role"]),
        (f"delay ({unit}s)", _ci(_num, "delay")),
        ("delayed in", lambda r: _pct(r["p_delayed"]) if r["role"] not in ("initiative", "dependant") else ""),
        ("cost (value without - with)", _ci(money, "cost")),
    ])  # fmt: skip
    unaffected = len(table) - len(affected)
    if unaffected:
        text += f"\n({unaffected} other project row{'s' if unaffected != 1 else ''} unaffected: delay 0, cost 0)"
    _show(result, text, out, "whatif_admit")


@whatif_app.command()
def stop(
    scenario: Path = _SCENARIO,
    project: list[str] = typer.Option(
        None, "--project", "-p", help="A listed project to consider stopping (repeat); default: all active at time 0."
    ),
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: str = _POLICY,
    out: Path = _OUT,
    quiet: bool = _QUIET,
) -> None:
    """Which active projects, if stopped today, would we miss least?

    For each project active at time 0 (arrived at 0 or in flight), or each
    named, the change in total value delivered if it (and its dependants) were
    stopped now: its own lost value against what its freed capacity brings the
    others. Ranked: the first would be missed least.
    """
    from .analysis.whatif import stop as run_stop
    from .cli import exit_on_flowsim_error

    with exit_on_flowsim_error():
        result = run_stop(
            scenario, project or None, replications=replications, seed=seed, policy=policy, workers=workers,
            progress=_progress(quiet),
        )  # fmt: skip
    text = _render(result.table, [
        ("project", lambda r: r["project"] + (f" (+{r['also_stopped']})" if r["also_stopped"] else "")),
        ("net change if stopped", _ci(_signed, "net")),
        ("own value lost", _ci(money, "lost")),
        ("freed capacity brings", _ci(_signed, "freed")),
        ("better in", lambda r: _pct(r["p_better"])),
    ])  # fmt: skip
    _show(result, text, out, "whatif_stop")


@whatif_app.command()
def capacity(
    scenario: Path = _SCENARIO,
    team: list[str] = typer.Option(None, "--team", "-t", help="A team to change (repeat); default: every team."),
    delta: int = typer.Option(1, "--delta", "-d", help="Capacity units added (negative: removed), at every date."),
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: str = _POLICY,
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
        result = run_capacity(
            scenario, team or None, delta, replications=replications, seed=seed, policy=policy, workers=workers,
            progress=_progress(quiet),
        )  # fmt: skip
    text = _render(result.table, [
        ("team", lambda r: r["team"] + (" *" if r["constraint"] else "")),
        ("capacity", lambda r: f"{r['capacity']} -> {r['capacity'] + r['delta']}"),
        (f"value of {delta:+d}", _ci(_signed, "value_change")),
        ("per unit", lambda r: _signed(r["value_per_unit_mean"])),
        ("better in", lambda r: _pct(r["p_better"])),
        ("utilisation", lambda r: _pct(r["utilisation"])),
        ("mean queue", lambda r: _num(r["mean_queue"])),
    ])  # fmt: skip
    _show(result, text, out, "whatif_capacity")


@whatif_app.command()
def benefits(
    scenario: Path = _SCENARIO,
    replications: int = _REPLICATIONS,
    seed: int = _SEED,
    workers: int = _WORKERS,
    policy: str = _POLICY,
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
        result = run_benefits(
            scenario, replications=replications, seed=seed, policy=policy, workers=workers, progress=_progress(quiet)
        )
    text = _render(result.table, [
        ("project", lambda r: r["project"]),
        ("target", lambda r: f"{_num(r['target'])} ({r['target_rule']})"),
        ("on time", lambda r: _pct(r["p_on_time"])),
        ("P50 delivery", lambda r: _num(r["p50_delivery"])),
        ("business case", lambda r: money(r["business_case"])),
        ("value delivered", _ci(money, "value")),
        ("realised", lambda r: _pct(r["p_realised"])),
    ])  # fmt: skip
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
    policy: str = typer.Option(
        None, "--policy", help="The one policy simulated (default: the policy the keys edit, else the first)."
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
    best.
    """
    from .analysis.sweep import sweep as run_sweep
    from .analysis.sweep import write_sweep
    from .cli import exit_on_flowsim_error

    with exit_on_flowsim_error():
        result = run_sweep(
            scenario, set_, metric=metric, replications=replications, seed=seed, policy=policy, workers=workers,
            progress=_progress(quiet),
        )  # fmt: skip
    from .analysis.paired import MONEY_METRICS

    fmt = money if metric in MONEY_METRICS else (lambda x: "n/a" if math.isnan(x) else f"{x:.3g}")
    keys = result.settings["keys"]
    text = _render(result.table, [
        *((key, (lambda r, k=key: str(r[k]))) for key in keys),
        (metric, lambda r: f"{fmt(r['mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"),
        ("vs first", lambda r: "reference" if r.name == 0 else f"{fmt(r['diff'])} [{fmt(r['diff_ci_low'])}, "
                                                                f"{fmt(r['diff_ci_high'])}]"),
        ("better in", lambda r: "" if math.isnan(r["better_share"]) else _pct(r["better_share"])),
        ("best", lambda r: "*" if r["best"] else ""),
    ])  # fmt: skip
    _show(result, text, None, "sweep")
    if out is not None:
        with exit_on_flowsim_error():
            for line in write_sweep(result, out):
                typer.echo(line)
