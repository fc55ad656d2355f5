"""Audit of issue 3 (policy library): deliverables that had no test, or only a weak one.

Every deterministic test below uses fixed efforts and values (``estimation_error`` 0 unless
the test is about it), so one replication is fully determined, and writes the arithmetic that
gives the expected numbers in comments.  Conventions as in ``test_policies.py``: "x 0-4" means
project x's stage holds capacity from time 0 to time 4; everything at time t is applied before
the decision at t (intervention, then intake, then dispatch).

The statistical tests use the batch-means / paired-replication standard errors of
``test_policy_theory.py`` with a tolerance of Z = 4 standard errors.

Tests marked ``xfail(strict=True)`` document library bugs found by the audit: they fail on
this checkout, and turn into an XPASS failure (remove the marker) once the bug is fixed.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import yaml
from test_policies import events, job, rows, stage_spans
from test_policy_theory import wip_sweep
from test_views import reachable
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.engine.setup import planning_bottleneck
from flowsim.policies import unregister
from flowsim.policies.protocol import ADMIT, IntakeRule, SequencingRule
from flowsim.scenario import scenario_from_dict
from flowsim.world import ProjectWorld, World, sample_world

EXACT = 1e-12
Z = 4.0


def approx(x):
    return pytest.approx(x, rel=EXACT, abs=EXACT)


def scenario(data: dict):
    return scenario_from_dict({"name": "test_policy_audit", **data}, source="<test_policy_audit>")


def run(data: dict, *, replications: int = 1, seed: int = 0) -> flowsim.Results:
    return flowsim.run(scenario(data), replications=replications, seed=seed, workers=1)


def column(results, policy: str, name: str) -> dict:
    return {pid: row[name] for pid, row in rows(results, policy).items()}


# events and stage_spans: test_policies' readers of the event log.


def team_row(results, policy: str, team: str = "T") -> dict:
    t = results.teams
    return t[(t.policy == policy) & (t.team == team)].iloc[0].to_dict()


# The scripted intervention rule (fixture ``scripted``) is in conftest.py.


# =========================================================================== multitasking (DESIGN 3)

# f(k) at k = 2 and 3 tasks per unit, straight from DESIGN section 3's table.
SWITCHING = {
    "none": ("none", 1.0, 1.0),
    "weinberg": ("weinberg", 0.8, 0.6),
    "wheelwright_clark": ("wheelwright_clark", 0.80 / 0.70, 0.60 / 0.70),  # value-adding 80%, 60% over 70%
    "flat": ({"rule": "flat", "loss": 0.17}, 0.83, 0.83),  # 0.83 held flat past k = 2
    "flat_team_loss": ("flat", 0.83, 0.83),  # short form: switching: flat beside loss: 0.17
    "table": ([[1, 1.0], [2, 0.7], [4, 0.3]], 0.7, (0.7 + 0.3) / 2),  # f(3) halfway between 2 and 4
}


@pytest.mark.parametrize("name", SWITCHING)
def test_shared_focus_switching_tables_by_hand(name):
    """One unit (c = 1), shared; a, b, c of effort 1, 2, 3 all start at 0.

    Each of n stages progresses at c f(n / c) / n (crew 1 never binds here):
      0 - t1: n = 3, rate f3 / 3 each; a's 1 is done at t1 = 3 / f3 (b and c have 1 done too).
      t1 - t2: n = 2, rate f2 / 2; b's last 1 takes 2 / f2: t2 = t1 + 2 / f2 (c has 2 done).
      t2 - t3: n = 1, rate 1: t3 = t2 + 1.
    Utilisation: one unit time-sliced, busy from 0 to t3: t3 / H.  Productive: effort done
    / capacity-time = (1 + 2 + 3) / H.  With switching none this is processor sharing.
    """
    switching, f2, f3 = SWITCHING[name]
    horizon = 40.0
    team = {"capacity": 1, "focus": "shared", "switching": switching}
    if name == "flat_team_loss":
        team["loss"] = 0.17
    results = run({
        "horizon": horizon, "teams": {"T": team},
        "projects": [job("a", 1), job("b", 2), job("c", 3)],
        "policies": {"shared": {}},
    })  # fmt: skip
    t1 = 3 / f3
    t2 = t1 + 2 / f2
    t3 = t2 + 1
    assert column(results, "shared", "delivered") == {"a": approx(t1), "b": approx(t2), "c": approx(t3)}
    team_out = team_row(results, "shared")
    assert team_out["utilisation"] == approx(t3 / horizon)
    assert team_out["productive"] == approx(6 / horizon)
    # The numbers the formula gives, written out once for the named tables.
    by_hand = {"none": (3, 5, 6), "weinberg": (5, 7.5, 8.5), "wheelwright_clark": (3.5, 5.25, 6.25),
               "table": (6, 6 + 2 / 0.7, 7 + 2 / 0.7)}  # fmt: skip
    if name in by_hand:
        assert (t1, t2, t3) == tuple(approx(x) for x in by_hand[name])


def test_shared_focus_past_the_last_table_point_is_flat():
    # wheelwright_clark's last point is 4 tasks (0.45 / 0.70); 5 tasks per unit hold that value.
    # Five stages of effort 1 on one unit: each at (0.45 / 0.7) / 5; all finish together at
    # 1 / that = 5 x 0.7 / 0.45 = 7.777...
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1, "focus": "shared", "switching": "wheelwright_clark"}},
        "projects": [job(f"p{i}", 1) for i in range(5)], "policies": {"shared": {}},
    })  # fmt: skip
    delivered = column(results, "shared", "delivered")
    assert delivered == {f"p{i}": approx(5 * 0.7 / 0.45) for i in range(5)}


def test_shared_rates_are_recomputed_on_capacity_change_and_start_with_fractional_load():
    """weinberg, capacity 1 -> 2 at t = 2; a and b (effort 4) from 0, c (effort 6) arrives at 3.

      0-2: c = 1, n = 2, f(2) = 0.8: each at 1 x 0.8 / 2 = 0.4; 0.8 done each (3.2 left).
      2-3: c = 2, n = 2, f(1) = 1: each at 1 (crew 1); 1.8 done each (2.2 left).
      3-:  c = 2, n = 3, f(1.5) = 0.9 (linear between 0.8 at 2 and 1 at 1): each at
           2 x 0.9 / 3 = 0.6.  a and b finish after 2.2 / 0.6: at 3 + 11/3 = 6.667; c has 2.2
           done (3.8 left).
      then c alone: c = 2, n = 1: min(crew 1, 2 x 1 / 1) = 1: 3.8 more, at 6.667 + 3.8 = 10.467.
    Without recomputation at the capacity change a and b would still run at 0.4 after 2.
    Busy units: 1 (0-2), 2 (2-3: two stages, min(1, 2/2) each), 3 x min(1, 2/3) = 2 (3-6.667),
    1 (c alone: min(1, 2)) until 10.467.  Capacity-time: 1 x 2 + 2 x 18 = 38.
    """
    results = run({
        "horizon": 20,
        "teams": {"T": {"capacity": 1, "focus": "shared", "switching": "weinberg",
                        "capacity_changes": [{"at": 2, "capacity": 2}]}},
        "projects": [job("a", 4), job("b", 4), job("c", 6, arrival=3)],
        "policies": {"shared": {}},
    })  # fmt: skip
    ab = 3 + 2.2 / 0.6
    c = ab + 3.8
    assert column(results, "shared", "delivered") == {"a": approx(ab), "b": approx(ab), "c": approx(c)}
    busy = 1 * 2 + 2 * 1 + 2 * (ab - 3) + 1 * (c - ab)
    team_out = team_row(results, "shared")
    assert team_out["utilisation"] == approx(busy / 38)
    assert team_out["productive"] == approx((4 + 4 + 6) / 38)
    # Utilisation counts time-sliced units, productive the effort: switching losses between them.
    assert team_out["productive"] < team_out["utilisation"]


def test_shared_focus_rate_is_capped_by_the_crew():
    """Capacity 4, weinberg; x (crew 2, effort 4) and y (crew 1, effort 3) from 0.

    n = 2, c = 4: f(0.5) = 1, share 4 x 1 / 2 = 2 each: x at min(2, 2) = 2, y at min(1, 2) = 1.
    x done at 4 / 2 = 2; then y alone, share 4 capped at its crew 1: y done at 3.
    Units held: min(crew, c / n): x 2, y 1 (0-2), y 1 (2-3): busy 3 x 2 + 1 x 1 = 7 over 4 x 10.
    """
    results = run({
        "horizon": 10, "teams": {"T": {"capacity": 4, "focus": "shared", "switching": "weinberg"}},
        "projects": [{"id": "x", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 4, "crew": 2}]},
                     job("y", 3)],
        "policies": {"shared": {}},
    })  # fmt: skip
    assert column(results, "shared", "delivered") == {"x": 2.0, "y": 3.0}
    team_out = team_row(results, "shared")
    assert team_out["utilisation"] == approx(7 / 40)
    assert team_out["productive"] == approx(7 / 40)


def test_pause_on_a_shared_team_keeps_progress(scripted):
    """One unit, shared, switching none; a, b, c (effort 4 each) at 0; wip_limit 2.

    0-2: a and b share (0.5 each): 1 done each.  At 2 a is paused (back to the funnel, 1 done);
    c (in the funnel since 0, before a's re-entry at 2) is admitted.  2-8: b (3 left) and c (4)
    share at 0.5: b done at 8, c has 3 done.  At 8 a is re-admitted (3 left): 8-10 c (1 left)
    and a share at 0.5: c done at 10, a has 2 left, alone at rate 1: done at 12.
    Had a's progress been lost it would finish at 13.
    """
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1, "focus": "shared"}},
        "projects": [job("a", 4), job("b", 4), job("c", 4)],
        "policies": {"p": {"intake": {"rule": "wip_limit", "limit": 2},
                           "intervention": {"rule": scripted, "script": [[2, "pause", "a", "room"]]}}},
    })  # fmt: skip
    assert column(results, "p", "admitted") == {"a": 0.0, "b": 0.0, "c": 2.0}
    assert column(results, "p", "delivered") == {"a": 12.0, "b": 8.0, "c": 10.0}
    assert stage_spans(results, "p")[("a", "T")] == [(0.0, 2.0), (8.0, 12.0)]
    paused = events(results, "p", "paused")
    assert list(zip(paused.time, paused.project, paused.reason, strict=True)) == [
        (2.0, "a", "project withdrawn"), (2.0, "a", "room")]  # fmt: skip
    # Effort 12 done in 12 time units of one unit: nothing lost, nothing double-counted.
    assert team_row(results, "p")["productive"] == approx(12 / 20)


# =========================================================================== sequencing

CD3B = {
    "horizon": 40,
    "teams": {"data": {"capacity": 1}, "dev": {"capacity": 1}, "ux": {"capacity": 1}},
    "projects": [
        {"id": "D", "value": {"rate": 1}, "stages": [{"team": "data", "effort": 7}]},
        {"id": "X", "value": {"rate": 10}, "stages": [{"team": "dev", "effort": 5}]},
        {"id": "Y", "value": {"rate": 2.6}, "stages": [{"team": "dev", "effort": 1}]},
        {"id": "Z", "value": {"rate": 9.5},
         "stages": [{"team": "dev", "effort": 1}, {"team": "data", "effort": 4}]},
        {"id": "W", "value": {"rate": 8}, "stages": [{"name": "wd", "team": "dev", "effort": 1, "after": []},
                                                    {"name": "wu", "team": "ux", "effort": 3, "after": []}]},
    ],
    "policies": {rule: {"sequencing": rule} for rule in ("cd3_bottleneck", "cd3")},
}  # fmt: skip


def test_cd3_bottleneck_without_bottleneck_work_ranks_by_cd3():
    """The planning bottleneck is data: estimated demand data 7 + 4 = 11 per unit, dev
    5 + 1 + 1 + 1 = 8, ux 3.  Only Z has data work left; X, Y and W rank by cd3 = CoD /
    remaining critical path (W's stages run in parallel, so its path is max(dev, ux)).

    dev's queue at 0 (cd3_bottleneck): X 10 / 5 = 2, Y 2.6 / 1 = 2.6, Z 9.5 / 4 (data) = 2.375,
      W 8 / max(1, 3) = 2.667 -> W 0-1.  At 1: Y 2.6, Z 2.375, X 2 -> Y 1-2, Z 2-3, X 3-8.
      Z's data stage waits for D (data 0-7): 7-11.
    cd3 (Z's score 9.5 / (1 + 4) = 1.9 < X's 2): W 0-1, Y 1-2, X 2-7, Z 7-8, Z data 8-12.
    A fallback by CoD alone would start X first (10); by CoD per remaining work, Y first
    (W: 8 / (1 + 3) = 2 < 2.6); by zero, Z first: each gives another schedule.
    """
    assert planning_bottleneck(scenario(CD3B)) == "data"
    results = run(CD3B)
    spans = stage_spans(results, "cd3_bottleneck")
    assert spans[("W", "wd")] == [(0.0, 1.0)] and spans[("W", "wu")] == [(0.0, 3.0)]
    assert spans[("Y", "dev")] == [(1.0, 2.0)]
    assert spans[("Z", "dev")] == [(2.0, 3.0)] and spans[("Z", "data")] == [(7.0, 11.0)]
    assert spans[("X", "dev")] == [(3.0, 8.0)]
    assert column(results, "cd3_bottleneck", "delivered") == {"D": 7.0, "X": 8.0, "Y": 2.0, "Z": 11.0, "W": 3.0}
    assert column(results, "cd3", "delivered") == {"D": 7.0, "X": 7.0, "Y": 2.0, "Z": 12.0, "W": 3.0}


def test_the_funnel_is_ordered_by_the_sequencing_rule(scripted):
    """T 1 unit, wip_limit 1; a (rate 1), b (rate 5), c (rate 3), effort 1 each, all at 0.

    fifo: funnel in file order: a 0-1, b 1-2, c 2-3 (each admitted when the last is delivered).
    value: highest CoD first: b 0-1, c 1-2, a 2-3.
    value + expedite a at 0.5: a jumps to the front of the funnel: b 0-1, a 1-2, c 2-3.
    """
    base = {"intake": {"rule": "wip_limit", "limit": 1}}
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 1, 1), job("b", 1, 5), job("c", 1, 3)],
        "policies": {
            "fifo": {**base, "sequencing": "fifo"},
            "value": {**base, "sequencing": "value"},
            "expedite": {**base, "sequencing": "value",
                         "intervention": {"rule": scripted, "script": [[0.5, "expedite", "a", "vip"]]}},
        },
    })  # fmt: skip
    assert column(results, "fifo", "admitted") == {"a": 0.0, "b": 1.0, "c": 2.0}
    assert column(results, "value", "admitted") == {"a": 2.0, "b": 0.0, "c": 1.0}
    assert column(results, "expedite", "admitted") == {"a": 1.0, "b": 0.0, "c": 2.0}
    for policy in ("fifo", "value", "expedite"):
        got = rows(results, policy)
        assert all(got[p]["delivered"] == got[p]["admitted"] + 1 for p in got), policy
    expedited = events(results, "expedite", "expedited")
    assert list(zip(expedited.time, expedited.project, expedited.reason, strict=True)) == [(0.5, "a", "vip")]


# =========================================================================== intake


def test_drum_counts_work_still_upstream_of_the_drum():
    """dev (1 unit) -> data (1 unit, the drum, buffer 2: 2 units of data work); p1 and p2 are
    dev 1 then data 2, both at 0.

    drum: p1 admitted (load 0 < 2; its data stage, still upstream, now counts 2); p2 held
    (2 >= 2).  p1: dev 0-1, data 1-3.  At 3 the load is 0: p2 admitted, dev 3-4, data 4-6.
    If upstream work were not counted, p2 would be admitted at 0 as under push:
    push: p1 dev 0-1, data 1-3; p2 dev 1-2, data 3-5.
    """
    results = run({
        "horizon": 20, "teams": {"dev": {"capacity": 1}, "data": {"capacity": 1}},
        "projects": [{"id": f"p{i}", "value": {"rate": 1},
                      "stages": [{"team": "dev", "effort": 1}, {"team": "data", "effort": 2}]} for i in (1, 2)],
        "policies": {"drum": {"intake": {"rule": "drum", "buffer": 2, "team": "data"}}, "push": {}},
    })  # fmt: skip
    assert column(results, "drum", "admitted") == {"p1": 0.0, "p2": 3.0}
    assert column(results, "drum", "delivered") == {"p1": 3.0, "p2": 6.0}
    assert column(results, "push", "admitted") == {"p1": 0.0, "p2": 0.0}
    assert column(results, "push", "delivered") == {"p1": 3.0, "p2": 5.0}


def test_planning_bottleneck_counts_arrivals_and_capacity_changes():
    """Estimated demand over the horizon (20) per unit of mean capacity.

    A: listed project of effort 5, capacity 1: 5.  B: arrivals at 0.5 per time unit of a
    template with effort 1 over 20: 10, capacity 1: 10 -> B.
    With B's capacity 1 until 10 then 4: mean (1 x 10 + 4 x 10) / 20 = 2.5: 10 / 2.5 = 4 < 5 -> A.
    """
    data = {
        "horizon": 20, "teams": {"A": {"capacity": 1}, "B": {"capacity": 1}},
        "projects": [job("a", 5, team="A")],
        "templates": {"t": {"value": {"rate": 1}, "stages": [{"team": "B", "effort": 1}]}},
        "arrivals": [{"template": "t", "rate": 0.5}],
    }  # fmt: skip
    assert planning_bottleneck(scenario(data)) == "B"
    changed = {
        **data,
        "teams": {"A": {"capacity": 1}, "B": {"capacity": 1, "capacity_changes": [{"at": 10, "capacity": 4}]}},
    }
    assert planning_bottleneck(scenario(changed)) == "A"


def test_cancel_in_the_funnel_cascades_through_every_level(scripted):
    """T 1 unit, wip_limit 1.  a (2) active from 0; b, d waiting; e depends on d, f on e.

    At 1: d (in the funnel) is cancelled: e and f are cancelled in cascade, each naming its own
    dependency.  a 0-2, b 2-3.  Counts at 1: 3 cancelled; in the system a and b only.
    """
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 2), job("b", 1), job("d", 1), {**job("e", 1), "depends_on": ["d"]},
                     {**job("f", 1), "depends_on": ["e"]}],
        "policies": {"p": {"intake": {"rule": "wip_limit", "limit": 1},
                           "intervention": {"rule": scripted, "script": [[1, "cancel", "d", "dropped"]]}}},
    })  # fmt: skip
    assert column(results, "p", "status") == {
        "a": "delivered", "b": "delivered", "d": "cancelled", "e": "cancelled", "f": "cancelled"}  # fmt: skip
    got = rows(results, "p")
    for pid in "def":
        assert math.isnan(got[pid]["admitted"]) and math.isnan(got[pid]["delivered"])
        assert got[pid]["value_delivered"] == 0.0
    cancelled = events(results, "p", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, cancelled.reason, strict=True)) == [
        (1.0, "d", "dropped"),
        (1.0, "e", "depends on d, not delivered"),
        (1.0, "f", "depends on e, not delivered"),
    ]
    assert (got["a"]["delivered"], got["b"]["admitted"], got["b"]["delivered"]) == (2.0, 2.0, 3.0)
    timeline = results.timeline.set_index("time")
    assert timeline.loc[1.0, ["cancelled", "in_system", "wip"]].tolist() == [3, 2, 1]


def test_cancel_of_an_active_project_frees_its_unit_and_sets_its_status(scripted):
    """T 1 unit; a (effort 4) 0-1, cancelled at 1 with its 1 of progress; b (effort 2) takes the
    unit at 1: 1-3.  Utilisation (1 + 2) / 10."""
    results = run({
        "horizon": 10, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 4), job("b", 2)],
        "policies": {"p": {"intervention": {"rule": scripted, "script": [[1, "cancel", "a", "stop"]]}}},
    })  # fmt: skip
    assert column(results, "p", "status") == {"a": "cancelled", "b": "delivered"}
    assert rows(results, "p")["b"]["started"] == 1.0 and rows(results, "p")["b"]["delivered"] == 3.0
    assert stage_spans(results, "p")[("a", "T")] == [(0.0, 1.0)]
    assert team_row(results, "p")["utilisation"] == approx(3 / 10)


# =========================================================================== estimates vs actuals


class EstimateSpy(SequencingRule):
    seen: ClassVar[dict] = {}

    def priority(self, project, now):
        type(self).seen[(self.context.policy, project.id)] = (
            project.rate,
            project.lump,
            tuple(s.estimate for s in project.stages),
            project.ideal_estimate,
        )
        return 0.0


def test_views_carry_the_estimation_error_of_the_world():
    """estimation_error 0.5: a view's estimates are the world's perturbed estimates (one
    lognormal factor per project for effort, shared by its stages, and one for value, shared
    by rate and lump), not the means and not the realised values; explicit estimates are
    taken as told.  (The factors' distribution is tested in test_world.py.)"""
    EstimateSpy.seen = {}
    flowsim.register("sequencing", "test_audit_estimates", replace=True)(EstimateSpy)
    try:
        data = {
            "horizon": 10, "estimation_error": 0.5, "teams": {"T": {"capacity": 1}, "U": {"capacity": 1}},
            "projects": [
                {"id": "p", "value": {"rate": {"dist": "uniform", "low": 100, "high": 300}, "lump": 50},
                 "stages": [{"team": "T", "effort": {"dist": "uniform", "low": 2, "high": 4}},
                            {"team": "U", "effort": 3}]},
                {"id": "q", "value": {"rate": 10, "estimate": 12},
                 "stages": [{"team": "T", "effort": 2, "estimate": 5}]},
            ],
            "policies": {"est": {"sequencing": "test_audit_estimates"}},
        }  # fmt: skip
        s = scenario(data)
        flowsim.run(s, replications=1, seed=5, workers=1)
    finally:
        unregister("sequencing", "test_audit_estimates")
    world = {pw.id: pw for pw in sample_world(s, 5, 0).projects}
    rate, lump, stages, ideal = EstimateSpy.seen[("est", "p")]
    p = world["p"]
    assert stages == p.effort_estimate and rate == p.value_estimate.rate and lump == p.value_estimate.lump
    effort_factor = stages[0] / 3.0  # both stages have mean 3
    value_factor = rate / 200.0  # mean rate 200, lump 50
    assert stages[1] / 3.0 == approx(effort_factor) and lump / 50.0 == approx(value_factor)
    assert abs(math.log(effort_factor)) > 1e-6 and abs(math.log(value_factor)) > 1e-6
    assert abs(math.log(effort_factor / value_factor)) > 1e-6  # independent factors
    assert stages != p.effort_actual and rate != p.value_actual.rate
    assert ideal == approx(sum(stages))  # chain T -> U, from estimates
    assert EstimateSpy.seen[("est", "q")][::2] == (12.0, (5.0,))


class PortfolioSpy(IntakeRule):
    portfolios: ClassVar[list] = []

    def decide(self, candidate, portfolio):
        type(self).portfolios.append(portfolio)
        return ADMIT


def test_no_realised_world_behind_the_portfolio_views_closures():
    """PortfolioState holds the funnel and the teams' RankedQueues, whose ``_rank`` is the
    engine's ``project_rank`` closure: its cell holds the ``Simulation``, hence ``.world``
    (realised efforts and values) and ``._remaining``.  A rule can read them with
    ``portfolio._funnel._rank.__closure__[i].cell_contents.world``."""
    PortfolioSpy.portfolios = []
    flowsim.register("intake", "test_audit_portfolio_spy", replace=True)(PortfolioSpy)
    try:
        run({"horizon": 5, "teams": {"T": {"capacity": 1}},
             "projects": [{"id": "secret", "value": {"rate": 1},
                           "stages": [{"team": "T", "effort": 7.77, "estimate": 3}]}],
             "policies": {"spy": {"intake": "test_audit_portfolio_spy"}}})  # fmt: skip
    finally:
        unregister("intake", "test_audit_portfolio_spy")
    assert PortfolioSpy.portfolios
    leaks = [
        path
        for path, obj in reachable(PortfolioSpy.portfolios[0], closures=True)
        if isinstance(obj, (World, ProjectWorld)) or path.endswith("._remaining")
    ]
    assert leaks == [], leaks[:5]


# =========================================================================== validation of rule parameters

BASE = {"name": "audit", "horizon": 10, "teams": {"T": {"capacity": 1}},
        "projects": [{"id": "a", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]}]}  # fmt: skip

BAD_POLICIES = {
    "unknown intervention rule": (
        {"intervention": "reveiw"},
        "policies.p.intervention must be a known intervention rule (one of review; did you mean 'review'?), "
        "got 'reveiw'",
    ),
    "missing required parameter": (
        {"intake": {"rule": "wip_limit"}},
        "policies.p.intake.limit must be given, got nothing",
    ),
    "limit below 1": (
        {"intake": {"rule": "wip_limit", "limit": 0}},
        "policies.p.intake.limit must be a whole number of at least 1, got 0",
    ),
    "limit not whole": (
        {"intake": {"rule": "wip_limit", "limit": 2.5}},
        "policies.p.intake.limit must be a whole number, got 2.5",
    ),
    "threshold min as text": (
        {"intake": {"rule": "threshold", "min": "high"}},
        "policies.p.intake.min must be a number, got 'high'",
    ),
    "cadence every 0": (
        {"intake": {"rule": "cadence", "every": 0}},
        "policies.p.intake.every must be a number above 0, got 0",
    ),
    "team_wip without limits": (
        {"intake": {"rule": "team_wip", "limits": {}}},
        "policies.p.intake.limits must be a mapping with at least 1 entry, got {}",
    ),
    "drum team not text": (
        {"intake": {"rule": "drum", "buffer": 2, "team": 3}},
        "policies.p.intake.team must be text (quote it: '3'), got 3",
    ),
    "review cancel_below negative": (
        {"intervention": {"rule": "review", "every": 4, "cancel_below": -1}},
        "policies.p.intervention.cancel_below must be a number of at least 0, got -1",
    ),
    "preempt not a boolean": ({"preempt": "maybe"}, "policies.p.preempt must be true or false, got 'maybe'"),
    "unknown policy option": (
        {"preemt": True},
        "policies.p.preemt must be a known key (allowed: intake, sequencing, intervention, preempt, "
        "perfect_information; did you mean 'preempt'?), got 'preemt'",
    ),
}  # fmt: skip


def validate(tmp_path, policy: dict):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({**BASE, "policies": {"p": policy}}, sort_keys=False), encoding="utf-8")
    return path, CliRunner().invoke(app, ["validate", str(path)])


@pytest.mark.parametrize("case", BAD_POLICIES)
def test_built_in_rule_parameters_are_validated_with_exit_2(tmp_path, case):
    policy, message = BAD_POLICIES[case]
    path, result = validate(tmp_path, policy)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"{path}: {message}"


@pytest.mark.parametrize(("limit", "shown"), [(True, "true"), ("3", "'3'")])
def test_a_wrong_type_for_a_whole_number_parameter_exits_2(tmp_path, limit, shown):
    # Strict types: YAML's `true` or "3" is not silently taken for a number.
    _, result = validate(tmp_path, {"intake": {"rule": "wip_limit", "limit": limit}})
    assert result.exit_code == 2, result.output
    assert f"policies.p.intake.limit must be a whole number, got {shown}" in result.output


# =========================================================================== Kleinrock: the remaining rules

# As in test_policy_theory.py: one team, two classes with exponential effort and different
# means; sum_k rho_k W_k must equal rho W0 / (1 - rho) for every non-preemptive rule that
# does not look at realised effort.  That file checks fifo, cd3, value, random, edd in the
# default run and sjf, least_slack only in a slow run; wsjf and cd3_bottleneck nowhere.
#   small: lambda 0.6, mean 0.5 (rho 0.3), rate 1; wsjf (1 + 0 + 0) / 1 = 1
#   big:   lambda 0.25, mean 1.6 (rho 0.4), rate 3; wsjf (6 + 0 + 0) / 2 = 3
# sjf and cd3_bottleneck (rate / estimated effort at T: 2 vs 1.875) serve small first; wsjf
# serves big first; least_slack ranks by window dates far past the horizon.
KLEINROCK_H = 30_000.0
BATCHES = 25
WARMUP = 0.05
MARGIN = 300.0
CLASSES = {"small": (0.6, 0.5, 1.0, 50_000.0, 1, 1), "big": (0.25, 1.6, 3.0, 49_995.0, 6, 2)}
KLEINROCK_RULES = ("fifo", "sjf", "least_slack", "wsjf", "cd3_bottleneck")


def kleinrock_scenario() -> dict:
    templates = {
        name: {"value": {"rate": rate, "profile": "window", "closes_in": closes_in},
               "stages": [{"team": "T", "effort": {"dist": "exponential", "mean": mean}}],
               "business_value": bv, "time_criticality": 0, "risk_reduction": 0, "job_size": size}
        for name, (_, mean, rate, closes_in, bv, size) in CLASSES.items()
    }  # fmt: skip
    return {
        "horizon": KLEINROCK_H, "teams": {"T": {"capacity": 1}}, "templates": templates,
        "arrivals": [{"template": name, "rate": spec[0]} for name, spec in CLASSES.items()],
        "policies": {rule: {"sequencing": rule} for rule in KLEINROCK_RULES},
    }  # fmt: skip


def batch_estimate(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    assert len(values) == BATCHES and np.isfinite(values).all()
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(BATCHES))


def test_kleinrock_conservation_for_sjf_least_slack_wsjf_and_cd3_bottleneck():
    lam = {k: v[0] for k, v in CLASSES.items()}
    mean = {k: v[1] for k, v in CLASSES.items()}
    rho = {k: lam[k] * mean[k] for k in CLASSES}  # 0.3, 0.4
    w0 = sum(lam[k] * 2 * mean[k] ** 2 / 2 for k in CLASSES)  # E[S^2] = 2 mean^2: 0.15 + 0.64 = 0.79
    theory = sum(rho.values()) * w0 / (1 - sum(rho.values()))  # 0.7 x 0.79 / 0.3
    assert theory == pytest.approx(0.7 * 0.79 / 0.3)
    p = run(kleinrock_scenario(), seed=13).projects
    start, end = WARMUP * KLEINROCK_H, KLEINROCK_H - MARGIN
    p = p[(p.arrival >= start) & (p.arrival < end)].copy()
    assert p.started.notna().all()
    p["wait"] = p.started - p.arrival
    p["batch"] = np.minimum(((p.arrival - start) / (end - start) * BATCHES).astype(int), BATCHES - 1)
    per_rule = {}
    for rule in KLEINROCK_RULES:
        q = p[p.policy == rule]
        means = q.groupby(["batch", "template"], observed=True).wait.mean().unstack()
        per_rule[rule] = (means["small"] * rho["small"] + means["big"] * rho["big"]).reindex(range(BATCHES)).to_numpy()
        value, se = batch_estimate(per_rule[rule])
        assert abs(value - theory) < Z * se, (rule, value, theory, se)
    for rule in KLEINROCK_RULES[1:]:  # paired on the same worlds and batches
        value, se = batch_estimate(per_rule[rule] - per_rule["fifo"])
        assert abs(value) < Z * se, (rule, value, se)
    # The rules really differ class by class: small waits less under sjf than fifo, more under wsjf.
    small = p[p.template == "small"].groupby("policy", observed=True).wait.mean()
    assert small["sjf"] < small["fifo"] < small["wsjf"]
    assert small["cd3_bottleneck"] == pytest.approx(small["sjf"], rel=1e-12)  # same class order, same schedule


# =========================================================================== WIP sweep: the fall is Weinberg's


def wip_sweep_table(switching: str, limits, replications: int, seed: int) -> pd.DataFrame:
    """The push portfolio of test_policy_theory.wip_sweep with a given switching."""
    return wip_sweep(limits, replications, seed, switching)


def test_wip_sweep_fall_is_caused_by_weinberg_switching():
    """test_policy_theory's sweep passes with switching: none too (processor sharing alone
    delays high-value work, so value also falls past the peak): it cannot tell whether Weinberg's
    switching does anything.  Here, on the same worlds (paired replications):

    * with at most 2 active projects on the 2-unit dev team (one task per unit, f = 1),
      weinberg and none give identical results, exactly;
    * at 8 active projects (4 tasks per unit, f = 0.4) weinberg delivers less than none;
    * the drop from the weinberg peak to limit 8 exceeds the drop under none from the same
      limit, by more than 4 paired standard errors.
    """
    limits, replications, seed = (1, 2, 3, 4, 8), 30, 3
    weinberg = wip_sweep_table("weinberg", limits, replications, seed)
    none = wip_sweep_table("none", limits, replications, seed)
    pd.testing.assert_frame_equal(weinberg[["wip1", "wip2"]], none[["wip1", "wip2"]])
    peak = weinberg.mean().idxmax()
    assert peak not in ("wip1", "wip8")

    def paired(diff) -> tuple[float, float]:
        diff = np.asarray(diff, dtype=float)
        return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff)))

    loss, se = paired(none["wip8"] - weinberg["wip8"])
    assert loss - Z * se > 0, (loss, se)
    extra_drop, se = paired((weinberg[peak] - weinberg["wip8"]) - (none[peak] - none["wip8"]))
    assert extra_drop - Z * se > 0, (extra_drop, se)
