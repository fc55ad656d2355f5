"""Plots draw what their data say: checked on small hand-made frames."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from flowsim import plots
from flowsim.report import observed_constraint

POLICIES = ["base", "p$1"]  # '$' would start mathtext if not escaped


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _cat(values, categories):
    return pd.Categorical(values, categories=categories)


def make_timeline(reps: int = 5, times: int = 11) -> pd.DataFrame:
    """Per policy, replication and time: value grows linearly with a per-replication slope."""
    rows = []
    for p, policy in enumerate(POLICIES):
        for r in range(reps):
            for t in range(times):
                delivered = min(t, 6)
                rows.append({
                    "policy": policy, "replication": r, "time": float(t),
                    "value_delivered": (1 + p) * (r + 1) * 1e5 * t, "value_ideal": 1e6 * t,
                    "value_delayed": 1e6 * t - (1 + p) * (r + 1) * 1e5 * t,
                    "arrived": 10 + t, "admitted": 8 + t, "delivered": delivered, "cancelled": 0,
                    "rejected": 0, "wip": 8 + t - delivered, "in_system": 10 + t - delivered,
                })  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["policy"] = _cat(frame["policy"], POLICIES)
    return frame


def test_money_formatter_writes_millions():
    formatter = plots.money_formatter()
    assert formatter(1.2e6, 0) == "1.2M"
    assert formatter(-3500, 0) == "-3.5k"


def test_value_over_time_draws_mean_and_band_per_policy_and_metric():
    timeline = make_timeline()
    ax = plots.value_over_time(timeline, unit="day")
    assert len(ax.lines) == 2 * len(POLICIES)  # delivered and delayed per policy
    assert len(ax.collections) == 2 * len(POLICIES)  # one P10-P90 band each
    assert ax.yaxis.get_major_formatter()(1.2e6, 0) == "1.2M"
    assert ax.get_xlabel() == "time (days)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["base", r"p\$1"]
    assert {"value delivered", "value delayed", "P10-P90 across replications"} <= set(legend)
    # The first line is the baseline's mean value delivered: mean slope (1+2+3+4+5)/5 = 3 x 1e5.
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, 3e5 * np.asarray(x))
    # Its band spans the 10th to 90th percentile of the slopes (1.4 and 4.6 x 1e5) at t = 10.
    band = ax.collections[0].get_paths()[0].vertices
    at_ten = band[np.isclose(band[:, 0], 10.0), 1]
    np.testing.assert_allclose(sorted(set(np.round(at_ten, 6))), [1.4e6, 4.6e6])
    ax.figure.canvas.draw()  # mathtext-free labels render


def test_value_over_time_draws_into_the_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    returned = plots.value_over_time(make_timeline(), ax=right)
    assert returned is right
    assert not left.lines and len(right.lines) == 4
    assert len(fig.axes) == 2


def test_cumulative_flow_stacks_bands_up_to_arrivals():
    timeline = make_timeline()
    ax = plots.cumulative_flow(timeline)
    assert ax.get_title() == "Cumulative flow: base"
    assert len(ax.collections) == 3  # delivered, in progress, waiting (no cancelled or rejected)
    assert len(ax.lines) == 2  # cumulative arrived and admitted
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["admitted (cumulative)", "arrived (cumulative)", "waiting in funnel",
                      "in progress (WIP)", "delivered"]  # fmt: skip
    top = ax.collections[-1].get_paths()[0].vertices
    arrived_x, arrived_y = ax.lines[0].get_data()
    assert top[:, 1].max() == pytest.approx(arrived_y.max())
    np.testing.assert_allclose(arrived_y, 10 + np.asarray(arrived_x))


def test_cumulative_flow_shows_cancelled_and_rejected_bands_only_when_present():
    timeline = make_timeline()
    timeline["rejected"] = 1
    timeline["in_system"] -= 1
    ax = plots.cumulative_flow(timeline, policy=r"p$1")
    assert len(ax.collections) == 4
    assert "rejected" in [t.get_text() for t in ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="'policy' parameter must be one of"):
        plots.cumulative_flow(timeline, policy="nope")


TEAMS = {"A": 2, "B": {"capacity": 1, "capacity_changes": [{"at": 5, "capacity": 2}]}, "C": {"capacity": 1}}


def make_team_timeline(reps: int = 3) -> pd.DataFrame:
    rows = []
    for policy in POLICIES:
        for r in range(reps):
            for t in range(10):
                rows.append({"policy": policy, "replication": r, "time": float(t), "team": "A", "busy": 1, "queue": 0})
                rows.append({"policy": policy, "replication": r, "time": float(t), "team": "B", "busy": 1,
                             "queue": 3 if t < 8 else 0})  # fmt: skip
                rows.append({"policy": policy, "replication": r, "time": float(t), "team": "C", "busy": 0, "queue": 0})
    frame = pd.DataFrame(rows)
    frame["policy"] = _cat(frame["policy"], POLICIES)
    frame["team"] = _cat(frame["team"], list(TEAMS))
    return frame


def test_capacity_over_time_applies_changes_from_their_time():
    capacity = plots.capacity_over_time(TEAMS, [0, 4.9, 5, 9])
    assert list(capacity.columns) == ["A", "B", "C"]
    assert capacity["B"].tolist() == [1, 1, 2, 2]
    assert capacity["A"].tolist() == [2, 2, 2, 2]


def test_team_load_heatmap_is_busy_over_capacity_with_the_constraint_marked():
    fig, ax = plt.subplots()
    returned = plots.team_load(make_team_timeline(), TEAMS, ax=ax, unit="week")
    assert returned is ax
    grid = ax.images[0].get_array()
    assert grid.shape == (3, 10)
    np.testing.assert_allclose(grid[0], 0.5)  # A: 1 of 2 busy
    np.testing.assert_allclose(grid[1], [1] * 5 + [0.5] * 5)  # B: hires a second unit at 5
    np.testing.assert_allclose(grid[2], 0.0)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["A", "B (constraint)", "C"]
    outlines = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(outlines) == 1 and outlines[0].get_y() == pytest.approx(0.5)  # row 1 spans 0.5 to 1.5
    assert ax.get_xlabel() == "time (weeks)"
    assert len(fig.axes) == 2  # the heatmap and its colour bar


def test_team_queue_heatmap_is_mean_queue():
    ax = plots.team_queue(make_team_timeline(), policy=r"p$1", constraint="C")
    grid = ax.images[0].get_array()
    np.testing.assert_allclose(grid[1], [3] * 8 + [0] * 2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B", "C (constraint)"]


def test_queue_heatmaps_take_one_colour_scale_across_policies():
    frame = make_team_timeline()
    frame.loc[(frame["policy"] == POLICIES[1]) & (frame["team"] == "B"), "queue"] = 12  # the second queues more
    alone = [plots.team_queue(frame, policy=p, constraint="B").images[0].get_clim()[1] for p in POLICIES]
    assert alone == [3.0, 12.0]  # each on its own scale: a queue of 3 would look as dark as one of 12
    scale = plots.queue_scale(frame, POLICIES)
    assert scale == 12.0 and plots.queue_scale(frame, [POLICIES[0]]) == 3.0
    shared = [plots.team_queue(frame, policy=p, constraint="B", vmax=scale).images[0].get_clim() for p in POLICIES]
    assert shared == [(0.0, 12.0), (0.0, 12.0)]
    assert plots.queue_scale(frame.assign(queue=0), POLICIES) == 1.0  # never a zero-width scale


def test_observed_constraint_picks_the_team_with_high_utilisation_and_queue():
    teams = pd.DataFrame({
        "policy": ["x"] * 6 + ["y"] * 3, "replication": [0, 0, 0, 1, 1, 1, 0, 0, 0],
        "team": ["busy-idle-queue", "queued", "quiet"] * 3,
        "utilisation": [0.96, 0.90, 0.30, 0.94, 0.88, 0.20, 0.5, 0.6, 0.99],
        "mean_queue": [0.1, 12.0, 0.0, 0.3, 8.0, 0.0, 0.0, 0.0, 5.0],
        "max_queue": [2, 30, 0, 3, 25, 0, 0, 0, 9],
    })  # fmt: skip
    timeline = pd.DataFrame({
        "policy": ["x"] * 12, "replication": [0] * 12,
        "team": ["busy-idle-queue"] * 4 + ["queued"] * 4 + ["quiet"] * 4,
        "queue": [0, 0, 0, 1, 5, 9, 0, 7, 0, 0, 0, 0],
    })  # fmt: skip
    ranked = observed_constraint(teams, timeline, policy="x")
    assert ranked["team"].tolist() == ["queued", "busy-idle-queue", "quiet"]
    top = ranked.iloc[0]
    assert bool(top["constraint"]) and not ranked["constraint"].iloc[1:].any()
    assert top["utilisation"] == pytest.approx(0.89)
    assert top["mean_queue"] == pytest.approx(10.0)
    assert top["max_queue"] == 30
    assert top["queue_share"] == pytest.approx(0.75)
    assert observed_constraint(teams, timeline, policy="y")["team"].iloc[0] == "quiet"


def make_projects() -> pd.DataFrame:
    frame = pd.DataFrame({
        "policy": ["base"] * 5 + [r"p$1"] * 2,
        "status": ["delivered"] * 4 + ["active"] + ["delivered"] * 2,
        "cycle_time": [1.0, 2.0, 3.0, 4.0, np.nan, 2.0, 4.0],
    })  # fmt: skip
    frame["policy"] = _cat(frame["policy"], POLICIES)
    return frame


def test_cycle_time_distribution_is_one_ecdf_per_policy():
    ax = plots.cycle_time_distribution(make_projects(), unit="day")
    steps = [line for line in ax.lines if line.get_label() and not line.get_label().startswith("_")]
    assert len(steps) == 2
    x, y = steps[0].get_data()
    np.testing.assert_allclose(x, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(y, [0, 0.25, 0.5, 0.75, 1.0])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "base (median 2.5, n=4)"
    assert "days" in ax.get_xlabel()


def test_cycle_time_distribution_with_nothing_delivered_says_so_without_a_warning():
    # An empty legend made matplotlib warn on the terminal of a run with no delivery.
    projects = make_projects().assign(status="active", cycle_time=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plots.cycle_time_distribution(projects)
    assert ax.get_legend() is None
    assert [t.get_text() for t in ax.texts] == ["no project delivered"]


def test_a_large_ecdf_is_drawn_through_at_most_2001_points_within_its_resolution():
    # 10,000 replications pool millions of delivered projects: the curve keeps 2,000 of its steps.
    values = np.random.default_rng(7).exponential(5.0, 50_000)
    frame = pd.DataFrame({"policy": _cat(pd.Series(["base"] * len(values)), POLICIES), "status": "delivered",
                          "cycle_time": values})  # fmt: skip
    ax = plots.cycle_time_distribution(frame)
    (line,) = [line for line in ax.lines if line.get_label() == "base (median 3.5, n=50000)"]
    x, y = line.get_data()
    assert len(x) <= 2001 and x[-1] == values.max() and y[-1] == 1.0
    # Where it steps, the curve is the ECDF; between steps it is low by at most one gap between kept
    # steps: ceil(49,999 / 1,999) = 26 of the 50,000 values, about 1/2000.
    ecdf = np.searchsorted(np.sort(values), x[1:], side="right") / len(values)
    np.testing.assert_allclose(y[1:], ecdf)
    assert np.diff(y).max() <= 26 / len(values) * (1 + 1e-9)


def make_compare() -> pd.DataFrame:
    return pd.DataFrame({
        "policy": ["good", "unclear", "bad"] * 2,
        "metric": ["value_delivered"] * 3 + ["cycle_time_mean"] * 3,
        "n": 20,
        "diff": [2e6, 1e5, -1e6, -5.0, 1.0, 4.0],
        "diff_ci_low": [1e6, -5e5, -1.5e6, -7.0, -1.0, 2.0],
        "diff_ci_high": [3e6, 7e5, -5e5, -3.0, 3.0, 6.0],
        "better_share": [1.0, 0.55, 0.0, 1.0, 0.4, 0.0],
    })  # fmt: skip


def test_policy_differences_is_a_forest_plot_with_one_interval_per_policy():
    ax = plots.policy_differences(make_compare(), baseline="base")
    assert len(ax.containers) == 3
    assert [t.get_text() for t in ax.get_yticklabels()] == ["good", "unclear", "bad"]
    assert list(ax.get_yticks()) == [2, 1, 0]  # the first policy at the top
    colors = [c.lines[0].get_color() for c in ax.containers]
    assert colors == ["#2e7d32", "0.45", "#c62828"]  # better, straddles zero, worse
    assert ax.xaxis.get_major_formatter()(1.2e6, 0) == "1.2M"
    assert "vs base" in ax.get_xlabel()
    good = ax.containers[0]
    assert good.lines[0].get_xdata()[0] == 2e6
    segment = good.lines[2][0].get_segments()[0]
    np.testing.assert_allclose(segment[:, 0], [1e6, 3e6])


def test_ranked_effects_draws_each_row_in_order_with_its_interval():
    table = pd.DataFrame({
        "team": ["data", "platform", "ux", "extra"],
        "value_change_mean": [10e6, 0.5e6, -2e5, 1.0],
        "value_change_ci_low": [8e6, -1e5, -3e5, 0.5],
        "value_change_ci_high": [12e6, 1e6, -1e5, 1.5],
    })  # fmt: skip
    ax = plots.ranked_effects(table, "value_change", label="team", top=3, title="t")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["data", "platform", "ux"]  # table order, top 3
    assert list(ax.get_yticks()) == [2, 1, 0]  # the first row at the top
    colors = [c.lines[0].get_color() for c in ax.containers]
    assert colors == ["#2e7d32", "0.45", "#c62828"]  # gain, straddles zero, loss
    np.testing.assert_allclose(ax.containers[0].lines[2][0].get_segments()[0][:, 0], [8e6, 12e6])
    assert ax.xaxis.get_major_formatter()(1.2e6, 0) == "1.2M" and ax.get_title() == "t"


def test_policy_differences_knows_shorter_cycle_time_is_better():
    ax = plots.policy_differences(make_compare(), metric="cycle_time_mean", unit="day")
    colors = [c.lines[0].get_color() for c in ax.containers]
    assert colors == ["#2e7d32", "0.45", "#c62828"]
    assert "(days)" in ax.get_xlabel()


def test_metric_vs_parameter_marks_the_best_value():
    sweep = pd.DataFrame({
        "capacity.data": [1, 2, 3, 4], "mean": [1e6, 3e6, 2.5e6, 2e6],
        "ci_low": [0.8e6, 2.7e6, 2.2e6, 1.7e6], "ci_high": [1.2e6, 3.3e6, 2.8e6, 2.3e6],
    })  # fmt: skip
    ax = plots.metric_vs_parameter(sweep, "capacity.data", "value_delivered")
    mean_line, best = ax.lines
    np.testing.assert_allclose(mean_line.get_ydata(), sweep["mean"])
    assert best.get_xdata()[0] == 2 and best.get_ydata()[0] == 3e6
    assert best.get_label() == "best: capacity.data = 2 (3M)"
    assert len(ax.collections) == 1  # the CI band
    assert ax.yaxis.get_major_formatter()(1.2e6, 0) == "1.2M"
    shorter = plots.metric_vs_parameter(sweep.assign(metric="cycle_time_mean"), "capacity.data", "cycle_time_mean")
    assert shorter.lines[1].get_xdata()[0] == 1  # smaller is better for cycle time


def test_metric_vs_parameter_with_named_values_and_bad_input():
    sweep = pd.DataFrame({"value": ["fifo", "cd3"], "mean": [1.0, 2.0], "ci_low": [0.5, 1.5], "ci_high": [1.5, 2.5]})
    ax = plots.metric_vs_parameter(sweep, "sequencing", "throughput")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fifo", "cd3"]
    assert ax.lines[1].get_xdata()[0] == 1
    with pytest.raises(ValueError, match="must have a 'x' column"):
        plots.metric_vs_parameter(sweep.drop(columns="value"), "x", "throughput")
