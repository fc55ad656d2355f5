"""A rule author's audit: custom rules that misbehave, and what a rule can reach.

Complements ``test_user_rules.py`` (the documented examples, registration, --rules) and
``test_views.py`` (realised efforts and values hidden from the views).  Each test registers
its rules under names starting with ``audit_`` and unregisters them in teardown.  The
tests that pinned bugs found by the audit (leaks of future arrivals and of the seed, NaN
times and ranks, a writable ``now``, answers that were not one line naming the rule, an
exception lost in the process pool, ``register`` checking nothing) pass since the fixes.
"""

from __future__ import annotations

import math
import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

import flowsim
from flowsim.errors import FlowsimError
from flowsim.policies.intake import TeamWip
from flowsim.policies.protocol import ADMIT, REJECT, IntakeRule, InterventionRule, SequencingRule
from flowsim.scenario import scenario_from_dict
from flowsim.world import sample_world

FLOWSIM = str(Path(sys.executable).with_name("flowsim"))


pytestmark = pytest.mark.usefixtures("registry_guard")


def register(kind, name, rule, params=None):
    if params is None:
        flowsim.register(kind, name, replace=True)(rule)
    else:
        flowsim.register(kind, name, params=params, replace=True)(rule)
    return name


ONE_TEAM = {
    "horizon": 12,
    "teams": {"T": {"capacity": 1}},
    "projects": [{"id": pid, "value": {"rate": 1}, "stages": [{"team": "T", "effort": e}]}
                 for pid, e in (("a", 2), ("b", 1), ("c", 1))],
}  # fmt: skip


def run(data: dict, policy: dict, *, replications: int = 1, seed: int = 0, workers: int = 1) -> flowsim.Results:
    scenario = scenario_from_dict({"name": "audit", **data, "policies": {"p": policy}}, source="<audit>")
    return flowsim.run(scenario, replications=replications, seed=seed, workers=workers)


def delivered(results) -> dict:
    p = results.projects
    return dict(zip(p.project, p.delivered, strict=True))


class At(InterventionRule):
    """Acts as ``script`` (class attribute set per test) says: {time: [Action, ...]}."""

    script: ClassVar[dict] = {}

    def decision_times(self, horizon):
        return sorted(self.script)

    def review(self, portfolio):
        return list(self.script.get(portfolio.now, []))


# =========================================================================== reproducibility and fresh rule objects

STOCHASTIC = {
    "horizon": 30,
    "seed": 1,
    "estimation_error": 0.3,
    "teams": {"dev": {"capacity": 2}, "test": {"capacity": 1}},
    "templates": {"feat": {
        "value": {"rate": {"dist": "uniform", "low": 50, "high": 300}},
        "stages": [{"team": "dev", "effort": {"dist": "triangular", "low": 1, "mode": 3, "high": 8}},
                   {"team": "test", "effort": {"dist": "uniform", "low": 0.5, "high": 2}}]}},
    "arrivals": [{"template": "feat", "rate": 0.8}],
}  # fmt: skip


class Draws(SequencingRule):
    """One draw per project from ``context.rng``, kept in the rule object (state per replication)."""

    made: ClassVar[list] = []

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        self.draws: dict[str, float] = {}
        # The object itself, not its id: a rule freed after its replication may leave its address
        # to the next one, and two objects would then count as one (seen on a fresh clone).
        Draws.made.append((context.policy, self))

    def priority(self, project, now):
        if project.id not in self.draws:
            self.draws[project.id] = self.context.rng.random()
        return self.draws[project.id]


class CancelSome(InterventionRule):
    def decision_times(self, horizon):
        return [3.0 * k for k in range(1, 10)]

    def review(self, portfolio):
        return [flowsim.Action("cancel", p.id, "unlucky") for p in portfolio.active if self.context.rng.random() < 0.1]


def _stochastic_run(workers: int, policies: dict) -> flowsim.Results:
    scenario = scenario_from_dict({"name": "repro", **STOCHASTIC, "policies": policies}, source="<audit>")
    return flowsim.run(scenario, replications=4, seed=7, workers=workers)


def _frame(results, policy):
    p = results.projects
    p = p[p.policy == policy].sort_values(["replication", "project"])
    return p[["replication", "project", "status", "delivered", "value_delivered"]].reset_index(drop=True)


def test_context_rng_rules_reproduce_across_workers_and_policy_subsets():
    """Same seed, same numbers: in one process or a pool of two (chunks of one replication each,
    so a rule object or state shared across replications would show), and with the other
    policies left out (the rule's stream is keyed by its policy name)."""
    register("sequencing", "audit_draws", Draws)
    register("intervention", "audit_cancel_some", CancelSome)
    policies = {"fifo": {}, "mine": {"sequencing": "audit_draws", "intervention": "audit_cancel_some"}}
    Draws.made = []
    one = _stochastic_run(1, policies)
    # A fresh rule object per (policy, replication): 4 replications of "mine".
    assert [policy for policy, _ in Draws.made] == ["mine"] * 4
    assert len({id(obj) for _, obj in Draws.made}) == 4  # all alive in ``made``: distinct ids
    two = _stochastic_run(2, policies)
    alone = _stochastic_run(1, {"mine": policies["mine"]})
    assert (one.events.event == "cancelled").any()  # the intervention's draws did act
    for policy in ("fifo", "mine"):
        assert _frame(one, policy).equals(_frame(two, policy)), policy
    assert _frame(one, "mine").equals(_frame(alone, "mine"))


# =========================================================================== intervention edge targets


def test_actions_on_projects_out_of_play_do_nothing_and_log_nothing():
    """T: a (1) delivered at 1, b (5) runs 1-6; d arrives at 8; e depends on b (blocked); U: c.
    At 2: cancel/pause/expedite the delivered a, every action on the not-yet-arrived d, pause
    the blocked e (pause acts on active projects only), expedite b twice (one event), cancel c
    twice (one event).  docs/policies.md: an action on a project no longer in play does nothing."""
    A = flowsim.Action
    At.script = {2.0: [A("cancel", "a", "x"), A("pause", "a", "x"), A("expedite", "a", "x"),
                       A("cancel", "d", "early"), A("pause", "d", "early"), A("expedite", "d", "early"),
                       A("pause", "e", "hold"),
                       A("expedite", "b", "one"), A("expedite", "b", "two"),
                       A("cancel", "c", "first"), A("cancel", "c", "second")]}  # fmt: skip
    register("intervention", "audit_at", At)
    data = {
        "horizon": 30, "teams": {"T": {"capacity": 1}, "U": {"capacity": 1}},
        "projects": [
            {"id": "a", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]},
            {"id": "b", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 5}]},
            {"id": "c", "value": {"rate": 1}, "stages": [{"team": "U", "effort": 4}]},
            {"id": "d", "arrival": 8, "value": {"rate": 1}, "stages": [{"team": "U", "effort": 1}]},
            {"id": "e", "depends_on": ["b"], "value": {"rate": 1}, "stages": [{"team": "U", "effort": 1}]}],
    }  # fmt: skip
    results = run(data, {"intervention": "audit_at"})
    e = results.events
    acted = e[e.event.isin(["cancelled", "paused", "expedited"])]
    assert list(zip(acted.time, acted.project, acted.event, acted.reason, strict=True)) == [
        (2.0, "b", "expedited", "one"),
        (2.0, "c", "paused", "project withdrawn"),
        (2.0, "c", "cancelled", "first"),
    ]  # fmt: skip
    assert delivered(results) == {"a": 1.0, "b": 6.0, "c": pytest.approx(math.nan, nan_ok=True), "d": 9.0, "e": 7.0}


def test_cancel_and_expedite_reach_a_project_waiting_for_its_dependency():
    """e and f depend on b (T: b 0-5); both enter the funnel at 5, f first by the FIFO key.
    Cancelling e while it waits for b cancels it (portfolio.blocked lists it for this); expediting
    it logs the event, is kept while it waits, and puts it ahead of f at 5: e 5-6, f 6-7."""
    A = flowsim.Action
    data = {
        "horizon": 30, "teams": {"T": {"capacity": 1}, "U": {"capacity": 1}},
        "projects": [
            {"id": "b", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 5}]},
            {"id": "f", "depends_on": ["b"], "value": {"rate": 1}, "stages": [{"team": "U", "effort": 1}]},
            {"id": "e", "depends_on": ["b"], "value": {"rate": 1}, "stages": [{"team": "U", "effort": 1}]}],
    }  # fmt: skip
    register("intervention", "audit_at", At)
    At.script = {1.0: [A("cancel", "e", "not needed")]}
    results = run(data, {"intervention": "audit_at"})
    p = results.projects.set_index("project")
    assert p.status.to_dict() == {"b": "delivered", "f": "delivered", "e": "cancelled"}
    assert results.events.query("event == 'cancelled'").reason.tolist() == ["not needed"]
    At.script = {1.0: [A("expedite", "e", "rush")]}
    results = run(data, {"intervention": "audit_at"})
    assert delivered(results) == {"b": 5.0, "f": 7.0, "e": 6.0}
    assert results.events.query("event == 'expedited'").reason.tolist() == ["rush"]


# =========================================================================== messages from the command line

BAD_INTAKE = """
import flowsim
from flowsim.policies.protocol import IntakeRule


@flowsim.register("intake", "audit_maybe")
class Maybe(IntakeRule):
    def decide(self, candidate, portfolio):
        return "maybe"
"""


def test_a_bad_answer_in_a_pool_worker_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "bad.py").write_text(BAD_INTAKE)
    scenario = {"name": "bad", **ONE_TEAM, "policies": {"fifo": {}, "mine": {"intake": "audit_maybe"}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario))
    result = subprocess.run([FLOWSIM, "--rules", "bad.py", "run", "s.yaml", "-n", "4", "-w", "2", "-q"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "intake rule audit_maybe (Maybe) of policy mine: decide must return admit, reject, hold or stop, got 'maybe'"
    )


# =========================================================================== bugs: information reachable from views


def _reachable(root):
    """Everything reachable from ``root`` through attributes and ``__slots__`` of flowsim
    objects (underscored ones included), container items, and closures of functions."""
    seen, stack = set(), [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type, types.ModuleType)):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, dict):
            stack += list(obj.keys()) + list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += list(obj)
        elif isinstance(obj, types.FunctionType):
            stack += [c.cell_contents for c in obj.__closure__ or ()]
        elif isinstance(obj, types.MethodType):
            stack.append(obj.__func__)
        elif (type(obj).__module__ or "").startswith("flowsim"):
            names = set(getattr(obj, "__dict__", {}))
            for klass in type(obj).__mro__:
                slots = klass.__dict__.get("__slots__", ())
                names.update((slots,) if isinstance(slots, str) else slots)
            for name in names:
                value = getattr(obj, name, None)
                if value is not None:
                    stack.append(value)


class Keeper(IntakeRule):
    first: ClassVar[list] = []

    def decide(self, candidate, portfolio):
        if not Keeper.first:
            Keeper.first.append(portfolio.now)
            Keeper.first.append([getattr(o, "arrival", None) for o in _reachable(portfolio)
                                 if type(o).__name__ in ("ProjectState", "ProjectView")])  # fmt: skip
        return ADMIT


def test_no_future_arrival_is_reachable_from_the_portfolio_view():
    """The arrival process is part of the realised world (flowsim/world.py).  At the first
    intake decision no project arriving later may be reachable from the PortfolioView."""
    Keeper.first = []
    register("intake", "audit_keeper", Keeper)
    scenario = scenario_from_dict({"name": "arrivals", **STOCHASTIC, "policies": {"k": {"intake": "audit_keeper"}}})
    flowsim.run(scenario, replications=1, seed=5, workers=1)
    now, arrivals = Keeper.first
    assert arrivals
    assert [t for t in arrivals if t > now] == []


class SeedReader(SequencingRule):
    recovered: ClassVar[list] = []

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        sequence = context.rng.bit_generator.seed_seq
        SeedReader.recovered.append((sequence.entropy, sequence.spawn_key[:1]))

    def priority(self, project, now):
        return 0.0


def test_the_rule_stream_does_not_reveal_the_seed_of_the_world():
    SeedReader.recovered = []
    register("sequencing", "audit_seed_reader", SeedReader)
    effort = {"dist": "uniform", "low": 1, "high": 9}
    data = {"name": "seed", "horizon": 5, "teams": {"T": {"capacity": 1}},
            "projects": [{"id": "x", "value": {"rate": 150},
                          "stages": [{"team": "T", "effort": effort, "estimate": 3}]}],
            "policies": {"spy": {"sequencing": "audit_seed_reader"}}}  # fmt: skip
    scenario = scenario_from_dict(data)
    flowsim.run(scenario, replications=2, seed=11, workers=1)
    truth = [sample_world(scenario, 11, r).projects[0].effort_actual[0] for r in (0, 1)]
    guessed = []
    for entropy, key in SeedReader.recovered:
        try:
            guessed.append(sample_world(scenario, entropy, key[0]).projects[0].effort_actual[0])
        except Exception:  # a stream that does not expose (seed, replication) cannot be inverted
            guessed.append(None)
    assert guessed != truth


# =========================================================================== bugs: silently wrong results


class MovesTheClock(InterventionRule):
    """Acts on nothing; looks one week ahead by moving the view's ``now``."""

    def decision_times(self, horizon):
        return [0.0, 2.0, 4.0, 6.0]

    def review(self, portfolio):
        portfolio.now = portfolio.now + 1
        return []


def test_a_review_cannot_move_the_clock_the_intake_rule_sees():
    register("intervention", "audit_moves_clock", MovesTheClock)
    data = {"horizon": 12, "teams": {"T": {"capacity": 3}},
            "projects": [{"id": f"p{i}", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]}
                         for i in range(4)]}  # fmt: skip
    cadence = {"rule": "cadence", "every": 2, "limit": 1}
    alone = delivered(run(data, {"intake": cadence}))
    assert alone == {"p0": 1.0, "p1": 3.0, "p2": 5.0, "p3": 7.0}
    try:
        with_review = delivered(run(data, {"intake": cadence, "intervention": "audit_moves_clock"}))
    except AttributeError:  # the view refused the assignment: what it should do
        with_review = alone
    assert with_review == alone


class AdmitWithTicks(IntakeRule):
    ticks: ClassVar[list] = []

    def decision_times(self, horizon):
        return list(self.ticks)

    def decide(self, candidate, portfolio):
        return ADMIT


def test_a_nan_decision_time_is_refused():
    register("intake", "audit_ticks", AdmitWithTicks)
    AdmitWithTicks.ticks = [math.nan]
    scenario = scenario_from_dict({"name": "nan", **STOCHASTIC, "policies": {
        "fifo": {}, "ticks": {"intake": "audit_ticks"}}})  # fmt: skip
    with pytest.raises(FlowsimError, match="decision"):
        flowsim.run(scenario, replications=2, seed=1, workers=1)


def test_a_negative_decision_time_is_bad_input():
    register("intake", "audit_ticks", AdmitWithTicks)
    AdmitWithTicks.ticks = [-1.0]
    with pytest.raises(FlowsimError, match="decision"):
        run(ONE_TEAM, {"intake": "audit_ticks"})


RANKS: dict[str, float] = {}


class Table(SequencingRule):
    def priority(self, project, now):
        return RANKS[project.id]


def test_a_nan_priority_stops_the_run():
    RANKS.clear()
    RANKS.update({"a": math.nan, "b": 5.0, "c": 3.0})
    register("sequencing", "audit_table", Table)
    with pytest.raises(FlowsimError, match="nan"):
        run(ONE_TEAM, {"sequencing": "audit_table"})


@pytest.mark.parametrize("value", [None, "high", [1.0]])
def test_a_priority_that_is_not_a_number_names_the_rule(value):
    RANKS.clear()
    RANKS.update({"a": 1.0, "b": 2.0, "c": value})
    register("sequencing", "audit_table", Table)
    with pytest.raises(FlowsimError, match=r"Table|audit_table"):
        run(ONE_TEAM, {"sequencing": "audit_table"})


class InfForA(SequencingRule):
    def priority(self, project, now):
        return math.inf if project.id == "a" else 0.0


def test_an_expedited_project_goes_before_a_rule_rank_of_inf():
    register("sequencing", "audit_inf_a", InfForA)
    register("intervention", "audit_at", At)
    At.script = {0.0: [flowsim.Action("expedite", "c", "rush")]}
    got = delivered(run(ONE_TEAM, {"sequencing": "audit_inf_a", "intervention": "audit_at"}))
    assert got["c"] == 1.0


class UrgentLater(SequencingRule):
    """c ranks above b until t = 1, then b jumps ahead (a rank that rises with time)."""

    trend: ClassVar[tuple] = ("live", math.inf)

    def priority(self, project, now):
        return {"a": 10.0, "b": 100.0 if now >= 1 else 1.0, "c": 2.0}[project.id]

    def rank_trend(self, project, now):
        return self.trend


def test_a_live_rank_that_rises_is_seen():
    register("sequencing", "audit_urgent_later", UrgentLater)
    UrgentLater.trend = ("live", math.inf)
    assert delivered(run(ONE_TEAM, {"sequencing": "audit_urgent_later"})) == {"a": 2.0, "b": 3.0, "c": 4.0}


def test_an_unknown_rank_trend_kind_is_refused():
    register("sequencing", "audit_urgent_later", UrgentLater)
    UrgentLater.trend = ("consant", math.inf)
    with pytest.raises(FlowsimError, match="consant"):
        run(ONE_TEAM, {"sequencing": "audit_urgent_later"})


# =========================================================================== bugs: unclear messages


class RejectWithNumber(IntakeRule):
    def decide(self, candidate, portfolio):
        return (REJECT, 42)


class CancelWithNumber(InterventionRule):
    def decision_times(self, horizon):
        return [1.0]

    def review(self, portfolio):
        return [flowsim.Action("cancel", p.id, 42) for p in portfolio.active]


@pytest.mark.parametrize("kind", ["intake", "intervention"])
def test_a_reason_that_is_not_text_is_reported_as_the_rules_mistake(kind):
    rule = RejectWithNumber if kind == "intake" else CancelWithNumber
    register(kind, "audit_number_reason", rule)
    with pytest.raises(FlowsimError, match="42"):
        run(ONE_TEAM, {kind: "audit_number_reason"})


class OneTuple(IntakeRule):
    def decide(self, candidate, portfolio):
        return (REJECT,)


class SingleAction(InterventionRule):
    def decision_times(self, horizon):
        return [1.0]

    def review(self, portfolio):
        return flowsim.Action("cancel", portfolio.active[0].id, "x")


@pytest.mark.parametrize(("kind", "rule"), [("intake", OneTuple), ("intervention", SingleAction)])
def test_malformed_answers_name_the_rule(kind, rule):
    register(kind, "audit_malformed", rule)
    with pytest.raises(FlowsimError, match=rule.__name__):
        run(ONE_TEAM, {kind: "audit_malformed"})


class Chatty(InterventionRule):
    def decision_times(self, horizon):
        return [1.0]

    def review(self, portfolio):
        return ["cancel everything"]


def test_a_bad_intervention_answer_names_the_rule():
    register("intervention", "audit_chatty", Chatty)
    with pytest.raises(FlowsimError, match=r"Chatty|audit_chatty"):
        run(ONE_TEAM, {"intervention": "audit_chatty"})


PICKY = """
import flowsim
from flowsim.policies.protocol import SequencingRule
from flowsim.scenario import scenario_from_dict


class PickyError(Exception):
    def __init__(self, code, detail):
        super().__init__(f"picky {code}: {detail}")


@flowsim.register("sequencing", "audit_picky")
class Picky(SequencingRule):
    def priority(self, project, now):
        raise PickyError(7, "my own bug")


data = {"name": "picky", "horizon": 12, "teams": {"T": {"capacity": 1}},
        "projects": [{"id": p, "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1}]} for p in "ab"],
        "policies": {"p": {"sequencing": "audit_picky"}}}
flowsim.run(scenario_from_dict(data), replications=2, seed=0, workers=2)
"""


def test_a_rule_authors_exception_survives_the_process_pool(tmp_path):
    # A fresh interpreter: importing dask.distributed (other tests do) installs tblib's exception
    # pickling, which hides the problem; the command line does not import it.
    (tmp_path / "picky.py").write_text(PICKY)
    result = subprocess.run([sys.executable, "picky.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "picky 7: my own bug" in result.stderr


class NotAModel:
    pass


def test_register_refuses_params_that_are_not_a_pydantic_model():
    with pytest.raises((TypeError, ValueError)):
        flowsim.register("sequencing", "audit_not_a_model", params=NotAModel)(InfForA)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    weight: float = Field(1.0, gt=0)


def test_rule_params_are_validated_per_build_and_frozen():
    """Each build gets its own validated params object; a frozen model refuses assignment."""
    seen = []

    def factory(params, context):
        seen.append(params)
        return InfForA(params, context)

    register("sequencing", "audit_params", factory, params=Strict)
    run(ONE_TEAM, {"sequencing": {"rule": "audit_params", "weight": 2}}, replications=2)
    assert [p.weight for p in seen] == [2.0, 2.0] and seen[0] is not seen[1]
    with pytest.raises(Exception, match="frozen"):
        seen[0].weight = 3.0


# =========================================================================== hold keys (engine/funnel.py)


class UrgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    limits: dict[str, int]
    urgent: float


class TeamWipUrgent(TeamWip):
    """team_wip, but a project whose cost of delay is at least ``urgent`` is admitted anyway:
    it overrides ``decide``, so the hold key it inherits no longer tells its answers."""

    def decide(self, candidate, portfolio):
        if candidate.cost_of_delay(portfolio.now) >= self.params.urgent:
            return ADMIT
        return super().decide(candidate, portfolio)


URGENT = {
    "horizon": 30, "teams": {"A": {"capacity": 2}},
    "projects": [
        {"id": "first", "value": {"rate": 1}, "stages": [{"team": "A", "effort": 10}]},
        {"id": "low", "arrival": 1, "value": {"rate": 5}, "stages": [{"team": "A", "effort": 1}]},
        {"id": "urgent", "arrival": 1, "value": {"rate": 100}, "stages": [{"team": "A", "effort": 1}]},
    ],
}  # fmt: skip


def test_a_subclass_that_answers_otherwise_is_not_passed_by_its_inherited_key():
    """A 0-10 holds A's one admitted place (limit 1); at 1 low is held, and urgent (CoD 100 >= 50)
    is admitted at once, behind low in the funnel: a pass by the inherited key would have
    skipped it with low, until 10 (found by a review of the change)."""
    register("intake", "audit_team_wip_urgent", TeamWipUrgent, params=UrgentParams)
    rule = {"rule": "audit_team_wip_urgent", "limits": {"A": 1}, "urgent": 50}
    admitted = dict(zip(*[run(URGENT, {"intake": rule}).projects[c] for c in ("project", "admitted")], strict=True))
    assert admitted["urgent"] == 1.0 and admitted["low"] == 10.0


class KeyedAdmitAll(IntakeRule):
    keys: ClassVar[object] = None

    def hold_key(self, candidate):
        return self.keys

    def decide(self, candidate, portfolio):
        return ADMIT


def test_an_unhashable_hold_key_names_the_rule():
    register("intake", "audit_keyed", KeyedAdmitAll)
    KeyedAdmitAll.keys = ["a list"]
    with pytest.raises(FlowsimError, match=r"audit_keyed .*hold_key must return a hashable value, got \['a list'\]"):
        run(ONE_TEAM, {"intake": "audit_keyed", "sequencing": "cd3"})


class ArrayTicks(AdmitWithTicks):
    def decision_times(self, horizon):
        return np.array([1.0, 4.0])  # not a list: the engine must not ask for its truth value


def test_decision_times_may_be_a_numpy_array():
    register("intake", "audit_array_ticks", ArrayTicks)
    assert delivered(run(ONE_TEAM, {"intake": "audit_array_ticks"})) == {"a": 2.0, "b": 3.0, "c": 4.0}


@pytest.mark.parametrize(("sequencing", "keyed"), [("cd3", True), ("random", True), ("audit_draws", False)])
def test_passes_go_by_key_only_when_ranks_have_no_side_effects(sequencing, keyed):
    """A pass by key asks for fewer ranks than a walk down the funnel: with a rule that may
    draw at every call (neither pure nor constant, as ``Draws``) that would change its runs,
    so the engine walks the funnel.  ``random`` is constant: one draw per project."""
    from flowsim.engine.setup import build_rules, make_setup
    from flowsim.engine.simulation import Simulation

    register("sequencing", "audit_draws", Draws)

    data = {"name": "keys", **ONE_TEAM, "policies": {"p": {
        "intake": {"rule": "team_wip", "limits": {"T": 1}}, "sequencing": sequencing}}}  # fmt: skip
    scenario = scenario_from_dict(data)
    setup = make_setup(scenario)
    rules = build_rules(scenario, setup, "p", scenario.policies["p"], 0, 0)
    assert Simulation(setup, sample_world(scenario, 0, 0), rules).funnel.keyed is keyed
