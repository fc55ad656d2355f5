"""project_summary(): per policy and listed project, delivery quantiles and probabilities.

Known by construction: a project alone on its team with effort U(2, 10) is
delivered at its effort, so its delivery time is U(2, 10): median 6, P85 8.8,
P(delivered by a promise of 6) = 1/2.  A project needing more work than the
horizon allows is never delivered.  Projects from an arrival stream differ
between worlds and are left out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas.testing as pdt
import pytest

import flowsim
from flowsim.scenario import scenario_from_dict

REPLICATIONS = 400
LOW, HIGH, PROMISE = 2.0, 10.0, 6.0

SCENARIO = {
    "name": "project summary by construction",
    "horizon": 20,
    "seed": 11,
    "teams": {"solo_team": {"capacity": 1}, "slow_team": {"capacity": 1}, "stream_team": {"capacity": 1}},
    "projects": [
        {
            "id": "solo",
            "value": {"rate": 100},
            "promised": PROMISE,
            "stages": [{"team": "solo_team", "effort": {"dist": "uniform", "low": LOW, "high": HIGH}}],
        },
        {"id": "too-long", "value": {"rate": 100}, "stages": [{"team": "slow_team", "effort": 30}]},
    ],
    "templates": {"request": {"value": {"rate": 10}, "stages": [{"team": "stream_team", "effort": 0.5}]}},
    "arrivals": [{"template": "request", "rate": 0.5}],
    "policies": {"fifo": {"sequencing": "fifo"}, "cd3": {"sequencing": "cd3"}},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    scenario = scenario_from_dict(SCENARIO, "summary.yaml")
    return flowsim.run(scenario, replications=REPLICATIONS, workers=1, out=tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def summary(results):
    return results.project_summary()


def test_one_row_per_policy_and_listed_project(summary):
    assert sorted(zip(summary["policy"].astype(str), summary["project"], strict=True)) == [
        ("cd3", "solo"), ("cd3", "too-long"), ("fifo", "solo"), ("fifo", "too-long"),
    ]  # fmt: skip


def test_delivery_quantiles_and_promise_match_the_uniform_effort(summary):
    solo = summary[summary["project"] == "solo"]
    width = HIGH - LOW
    # Sample quantile of a uniform: standard error sqrt(p(1-p)/n) / density.
    for column, p in (("p50_delivery", 0.5), ("p85_delivery", 0.85)):
        se = math.sqrt(p * (1 - p) / REPLICATIONS) * width
        assert np.all(np.abs(solo[column] - (LOW + p * width)) < 4 * se), column
    p_promise = (PROMISE - LOW) / width
    se = math.sqrt(p_promise * (1 - p_promise) / REPLICATIONS)
    assert np.all(np.abs(solo["p_on_promise"] - p_promise) < 4 * se)
    assert (solo["p_delivered"] == 1.0).all()
    assert (solo["promised"] == PROMISE).all()
    assert (solo["value_delayed"] == 0.0).all()  # alone on its team: delivered at its ideal date


def test_quantiles_are_those_of_the_delivered_column(results, summary):
    projects = results.projects
    for policy in ("fifo", "cd3"):
        delivered = projects[(projects["project"] == "solo") & (projects["policy"] == policy)]["delivered"]
        row = summary[(summary["project"] == "solo") & (summary["policy"] == policy)].iloc[0]
        assert row["p50_delivery"] == np.quantile(delivered, 0.5, method="inverted_cdf")
        assert row["p85_delivery"] == np.quantile(delivered, 0.85, method="inverted_cdf")
        assert row["p_on_promise"] == np.mean(delivered <= PROMISE)


def test_a_project_never_delivered_has_no_delivery_quantile(summary):
    late = summary[summary["project"] == "too-long"]
    assert late["p50_delivery"].isna().all() and late["p85_delivery"].isna().all()
    assert (late["p_delivered"] == 0.0).all()
    assert late["promised"].isna().all() and late["p_on_promise"].isna().all()


def test_every_way_of_reading_gives_the_same_summary(results, summary):
    """In memory, from the run folder (pruned read) and from a loaded projects frame."""
    fresh = flowsim.Results.load(results.root)
    pdt.assert_frame_equal(fresh.project_summary(), summary)
    _ = fresh.projects  # now the frame is loaded: the summary comes from it
    pdt.assert_frame_equal(fresh.project_summary(), summary)
    scenario = scenario_from_dict(SCENARIO, "summary.yaml")
    in_memory = flowsim.run(scenario, replications=20, workers=1)
    flowsim.run(scenario, replications=20, workers=1, out=results.root.parent / "again")
    from_folder = flowsim.Results.load(results.root.parent / "again")
    pdt.assert_frame_equal(in_memory.project_summary(), from_folder.project_summary())
