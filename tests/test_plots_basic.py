"""Plots draw what they claim (one line per policy, money on axes) and the constraint ranking is right."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import flowsim
from flowsim import plots
from flowsim.report import observed_constraint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results():
    return flowsim.run(ROOT / "scenarios" / "teaching" / "cost_of_delay.yaml", replications=3, seed=1, workers=1)


def test_money_formatter_writes_millions():
    assert plots.money_formatter()(1.2e6, 0) == "1.2M"
    assert plots.money_formatter()(-35_000, 0) == "-35k"


def test_value_over_time_draws_one_delivered_line_per_policy(results):
    ax = plots.value_over_time(results.timeline)
    labels = {line.get_label() for line in ax.get_lines() if line.get_linestyle() == "-"}
    assert set(results.policies) <= labels | {text.get_text() for text in ax.get_legend().get_texts()}
    assert ax.yaxis.get_major_formatter()(2e6, 0) == "2M"
    plt.close(ax.figure)


def test_plots_draw_into_a_given_axes(results):
    figure, ax = plt.subplots()
    assert plots.cycle_time_distribution(results.projects, ax=ax) is ax
    assert ax.has_data()
    plt.close(figure)


def test_forest_plot_has_one_interval_per_compared_policy(results):
    compare = results.compare()
    ax = plots.policy_differences(compare, metric="value_delivered")
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert [p for p in results.policies[1:] if any(p in t for t in ticks)] == results.policies[1:]
    plt.close(ax.figure)


def test_observed_constraint_picks_the_team_with_the_queue():
    teams = pd.DataFrame({
        "team": ["a", "b", "c"] * 2, "utilisation": [0.5, 0.95, 0.9] * 2,
        "mean_queue": [0.0, 1.0, 7.5] * 2, "max_queue": [0, 3, 20] * 2,
    })  # fmt: skip
    timeline = pd.DataFrame({"team": ["a", "b", "c", "c"], "queue": [0, 0, 4, 6]})
    ranked = observed_constraint(teams, timeline)
    # b is busier but c holds more work waiting: ranks tie (1 + 2 vs 2 + 1), the longer queue wins.
    assert list(ranked["team"]) == ["c", "b", "a"]
    assert list(ranked["constraint"]) == [True, False, False]
    assert ranked.set_index("team").loc["c", "queue_share"] == 1.0
