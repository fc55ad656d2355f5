"""A shared team against a plain reference model of DESIGN section 3 (hypothesis).

The engine keeps a shared team's progress on one clock per crew size
(``flowsim/engine/sharing.py``) so that an event costs O(log n).  This test
checks it against the definition, simulated the obvious O(n) way: with c units
and n stages in progress, each stage progresses at ``min(crew, c * f(n / c) /
n)`` and holds ``min(crew, c / n)`` units, recomputed at every arrival,
completion and capacity change.  Each example is one shared team (switching
none, Weinberg's or a table; capacity changes, down to 0) and a few projects of
one or two stages there, with fixed efforts, crews and work in flight, arriving
at whole times so that events often coincide.  Compared, to 1e-9 relative:

* when each project's first stage started (it first held a share of capacity);
* when each project was delivered (NaN if not by the horizon);
* what the capacity it held cost: the value rate is 0, so ``npv`` is minus the
  discounted ``cost_rate`` x units x time, work unfinished at the horizon included.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowsim
from flowsim.scenario.load import scenario_from_dict

REL = 1e-9
COST_RATE = 100.0
# f(k) at the table's points: 1 at k <= 1, linear between points, flat past the last (section 3).
CURVES = {
    "none": [(1.0, 1.0)],
    "weinberg": [(1.0, 1.0), (2.0, 0.8), (3.0, 0.6), (4.0, 0.4), (5.0, 0.25)],
    "table": [(1.0, 1.0), (2.0, 0.7), (4.0, 0.3)],
}


def productive(points: list[tuple[float, float]], k: float) -> float:
    if k <= 1.0:
        return 1.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if k <= x1:
            return y0 + (y1 - y0) * (k - x0) / (x1 - x0)
    return points[-1][1]


@st.composite
def portfolios(draw):
    horizon = float(draw(st.sampled_from([12, 20, 30])))
    capacity = draw(st.integers(1, 3))
    times = draw(st.lists(st.integers(1, int(horizon) - 1), unique=True, max_size=3))
    changes = [{"at": t, "capacity": draw(st.integers(0, 3))} for t in sorted(times)]
    most = max([capacity, *(c["capacity"] for c in changes)])
    switching = draw(st.sampled_from(sorted(CURVES)))
    team = {"capacity": capacity, "cost_rate": COST_RATE, "focus": "shared"}
    team["switching"] = [list(p) for p in CURVES["table"]] if switching == "table" else switching
    if changes:
        team["capacity_changes"] = changes
    projects = []
    for i in range(draw(st.integers(1, 9))):
        arrival = float(draw(st.integers(0, int(horizon))))
        stages = []
        for j in range(draw(st.integers(1, 2))):
            effort = draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 5.0]))
            stage = {"name": f"s{j}", "team": "dev", "effort": effort, "crew": draw(st.integers(1, most))}
            if j == 0 and arrival == 0 and draw(st.integers(0, 3)) == 0:
                stage["done"] = effort * draw(st.sampled_from([0.25, 0.5]))  # in flight
            stages.append(stage)
        projects.append({"id": f"p{i}", "arrival": arrival, "value": {"rate": 0}, "stages": stages})
    return {
        "horizon": horizon,
        "discount_rate": draw(st.sampled_from([0.0, 0.5])),
        "teams": {"dev": team},
        "projects": projects,
        "policies": {"shared": {}},
    }, switching


def reference(data: dict, switching: str) -> dict[str, tuple[float, float, float]]:
    """Per project: (started, delivered, discounted capacity-time held), by the definition."""
    horizon = data["horizon"]
    team = data["teams"]["dev"]
    rho = math.log1p(data["discount_rate"]) / 52
    curve = CURVES[switching]
    changes = [(c["at"], c["capacity"]) for c in team.get("capacity_changes", [])]
    projects = data["projects"]
    pending = sorted(range(len(projects)), key=lambda i: (projects[i]["arrival"], i))
    started = [math.nan] * len(projects)
    delivered = [math.nan] * len(projects)
    held = [0.0] * len(projects)
    running: dict[int, list] = {}  # project -> [stage index, effort left, crew], in start order
    capacity, t = team["capacity"], 0.0

    def start(i: int, j: int) -> None:
        stage = projects[i]["stages"][j]
        running[i] = [j, stage["effort"] - stage.get("done", 0.0), stage["crew"]]

    while t < horizon:
        # Everything due at t happens before anyone shares the team anew (section 7).
        while changes and changes[0][0] <= t:
            capacity = changes.pop(0)[1]
        while pending and projects[pending[0]]["arrival"] <= t:
            start(pending.pop(0), 0)
        n = len(running)
        share = capacity * productive(curve, n / capacity) / n if n and capacity > 0 else 0.0
        units = capacity / n if n and capacity > 0 else 0.0
        rates = {i: min(r[2], share) for i, r in running.items()}
        for i, r in running.items():
            if r[0] == 0 and math.isnan(started[i]) and rates[i] > 0:
                started[i] = t
        events = [horizon]
        events += [changes[0][0]] if changes else []
        events += [projects[pending[0]]["arrival"]] if pending else []
        events += [t + r[1] / rates[i] for i, r in running.items() if rates[i] > 0]
        end = min(events)
        span = end - t
        discount = span if rho == 0 else math.exp(-rho * t) * -math.expm1(-rho * span) / rho
        for i, r in running.items():
            r[1] -= rates[i] * span
            held[i] += min(r[2], units) * discount
        t = end
        if t >= horizon:  # a run stops at the horizon: what would happen then does not
            break
        for i in [i for i, r in running.items() if r[1] <= 1e-9 * max(1.0, r[1] + rates[i] * span)]:
            j = running.pop(i)[0]
            if j + 1 < len(projects[i]["stages"]):
                start(i, j + 1)
            else:
                delivered[i] = t
    return {p["id"]: (started[i], delivered[i], held[i]) for i, p in enumerate(projects)}


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= REL * max(abs(a), abs(b), 1.0)


def at_horizon(t: float, horizon: float) -> bool:
    return abs(t - horizon) <= REL * horizon


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolios())
def test_shared_team_matches_the_definition(drawn):
    data, switching = drawn
    results = flowsim.run(scenario_from_dict(data, source="<hypothesis>"), replications=1, seed=0, workers=1)
    rows = results.projects.set_index("project")
    expected = reference(data, switching)
    for project, (started, delivered, held) in expected.items():
        if project not in rows.index:
            continue  # arrives at the horizon: checked below
        row = rows.loc[project]
        in_flight = "done" in data["projects"][int(project[1:])]["stages"][0]
        if not in_flight:  # work in flight started before time 0: the table says when its record begins
            assert same(row.started, started), (project, row.started, started)
        if at_horizon(row.delivered, data["horizon"]) or at_horizon(delivered, data["horizon"]):
            # Due at the horizon itself: rounding may put it either side, inside the run or not.
            assert math.isnan(row.delivered) or math.isnan(delivered) or same(row.delivered, delivered)
        else:
            assert same(row.delivered, delivered), (project, row.delivered, delivered)
        assert same(-row.npv, COST_RATE * held), (project, -row.npv, COST_RATE * held)
    # Nothing arriving at the horizon is simulated; every other project has its row.
    assert set(rows.index) == {p["id"] for p in data["projects"] if p["arrival"] < data["horizon"]}


def test_reference_by_hand():
    """The reference itself, on a case worked by hand: one unit, no switching loss.

    a (effort 2) and b (effort 1) arrive at 0 and share: each at 1/2 until b is done at 2
    (a has 1 left), then a alone until 3.  c (effort 1, crew 1) arrives at 3 on 2 units
    (capacity change at 3): it runs at min(1, 2) = 1 and holds one unit, done at 4."""
    data = {
        "horizon": 10,
        "discount_rate": 0.0,
        "teams": {"dev": {"capacity": 1, "focus": "shared", "capacity_changes": [{"at": 3, "capacity": 2}]}},
        "projects": [
            {"id": "a", "arrival": 0, "stages": [{"team": "dev", "effort": 2, "crew": 1}]},
            {"id": "b", "arrival": 0, "stages": [{"team": "dev", "effort": 1, "crew": 1}]},
            {"id": "c", "arrival": 3, "stages": [{"team": "dev", "effort": 1, "crew": 1}]},
        ],
    }
    out = reference(data, "none")
    assert out["a"] == (0.0, 3.0, 2.0)  # half a unit for 2, a whole one for 1
    assert out["b"] == (0.0, 2.0, 1.0)
    assert out["c"] == (3.0, 4.0, 1.0)
    assert np.isnan(reference({**data, "horizon": 2.5}, "none")["a"][1])


def test_pause_and_cancel_on_a_shared_team_by_hand(scripted):
    """One unit shared (no switching loss), cost 10 per unit-time, intake wip_limit 2; a (effort
    4), b (6) and c (1) arrive at 0: a and b share, c waits.  At 1, a is paused (0.5 done) and
    goes back to the funnel behind c, which is admitted: b and c share.  c is done at 3 (1 at
    1/2), and b (1.5 done) is cancelled then; a comes back alone with 3.5 left: done at 6.5.
    Capacity held: a 0.5 x 1 + 1 x 3.5 = 4, b 0.5 x 3 = 1.5, c 0.5 x 2 = 1 unit-time.
    The team's queue is the stages in progress beyond one per unit: 1 from 0 to 3, then 0,
    so its time-average over the horizon is 3 / 20 and its largest 1."""
    job = {"value": {"rate": 0}, "arrival": 0}
    data = {
        "horizon": 20,
        "teams": {"T": {"capacity": 1, "focus": "shared", "cost_rate": 10}},
        "projects": [{"id": pid, **job, "stages": [{"team": "T", "effort": effort}]}
                     for pid, effort in (("a", 4), ("b", 6), ("c", 1))],
        "policies": {"p": {"intake": {"rule": "wip_limit", "limit": 2}, "sequencing": "fifo",
                           "intervention": {"rule": scripted, "script": [[1, "pause", "a", "hold"],
                                                                         [3, "cancel", "b", "stop"]]}}},
    }  # fmt: skip
    results = flowsim.run(scenario_from_dict(data, source="<pause>"), replications=1, workers=1)
    rows = results.projects.set_index("project")
    assert dict(rows.status) == {"a": "delivered", "b": "cancelled", "c": "delivered"}
    assert rows.delivered["a"] == 6.5 and rows.delivered["c"] == 3.0
    assert dict(-rows.npv) == {"a": 40.0, "b": 15.0, "c": 10.0}
    team = results.teams.iloc[0]
    assert (team.mean_queue, team.max_queue) == (pytest.approx(3 / 20), 1)
    queue = results.team_timeline.set_index("time").queue
    assert list(queue.loc[[0.0, 1.0, 2.0, 3.0, 4.0]]) == [1, 1, 1, 0, 0]
    e = results.events
    started = e[(e.event == "started") & (e.time == 0)]
    assert dict(zip(started.project, started.units, strict=True)) == {"a": 0.5, "b": 0.5}
    a = e[(e.project == "a") & e.stage.notna()]
    # A start's units are the share held once the instant is done: a starts first at 0, but b's
    # start at the same instant halves it, so a's row says 0.5, as b's does.
    assert list(zip(a.time, a.event, a.units, strict=True)) == [
        (0.0, "queued", 0.0), (0.0, "started", 0.5), (1.0, "paused", 0.0),
        (3.0, "queued", 0.0), (3.0, "started", 1.0), (6.5, "finished", 1.0),
    ]  # fmt: skip


def _delivered(data: dict) -> dict[str, float]:
    results = flowsim.run(scenario_from_dict(data, source="<shared>"), replications=1, seed=0, workers=1)
    return dict(results.projects.set_index("project").delivered)


def test_completions_that_fall_together_come_at_one_time():
    """Three shared units; j2 (crew 3, effort 5) and j4 (crew 2, 2) from 0, j0 (crew 2, 2) from
    2, j1 and j3 from 3.  j0 and j2 finish together at 8/3 in exact arithmetic; computed from
    clock readings, one came an ulp after the other, and a decision between them would see
    j2 still in progress (DESIGN section 7: everything at t before any decision at t)."""
    jobs = [("j0", 2, 1.0, 2), ("j1", 3, 1.5, 3), ("j2", 0, 5.0, 3), ("j3", 3, 1.0, 1), ("j4", 0, 2.0, 2)]
    delivered = _delivered({
        "horizon": 30, "teams": {"T": {"capacity": 3, "focus": "shared"}},
        "projects": [{"id": i, "arrival": a, "value": {"rate": 1}, "stages": [{"team": "T", "effort": e, "crew": c}]}
                     for i, a, e, c in jobs],
    })  # fmt: skip
    assert delivered["j0"] == delivered["j2"]
    assert delivered["j0"] == pytest.approx(8 / 3, rel=1e-12)


def test_work_done_as_a_switching_table_reaches_no_productive_time():
    """T (one unit) gives no productive time at 2 tasks (table [[1, 1], [2, 0]]).  a (effort 2)
    runs alone on T from 0; p's T stage joins at 2, when p's U stage (effort 2) finishes, at
    the instant a's work is done: a finishes then (rates are 0 from then on only for work not
    done), and p's T stage runs alone, done at 3."""
    delivered = _delivered({
        "horizon": 50,
        # U shared too, so p's U stage starts (at its admission) before a's T stage, and its
        # completion at 2 comes first.
        "teams": {"U": {"capacity": 1, "focus": "shared"},
                  "T": {"capacity": 1, "focus": "shared", "switching": [[1, 1.0], [2, 0.0]]}},
        "projects": [
            {"id": "p", "value": {"rate": 1}, "stages": [{"team": "U", "effort": 2}, {"team": "T", "effort": 1}]},
            {"id": "a", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 2}]},
        ],
    })  # fmt: skip
    assert delivered == {"a": 2.0, "p": 3.0}


def test_a_multitasking_team_is_the_observed_constraint():
    """scenarios/teaching/wip_limits.yaml: dev (2 people, shared, Weinberg) against one tester.
    With 8 projects active, dev juggles 4 tasks per person and is always busy, while the tester
    is busy a tenth of the time: dev is the constraint, though none of its stages ever waits
    in a queue.  Its queue is the stages in progress beyond one per person, here up to 6; with
    at most 2 projects active it is never above 0."""
    from flowsim.report import observed_constraint

    scenario = flowsim.load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "teaching" / "wip_limits.yaml")
    results = flowsim.run(scenario, replications=5, seed=1, workers=1, policies=["push-cd3", "wip2-cd3", "wip8-cd3"])
    for policy in ("push-cd3", "wip8-cd3"):
        ranked = observed_constraint(results.teams, results.team_timeline, policy)
        assert ranked.team.iloc[0] == "dev", (policy, ranked)
    teams = results.teams.assign(team=results.teams.team.astype(str)).set_index(["policy", "team"])
    assert teams.loc[("wip8-cd3", "dev"), "max_queue"].max() == 8 - 2
    assert teams.loc[("wip2-cd3", "dev"), "max_queue"].max() == 0


def test_a_shared_teams_largest_queue_is_one_held_for_some_time():
    """dev (2 units, shared) drops to 1 unit at 2, the instant a (effort 2) finishes; b (4)
    goes on alone.  Within that instant the drop comes first, so for no time at all two stages
    share one unit: the team never has a queue, and its largest is 0, not 1."""
    results = flowsim.run(scenario_from_dict({
        "horizon": 10,
        "teams": {"dev": {"capacity": 2, "focus": "shared", "capacity_changes": [{"at": 2, "capacity": 1}]}},
        "projects": [{"id": pid, "value": {"rate": 1}, "stages": [{"team": "dev", "effort": effort}]}
                     for pid, effort in (("a", 2), ("b", 4))],
    }, source="<max queue>"), replications=1, workers=1)  # fmt: skip
    team = results.teams.iloc[0]
    assert (team.mean_queue, team.max_queue) == (0.0, 0)
    assert (results.team_timeline.queue == 0).all()


def test_a_start_left_and_resumed_within_an_instant_keeps_its_share(scripted):
    """dev (1 unit, shared): b's stage runs from 0.  a's qa stage (effort 1) ends at 1 and its
    dev stage starts beside b's, holding 1/2; a review at 1 pauses a, and admit_all takes it
    back at once; c (arriving at 1) joins too.  The first start held 1/2 (for no time); the
    second, with three stages on the unit, 1/3."""
    results = flowsim.run(scenario_from_dict({
        "horizon": 10, "teams": {"dev": {"capacity": 1, "focus": "shared"}, "qa": {"capacity": 1}},
        "projects": [
            {"id": "a", "value": {"rate": 1}, "stages": [{"team": "qa", "effort": 1}, {"team": "dev", "effort": 2}]},
            {"id": "b", "value": {"rate": 1}, "stages": [{"team": "dev", "effort": 3}]},
            {"id": "c", "arrival": 1, "value": {"rate": 1}, "stages": [{"team": "dev", "effort": 1}]},
        ],
        "policies": {"p": {"intervention": {"rule": scripted, "script": [[1, "pause", "a", "hold"]]}}},
    }, source="<settle>"), replications=1, workers=1)  # fmt: skip
    e = results.events
    a = e[(e.project == "a") & (e.team == "dev") & (e.event == "started")]
    assert list(a.time) == [1.0, 1.0]
    assert list(a.units) == [pytest.approx(1 / 2), pytest.approx(1 / 3)]
