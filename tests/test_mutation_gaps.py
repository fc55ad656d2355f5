"""Tests found missing by a mutation audit of the engine, rules, analyses and world sampling.

Each test kills one or more small, plausible bugs (a flipped comparison, a dropped term, a
shared stream) that the rest of the suite let through, at a line whose meaning DESIGN.md or
docs/policies.md states.  Conventions as in ``test_policies.py``: one deterministic
replication unless said otherwise (fixed efforts, ``estimation_error`` 0), expected numbers
written as the arithmetic that gives them, "x 0-4" meaning x's stage holds a unit from 0 to 4,
and everything at time t applied before the decision at t (intervention, intake, dispatch).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_policies import events, job, rows, run
from test_sweep import WIP
from test_whatif import FAST, SHARED, _fined

from flowsim.analysis import whatif
from flowsim.analysis.sweep import sweep
from flowsim.engine.setup import planning_bottleneck
from flowsim.scenario import scenario_from_dict
from flowsim.world import sample_world

# =========================================================================== engine (DESIGN 4, 7)


def test_a_dependant_enters_the_funnel_when_its_dependency_is_delivered():
    """T 1 unit, fifo, wip_limit 1.  a (2) from 0; b (1) arrives at 0 but depends on a; c (1)
    arrives at 1.  The funnel's FIFO key is the time a project entered the funnel
    (docs/policies.md), and b enters it only when a is delivered at 2, after c (at 1):
    a 0-2; at 2 c is admitted (1 < 2): c 2-3; b admitted at 3: b 3-4.
    """
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 2), job("b", 1, depends_on=["a"]), job("c", 1, arrival=1)],
        "policies": {"wip1": {"intake": {"rule": "wip_limit", "limit": 1}}},
    })  # fmt: skip
    got = rows(results, "wip1")
    assert {pid: (got[pid]["admitted"], got[pid]["delivered"]) for pid in "abc"} == {
        "a": (0.0, 2.0), "c": (2.0, 3.0), "b": (3.0, 4.0)}  # fmt: skip


def test_a_cancelled_queued_stage_no_longer_counts_in_its_teams_wip(scripted):
    """T 1 unit, team_wip {T: 2}.  a (4), b (4), c (1) arrive at 0: a and b are admitted (T wip 2),
    c is held.  a 0-4; b waits in T's queue.  At 1 b is cancelled while queued: T's wip is 1, so
    c is admitted at 1 and queues behind a: c 4-5.
    """
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 4), job("b", 4), job("c", 1)],
        "policies": {"p": {"intake": {"rule": "team_wip", "limits": {"T": 2}},
                           "intervention": {"rule": scripted, "script": [[1, "cancel", "b", "dropped"]]}}},
    })  # fmt: skip
    got = rows(results, "p")
    assert got["b"]["status"] == "cancelled"
    assert (got["c"]["admitted"], got["c"]["started"], got["c"]["delivered"]) == (1.0, 4.0, 5.0)


# =========================================================================== rules (DESIGN 7)


def test_review_cancels_strictly_below_the_bar_from_its_first_review_at_every():
    """review every 2, cancel_below 1.  r1, r2, r3 (rates 1, 2, 3; effort 12 each, 2 done: in
    flight, so active from time 0) run on their own teams A, B, C from 0.  Reviews are at 2, 4, ...
    (docs/policies.md: "at every, 2 every, ..."), none at 0, where r1 would already be below the
    bar.  At 2 each has 8 left: scores 1/8, 2/8, 3/8, median 2/8, bar 1 x 2/8: only r1 is below
    it (r2 is at the bar, not below: "falls below").  At 4 the median of r2, r3 is 2.5/6: r2
    (2/6) is below it and is cancelled then; r3 is delivered at 10.
    """
    results = run({
        "horizon": 20, "teams": {"A": {"capacity": 1}, "B": {"capacity": 1}, "C": {"capacity": 1}},
        "projects": [{"id": f"r{rate}", "value": {"rate": rate}, "stages": [{"team": team, "effort": 12, "done": 2}]}
                     for rate, team in ((1, "A"), (2, "B"), (3, "C"))],
        "policies": {"p": {"intervention": {"rule": "review", "every": 2, "cancel_below": 1}}},
    })  # fmt: skip
    cancelled = events(results, "p", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, strict=True)) == [(2.0, "r1"), (4.0, "r2")]
    assert cancelled.reason[0] == f"cod per remaining effort {1 / 8:.6g} below 1 x median {2 / 8:.6g}"
    assert rows(results, "p")["r3"]["delivered"] == 10.0


def test_review_cancels_a_window_at_the_review_where_it_closes():
    """review every 4.  w (window closing at 4, effort 10) runs 0-4; the review at 4 finds its
    window closed (now >= closes: delivered at or after ``closes`` a window is worth nothing)
    and cancels it then, freeing T for s (effort 2): s 4-6."""
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [{"id": "w", "value": {"rate": 10, "profile": "window", "closes": 4},
                      "stages": [{"team": "T", "effort": 10}]},
                     job("s", 2)],
        "policies": {"p": {"intervention": {"rule": "review", "every": 4}}},
    })  # fmt: skip
    cancelled = events(results, "p", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, cancelled.reason, strict=True)) == [
        (4.0, "w", "window closed at 4")]  # fmt: skip
    assert (rows(results, "p")["s"]["started"], rows(results, "p")["s"]["delivered"]) == (4.0, 6.0)


def test_threshold_admits_a_score_equal_to_min_and_the_metrics_count_the_rejection():
    """threshold min 5 ("reject projects whose CD3 score is below min").  eq: rate 10, effort 2:
    CD3 10 / 2 = 5, not below: admitted, 0-2.  lo: rate 9, effort 2: 4.5: rejected at 0.  The
    replication's metrics: 1 rejected, 0 cancelled, 1 delivered."""
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("eq", 2, 10), job("lo", 2, 9)],
        "policies": {"p": {"intake": {"rule": "threshold", "min": 5}}},
    })  # fmt: skip
    got = rows(results, "p")
    assert (got["eq"]["status"], got["eq"]["delivered"]) == ("delivered", 2.0)
    assert got["lo"]["status"] == "rejected"
    metrics = results.replications.iloc[0]
    assert (metrics["rejected"], metrics["cancelled"], metrics["delivered"]) == (1.0, 0.0, 1.0)


# =========================================================================== planning bottleneck (DESIGN 7)


def _bottleneck(teams: dict, projects: list, **extra) -> str:
    return planning_bottleneck(scenario_from_dict({"name": "bottleneck", "horizon": 50, "teams": teams,
                                                   "projects": projects, **extra}))  # fmt: skip


def test_the_planning_bottleneck_counts_only_work_not_yet_done():
    """A and B 1 unit each.  p is in flight on A (effort 10, 9 done): max(10 - 9, 0.1 x 10) = 1
    left; q needs 3 on B.  Demand per unit: A 1, B 3: the bottleneck is B."""
    projects = [{"id": "p", "value": {"rate": 1}, "stages": [{"team": "A", "effort": 10, "done": 9}]},
                job("q", 3, team="B")]  # fmt: skip
    assert _bottleneck({"A": {"capacity": 1}, "B": {"capacity": 1}}, projects) == "B"


def test_the_planning_bottleneck_counts_arrivals_from_their_start():
    """H 50.  Requests (effort 1 on A) arrive at rate 1 from 40: 1 x (50 - 40) x 1 = 10 expected
    on A; q needs 20 on B.  Demand per unit: A 10, B 20: the bottleneck is B."""
    extra = {"templates": {"req": {"value": {"rate": 1}, "stages": [{"team": "A", "effort": 1}]}},
             "arrivals": [{"template": "req", "rate": 1, "start": 40}]}  # fmt: skip
    assert _bottleneck({"A": {"capacity": 1}, "B": {"capacity": 1}}, [job("q", 20, team="B")], **extra) == "B"


# =========================================================================== world sampling (DESIGN 4, 8)


def test_a_dependants_estimated_ideal_delivery_uses_estimates_only():
    """a: effort uniform 1-9 (mean 5), b: effort 1 after a.  Decision-makers expect b at the
    estimated ideal delivery 5 + 1 = 6 in every world (the decay reference rules see), never
    from a's realised effort, while b's realised ideal delivery is a's realised effort + 1."""
    scenario = scenario_from_dict({
        "name": "ideal", "horizon": 50, "teams": {"T": {"capacity": 1}},
        "projects": [{"id": "a", "value": {"rate": 1},
                      "stages": [{"team": "T", "effort": {"dist": "uniform", "low": 1, "high": 9}}]},
                     job("b", 1, depends_on=["a"])],
    })  # fmt: skip
    for replication in range(5):
        a, b = sample_world(scenario, 3, replication).projects
        assert a.ideal_estimate == pytest.approx(5.0, rel=1e-12)
        assert b.ideal_estimate == pytest.approx(5.0 + 1.0, rel=1e-12)
        assert b.ideal_delivery == pytest.approx(a.effort_actual[0] + 1.0, rel=1e-12)
        assert abs(a.effort_actual[0] - 5.0) > 1e-6  # the premise: realised differs from estimated


def test_an_arrival_streams_projects_do_not_reuse_its_arrival_draws():
    """One stream at rate 1 whose projects draw an exponential rate and effort (mean 1): the same
    law as the gaps between arrivals.  Drawn from independent streams, no realised rate or effort
    equals a gap; drawn from the arrival times' own stream they would copy its numbers."""
    scenario = scenario_from_dict({
        "name": "streams", "horizon": 200, "teams": {"T": {"capacity": 1}},
        "templates": {"t": {"value": {"rate": {"dist": "exponential", "mean": 1}},
                            "stages": [{"team": "T", "effort": {"dist": "exponential", "mean": 1}}]}},
        "arrivals": [{"template": "t", "rate": 1, "name": "s"}],
    })  # fmt: skip
    world = sample_world(scenario, 0, 0)
    arrivals = np.array([p.arrival for p in world.projects])
    gaps = np.diff(arrivals, prepend=0.0)
    drawn = np.array([(p.value_actual.rate, p.effort_actual[0]) for p in world.projects]).ravel()
    assert len(gaps) > 100  # the premise: a long stream (about 200 arrivals)
    close = np.isclose(drawn[:, None], gaps[None, :], rtol=1e-9, atol=0.0)
    assert not close.any()


# =========================================================================== analyses (DESIGN 1)


def test_stopping_a_project_whose_fine_falls_due_at_the_horizon_owes_nothing():
    """As ``test_whatif.test_stopping_a_project_does_not_cancel_its_fine`` with due = H = 52:
    a fine is charged only before H (DESIGN 5), so the stopped reg is worth 0, not -50k:
    lost = reg's 22k today, freed 60k, net 38k."""
    result = whatif.stop(_fined(52), ["reg"], replications=2, workers=1)
    row = result.table.iloc[0]
    assert (row["lost_mean"], row["freed_mean"], row["net_mean"]) == pytest.approx((22000.0, 60000.0, 38000.0))
    reg = result.replications[result.replications["project"] == "reg"]
    assert reg["value_stopped"].tolist() == [0.0, 0.0]


def test_a_unit_that_changes_nothing_is_better_in_no_world():
    """``solo`` is used by nobody in SHARED: one more unit there changes no world's value, and a
    change of 0 is not "delivers more" (``p_better``)."""
    result = whatif.capacity(SHARED, ["solo"], **FAST)
    row = result.table.iloc[0]
    assert row["value_change_mean"] == 0.0
    assert row["p_better"] == 0.0


def test_stopping_a_project_that_changes_nothing_is_better_in_no_world():
    """idle (effort 100 on its own team, H 20) is never delivered and frees no shared capacity:
    stopping it changes the total by exactly 0 in every world, which does not "raise" it."""
    data = {
        "horizon": 20, "teams": {"dev": {"capacity": 1}, "solo": {"capacity": 1}},
        "projects": [{"id": "idle", "value": {"rate": 5}, "stages": [{"team": "solo", "effort": 100}]},
                     {"id": "main", "value": {"rate": 100}, "stages": [{"team": "dev", "effort": 3}]}],
    }  # fmt: skip
    result = whatif.stop(data, ["idle"], replications=2, workers=1)
    row = result.table.iloc[0]
    assert (row["lost_mean"], row["freed_mean"], row["net_mean"]) == (0.0, 0.0, 0.0)
    assert row["p_better"] == 0.0


def test_a_project_delivered_in_neither_run_is_not_delayed():
    """H 10.  never (effort 50 on t) is delivered in neither run; the initiative works on solo.
    Counting an undelivered project as delivered at the horizon, its delay is 10 - 10 = 0 in
    every world (``admit``'s docstring), not undefined."""
    data = {
        "horizon": 10, "teams": {"t": {"capacity": 1}, "solo": {"capacity": 1}},
        "projects": [{"id": "never", "value": {"rate": 10}, "stages": [{"team": "t", "effort": 50}]}],
    }  # fmt: skip
    lab = {"id": "lab", "value": {"rate": 1}, "stages": [{"team": "solo", "effort": 2}]}
    result = whatif.admit(data, lab, replications=2, workers=1)
    row = result.table.set_index("project").loc["never"]
    assert (row["delay_mean"], row["p_delayed"], row["cost_mean"]) == (0.0, 0.0, 0.0)
    assert result.replications.set_index("project").loc["never", "delivery_change"].tolist() == [0.0, 0.0]
    assert "delays no other project" in result.answer


def test_stopping_a_project_stops_its_dependants_listed_in_any_order():
    """T 1 unit, fifo, H 20, rate 1 each.  c depends on b, b on base, and c is listed before b.
    Today: base 0-2, b 2-3, c 3-4: values 18 + 17 + 16 = 51.  Stopping base stops b and c too
    ("in cascade, without every project that depends on it"), whatever the file order: nothing
    is left to free, so net = -51."""
    data = {
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("base", 2), job("c", 1, depends_on=["b"]), job("b", 1, depends_on=["base"])],
    }  # fmt: skip
    result = whatif.stop(data, ["base"], replications=2, workers=1)
    row = result.table.iloc[0]
    assert row["also_stopped"] == "c, b"  # file order
    assert (row["lost_mean"], row["freed_mean"], row["net_mean"]) == (51.0, 0.0, -51.0)


def test_a_sweep_setting_equal_to_the_first_is_better_in_no_world():
    """``test_sweep.WIP`` with wip limits 4 and 5: four projects, so both admit all of them at
    once and deliver the same 80,000 in every world; a paired difference of 0 is not "better"."""
    settings = ["policies.limited.intake.rule=wip_limit", "policies.limited.intake.limit=4,5"]
    table = sweep(WIP, settings, replications=3, workers=1).table
    assert table["mean"].tolist() == pytest.approx([80_000.0, 80_000.0], rel=1e-12)
    assert table.loc[1, "diff"] == 0.0 and table.loc[1, "better_share"] == 0.0
