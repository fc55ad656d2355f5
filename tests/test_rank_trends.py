"""Rank trends: the promises that let long queues skip re-ranking are kept.

A rule may promise that a project's rank stays constant, or never rises, until a
time (``rank_trend``); the queue then re-ranks only the entries at its top.  Two
checks: the CoD trend against a fine grid of the closed form of the cost of
delay, and whole simulations with the promises against the same simulations
with every rank re-computed at every look-up (the plain, obviously right way):
the event logs must be identical.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flowsim.engine.queue import AS_PUSHED, ON_COMPANY, RankedQueue
from flowsim.engine.setup import build_rules, make_setup
from flowsim.engine.simulation import Simulation
from flowsim.scenario import scenario_from_dict
from flowsim.value import CONSTANT, DEADLINE, DECAY, FALLING, LIVE, WINDOW, cost_of_delay, cost_of_delay_trend
from flowsim.world import sample_world

ROOT = Path(__file__).resolve().parents[1]
H = 100.0


def _cod(profile, p, *, rate, lump, life, closes, half_life, due, penalty, fine, reference):
    return cost_of_delay(rate, lump, life, profile, closes, half_life, due, penalty, fine, p, reference, H)


def _grid(p: float, until: float, marks: list[float]) -> np.ndarray:
    """Points of [p, until): a fine even grid plus each breakpoint and its neighbours."""
    end = min(until, H + 2.0)
    points = list(np.linspace(p, end, 400, endpoint=False)) if end > p else [p]
    for mark in marks:
        for x in (mark - 1e-9, mark, mark + 1e-9):
            if p <= x < until:
                points.append(x)
    return np.unique(points)


values = st.floats(0.0, 1e4)
times = st.floats(-5.0, H + 3.0)


@settings(max_examples=400, deadline=None)
@given(
    profile=st.sampled_from([WINDOW, DECAY, DEADLINE]),
    rate=values,
    lump=st.one_of(st.just(0.0), values),
    life=st.one_of(st.just(math.inf), st.floats(0.2, 150.0)),
    closes=times,
    half_life=st.floats(0.5, 80.0),
    due=st.one_of(times, st.integers(0, int(H)).map(float)),
    penalty=st.floats(0.0, 1.0),
    fine=values,
    reference=times,
    p=st.one_of(times, st.integers(-2, int(H) + 2).map(float)),
)
# Found on a fresh clone: p + 1.0 rounds to due although p > due - 1, and the fine's step up
# follows at once; the trend called it falling.
@example(profile=DEADLINE, rate=0.0, lump=0.0, life=math.inf, closes=0.0, half_life=1.0, due=1.0, penalty=0.0,
         fine=1.0, reference=0.0, p=6.12061734935118e-87)  # fmt: skip
def test_cod_trend_holds_on_a_fine_grid(profile, rate, lump, life, closes, half_life, due, penalty, fine, reference, p):
    params = dict(rate=rate, lump=lump, life=life, closes=closes, half_life=half_life, due=due,
                  penalty=penalty, fine=fine, reference=reference)  # fmt: skip
    trend, until = cost_of_delay_trend(profile, life, lump, due, p, H)
    assert until > p
    if trend == LIVE:
        return
    marks = [due - 1, due, H - 1, H, H - life - 1, H - life, closes]
    grid = _grid(p, until, marks)
    cod = np.array([_cod(profile, x, **params) for x in grid])
    scale = 1e-9 * max(1.0, float(np.max(np.abs(cod))))
    if trend == CONSTANT:
        assert np.all(np.abs(cod - cod[0]) <= scale)
    else:
        assert trend == FALLING
        rises = np.diff(cod)
        assert np.all(rises <= scale), (grid[np.argmax(rises)], float(rises.max()))


def test_standard_is_constant_and_window_falls_forever():
    assert cost_of_delay_trend("standard", math.inf, 5.0, math.nan, 3.0, H) == (CONSTANT, math.inf)
    assert cost_of_delay_trend("window", 10.0, 5.0, math.nan, 3.0, H) == (FALLING, math.inf)


def test_deadline_trend_stops_where_the_fine_comes_into_view():
    # One more unit of delay starts to cost the fine just after p = due - 1.
    assert cost_of_delay_trend(DEADLINE, math.inf, 0.0, 20.0, 10.0, H) == (FALLING, 19.0)
    assert cost_of_delay_trend(DEADLINE, math.inf, 0.0, 20.0, 19.0, H) == (LIVE, 20.0)
    assert cost_of_delay_trend(DEADLINE, math.inf, 0.0, 20.0, 19.5, H) == (FALLING, math.inf)
    # A lump starts to be lost by one more unit of delay at H - 1.
    assert cost_of_delay_trend(DEADLINE, math.inf, 7.0, 20.0, 19.5, H) == (FALLING, H - 1)
    # A finite stream: the CoD rises while the horizon starts to cut the delayed stream.
    assert cost_of_delay_trend(DECAY, 30.0, 0.0, math.nan, 10.0, H) == (FALLING, H - 31)
    assert cost_of_delay_trend(DECAY, 30.0, 0.0, math.nan, H - 30.5, H) == (LIVE, H - 30)


# ------------------------------------------------------------- whole runs


def _all_live(rules):
    rules.sequencing.rank_trend = lambda project, now: (LIVE, math.inf)
    return rules


def _logs(scenario, policy: str, replication: int, live: bool):
    setup = make_setup(scenario)
    world = sample_world(scenario, scenario.seed, replication)
    rules = build_rules(scenario, setup, policy, scenario.policies[policy], scenario.seed, replication)
    simulation = Simulation(setup, world, _all_live(rules) if live else rules)
    simulation.run()
    return simulation.log, simulation.levels


POLICIES = {
    "value": {"sequencing": "value"},
    "cd3": {"sequencing": "cd3"},
    "cd3b": {"sequencing": "cd3_bottleneck"},
    "cd3-preempt": {"sequencing": "cd3", "preempt": True},
    "wip-cd3": {"intake": {"rule": "wip_limit", "limit": 30}, "sequencing": "cd3"},
    # Not a CoD rule: its score drops the -now all slacks share, so a queued project is ranked once.
    "least-slack": {"sequencing": "least_slack"},
}


def _scenario(path: str, projects: int | None = None, **value_changes):
    """A bundled scenario under the CoD-ranking policies; ``projects`` resizes the
    scale benchmark (every value profile, queues in the hundreds)."""
    data = yaml.safe_load((ROOT / path).read_text())
    if projects is not None:
        data["horizon"] = projects / sum(a["rate"] for a in data["arrivals"])
    for template in data.get("templates", {}).values():
        template["value"].update(value_changes)
    data["policies"] = POLICIES
    return scenario_from_dict(data, source=path)


CASES = {
    "scale": lambda: _scenario("benchmarks/scale.yaml", 400),
    # Finite lives and lumps bring the horizon's rises into play.
    "scale-life-lump": lambda: _scenario("benchmarks/scale.yaml", 300, life=20, lump=5000),
    # Crews, stage DAGs, in-flight work, dependencies, capacity changes.
    "default": lambda: _scenario("scenarios/default.yaml"),
    # Integer dates and efforts: ties and trends ending exactly at event times.
    "deadlines": lambda: _scenario("scenarios/teaching/deadlines.yaml"),
}


@pytest.mark.parametrize("case", CASES)
def test_promised_trends_give_the_same_run_as_ranking_everything_live(case):
    scenario = CASES[case]()
    for policy in POLICIES:
        for replication in range(2):
            fast = _logs(scenario, policy, replication, live=False)
            plain = _logs(scenario, policy, replication, live=True)
            assert fast[0] == plain[0], (case, policy, replication)
            assert fast[1] == plain[1]


# ------------------------------------------------------------- pure rules


def _run(scenario, policy: str, replication: int, pure: bool | None = None, check=None):
    """Event log and levels of one run; ``pure`` overrides the rule's declaration, and
    ``check(simulation)`` runs at every decision."""
    setup = make_setup(scenario)
    world = sample_world(scenario, scenario.seed, replication)
    rules = build_rules(scenario, setup, policy, scenario.policies[policy], scenario.seed, replication)
    if pure is not None:
        rules.sequencing.pure = pure
    simulation = Simulation(setup, world, rules)
    if check is not None:
        decide = simulation._decide

        def checked(event):
            check(simulation)
            decide(event)
            check(simulation)

        simulation._decide = checked
    simulation.run()
    return simulation.log, simulation.levels


PURE_POLICIES = {
    **POLICIES,
    "fifo": {"sequencing": "fifo"},
    "edd-preempt": {"sequencing": "edd", "preempt": True},
    "sjf": {"sequencing": "sjf"},
    "cd3-review": {"sequencing": "cd3", "intervention": {"rule": "review", "every": 4, "cancel_below": 0.5}},
}
# Pauses, an expedite (under preemption too) and a cancellation of default.yaml's projects.
SCRIPT = [[3, "expedite", "sca", "urgent"], [5, "pause", "crm", "wait"], [9, "expedite", "portal", "urgent"],
          [14, "pause", "gdpr", "wait"], [20, "cancel", "dwh", "stop"]]  # fmt: skip


def _pure_scenario(path: str, scripted: str, projects: int | None = None):
    data = yaml.safe_load((ROOT / path).read_text())
    if projects is not None:
        data["horizon"] = projects / sum(a["rate"] for a in data["arrivals"])
    data["policies"] = dict(PURE_POLICIES)
    if path == "scenarios/default.yaml":
        for name, sequencing in (("cd3-script", "cd3"), ("sjf-script-preempt", "sjf")):
            data["policies"][name] = {"sequencing": sequencing, "preempt": name.endswith("preempt"),
                                      "intervention": {"rule": scripted, "script": SCRIPT}}  # fmt: skip
    return scenario_from_dict(data, source=path)


PURE_PATHS = ["scenarios/default.yaml", "scenarios/teaching/deadlines.yaml", "benchmarks/scale.yaml"]


@pytest.mark.parametrize("path", PURE_PATHS)
def test_leaving_lone_work_unranked_gives_the_same_run(path, scripted):
    """A pure rule's work alone in a queue (a team's or the funnel) is not ranked until it
    must be (RankedQueue ``lone``): every run must equal the one that ranks all work as it
    is queued."""
    scenario = _pure_scenario(path, scripted, projects=300 if path.startswith("benchmarks") else None)
    for policy in scenario.policies:
        for replication in range(2):
            lazy = _run(scenario, policy, replication)
            eager = _run(scenario, policy, replication, pure=False)
            assert lazy[0] == eager[0], (path, policy, replication)
            assert lazy[1] == eager[1]


def _queued_counts_hold(simulation) -> None:
    for project in simulation.projects:
        in_queues = sum(1 for stage in project.stages if stage in simulation.teams[stage.team].queue)
        assert project.queued == in_queues, (project.id, project.queued, in_queues)


def test_each_project_counts_its_stages_in_team_queues(scripted):
    """``ProjectState.queued`` lets a re-rank skip projects with nothing queued: it must
    equal the number of the project's stages in a team's queue at every decision
    (pauses, cancellations, expedites and preemption included)."""
    scenario = _pure_scenario("scenarios/default.yaml", scripted)
    for policy in scenario.policies:
        _run(scenario, policy, 0, check=_queued_counts_hold)
        _run(scenario, policy, 0, pure=False, check=_queued_counts_hold)


def _asking_queue(lone):
    """A queue of "a" (rank 1), "b" (2), "c" (0.5) and the calls it makes to the rule."""
    asked = []

    def rank(item, now):
        asked.append(("rank", item, now))
        return {"a": 1.0, "b": 2.0, "c": 0.5}[item]

    def trend(item, now):
        asked.append(("trend", item, now))
        return CONSTANT, math.inf

    return RankedQueue(rank, trend, lone), asked


def test_a_lone_item_is_ranked_only_once_another_joins():
    queue, asked = _asking_queue(ON_COMPANY)
    queue.push("a", (0.0,), 0.0)
    assert (len(queue), "a" in queue, queue.peek(1.0)) == (1, True, "a")
    assert queue.ordered(1.0) == queue.items() == ["a"]
    queue.refile("a", 2.0)
    assert queue.remove("a") == (0.0,) and len(queue) == 0 and asked == []
    queue.push("a", (0.0,), 3.0)
    assert queue.peek(3.5) == "a" and asked == []
    queue.push("b", (1.0,), 4.0)  # company: "a" is ranked as of now, then "b"
    assert asked == [("trend", "a", 4.0), ("rank", "a", 4.0), ("trend", "b", 4.0), ("rank", "b", 4.0)]
    assert queue.peek(4.0) == "b" and queue.remove("b") == (1.0,)
    queue.push("c", (2.0,), 5.0)  # "a" is still ranked in the heap: "c" is ranked on arrival
    assert queue.peek(5.0) == "a" and len(queue) == 2
    eager, asked = _asking_queue(None)
    eager.push("a", (0.0,), 0.0)
    assert asked == [("trend", "a", 0.0), ("rank", "a", 0.0)]


def test_a_lone_item_as_pushed_is_filed_as_of_its_push_when_it_must_be():
    queue, asked = _asking_queue(AS_PUSHED)
    queue.push("a", (0.0,), 1.0)
    assert queue.peek(1.0) == "a" and queue.items() == ["a"] and asked == []  # the same instant: as is
    assert queue.remove("a") == (0.0,) and asked == []
    queue.push("a", (0.0,), 2.0)
    assert queue.peek(3.0) == "a"  # a later look files it as of 2 first
    assert asked == [("trend", "a", 2.0), ("rank", "a", 2.0)]
    queue.remove("a")
    asked.clear()
    queue.push("c", (2.0,), 4.0)
    queue.push("b", (1.0,), 5.0)  # company: "c" is filed as of 4, then "b" as of 5, in that order
    assert asked == [("trend", "c", 4.0), ("rank", "c", 4.0), ("trend", "b", 5.0), ("rank", "b", 5.0)]
    assert queue.items() == ["c", "b"] and queue.peek(5.0) == "b"
    with pytest.raises(ValueError, match="lone must be"):
        RankedQueue(lambda item, now: 0.0, lone="sometimes")
