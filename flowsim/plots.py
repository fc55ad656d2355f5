"""Plots of a run's tidy tables (matplotlib only; nothing here is shown, only drawn).

Every function takes the Results frames (DESIGN section 9) and ``ax=None``:
it draws into ``ax`` when given, else into a new figure, and returns the axes.
Money is in the scenario's currency and shown as 1.2k / 3.4M / 5B on the axes;
times are in the scenario's time unit, named by the ``unit`` argument
(``"week"`` or ``"day"``).  Policies keep the same colour in every plot: the
order of the ``policy`` categories (the scenario's order, baseline first).

>>> import flowsim, flowsim.plots as fp                            # doctest: +SKIP
>>> r = flowsim.Results.load("results/default")                  # doctest: +SKIP
>>> fp.value_over_time(r.timeline).figure.savefig("value.png")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter

from .format import money
from .report import observed_constraint
from .results import DIRECTIONS

__all__ = [
    "capacity_over_time",
    "cumulative_flow",
    "cycle_time_distribution",
    "metric_vs_parameter",
    "money_formatter",
    "policy_colors",
    "policy_differences",
    "queue_scale",
    "ranked_effects",
    "team_load",
    "team_queue",
    "value_over_time",
]

# Metrics whose values are money (formatted with flowsim.format.money on the axes).
MONEY_METRICS = ("value_delivered", "value_ideal", "value_delayed", "npv", "npv_ideal", "npv_delay_cost")
LABELS = {
    "value_delivered": "value delivered",
    "value_ideal": "value with no delay",
    "value_delayed": "value delayed",
    "npv": "NPV",
    "npv_ideal": "NPV with no delay",
    "npv_delay_cost": "cost of delay (NPV)",
    "throughput": "throughput",
    "delivered": "projects delivered",
    "cycle_time_mean": "mean cycle time",
    "cycle_time_p90": "P90 cycle time",
}


def money_formatter() -> FuncFormatter:
    """Tick formatter writing amounts as flowsim.format.money does: 1.2e6 -> '1.2M'."""
    return FuncFormatter(lambda value, _pos: money(value))


def _units(unit: str) -> str:
    return f"{unit}s"


def _text(name) -> str:
    """A scenario name safe as matplotlib text: '$' would start mathtext, a leading '_' hides legend entries."""
    text = str(name).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def _axes(ax: Axes | None, figsize=(9, 4.5)) -> Axes:
    if ax is None:
        _fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _policies(frame: pd.DataFrame) -> list[str]:
    """Policies present in ``frame``, in the order of the categories (the scenario's order)."""
    column = frame["policy"]
    present = set(column.unique())
    order = list(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype) else list(column.unique())
    return [p for p in order if p in present]


def policy_colors(policies) -> dict[str, tuple]:
    """A stable colour per policy, by position (tab10, then tab20 beyond ten policies)."""
    policies = list(policies)
    cmap = plt.get_cmap("tab10" if len(policies) <= 10 else "tab20")
    return {p: cmap(i % cmap.N) for i, p in enumerate(policies)}


def _one_policy(frame: pd.DataFrame, policy: str | None) -> tuple[pd.DataFrame, str]:
    policies = _policies(frame)
    if policy is None:
        if not policies:
            raise ValueError("The frame has no rows: nothing to plot.")
        policy = policies[0]
    elif policy not in policies:
        raise ValueError(f"The 'policy' parameter must be one of {policies}. Got {policy!r} instead.")
    return frame[frame["policy"] == policy], policy


def _label_axis(axis, metric: str) -> None:
    if metric in MONEY_METRICS:
        axis.set_major_formatter(money_formatter())


# --------------------------------------------------------------------------- over time


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def value_over_time(
    timeline: pd.DataFrame,
    ax: Axes | None = None,
    *,
    unit: str = "week",
    metrics=("value_delivered", "value_delayed"),
) -> Axes:
    """Cumulative value delivered (solid) and value delayed (dashed) over time, per policy.

    Lines are the mean over replications at each timeline point; the shaded
    band runs from the 10th to the 90th percentile across replications.
    Money on the y axis, time in ``unit``s on the x axis.  Draws one line and
    one band per policy and metric.
    """
    ax = _axes(ax)
    policies = _policies(timeline)
    colors = policy_colors(policies)
    styles = dict(zip(metrics, ("-", "--", ":", "-."), strict=False))
    grouped = timeline.groupby(["policy", "time"], observed=True)[list(metrics)]
    mean = grouped.mean()
    low = grouped.quantile(0.1)
    high = grouped.quantile(0.9)
    for order, policy in enumerate(policies):
        for metric in metrics:
            m, lo, hi = mean.loc[policy, metric], low.loc[policy, metric], high.loc[policy, metric]
            label = _text(policy) if metric == metrics[0] else None
            ax.fill_between(m.index, lo.to_numpy(), hi.to_numpy(), color=colors[policy], alpha=0.15, linewidth=0)
            # A marker of its own every eighth of the curve, staggered by policy: policies whose
            # curves coincide stay visible (one would otherwise hide under another).
            step = max(len(m) // 8, 1)
            ax.plot(m.index, m.to_numpy(), color=colors[policy], linestyle=styles[metric], label=label,
                    marker=_MARKERS[order % len(_MARKERS)], markersize=4,
                    markevery=(order * step // max(len(policies), 1) % step, step))  # fmt: skip
    ax.yaxis.set_major_formatter(money_formatter())
    ax.set_xlabel(f"time ({_units(unit)})")
    ax.set_ylabel("money (cumulative)")
    ax.set_title("Value delivered and delayed over time")
    ax.set_xlim(left=0)
    # One legend: colours name the policies, line styles the metrics (keys drawn only in the legend).
    by_policy, _labels = ax.get_legend_handles_labels()
    keys = [Line2D([], [], color="0.3", linestyle=styles[m], label=LABELS.get(m, m)) for m in metrics]
    keys.append(Patch(color="0.3", alpha=0.15, label="P10-P90 across replications"))
    ax.legend(handles=by_policy + keys, loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def cumulative_flow(timeline: pd.DataFrame, policy: str | None = None, ax: Axes | None = None, *, unit="week") -> Axes:
    """Cumulative flow diagram of one policy (default: the first, the baseline).

    Stacked bands of project counts, each the mean over replications at each
    timeline point: delivered; cancelled (when any); in progress (``wip``:
    admitted, not finished); waiting in the funnel (arrived, not admitted);
    rejected (when any).  The top of the stack is the cumulative number
    arrived (black line); the cumulative number admitted is the dashed line.
    The vertical gap between two lines is a queue; the horizontal gap, a time.
    """
    ax = _axes(ax)
    rows, policy = _one_policy(timeline, policy)
    cols = ["arrived", "admitted", "delivered", "cancelled", "rejected", "wip", "in_system"]
    mean = rows.groupby("time")[cols].mean()
    t = mean.index.to_numpy()
    delivered, cancelled, rejected = mean["delivered"], mean["cancelled"], mean["rejected"]
    waiting = (mean["in_system"] - mean["wip"]).clip(lower=0)
    bands = [
        ("delivered", delivered, "#4c9a2a"),
        ("cancelled", cancelled, "#9e9e9e"),
        ("in progress (WIP)", mean["wip"], "#f2a541"),
        ("waiting in funnel", waiting, "#8fb8de"),
        ("rejected", rejected, "#d1c4e9"),
    ]
    bottom = np.zeros(len(t))
    for label, height, color in bands:
        if label in ("cancelled", "rejected") and not (height > 0).any():
            continue
        top = bottom + height.to_numpy()
        ax.fill_between(t, bottom, top, color=color, alpha=0.85, linewidth=0, label=label)
        bottom = top
    ax.plot(t, mean["arrived"].to_numpy(), color="black", linewidth=1.2, label="arrived (cumulative)")
    ax.plot(t, mean["admitted"].to_numpy(), color="black", linestyle="--", linewidth=1, label="admitted (cumulative)")
    ax.set_xlabel(f"time ({_units(unit)})")
    ax.set_ylabel("projects (mean over replications)")
    ax.set_title(f"Cumulative flow: {_text(policy)}")
    ax.set_xlim(t.min(), t.max())
    ax.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    # Legend in stack order, top band first, as the eye reads the chart.
    ax.legend(handles[::-1], labels[::-1], loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------- teams


def capacity_over_time(teams: Mapping, times) -> pd.DataFrame:
    """Capacity units of each team at each of ``times`` (index: time; columns: teams).

    ``teams`` maps a team name to its capacity: a number, a scenario team
    (``capacity`` and ``capacity_changes``), or the same as a dict (as in
    ``Results.manifest["scenario"]["teams"]``).  A change applies from its ``at``.
    """
    times = np.asarray(times, dtype=float)
    out = {}
    for name, spec in teams.items():
        if isinstance(spec, int | float):
            base, changes = float(spec), []
        elif isinstance(spec, Mapping):
            base, changes = float(spec["capacity"]), spec.get("capacity_changes") or []
        else:
            base, changes = float(spec.capacity), getattr(spec, "capacity_changes", None) or []
        capacity = np.full(len(times), base)
        for change in changes:
            at = change["at"] if isinstance(change, Mapping) else change.at
            units = change["capacity"] if isinstance(change, Mapping) else change.capacity
            capacity[times >= float(at)] = float(units)
        out[name] = capacity
    return pd.DataFrame(out, index=pd.Index(times, name="time"))


def _team_matrix(team_timeline: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean of ``column`` over replications: rows teams (scenario order), columns timeline points."""
    frame = team_timeline.groupby(["team", "time"], observed=True)[column].mean().unstack("time")
    if isinstance(team_timeline["team"].dtype, pd.CategoricalDtype):
        frame = frame.reindex([t for t in team_timeline["team"].cat.categories if t in frame.index])
    return frame


def _timeline_evidence(rows: pd.DataFrame, teams: Mapping | None) -> pd.DataFrame:
    """A ``teams``-like frame (utilisation, mean and max queue per replication) from timeline samples."""
    rows = rows.assign(team=rows["team"].astype(str))
    if teams is not None:
        capacity = capacity_over_time(teams, np.unique(rows["time"]))
        capacity = capacity.rename_axis(columns="team").stack().rename("capacity").reset_index()
        rows = rows.merge(capacity, on=["time", "team"], how="left")
    else:
        rows = rows.assign(capacity=np.nan)
    grouped = rows.groupby(["policy", "replication", "team"], observed=True)
    frame = grouped.agg(busy=("busy", "sum"), capacity=("capacity", "sum"),
                        mean_queue=("queue", "mean"), max_queue=("queue", "max"))  # fmt: skip
    frame["utilisation"] = frame["busy"] / frame["capacity"].where(frame["capacity"] > 0)
    return frame.reset_index()


def _heatmap(ax, matrix: pd.DataFrame, *, cmap, vmax, label: str, constraint, unit: str, title: str) -> Axes:
    times = matrix.columns.to_numpy(dtype=float)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    values = np.ma.masked_invalid(matrix.to_numpy(dtype=float))
    extent = (times[0] - step / 2, times[-1] + step / 2, len(matrix) - 0.5, -0.5)
    image = ax.imshow(values, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=vmax, extent=extent)
    over = bool(values.count()) and float(values.max()) > vmax
    ax.figure.colorbar(image, ax=ax, label=label, extend="max" if over else "neither", pad=0.01)
    names = [str(t) for t in matrix.index]
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([_text(n) + (" (constraint)" if n == constraint else "") for n in names])
    if constraint in names:
        row = names.index(constraint)
        ax.get_yticklabels()[row].set_fontweight("bold")
        ax.get_yticklabels()[row].set_color("#b71c1c")
        ax.add_patch(Rectangle((extent[0], row - 0.5), extent[1] - extent[0], 1, fill=False,
                               edgecolor="#b71c1c", linewidth=2, clip_on=False))  # fmt: skip
    ax.set_xlabel(f"time ({_units(unit)})")
    ax.set_title(title)
    return ax


def team_load(
    team_timeline: pd.DataFrame,
    teams: Mapping,
    policy: str | None = None,
    ax: Axes | None = None,
    *,
    unit: str = "week",
    constraint: str | None = None,
) -> Axes:
    """Heatmap of each team's load over time for one policy (default: the first).

    Load = mean over replications of busy units / capacity units at each
    timeline point (1 = every unit busy; above 1 only while work started
    before a capacity drop finishes; blank where capacity is 0).  ``teams``
    gives capacities, as for ``capacity_over_time``.  The observed constraint
    (``constraint``, default: the top team of ``observed_constraint`` computed
    from these samples) is outlined and its label marked "(constraint)".
    """
    ax = _axes(ax, figsize=(10, 0.45 * team_timeline["team"].nunique() + 1.5))
    rows, policy = _one_policy(team_timeline, policy)
    busy = _team_matrix(rows, "busy")
    capacity = capacity_over_time(teams, busy.columns).T.reindex(busy.index)
    load = busy / capacity.where(capacity > 0).to_numpy()
    if constraint is None:
        constraint = observed_constraint(_timeline_evidence(rows, teams), rows)["team"].iloc[0]
    return _heatmap(ax, load, cmap="YlOrRd", vmax=1.0, label="busy / capacity", constraint=constraint,
                    unit=unit, title=f"Team load: {_text(policy)}")  # fmt: skip


def team_queue(
    team_timeline: pd.DataFrame,
    policy: str | None = None,
    ax: Axes | None = None,
    *,
    unit: str = "week",
    constraint: str | None = None,
    teams: Mapping | None = None,
    vmax: float | None = None,
) -> Axes:
    """Heatmap of each team's queue over time for one policy (default: the first).

    Queue = mean over replications of the number of stages waiting for the
    team at each timeline point.  The observed constraint is marked as in
    ``team_load`` (computed from these samples, with utilisation from
    ``teams`` capacities when given, when ``constraint`` is None; a name that
    is no team's marks none).  ``vmax`` is the queue at the darkest colour:
    give several policies' heatmaps one scale, ``queue_scale`` of them, so
    that equal colours mean equal queues; default: this policy's own.
    """
    ax = _axes(ax, figsize=(10, 0.45 * team_timeline["team"].nunique() + 1.5))
    rows, policy = _one_policy(team_timeline, policy)
    queue = _team_matrix(rows, "queue")
    if constraint is None:
        constraint = observed_constraint(_timeline_evidence(rows, teams), rows)["team"].iloc[0]
    if vmax is None:
        vmax = queue_scale(rows)
    return _heatmap(ax, queue, cmap="Blues", vmax=vmax, label="stages waiting", constraint=constraint,
                    unit=unit, title=f"Team queues: {_text(policy)}")  # fmt: skip


def queue_scale(team_timeline: pd.DataFrame, policies=None) -> float:
    """The longest mean queue (over replications) of any team at any timeline point under any of
    ``policies`` (default: every policy in the frame), at least 1: one colour scale for their
    ``team_queue`` heatmaps."""
    rows = team_timeline if policies is None else team_timeline[team_timeline["policy"].isin(list(policies))]
    if not len(rows):
        return 1.0
    queue = rows.groupby(["policy", "team", "time"], observed=True)["queue"].mean()
    return max(float(np.nanmax(queue.to_numpy(dtype=float))), 1.0) if len(queue) else 1.0


# --------------------------------------------------------------------------- distributions and differences


_ECDF_POINTS = 2000


def cycle_time_distribution(projects: pd.DataFrame, ax: Axes | None = None, *, unit: str = "week") -> Axes:
    """Empirical CDF of cycle time (arrival to delivery, in ``unit``s) per policy.

    Pools the projects delivered within the horizon over all replications
    (one step line per policy; the legend gives the median and how many).
    A curve further left delivers faster; read the P90 where a curve crosses 0.9.
    Projects never delivered are not in the curves: compare the counts.
    """
    ax = _axes(ax)
    delivered = projects[(projects["status"] == "delivered") & projects["cycle_time"].notna()]
    policies = _policies(projects)
    colors = policy_colors(policies)
    for policy in policies:
        values = np.sort(delivered.loc[delivered["policy"] == policy, "cycle_time"].to_numpy(dtype=float))
        if not len(values):
            continue
        share = np.arange(1, len(values) + 1) / len(values)
        label = f"{_text(policy)} (median {np.median(values):.1f}, n={len(values)})"
        # Past _ECDF_POINTS steps a curve is drawn through evenly spaced ones (the largest kept):
        # no visible difference (at most 1/_ECDF_POINTS of height), and a large run's report
        # does not draw millions of vertices.
        keep = np.unique(np.linspace(0, len(values) - 1, min(len(values), _ECDF_POINTS)).round().astype(int))
        ax.step(np.r_[0.0, values[keep]], np.r_[0.0, share[keep]], where="post", color=colors[policy], label=label)
    ax.axhline(0.9, color="0.5", linewidth=0.8, linestyle=":")
    ax.set_xlabel(f"cycle time ({_units(unit)}, arrival to delivery)")
    ax.set_ylabel("share of delivered projects")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_title("Cycle time of delivered projects")
    if ax.get_lines()[:-1]:  # the curves drawn, besides the P90 line
        ax.legend(loc="lower right", fontsize="small", title="policy")
    else:  # an empty legend is a matplotlib warning on the user's terminal
        ax.text(0.5, 0.5, "no project delivered", transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.grid(alpha=0.3)
    return ax


def policy_differences(
    compare_df: pd.DataFrame,
    metric: str = "value_delivered",
    ax: Axes | None = None,
    *,
    baseline: str | None = None,
    unit: str = "week",
) -> Axes:
    """Forest plot of each policy's paired difference from the baseline, with its 95% CI.

    ``compare_df`` is ``Results.compare()`` (columns ``policy``, ``metric``,
    ``diff``, ``diff_ci_low``, ``diff_ci_high``, ``better_share``).  A point right
    of the zero line means the policy has more of ``metric`` than the baseline
    in the same worlds; green when the whole CI is on the better side, red when
    on the worse side, grey when it straddles zero.  One error bar per policy,
    the first at the top.  Money metrics on a money axis.
    """
    rows = compare_df[compare_df["metric"] == metric].reset_index(drop=True)
    ax = _axes(ax, figsize=(9, 0.55 * len(rows) + 1.6))
    direction = DIRECTIONS.get(metric, 0)
    y = np.arange(len(rows))[::-1]
    for pos, row in zip(y, rows.itertuples(), strict=True):
        sign = 0 if not direction else direction * (np.sign(row.diff_ci_low) + np.sign(row.diff_ci_high)) / 2
        color = "#2e7d32" if sign >= 1 else "#c62828" if sign <= -1 else "0.45"
        err = [[row.diff - row.diff_ci_low], [row.diff_ci_high - row.diff]]
        ax.errorbar(row.diff, pos, xerr=np.nan_to_num(err), fmt="o", color=color, capsize=4, markersize=6)
        if direction and not np.isnan(row.better_share):
            ax.annotate(f"better in {row.better_share:.0%}", (row.diff_ci_high, pos), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize="small", color=color)  # fmt: skip
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels([_text(p) for p in rows["policy"]])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    _label_axis(ax.xaxis, metric)
    name = LABELS.get(metric, metric)
    if metric.startswith("cycle_time"):
        name += f" ({_units(unit)})"
    ax.set_xlabel(f"difference in {name} vs {_text(baseline) if baseline else 'the baseline'} (95% CI)")
    ax.set_title(f"Paired difference from the baseline: {LABELS.get(metric, metric)}")
    ax.margins(x=0.15)
    ax.grid(axis="x", alpha=0.3)
    return ax


def metric_vs_parameter(
    df: pd.DataFrame,
    parameter: str,
    metric: str,
    ax: Axes | None = None,
    *,
    best: str | None = None,
) -> Axes:
    """A metric's mean (line, markers) and CI (band) against a swept parameter; the best value starred.

    ``df`` has one row per parameter value with columns ``<parameter>`` (or
    ``value``), ``mean``, ``ci_low``, ``ci_high``; rows of other metrics are
    dropped when it has a ``metric`` column.  ``best`` is ``"max"`` or
    ``"min"``; by default the metric's direction (more value is better,
    longer cycle time worse), else the maximum.  Numeric parameters on a
    numeric axis, others (e.g. policy names) as categories in row order.
    """
    if "metric" in df.columns:
        df = df[df["metric"] == metric]
    x_column = parameter if parameter in df.columns else "value"
    if x_column not in df.columns:
        raise ValueError(f"The 'df' parameter of metric_vs_parameter must have a {parameter!r} column. "
                         f"Got columns {list(df.columns)} instead.")  # fmt: skip
    if best not in (None, "max", "min"):
        raise ValueError(f"The 'best' parameter of metric_vs_parameter must be 'max', 'min' or None. Got {best!r}.")
    ax = _axes(ax, figsize=(8, 4.5))
    numeric = pd.api.types.is_numeric_dtype(df[x_column])
    rows = df.sort_values(x_column) if numeric else df
    x = rows[x_column].to_numpy(dtype=float) if numeric else np.arange(len(rows))
    mean = rows["mean"].to_numpy(dtype=float)
    ax.fill_between(x, rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float),
                    color="C0", alpha=0.2, linewidth=0, label="95% CI")  # fmt: skip
    ax.plot(x, mean, "o-", color="C0", label=f"mean {LABELS.get(metric, metric)}")
    if best is None:
        best = "min" if DIRECTIONS.get(metric, 0) < 0 else "max"
    if len(mean) and not np.isnan(mean).all():
        i = int(np.nanargmax(mean) if best == "max" else np.nanargmin(mean))
        shown = money(mean[i]) if metric in MONEY_METRICS else f"{mean[i]:.3g}"
        where = rows[x_column].iloc[i]
        ax.plot([x[i]], [mean[i]], marker="*", markersize=16, color="#d62728", linestyle="none",
                label=f"best: {_text(parameter)} = {_text(where)} ({shown})")  # fmt: skip
    if not numeric:
        ax.set_xticks(x)
        ax.set_xticklabels([_text(v) for v in rows[x_column]])
    _label_axis(ax.yaxis, metric)
    ax.set_xlabel(_text(parameter))
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.set_title(f"{LABELS.get(metric, metric)} against {_text(parameter)}")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def ranked_effects(
    table: pd.DataFrame,
    column: str,
    ax: Axes | None = None,
    *,
    label: str = "project",
    xlabel: str | None = None,
    title: str | None = None,
    top: int = 15,
) -> Axes:
    """Forest plot of a what-if answer: ``<column>_mean`` with its 95% CI
    (``<column>_ci_low``, ``<column>_ci_high``) per row of ``table``, in the
    table's order (the analyses rank their rows), the first ``top`` rows, first
    at the top, labelled by ``label``.  Money on the axis; a zero line; green
    where the whole CI is above zero, red where below, grey when it straddles it.
    """
    rows = table.head(top).reset_index(drop=True)
    mean = rows[f"{column}_mean"].to_numpy(dtype=float)
    low = rows[f"{column}_ci_low"].to_numpy(dtype=float)
    high = rows[f"{column}_ci_high"].to_numpy(dtype=float)
    ax = _axes(ax, figsize=(9, 0.42 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    for pos, m, lo, hi in zip(y, mean, low, high, strict=True):
        color = "#2e7d32" if lo > 0 else "#c62828" if hi < 0 else "0.45"
        err = np.nan_to_num([[m - lo], [hi - m]])
        ax.errorbar(m, pos, xerr=err, fmt="o", color=color, capsize=4, markersize=6)
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels([_text(v) for v in rows[label]])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.xaxis.set_major_formatter(money_formatter())
    ax.set_xlabel(xlabel or f"{_text(column)} (95% CI)")
    if title:
        ax.set_title(title)
    ax.margins(x=0.1)
    ax.grid(axis="x", alpha=0.3)
    return ax
