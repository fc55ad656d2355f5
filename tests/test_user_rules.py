"""User-written rules: the documented protocol (flowsim.policies.protocol, docs/policies.md).

The worked example and the sketches of ``docs/policies.md`` are executed as written
(every ``python`` block, in order, with the ``yaml`` block saved as the file the example
loads), so the documentation cannot drift from the code.  Every rule registered here is
unregistered in teardown.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

import flowsim
from flowsim import Results
from flowsim.cli import app
from flowsim.errors import FlowsimError, ScenarioError
from flowsim.policies import known_rules, lookup, unregister
from flowsim.policies.protocol import HOLD, STOP, IntakeRule, InterventionRule, SequencingRule
from flowsim.scenario import scenario_from_dict

DOCS = Path(__file__).resolve().parent.parent / "docs" / "policies.md"
FLOWSIM = str(Path(sys.executable).with_name("flowsim"))


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def docs_rules(registry_guard, tmp_path, monkeypatch):
    """Run the documentation's examples in a folder holding its scenario file."""
    (scenario_yaml,) = [b for b in blocks("yaml") if "value_density" in b]
    (tmp_path / "value_density.yaml").write_text(scenario_yaml, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks("python"):
        exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace


def run(data: dict, **kwargs) -> flowsim.Results:
    return flowsim.run(scenario_from_dict({"name": "user rules", **data}, source="<test_user_rules>"),
                       replications=1, seed=0, workers=1, **kwargs)  # fmt: skip


def rows(results, policy):
    p = results.projects
    return {r["project"]: r for r in p[p.policy == policy].to_dict("records")}


# =========================================================================== the worked example


def test_docs_worked_example_runs_with_the_documented_numbers(docs_rules):
    assert {"value_density"} <= set(known_rules("sequencing"))
    assert {"effort_cap"} <= set(known_rules("intake"))
    assert {"rescue_deadlines"} <= set(known_rules("intervention"))
    results = docs_rules["results"]
    delayed = results.projects.groupby("policy", observed=True).value_delayed.sum().to_dict()
    # By hand, as in the docs: 800 + 750, 1000 + 600, 1000 + 750.
    assert delayed == {"fifo": 1750.0, "density": 1550.0, "density-no-floor": 1600.0}
    density = rows(results, "density")
    assert {p: density[p]["delivered"] for p in density} == {"small": 6.0, "big": 5.0, "tiny": 6.0}
    no_floor = rows(results, "density-no-floor")
    assert {p: no_floor[p]["delivered"] for p in no_floor} == {"small": 7.0, "big": 5.0, "tiny": 5.0}
    # The rule's parameters were validated into its own model.
    info = lookup("sequencing", "value_density")
    assert info.params.model_validate({"floor": 160}).floor == 160.0
    assert "Cost of delay per estimated remaining effort" in info.doc


def test_docs_intake_sketch_rejects_with_reason(docs_rules):
    # T 1 unit: a (2), big (10), c (1).  effort_cap 5: big rejected at 0 ("estimated effort 10
    # above 5"); a 0-2, c 2-3.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [{"id": pid, "value": {"rate": 1}, "stages": [{"team": "T", "effort": e}]}
                     for pid, e in (("a", 2), ("big", 10), ("c", 1))],
        "policies": {"cap": {"intake": {"rule": "effort_cap", "max_effort": 5}}},
    })  # fmt: skip
    got = rows(results, "cap")
    assert {p: got[p]["status"] for p in got} == {"a": "delivered", "big": "rejected", "c": "delivered"}
    assert (got["a"]["delivered"], got["c"]["delivered"]) == (2.0, 3.0)
    e = results.events
    rejected = e[e.event == "rejected"]
    assert list(zip(rejected.time, rejected.project, rejected.reason, strict=True)) == [
        (0.0, "big", "estimated effort 10 above 5")]  # fmt: skip


def test_docs_intervention_sketch_expedites_a_deadline_at_risk(docs_rules):
    # T 1 unit, fifo: a (4), b (3), d (2, deadline due 7, fine 100).
    # fifo alone: a 0-4, b 4-7, d 7-9: late, fined.
    # rescue (review every 1, margin 3): d is at risk when now + 2 > 7 - 3, first at t = 3:
    # expedited at 3 (a still runs: no preemption); d 4-6, b 6-9.  On time.
    data = {
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [
            {"id": "a", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 4}]},
            {"id": "b", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 3}]},
            {"id": "d", "value": {"rate": 10, "profile": "deadline", "due": 7, "fine": 100},
             "stages": [{"team": "T", "effort": 2}]},
        ],
        "policies": {"fifo": {}, "rescue": {"intervention": {"rule": "rescue_deadlines", "every": 1, "margin": 3}}},
    }  # fmt: skip
    results = run(data)
    fifo, rescue = rows(results, "fifo"), rows(results, "rescue")
    assert fifo["d"]["delivered"] == 9.0 and fifo["d"]["value_delivered"] == 10 * (20 - 9) - 100
    assert rescue["d"]["delivered"] == 6.0 and rescue["b"]["delivered"] == 9.0
    assert rescue["d"]["value_delivered"] == 10 * (20 - 6)
    e = results.events
    expedited = e[(e.policy == "rescue") & (e.event == "expedited")]
    assert list(zip(expedited.time, expedited.project, expedited.reason, strict=True)) == [(3.0, "d", "due 7 at risk")]


# =========================================================================== validation


def write(tmp_path: Path, sequencing) -> Path:
    data = {
        "name": "user rule validation",
        "horizon": 10,
        "teams": {"T": {"capacity": 1}},
        "projects": [{"id": "a", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]}],
        "policies": {"mine": {"sequencing": sequencing}},
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def validate(path: Path):
    return CliRunner().invoke(app, ["validate", str(path)])


def test_user_rule_validates_through_the_cli(docs_rules, tmp_path):
    result = validate(write(tmp_path, {"rule": "value_density", "floor": 160}))
    assert result.exit_code == 0, result.output
    assert "sequencing value_density(floor=160)" in result.output


def test_unknown_parameter_of_a_user_rule_exits_2(docs_rules, tmp_path):
    path = write(tmp_path, {"rule": "value_density", "flor": 160})
    result = validate(path)
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"{path}: policies.mine.sequencing.flor must be a known parameter of value_density (allowed: floor; "
        "did you mean 'floor'?), got 'flor'"
    )


def test_wrong_parameter_type_of_a_user_rule_exits_2(docs_rules, tmp_path):
    path = write(tmp_path, {"rule": "value_density", "floor": "high"})
    result = validate(path)
    assert result.exit_code == 2
    assert result.output.strip() == f"{path}: policies.mine.sequencing.floor must be a number, got 'high'"
    path = write(tmp_path, {"rule": "value_density", "floor": -1})
    result = validate(path)
    assert result.exit_code == 2
    assert "policies.mine.sequencing.floor must be" in result.output and "got -1" in result.output
    assert "Traceback" not in result.output


def test_unknown_rule_name_lists_the_known_ones(docs_rules, tmp_path):
    path = write(tmp_path, "value_densty")
    result = validate(path)
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith(f"{path}: policies.mine.sequencing must be a known sequencing rule (one of ")
    for name in ("cd3", "cd3_bottleneck", "edd", "fifo", "least_slack", "random", "sjf", "value", "value_density",
                 "wsjf"):  # fmt: skip
        assert name in line
    assert "did you mean 'value_density'?" in line and line.endswith("got 'value_densty'")
    # The same from Python: a ScenarioError with one problem.
    with pytest.raises(ScenarioError) as error:
        flowsim.load_scenario(path)
    assert "known sequencing rule" in str(error.value) and "value_density" in str(error.value)


def test_unregistered_rule_is_unknown_again(registry_guard, tmp_path):
    flowsim.register("sequencing", "test_temporary")(type("Temporary", (SequencingRule,), {
        "priority": lambda self, project, now: 0.0}))  # fmt: skip
    assert validate(write(tmp_path, "test_temporary")).exit_code == 0
    unregister("sequencing", "test_temporary")
    assert "test_temporary" not in known_rules("sequencing")
    result = validate(write(tmp_path, "test_temporary"))
    assert result.exit_code == 2 and "known sequencing rule" in result.output


# =========================================================================== registry rules


def test_registering_a_taken_name_needs_replace(registry_guard):
    class Mine(SequencingRule):
        def priority(self, project, now):
            return 0.0

    with pytest.raises(ValueError, match="already registered"):
        flowsim.register("sequencing", "fifo")(Mine)
    flowsim.register("sequencing", "test_mine")(Mine)
    with pytest.raises(ValueError, match="already registered"):
        flowsim.register("sequencing", "test_mine")(Mine)
    flowsim.register("sequencing", "test_mine", replace=True)(Mine)
    with pytest.raises(ValueError, match="kind must be one of intake, sequencing, intervention"):
        flowsim.register("ordering", "x")


def test_factory_receives_params_and_context(registry_guard):
    """``factory(params, context)``: any callable works, not only a class; the context's rng is
    the rule's own stream and its other fields describe the run."""
    seen = []

    class Weight(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        weight: float = Field(gt=0)

    class ByRate(SequencingRule):
        def priority(self, project, now):
            return self.params.weight * project.rate

    def factory(params, context):
        seen.append((params, context))
        return ByRate(params, context)

    flowsim.register("sequencing", "test_by_rate", params=Weight)(factory)
    results = run({
        "horizon": 12, "teams": {"T": {"capacity": 1}, "U": {"capacity": 3}},
        "projects": [{"id": pid, "value": {"rate": r}, "stages": [{"team": "T", "effort": 1}]}
                     for pid, r in (("low", 1), ("high", 5))],
        "policies": {"mine": {"sequencing": {"rule": "test_by_rate", "weight": 2}}},
    })  # fmt: skip
    assert rows(results, "mine")["high"]["delivered"] == 1.0 and rows(results, "mine")["low"]["delivered"] == 2.0
    ((params, context),) = seen
    assert params.weight == 2.0
    assert (context.policy, context.horizon, context.time_unit) == ("mine", 12.0, "week")
    assert dict(context.capacity) == {"T": 1, "U": 3} and context.bottleneck == "T"
    from flowsim.world import opaque_stream

    assert context.rng.random() == opaque_stream(0, 0, "rule:mine:sequencing").random()


def test_intake_hold_and_stop(registry_guard):
    """HOLD skips a candidate and the pass goes on; STOP ends the pass."""

    class SkipOdd(IntakeRule):
        # Admits projects whose id ends in an even digit; holds the others until t >= 5,
        # and stops the pass at "p4" while t < 3.
        def decide(self, candidate, portfolio):
            digit = int(candidate.id[-1])
            if candidate.id == "p4" and portfolio.now < 3:
                return STOP
            if digit % 2 and portfolio.now < 5:
                return HOLD
            return flowsim.ADMIT

    flowsim.register("intake", "test_skip_odd")(SkipOdd)
    # T has 10 units; p1..p4 (effort 1) at 0; tick at 3 and 5 from arrivals t3 and t5.
    # t=0: p1 held, p2 admitted, p3 held, p4 STOP.  t=3 (t3 arrives): p1, p3 held, p4 admitted,
    # t3 held.  t=5 (t5 arrives): everything waiting is admitted.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 10}},
        "projects": [{"id": f"p{i}", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]}
                     for i in range(1, 5)]
        + [{"id": "t3", "arrival": 3, "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]},
           {"id": "t5", "arrival": 5, "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]}],
        "policies": {"skip": {"intake": "test_skip_odd"}},
    })  # fmt: skip
    got = rows(results, "skip")
    assert {p: got[p]["admitted"] for p in got} == {"p1": 5, "p2": 0, "p3": 5, "p4": 3, "t3": 5, "t5": 5}


def test_invalid_answers_stop_the_run_with_a_clear_error(registry_guard):
    class Maybe(IntakeRule):
        def decide(self, candidate, portfolio):
            return "maybe"

    class Chatty(InterventionRule):
        def decision_times(self, horizon):
            return [1.0]

        def review(self, portfolio):
            return ["cancel everything"]

    class Ghost(InterventionRule):
        def decision_times(self, horizon):
            return [1.0]

        def review(self, portfolio):
            return [flowsim.Action("cancel", "nobody", "gone")]

    flowsim.register("intake", "test_maybe")(Maybe)
    flowsim.register("intervention", "test_chatty")(Chatty)
    flowsim.register("intervention", "test_ghost")(Ghost)
    base = {"horizon": 5, "teams": {"T": {"capacity": 1}},
            "projects": [{"id": "a", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 3}]}]}  # fmt: skip
    with pytest.raises(FlowsimError, match="must return admit, reject, hold or stop, got 'maybe'"):
        run({**base, "policies": {"p": {"intake": "test_maybe"}}})
    with pytest.raises(FlowsimError, match="must return Action objects, got 'cancel everything'"):
        run({**base, "policies": {"p": {"intervention": "test_chatty"}}})
    with pytest.raises(FlowsimError, match="an action must name a project of the scenario, got 'nobody'"):
        run({**base, "policies": {"p": {"intervention": "test_ghost"}}})


def test_live_rule_without_is_stable_sees_time(registry_guard):
    """A rule that leaves ``is_stable`` at its default is ranked afresh at every look-up."""

    class Alternate(SequencingRule):
        # blk always first; before t = 2 prefer x to y, from then on y to x.
        def priority(self, project, now):
            if project.id == "blk":
                return 10.0
            return float((project.id == "x") == (now < 2))

    flowsim.register("sequencing", "test_alternate")(Alternate)
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [{"id": pid, "value": {"rate": 1}, "stages": [{"team": "T", "effort": e}]}
                     for pid, e in (("blk", 2), ("x", 1), ("y", 1))],
        "policies": {"alt": {"sequencing": "test_alternate"}},
    })  # fmt: skip
    got = rows(results, "alt")
    # At 0: blk 0-2 (x ranks above y then).  At 2: y ranks 1, x 0: y 2-3, x 3-4.
    assert {p: (got[p]["started"], got[p]["delivered"]) for p in got} == {
        "blk": (0.0, 2.0), "y": (2.0, 3.0), "x": (3.0, 4.0)}  # fmt: skip


def _order_at_y(rule: str, o_stages: list[dict]) -> list[tuple[float, str]]:
    """Starts at team Y of three projects under ``rule``: k holds Y 0-3; p runs R (Z, 10) and
    A (X, 1) from 0, then B (S, 5) after A, and queues Q at Y; o has ``o_stages`` (Q2 at Y)."""
    teams = {name: {"capacity": 1} for name in ("X", "Y", "Z", "S", "W")}
    scenario = scenario_from_dict({
        "horizon": 30, "teams": teams,
        "projects": [
            {"id": "k", "value": {"rate": 1}, "stages": [{"team": "Y", "effort": 3}]},
            {"id": "p", "value": {"rate": 1}, "stages": [
                {"name": "R", "team": "Z", "effort": 10, "after": []},
                {"name": "A", "team": "X", "effort": 1, "after": []},
                {"name": "Q", "team": "Y", "effort": 1, "after": []},
                {"name": "B", "team": "S", "effort": 5, "after": ["A"]}]},
            {"id": "o", "value": {"rate": 1}, "stages": o_stages}],
        "policies": {"rule": {"sequencing": rule}},
    })  # fmt: skip
    events = flowsim.run(scenario, replications=1, seed=0, workers=1).events
    at_y = events[(events.team == "Y") & (events.event == "started")]
    return list(zip(at_y.time, at_y.project, strict=True))


class _StartedFirst(SequencingRule):
    """More running stages first (k and o get bonuses).  ``is_stable``: the score changes
    only when one of the project's stages starts or stops, when the engine asks again."""

    def priority(self, project, now):
        return project.running_stages + {"o": 0.5, "k": 10.0}.get(project.id, 0.0)

    def is_stable(self, project):
        return True


def test_a_stable_rank_is_asked_again_at_every_start_not_only_the_first(registry_guard):
    # Team Y (1 unit): k holds it 0-3; p's Q and o's Q2 wait from 0.  At 0, p starts R and A
    # (running 2 -> 2.0), o starts R2 (1 + 0.5 = 1.5).  At 1, A finishes (p: 1.0 < 1.5) and B
    # starts (p: 2.0 > 1.5): the second start must be seen, so Y takes p's Q at 3, then o's Q2.
    flowsim.register("sequencing", "test_started_first", replace=True)(_StartedFirst)
    o_stages = [
        {"name": "R2", "team": "W", "effort": 10, "after": []},
        {"name": "Q2", "team": "Y", "effort": 1, "after": []},
    ]
    assert _order_at_y("test_started_first", o_stages) == [(0.0, "k"), (3.0, "p"), (4.0, "o")]


class _FewestBlocked(SequencingRule):
    """Fewer blocked stages first (o and k get bonuses); stable between starts and finishes."""

    def priority(self, project, now):
        blocked = sum(stage.status == "blocked" for stage in project.stages)
        return -blocked + {"o": 0.5, "k": 10.0}.get(project.id, 0.0)

    def is_stable(self, project):
        return True


def test_ranks_see_the_stage_statuses_of_the_moment(registry_guard):
    # Y (1 unit): k holds it 0-3.  o (one stage, Q2) is ranked in the funnel at 0 with its stage
    # blocked (-0.5); once admitted at 0 its stage is queued: 0.5.  p: R and A start at 0, B waits
    # for A (p: -1); at 1 A finishes and B is queued (p: 0, also after B starts).  At 3, Y takes
    # o's Q2 (0.5 > 0), then p's Q at 4.  A rank cached while o waited in the funnel would put p first.
    flowsim.register("sequencing", "test_fewest_blocked", replace=True)(_FewestBlocked)
    o_stages = [{"name": "Q2", "team": "Y", "effort": 1}]
    assert _order_at_y("test_fewest_blocked", o_stages) == [(0.0, "k"), (3.0, "o"), (4.0, "p")]


class _FewestQueued(SequencingRule):
    """Fewer queued stages first (k and q get bonuses); stable between changes to the project."""

    def priority(self, project, now):
        queued = sum(stage.status == "queued" for stage in project.stages)
        return -queued + {"k": 10.0, "q": -0.5}.get(project.id, 0.0)

    def is_stable(self, project):
        return True


def test_a_paused_project_is_ranked_as_it_is_in_the_funnel(registry_guard, scripted):
    # wip_limit 2.  At 0 nothing is queued: k (10), p (0), q (-0.5): k and p admitted; k holds
    # Y 0-10, p's A runs on X 0-1.  At 1 A finishes and p's B queues behind k (p: -1); the
    # review then pauses p: B leaves Y's queue, so in the funnel p ranks 0 again, above q:
    # p is admitted again at 1 and q waits until k is delivered at 10.  The rank p had while
    # its B was queued (-1) would admit q at 1 instead.
    flowsim.register("sequencing", "test_fewest_queued", replace=True)(_FewestQueued)
    scenario = scenario_from_dict({
        "horizon": 30, "teams": {"X": {"capacity": 1}, "Y": {"capacity": 1}, "Z": {"capacity": 1}},
        "projects": [
            {"id": "k", "value": {"rate": 1}, "stages": [{"team": "Y", "effort": 10}]},
            {"id": "p", "value": {"rate": 1}, "stages": [{"team": "X", "effort": 1}, {"team": "Y", "effort": 1}]},
            {"id": "q", "value": {"rate": 1}, "stages": [{"team": "Z", "effort": 1}]}],
        "policies": {"fq": {"intake": {"rule": "wip_limit", "limit": 2}, "sequencing": "test_fewest_queued",
                            "intervention": {"rule": scripted, "script": [[1, "pause", "p", "test"]]}}},
    })  # fmt: skip
    events = flowsim.run(scenario, replications=1, seed=0, workers=1).events
    admitted = events[events.event == "admitted"]
    assert list(zip(admitted.time, admitted.project, strict=True)) == [(0.0, "k"), (0.0, "p"), (1.0, "p"), (10.0, "q")]


class _RunningLast(SequencingRule):
    """Projects with running stages last (a gets a bonus): ranks that fall when work starts."""

    def priority(self, project, now):
        return -project.running_stages + (0.5 if project.id == "a" else 0.0)


def test_preemption_cannot_go_back_and_forth_within_an_instant(registry_guard):
    # T (1 unit), preempt.  At 0: a 0.5 > b 0, so a starts; running, a ranks -0.5 < b.  b may not
    # take the unit a has just started with (b would then rank -1 < a, and so on for ever):
    # a 0-2, b 2-3, with no preemption.
    flowsim.register("sequencing", "test_running_last", replace=True)(_RunningLast)
    scenario = scenario_from_dict({
        "horizon": 10, "teams": {"T": {"capacity": 1}},
        "projects": [{"id": "a", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 2}]},
                     {"id": "b", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]}],
        "policies": {"rl": {"sequencing": "test_running_last", "preempt": True}},
    })  # fmt: skip
    def endless(signum, frame):
        raise AssertionError("preemption went back and forth: the clock never moved")

    previous = signal.signal(signal.SIGALRM, endless)
    signal.alarm(30)  # without the guard the run never ends: fail instead of hanging
    try:
        events = flowsim.run(scenario, replications=1, seed=0, workers=1).events
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    moves = events[events.event.isin(["started", "paused", "finished"])]
    assert list(zip(moves.time, moves.project, moves.event, strict=True)) == [
        (0.0, "a", "started"), (2.0, "a", "finished"), (2.0, "b", "started"), (3.0, "b", "finished"),
    ]  # fmt: skip


class _MostRunning(SequencingRule):
    """Projects with more stages running first: finish what you started."""

    def priority(self, project, now):
        return float(project.running_stages)


def test_under_preempt_a_start_lets_the_project_take_units_at_other_teams_at_once(registry_guard):
    # X, Y, Z of 1 unit, preempt.  At 0 ranks tie (nothing runs), so the FIFO key decides: kx
    # takes X and kz takes Z (0-2), q takes Y (effort 10); p's A (X), C (Z) and B (Y) wait.
    # At 2 A and C start: p has 2 stages running, above q's 1, so p's B takes Y from q at once
    # (q ran since 0): B 2-3, q resumes 3-11.  Deciding Y only at the next event (3, when A and
    # C finish and p drops to 0) would leave B waiting until 10.
    flowsim.register("sequencing", "test_most_running", replace=True)(_MostRunning)
    scenario = scenario_from_dict({
        "horizon": 20, "teams": {"X": {"capacity": 1}, "Y": {"capacity": 1}, "Z": {"capacity": 1}},
        "projects": [
            {"id": "kx", "value": {"rate": 1}, "stages": [{"team": "X", "effort": 2}]},
            {"id": "kz", "value": {"rate": 1}, "stages": [{"team": "Z", "effort": 2}]},
            {"id": "q", "value": {"rate": 1}, "stages": [{"team": "Y", "effort": 10}]},
            {"id": "p", "value": {"rate": 1}, "stages": [
                {"name": "A", "team": "X", "effort": 1, "after": []},
                {"name": "C", "team": "Z", "effort": 1, "after": []},
                {"name": "B", "team": "Y", "effort": 1, "after": []}]}],
        "policies": {"mr": {"sequencing": "test_most_running", "preempt": True}},
    })  # fmt: skip
    events = flowsim.run(scenario, replications=1, seed=0, workers=1).events
    at_y = events[(events.team == "Y") & events.event.isin(["started", "paused", "finished"])]
    assert list(zip(at_y.time, at_y.project, at_y.event, strict=True)) == [
        (0.0, "q", "started"), (2.0, "q", "paused"), (2.0, "p", "started"), (3.0, "p", "finished"),
        (3.0, "q", "started"), (11.0, "q", "finished"),
    ]  # fmt: skip


# =========================================================================== rules from the command line

BIGGEST_FIRST = '''
import flowsim
from flowsim.policies.protocol import SequencingRule


@flowsim.register("sequencing", "biggest_first")
class BiggestFirst(SequencingRule):
    """Largest estimated remaining work first."""

    def priority(self, project, now):
        return project.remaining_critical_path(now)
'''

# One unit; fifo works small (1 week) first, biggest_first works big (5 weeks) first.
BIGGEST_SCENARIO = {
    "name": "biggest first", "horizon": 20, "teams": {"t": {"capacity": 1}},
    "projects": [{"id": "small", "stages": [{"team": "t", "effort": 1}]},
                 {"id": "big", "stages": [{"team": "t", "effort": 5}]}],
    "policies": {"fifo": {"sequencing": "fifo"}, "biggest": {"sequencing": "biggest_first"}},
}  # fmt: skip


def _flowsim(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    # A real process: the rules must reach the command through --rules or an entry point, not
    # through this test process's registry.
    return subprocess.run([FLOWSIM, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def rules_folder(tmp_path) -> Path:
    (tmp_path / "myrules.py").write_text(BIGGEST_FIRST)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(BIGGEST_SCENARIO))
    return tmp_path


@pytest.mark.parametrize("spec", ["myrules.py", "myrules"])
def test_rules_from_a_file_or_module_run_from_the_command_line(rules_folder, spec):
    without = _flowsim("validate", "s.yaml", cwd=rules_folder)
    assert without.returncode == 2 and "got 'biggest_first'" in without.stderr
    result = _flowsim("--rules", spec, "run", "s.yaml", "-n", "2", "-w", "2", "-q", "--out", "out", cwd=rules_folder)
    assert result.returncode == 0, result.stderr
    projects = Results.load(rules_folder / "out").projects
    delivered = projects.set_index(["policy", "project", "replication"])["delivered"]
    for replication in (0, 1):  # in the pool's workers too
        assert delivered[("fifo", "small", replication)] == 1 and delivered[("fifo", "big", replication)] == 6
        assert delivered[("biggest", "big", replication)] == 5 and delivered[("biggest", "small", replication)] == 6


@pytest.mark.parametrize(
    "args",
    [
        ["run", "s.yaml", "--rules", "myrules.py", "-n", "2", "-w", "1", "-q", "--out", "out"],
        ["run", "--rules=myrules.py", "s.yaml", "-n", "2", "-w", "1", "-q", "--out", "out"],
    ],
)
def test_rules_may_follow_the_command(rules_folder, args):
    # ``--rules`` is flowsim's option, but written after the command it was "No such option".
    result = _flowsim(*args, cwd=rules_folder)
    assert result.returncode == 0, result.stderr
    projects = Results.load(rules_folder / "out").projects
    assert projects[(projects.policy == "biggest") & (projects.project == "big")]["delivered"].tolist() == [5, 5]


def test_rules_first_moves_only_rules_and_stops_at_the_end_of_options():
    from flowsim.cli_help import rules_first

    args = ["run", "s.yaml", "--rules", "a.py", "-n", "2", "--rules=b", "--", "--rules", "c.py"]
    assert rules_first(args) == ["--rules", "a.py", "--rules=b", "run", "s.yaml", "-n", "2", "--", "--rules", "c.py"]
    assert rules_first(["run", "--rules"]) == ["run", "--rules"]  # no value: click says so


def test_rules_imported_with_rules_reach_dask_workers(rules_folder):
    pytest.importorskip("dask.distributed")
    result = _flowsim("--rules", "myrules.py", "run", "s.yaml", "-n", "2", "-w", "1", "--scheduler", "local", "-q",
                      "--out", "out", cwd=rules_folder)  # fmt: skip
    assert result.returncode == 0, result.stderr
    projects = Results.load(rules_folder / "out").projects
    assert projects[(projects.policy == "biggest") & (projects.project == "big")]["delivered"].tolist() == [5, 5]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("nothing.py", "no such file"),
        ("nothing_here", "No module named 'nothing_here'"),
        ("broken.py", "SyntaxError at line 1: invalid syntax"),
    ],
)
def test_a_rules_module_that_cannot_be_imported_is_bad_input(rules_folder, spec, problem):
    (rules_folder / "broken.py").write_text("def (:\n")
    result = _flowsim("--rules", spec, "validate", "s.yaml", cwd=rules_folder)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"--rules must be a .py file or an importable module of rules, got {spec!r} ({problem})"
    )


def test_an_installed_entry_point_registers_its_rules_everywhere(rules_folder, tmp_path_factory):
    # A package that declares [project.entry-points."flowsim.rules"]: no --rules needed.
    site = tmp_path_factory.mktemp("site")
    (site / "biggest_rules.py").write_text(BIGGEST_FIRST)
    info = site / "biggest_rules-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: biggest-rules\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[flowsim.rules]\nbiggest = biggest_rules\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = _flowsim("run", "s.yaml", "-n", "2", "-w", "2", "-q", "--out", "out", cwd=rules_folder, env=env)
    assert result.returncode == 0, result.stderr
    projects = Results.load(rules_folder / "out").projects
    assert projects[(projects.policy == "biggest") & (projects.project == "big")]["delivered"].tolist() == [5, 5]


def test_a_dask_worker_without_the_rule_is_named_not_a_traceback(registry_guard):
    # Registered in this process only: the LocalCluster's workers are fresh interpreters.
    pytest.importorskip("dask.distributed")
    namespace: dict = {}
    exec(compile(BIGGEST_FIRST, "<biggest_first>", "exec"), namespace)
    scenario = scenario_from_dict(BIGGEST_SCENARIO, source="<dask>")
    with pytest.raises(FlowsimError) as error:
        flowsim.run(scenario, replications=2, workers=1, scheduler="local")
    assert str(error.value) == (
        "--scheduler must reach workers that know every rule of the scenario, got a worker without the sequencing "
        "rule 'biggest_first' (install it there as a flowsim.rules entry point, or pass --rules a file the workers "
        "see at the same path)"
    )


def test_rules_files_import_their_siblings_keep_apart_and_show_their_own_errors(registry_guard, tmp_path):
    from flowsim.policies.plugins import import_rules

    for folder, rule in (("a", "rule_from_a"), ("b", "rule_from_b")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"helper_{folder}.py").write_text("RANK = 1.0\n")
        # Two files named rules.py in two folders: each keeps its own module and registers its rule.
        (tmp_path / folder / "rules.py").write_text(
            f"import flowsim\nfrom helper_{folder} import RANK\n"
            "from flowsim.policies.protocol import SequencingRule\n"
            f"@flowsim.register('sequencing', '{rule}')\n"
            "class R(SequencingRule):\n    def priority(self, project, now):\n        return RANK\n"
        )
        import_rules(str(tmp_path / folder / "rules.py"))
    assert {"rule_from_a", "rule_from_b"} <= set(known_rules("sequencing"))
    assert lookup("sequencing", "rule_from_a").factory is not lookup("sequencing", "rule_from_b").factory
    # An ImportError of the rule author's own code is theirs to see, with its traceback.
    (tmp_path / "broken_rules.py").write_text("import a_module_nobody_has\n")
    with pytest.raises(ModuleNotFoundError, match="a_module_nobody_has"):
        import_rules(str(tmp_path / "broken_rules.py"))
    assert not [name for name in sys.modules if name.startswith("flowsim_rules_broken_rules")]
