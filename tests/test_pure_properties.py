"""Pure rules: leaving lone work unranked never changes a run (hypothesis).

A sequencing rule declared ``pure = True`` lets the engine skip ranks that
order nothing (``flowsim/engine/queue.py``): a stage alone in its team's queue
is ranked only once company joins (``lone=ON_COMPANY``), a project alone in the
funnel is filed as of its push once company joins or at a later look-up
(``lone=AS_PUSHED``).  The claim (docs/policies.md): for a pure rule every
output is the same as with ``pure = False``, which ranks all work as it is
queued.  ``tests/test_rank_trends.py`` checks it on bundled scenarios; here it
is checked on random portfolios.

Each example draws 1-4 teams of 1-3 units (some ``focus: shared`` with a
switching curve, some with capacity changes down to 0 and up again, cost rates);
2-12 listed projects of 1-3 stages (chains or ``after`` DAGs, crews, work in
flight with ``done``), at time 0, at whole times (equal arrivals) or anywhere,
with ``depends_on`` on earlier projects, every value profile (standard, window
``closes``, decay ``half_life``, deadline ``due`` / ``penalty`` / ``fine``, lumps,
finite lives) and the WSJF fields; 0-2 arrival streams from templates.  Effort,
value and stage strategies are ``tests/test_properties.py``'s.  Every example
runs one policy per pure built-in sequencing rule (fifo, value, sjf, edd, cd3,
cd3_bottleneck, wsjf, least_slack), each with a drawn intake rule (admit_all,
wip_limit, team_wip, drum, cadence, threshold, or a test rule admitting only the
project at a given place of ``portfolio.funnel``), maybe an intervention
(``review``, a script of pauses, expedites and cancellations, or a test rule
acting on a place of ``portfolio.funnel``), maybe ``preempt`` and maybe
``perfect_information``.  The funnel-watching test rules make the funnel's
filing order show in the log, which ``AS_PUSHED`` exists to keep; two
hand-made ``@example`` worlds pin it (a random search needs ~2,000 examples to
catch a funnel filed as of company).  Each policy runs on one sampled world twice: with the
rule as declared and with ``pure`` forced off on the rule object; the raw event
log, the level changes, every table of the record (events, project rows,
timeline, team rows, team timeline), the reasons and each team's own timeline of
levels must be identical, bit for bit.

``test_tied_late_projects_queued_alone_then_together`` is a counterexample this
test found in the engine (a rank promised to fall rose by rounding); fixed in
``flowsim.value.cost_of_delay``, it stays as a regression test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict
from test_properties import earlier_ids, stages, value

import flowsim
from flowsim.engine.setup import build_rules, make_setup
from flowsim.engine.simulation import Simulation
from flowsim.policies.protocol import IntakeRule, InterventionRule
from flowsim.scenario import scenario_from_dict
from flowsim.world import sample_world

# Every built-in sequencing rule but ``random`` declares ``pure = True``.
PURE_RULES = ("fifo", "value", "sjf", "edd", "cd3", "cd3_bottleneck", "wsjf", "least_slack")
SCRIPT_KINDS = ("pause", "expedite", "cancel")

# ----------------------------------------------------------------------------- rules that watch the funnel
#
# No built-in intake rule reads ``portfolio.funnel``, and ``review`` reads it only to
# cancel closed windows, yet the funnel's listing (its filing order) is what
# ``lone=AS_PUSHED`` exists to keep (flowsim/engine/queue.py).  These two test rules
# make that listing show in the event log, as a user's rule may.


class ListedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: int  # at most this many active projects (no pass at all while full)
    position: int  # admit a candidate only if it is listed here in ``portfolio.funnel``


class AdmitListed(IntakeRule):
    """A WIP limit that admits only the project at ``position`` of the funnel's listing."""

    def start_pass(self, portfolio):
        return portfolio.active_count < self.params.limit

    def decide(self, candidate, portfolio):
        if portfolio.active_count >= self.params.limit:
            return flowsim.STOP
        listed = portfolio.funnel
        position = self.params.position
        if -len(listed) <= position < len(listed) and listed[position].id == candidate.id:
            return flowsim.ADMIT
        return flowsim.HOLD


class PickParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    every: float
    kind: str  # an Action kind
    position: int


class PickListed(InterventionRule):
    """Every ``every`` time units, act on the project at ``position`` of the funnel's listing."""

    def decision_times(self, horizon):
        return [k * self.params.every for k in range(1, math.ceil(horizon / self.params.every))]

    def review(self, portfolio):
        listed = portfolio.funnel
        position = self.params.position
        if -len(listed) <= position < len(listed):
            return [flowsim.Action(self.params.kind, listed[position].id, f"listed at {position}")]
        return []


@pytest.fixture
def watchers():
    """Register the two funnel-watching rules for one test."""
    flowsim.register("intake", "test_admit_listed", params=ListedParams, replace=True)(AdmitListed)
    flowsim.register("intervention", "test_pick_listed", params=PickParams, replace=True)(PickListed)
    yield
    flowsim.policies.unregister("intake", "test_admit_listed")
    flowsim.policies.unregister("intervention", "test_pick_listed")


# ----------------------------------------------------------------------------- strategies

score = st.sampled_from([1, 2, 3, 5, 8, 13])


@st.composite
def team(draw, horizon: float) -> dict:
    out = {"capacity": draw(st.integers(1, 3))}
    if draw(st.booleans()):
        out["cost_rate"] = draw(st.sampled_from([10, 75]))
    times = draw(st.lists(st.integers(1, int(horizon) - 1), unique=True, max_size=2))
    if times:
        out["capacity_changes"] = [{"at": t, "capacity": draw(st.integers(0, 3))} for t in sorted(times)]
    if draw(st.integers(0, 3)) == 0:
        out["focus"] = "shared"
        switching = draw(st.sampled_from(["none", "weinberg", "flat", "table"]))
        if switching == "flat":
            out["switching"] = {"rule": "flat", "loss": 0.17}
        elif switching == "table":
            out["switching"] = [[1, 1.0], [2, 0.7], [4, 0.3]]
        elif switching == "weinberg":
            out["switching"] = "weinberg"
    return out


def wsjf_fields(draw) -> dict:
    return {"business_value": draw(score), "time_criticality": draw(score), "risk_reduction": draw(score),
            "job_size": draw(st.sampled_from([1, 2, 3, 5, 8]))}  # fmt: skip


@st.composite
def intake(draw, teams: dict):
    kind = draw(st.sampled_from(["admit_all", "wip_limit", "team_wip", "drum", "cadence", "threshold", "listed"]))
    if kind == "listed":
        return {"rule": "test_admit_listed", "limit": draw(st.integers(1, 3)), "position": draw(st.integers(-2, 1))}
    if kind == "admit_all":
        return "admit_all"
    if kind == "wip_limit":
        return {"rule": "wip_limit", "limit": draw(st.integers(1, 4))}
    if kind == "team_wip":
        names = draw(st.lists(st.sampled_from(sorted(teams)), min_size=1, unique=True))
        return {"rule": "team_wip", "limits": {name: draw(st.integers(1, 3)) for name in names}}
    if kind == "drum":
        out = {"rule": "drum", "buffer": draw(st.sampled_from([0.5, 2.0, 6.0]))}
        if draw(st.booleans()):
            out["team"] = draw(st.sampled_from(sorted(teams)))
        return out
    if kind == "cadence":
        out = {"rule": "cadence", "every": draw(st.sampled_from([1.0, 2.5, 5.0]))}
        if draw(st.booleans()):
            out["limit"] = draw(st.integers(1, 3))
        return out
    return {"rule": "threshold", "min": draw(st.sampled_from([0.0, 1.0, 10.0, 100.0]))}


@st.composite
def intervention(draw, horizon: float, ids: list[str], scripted: str):
    kind = draw(st.sampled_from(["none", "review", "script", "pick"]))
    if kind == "none":
        return None
    if kind == "pick":
        return {"rule": "test_pick_listed", "every": draw(st.sampled_from([1.0, 2.5, 4.0])),
                "kind": draw(st.sampled_from(SCRIPT_KINDS)), "position": draw(st.integers(-2, 1))}  # fmt: skip
    if kind == "review":
        return {"rule": "review", "every": draw(st.sampled_from([2.0, 3.5, 7.0])),
                "cancel_below": draw(st.sampled_from([0.0, 0.5, 1.0]))}  # fmt: skip
    whole, halves = st.integers(0, int(horizon) - 1).map(float), st.integers(1, 2 * int(horizon) - 1)
    at = st.one_of(whole, halves.map(lambda k: k / 2))
    script = draw(st.lists(st.tuples(at, st.sampled_from(SCRIPT_KINDS), st.sampled_from(ids)), min_size=1, max_size=6))
    return {"rule": scripted, "script": [[t, kind, pid, f"scripted {kind}"] for t, kind, pid in script]}


@st.composite
def scenarios(draw, scripted: str) -> dict:
    horizon = float(draw(st.sampled_from([12, 20, 30])))
    teams = {f"t{i}": draw(team(horizon)) for i in range(draw(st.integers(1, 4)))}
    projects = []
    for i in range(draw(st.integers(2, 12))):
        arrival = draw(
            st.one_of(
                st.just(0.0),
                st.integers(0, int(horizon)).map(float),  # whole times: equal arrivals are likely
                st.floats(0.0, horizon * 1.1, allow_nan=False, allow_infinity=False),
            )
        )
        in_flight = arrival == 0 and draw(st.booleans())
        project = {"id": f"p{i}", "arrival": arrival, "value": draw(value(horizon, template=False)),
                   "stages": draw(stages(teams, in_flight)), **wsjf_fields(draw)}  # fmt: skip
        # A project in flight may not depend on another (it counts as admitted at time 0).
        if i and not in_flight and draw(st.integers(0, 2)) == 0:
            project["depends_on"] = draw(earlier_ids(i))
        projects.append(project)
    data = {
        "horizon": horizon,
        "seed": draw(st.integers(0, 2**16)),
        "discount_rate": draw(st.sampled_from([0.0, 0.08])),
        "estimation_error": draw(st.sampled_from([0.0, 0.0, 0.3])),  # 0: estimates are means, ranks tie
        "timeline_step": draw(st.sampled_from([1.0, 0.3, 2.5])),
        "teams": teams,
        "projects": projects,
    }
    streams = draw(st.integers(0, 2))
    if streams:
        data["templates"] = {}
        for k in range(streams):
            body = {"value": draw(value(horizon, template=True)), "stages": draw(stages(teams, in_flight=False))}
            data["templates"][f"idea{k}"] = {**body, **wsjf_fields(draw)}
        data["arrivals"] = []
        for k in range(streams):
            stream = {"name": f"ideas{k}", "template": f"idea{k}", "rate": draw(st.sampled_from([0.2, 0.5, 1.0]))}
            if draw(st.booleans()):
                stream["start"] = draw(st.sampled_from([0.0, horizon / 4]))
                stream["end"] = stream["start"] + horizon / 2
            data["arrivals"].append(stream)
    ids = [p["id"] for p in projects]
    data["policies"] = {
        rule: {
            "intake": draw(intake(teams)),
            "sequencing": rule,
            "intervention": draw(intervention(horizon, ids, scripted)),
            "preempt": draw(st.booleans()),
            "perfect_information": draw(st.integers(0, 4)) == 0,
        }
        for rule in PURE_RULES
    }
    return data


# ----------------------------------------------------------------------------- running and comparing


def run(scenario, setup, world, policy: str, replication: int, pure: bool | None):
    """Everything one run leaves behind; ``pure`` overrides the rule's declaration."""
    rules = build_rules(scenario, setup, policy, scenario.policies[policy], scenario.seed, replication)
    assert type(rules.sequencing).pure is True, f"{policy}: a built-in rule that is not pure"
    if pure is not None:
        rules.sequencing.pure = pure
    simulation = Simulation(setup, world, rules)
    lazy = pure is None
    # The override reached the queues: lone work is left unranked only when pure.
    assert simulation.funnel.queue._lone is lazy and all(t.queue._lone is lazy for t in simulation.teams)
    record = simulation.run()
    teams = [(t.timeline, t.busy_area, t.queue_area, t.capacity_area, t.effort_area, t.max_queue)
             for t in simulation.teams]  # fmt: skip
    return simulation.log, simulation.levels, record, teams


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical arrays (NaN equals NaN only with the same bits; -0.0 differs from 0.0)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return [repr(x) for x in a.tolist()] == [repr(x) for x in b.tolist()]
    return a.tobytes() == b.tobytes()


def first_difference(a: list, b: list) -> str:
    for k, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"entry {k}: lazy {x!r} vs eager {y!r}"
    return f"lengths {len(a)} vs {len(b)}"


def assert_same_run(lazy, eager, where: str) -> None:
    (log, levels, record, teams), (log_e, levels_e, record_e, teams_e) = lazy, eager
    assert log == log_e, f"{where}: event logs differ at {first_difference(log, log_e)}"
    assert levels == levels_e, f"{where}: levels differ at {first_difference(levels, levels_e)}"
    assert record.reasons == record_e.reasons, f"{where}: reasons {record.reasons} vs {record_e.reasons}"
    for table in ("events", "projects", "timeline", "teams", "team_timeline"):
        mine, theirs = getattr(record, table), getattr(record_e, table)
        assert list(mine) == list(theirs), f"{where}: {table} columns"
        for column in mine:
            a, b = mine[column], theirs[column]
            assert same_array(a, b), f"{where}: {table}.{column} differs:\n{a!r}\n{b!r}"
    assert repr(teams) == repr(teams_e), f"{where}: team tallies differ"


REPLICATIONS = 1


def check_pure_is_invisible(data: dict) -> None:
    scenario = scenario_from_dict(data, source="<hypothesis>")
    setup = make_setup(scenario)
    for replication in range(REPLICATIONS):
        world = sample_world(scenario, scenario.seed, replication)
        for policy in scenario.policies:
            lazy = run(scenario, setup, world, policy, replication, pure=None)
            eager = run(scenario, setup, world, policy, replication, pure=False)
            assert_same_run(lazy, eager, f"policy {policy} ({scenario.policies[policy]}), replication {replication}")


SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])  # fmt: skip


# ----------------------------------------------------------------------------- the property

SCRIPTED = "test_scripted"  # the name conftest's ``scripted`` fixture registers

# Hand-made worlds where the funnel's listing tells a lazy funnel from an eager one.  Team
# t0 has one unit; A (a deadline, due 6, estimated 2) waits in the funnel from 1, alone,
# while its rank's trend changes: falling until 3 (projected delivery 5 = due - 1), live
# until 4 (the fine in view), falling for ever after.  B (standard) joins it at 5.
_A = {"id": "A", "arrival": 1.0, "value": {"rate": 10, "profile": "deadline", "due": 6, "fine": 100},
      "stages": [{"team": "t0", "effort": 2.0}]}  # fmt: skip
_B = {"id": "B", "arrival": 5.0, "value": {"rate": 5}, "stages": [{"team": "t0", "effort": 2.0}]}
# No look at the funnel from 1 to 9 (X holds the only WIP place): filed as of its push,
# A's promise ran out at 3, so the first look (9) re-files it behind B.  Filed as of
# company (5) instead, it stays ahead, and the intake admits the other project.
NO_LOOK_UNTIL_COMPANY = {
    "horizon": 20.0,
    "teams": {"t0": {"capacity": 1}},
    "projects": [{"id": "X", "arrival": 0.0, "stages": [{"team": "t0", "effort": 9.0}]}, _A, _B],
    "policies": {"listed-first": {"intake": {"rule": "test_admit_listed", "limit": 1, "position": 0},
                                  "sequencing": "value"}},
}  # fmt: skip
# A, alone, is held (the intake admits only the second listed) and looked at when Y
# (in flight on t1) finishes at 4.5: re-filed then, for ever falling.  A funnel that
# served A as is at 4.5 and filed it at 5 as of 1 re-files it behind B at once.
LOOKED_AT_ALONE = {
    "horizon": 20.0,
    "teams": {"t0": {"capacity": 1}, "t1": {"capacity": 1}},
    "projects": [{"id": "Y", "arrival": 0.0, "stages": [{"team": "t1", "effort": 5.0, "done": 0.5}]}, _A, _B],
    "policies": {"listed-second": {"intake": {"rule": "test_admit_listed", "limit": 5, "position": 1},
                                   "sequencing": "value"}},
}  # fmt: skip


@settings(max_examples=100, **SETTINGS)
@example(data=NO_LOOK_UNTIL_COMPANY)
@example(data=LOOKED_AT_ALONE)
@given(data=scenarios(SCRIPTED))
def test_a_pure_rule_runs_as_if_it_ranked_everything(data, scripted, watchers):
    assert scripted == SCRIPTED
    check_pure_is_invisible(data)


@pytest.mark.slow
@settings(max_examples=2000, **SETTINGS)
@given(data=scenarios(SCRIPTED))
def test_a_pure_rule_runs_as_if_it_ranked_everything_on_many_portfolios(data, scripted, watchers):
    check_pure_is_invisible(data)


# A counterexample the property's own search has not hit (a search biased to identical
# late deadline projects from one template finds it within seconds), shrunk by hand.
_LATE = {"rate": 1000, "lump": 500, "profile": "deadline", "due": 1, "penalty": 0.5}
TIED_LATE_PROJECTS = {
    "horizon": 30.0,
    "teams": {"t0": {"capacity": 1}},
    "projects": [
        {"id": "X", "stages": [{"team": "t0", "effort": 15.0}]},
        {"id": "A", "arrival": 11.4, "value": _LATE, "stages": [{"team": "t0", "effort": 2.25}]},
        {"id": "B", "arrival": 12.0, "value": _LATE, "stages": [{"team": "t0", "effort": 2.25}]},
    ],
    "policies": {"value": {"sequencing": "value"}},
}


def test_tied_late_projects_queued_alone_then_together():
    """X holds t0's only unit until 15.  A and B are the same late deadline project (their
    CoD is rate x (1 - penalty) = 500 in exact arithmetic); A queues alone at 11.4, B at 12.

    Eager (``pure = False``): A is ranked at 11.4 as ``cost_of_delay`` computes it there,
    499.99999999999915 (rounding), under the promise "falling until 26.75"
    (``cost_of_delay_trend``).  B is ranked 500.0 at 12.  At 15 the heap's top, B, still
    ranks 500.0, so A (500.0 again by then: it rose, against the promise) is not looked at,
    and B starts.  Lazy (as declared): A is first ranked when B joins, as of 12, so both
    rank 500.0 and the FIFO key starts A, as ranking every project live does too.  So the
    run of a pure rule differed from the same rule with ``pure = False`` (and the promised
    trends from all-live ranking, tests/test_rank_trends.py's claim).  Since
    ``cost_of_delay`` uses its closed forms, a late project's CoD is exactly 500 whenever
    it is asked, and both runs start A."""
    check_pure_is_invisible(TIED_LATE_PROJECTS)
