"""Rules see estimates and progress, never the realised world (DESIGN sections 4 and 7).

A scenario makes the realised numbers distinctive: a stage whose realised effort is
exactly 7.77 (estimate 3) and a value rate drawn from a distribution (estimate 150).
Rules registered for the test capture every view the engine hands them (ProjectView,
StageView, PortfolioView, RuleContext) and walk everything reachable from it, at the
moment they receive it: every attribute (properties evaluated), every ``__slots__``
entry, the items of containers, recursively through objects defined in ``flowsim``.
Neither realised number may appear, and no ``World``/``ProjectWorld`` instance nor a
``_remaining`` list (the engine's realised remaining efforts) may be reachable.

The horizon (5) ends before the 7.77 stage can finish, so its progress (visible by
design: effort done is observed as it happens) never reveals the realised total.
With ``perfect_information: true`` the same views show the realised values.
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterator
from typing import ClassVar

import pytest
from pydantic import BaseModel

import flowsim
from flowsim.policies import unregister
from flowsim.policies.protocol import ADMIT, IntakeRule, InterventionRule, SequencingRule
from flowsim.scenario import scenario_from_dict
from flowsim.world import ProjectWorld, World, sample_world

REALISED_EFFORT = 7.77
HORIZON = 5.0
SEED = 3


def scenario_data(perfect_information: bool = False, spy: bool = True) -> dict:
    flag = {"perfect_information": True} if perfect_information else {}
    policy = {"intake": "test_spy_intake", "sequencing": "test_spy_sequencing",
              "intervention": "test_spy_intervention", **flag}  # fmt: skip
    return {
        "name": "views",
        "horizon": HORIZON,
        "teams": {"T": {"capacity": 1}, "U": {"capacity": 2}},
        "projects": [
            {"id": "secret", "value": {"rate": {"dist": "uniform", "low": 100, "high": 200}, "estimate": 150},
             "stages": [{"team": "T", "effort": {"dist": "fixed", "value": REALISED_EFFORT}, "estimate": 3},
                        {"team": "U", "effort": 1}]},
            {"id": "other", "value": {"rate": 10, "profile": "decay", "half_life": 4},
             "stages": [{"team": "T", "effort": 2, "estimate": 2}]},
            {"id": "later", "arrival": 1, "value": {"rate": 5, "profile": "window", "closes": 4},
             "stages": [{"team": "U", "effort": 1}]},
        ],
        "policies": {"spy": policy} if spy else {"fifo": {}},
    }  # fmt: skip


def realised_rate() -> float:
    world = sample_world(scenario_from_dict(scenario_data(spy=False)), SEED, 0)
    rate = world.projects[0].value_actual.rate
    assert 100 < rate < 200 and rate != 150
    assert world.projects[0].effort_actual[0] == REALISED_EFFORT
    return rate


# --------------------------------------------------------------------------- the walk

_ATOMS = (str, bytes, int, float, complex, bool, type(None))


def _followed(obj) -> bool:
    module = type(obj).__module__ or ""
    return module == "flowsim" or module.startswith("flowsim.")


def _attribute_names(obj) -> set[str]:
    names = set(dir(obj))
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return {n for n in names if not (n.startswith("__") and n.endswith("__"))}


def reachable(root, name: str = "view", *, closures: bool = False) -> Iterator[tuple[str, object]]:
    """(path, object) for everything reachable from ``root``: attributes, slots, properties
    and container items; objects are followed only if their class is defined in flowsim.
    With ``closures``, also through functions' closure cells and defaults and bound
    methods' ``__self__`` (what a rule could reach by introspection)."""
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [(name, root)]
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield path, obj
        if isinstance(obj, _ATOMS):
            continue
        if isinstance(obj, dict):
            for k, v in obj.items():
                stack.append((f"{path}[{k!r}] (key)", k))
                stack.append((f"{path}[{k!r}]", v))
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(obj))
        elif closures and isinstance(obj, types.FunctionType):
            stack.extend((f"{path}.__closure__[{i}]", c.cell_contents) for i, c in enumerate(obj.__closure__ or ()))
            stack += [(f"{path}.__defaults__", obj.__defaults__), (f"{path}.__kwdefaults__", obj.__kwdefaults__)]
        elif closures and isinstance(obj, types.MethodType):
            stack += [(f"{path}.__self__", obj.__self__), (f"{path}.__func__", obj.__func__)]
        elif _followed(obj) and not isinstance(obj, type):
            for attr in sorted(_attribute_names(obj)):
                try:
                    with warnings.catch_warnings():  # pydantic's deprecated instance attributes
                        warnings.simplefilter("ignore")
                        value = getattr(obj, attr)
                except AttributeError:  # an unset slot
                    continue
                skipped = (types.ModuleType, type) if closures else (
                    types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType, type)
                if isinstance(value, skipped):
                    continue
                stack.append((f"{path}.{attr}", value))


def leaks(root, forbidden: tuple[float, ...], name: str) -> list[str]:
    found = []
    for path, obj in reachable(root, name):
        if isinstance(obj, (World, ProjectWorld)):
            found.append(f"{path}: a {type(obj).__name__}")
        if path.endswith("._remaining"):
            found.append(f"{path}: the engine's realised remaining efforts")
        if isinstance(obj, float) and not isinstance(obj, bool):
            for number in forbidden:
                if math.isclose(obj, number, rel_tol=1e-12, abs_tol=1e-12):
                    found.append(f"{path} = {obj!r}: a realised number")
    return found


def method_values(view, portfolio_or_now) -> dict[str, float]:
    """What the view's methods answer at ``now`` (they take arguments, so the walk skips them)."""
    now = portfolio_or_now
    values = {
        "remaining_work": view.remaining_work(now),
        "remaining_work(T)": view.remaining_work(now, "T"),
        "remaining_critical_path": view.remaining_critical_path(now),
        "projected_delivery": view.projected_delivery(now),
        "cost_of_delay": view.cost_of_delay(now),
    }
    for stage in view.stages:
        values[f"{stage.name}.done"] = stage.done(now)
        values[f"{stage.name}.remaining"] = stage.remaining(now)
    return values


# --------------------------------------------------------------------------- spy rules


class Captured:
    """What the spy rules saw: (kind, time, object) and the walk's findings, taken at once."""

    items: ClassVar[list] = []


class SpySequencing(SequencingRule):
    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        Captured.items.append(("context", 0.0, context))

    def priority(self, project, now):
        Captured.items.append(("sequencing project", now, project))
        return 0.0


class SpyIntake(IntakeRule):
    def decide(self, candidate, portfolio):
        Captured.items.append(("intake candidate", portfolio.now, candidate))
        Captured.items.append(("intake portfolio", portfolio.now, portfolio))
        return ADMIT


class SpyIntervention(InterventionRule):
    def decision_times(self, horizon):
        return [0.5, 2.0, 4.5]

    def review(self, portfolio):
        Captured.items.append(("intervention portfolio", portfolio.now, portfolio))
        for project in portfolio.active:
            Captured.items.append(("intervention project", portfolio.now, project))
        return []


class Walked:
    findings: ClassVar[list] = []
    methods: ClassVar[list] = []
    seen: ClassVar[list] = []
    answers: ClassVar[list] = []  # (kind, now, what a PortfolioView answers then)


def _walk_now(kind, now, obj, forbidden):
    Walked.seen.append((kind, now, obj))
    Walked.findings += [f"{kind} at {now:g}: {line}" for line in leaks(obj, forbidden, kind.split()[-1])]
    if kind.endswith("project"):
        Walked.methods.append((kind, now, obj.id, method_values(obj, now), obj))
    if kind.endswith("portfolio"):
        answers = {
            "now": obj.now,
            "bottleneck": obj.bottleneck,
            "active": tuple(p.id for p in obj.active),
            "funnel": tuple(p.id for p in obj.funnel),
            "active_count": obj.active_count,
        }
        for team in ("T", "U"):
            answers.update(
                {
                    f"{name}({team})": getattr(obj, name)(team)
                    for name in ("capacity", "busy", "queue_length", "team_wip", "estimated_load")
                }
            )
        Walked.answers.append((kind, now, answers))


@pytest.fixture
def spies():
    """Register the spy rules; each walks what it receives at the moment it receives it."""
    # The realised effort, the realised rate and the realised ideal delivery 0 + 7.77 + 1.
    forbidden = (REALISED_EFFORT, realised_rate(), REALISED_EFFORT + 1.0)

    class Recorder(list):
        def append(self, item):  # walk at capture time: progress moves on afterwards
            _walk_now(*item, forbidden)

    Captured.items = Recorder()
    Walked.findings, Walked.methods, Walked.seen, Walked.answers = [], [], [], []
    flowsim.register("sequencing", "test_spy_sequencing", replace=True)(SpySequencing)
    flowsim.register("intake", "test_spy_intake", replace=True)(SpyIntake)
    flowsim.register("intervention", "test_spy_intervention", replace=True)(SpyIntervention)
    yield Walked
    for kind, name in (("sequencing", "test_spy_sequencing"), ("intake", "test_spy_intake"),
                       ("intervention", "test_spy_intervention")):  # fmt: skip
        unregister(kind, name)


def run(perfect_information: bool = False, shared: bool = False):
    data = scenario_data(perfect_information)
    if shared:
        data["teams"]["T"]["focus"] = "shared"
    scenario = scenario_from_dict(data, source="<test_views>")
    return flowsim.run(scenario, replications=1, seed=SEED, workers=1)


def kinds_seen(walked) -> set[str]:
    return {kind for kind, _, _ in walked.seen}


# --------------------------------------------------------------------------- tests


def test_the_walk_finds_what_it_should():
    """The walk is not blind: it reaches slots, properties and containers, and flags worlds."""
    world = sample_world(scenario_from_dict(scenario_data(spy=False)), SEED, 0)
    found = leaks({"w": (world,)}, (REALISED_EFFORT,), "probe")
    assert any("a World" in line for line in found)
    assert any("a ProjectWorld" in line for line in found)
    assert any("= 7.77" in line for line in found)


def test_project_and_stage_views_hide_realised_effort_and_value(spies):
    results = run()
    assert results.projects.set_index("project").effort_actual["secret"] == pytest.approx(REALISED_EFFORT + 1)
    assert {"sequencing project", "intake candidate", "intervention project", "context"} <= kinds_seen(spies)
    project_findings = [f for f in spies.findings if "portfolio" not in f.split(":")[0]]
    assert project_findings == []
    # What the views do show: the estimates (3 for the stage, 150 for the rate), and progress.
    secret = [(kind, now, values, view) for kind, now, pid, values, view in spies.methods if pid == "secret"]
    assert secret
    for _kind, now, values, view in secret:
        assert view.rate == 150.0
        assert view.stages[0].estimate == 3.0
        assert view.ideal_estimate == 3.0 + 1.0
        for name, value in values.items():
            assert not math.isclose(value, REALISED_EFFORT), (name, now)
        # remaining = max(3 - done, 0.3) on T: an overrunning stage is believed nearly done.
        done = values["T.done"]  # secret's T stage runs from 0 (first in fifo order) to the horizon
        assert done == pytest.approx(now)
        assert values["T.remaining"] == pytest.approx(max(3 - done, 0.3))
    late = [values for _, now, values, _ in secret if now >= 4.0]
    assert late and all(v["T.remaining"] == pytest.approx(0.3) for v in late)  # 4 done of 3 believed


def test_portfolio_view_hides_the_realised_world(spies):
    """Walking every attribute of the portfolio views intake and intervention rules get
    finds no realised ``World``, no realised effort and no ``Simulation`` (DESIGN section 7:
    "the engine hands them no reference to the realised world").  Closures are walked in
    ``test_policy_audit.test_no_realised_world_behind_the_portfolio_views_closures``."""
    run()
    assert {"intake portfolio", "intervention portfolio"} <= kinds_seen(spies)
    portfolio_findings = [f for f in spies.findings if "portfolio" in f.split(":")[0]]
    assert portfolio_findings == [], "\n".join(portfolio_findings[:10])


def test_views_of_a_shared_team_hide_realised_effort(spies):
    """On a shared team, a stage's progress is kept on its crew size's clock (engine/sharing.py):
    when its realised effort will be done is a clock reading that must stay the engine's, like
    ``_remaining``.  secret (7.77 realised) and other (2) share T's unit from 0."""
    results = run(shared=True)
    delivered = results.projects.set_index("project").delivered
    assert delivered["other"] == pytest.approx(4.0)  # 2 of effort at half the unit
    assert {"sequencing project", "intake portfolio", "intervention portfolio"} <= kinds_seen(spies)
    assert spies.findings == [], "\n".join(spies.findings[:10])
    done = [values["T.done"] for kind, now, pid, values, _ in spies.methods if pid == "secret" and now == 2.0]
    assert done and all(d == pytest.approx(1.0) for d in done)  # half a unit for 2 time units


def test_portfolio_view_public_answers_are_estimates(spies):
    """What a PortfolioView answers through its documented protocol, checked by hand.

    T (1 unit): secret's T stage (estimate 3, realised 7.77) runs from 0; other (2) waits.
    U (2 units): later (arrives at 1, effort 1) runs 1-2.  Estimated load on T at t:
    secret max(3 - t, 0.3) + other 2 (T-stage estimates); on U: secret's U stage 1 (upstream)
    plus later's max(1 - done, 0.1) while it is unfinished."""
    run()
    reviews = {now: answers for kind, now, answers in spies.answers if kind == "intervention portfolio"}
    assert sorted(reviews) == [0.5, 2.0, 4.5]
    for now, answers in reviews.items():
        assert answers["now"] == now
        assert answers["capacity(T)"] == 1 and answers["capacity(U)"] == 2
        assert answers["busy(T)"] == 1 and answers["queue_length(T)"] == 1 and answers["team_wip(T)"] == 2
        assert answers["estimated_load(T)"] == pytest.approx(max(3 - now, 0.3) + 2)
        assert answers["funnel"] == ()
    assert reviews[0.5]["active"] == ("secret", "other")
    assert reviews[0.5]["estimated_load(U)"] == pytest.approx(1.0)
    assert reviews[2.0]["active"] == ("secret", "other")  # later delivered at 2, before the review
    assert reviews[2.0]["estimated_load(U)"] == pytest.approx(1.0)
    assert reviews[4.5]["estimated_load(T)"] == pytest.approx(0.3 + 2)  # overrun: believed nearly done
    # The planning bottleneck from estimates: T 3 + 2 = 5 per unit, U (1 + 1) / 2 = 1.
    assert {answers["bottleneck"] for _, _, answers in spies.answers} == {"T"}


def test_perfect_information_views_show_realised_values(spies):
    run(perfect_information=True)
    rate = realised_rate()
    secret = [(now, view) for kind, now, pid, _, view in spies.methods if pid == "secret"]
    assert secret
    for _now, view in secret:
        assert view.stages[0].estimate == REALISED_EFFORT
        assert view.rate == rate
        assert view.ideal_estimate == pytest.approx(REALISED_EFFORT + 1.0)  # the realised ideal delivery
    assert any("= 7.77" in f for f in spies.findings)  # the walk sees it now


def test_views_are_read_only(spies):
    run()
    view = next(obj for kind, _, obj in spies.seen if kind == "sequencing project")
    with pytest.raises(AttributeError):
        view.rate = 1.0
    with pytest.raises(AttributeError):
        view.stages[0].estimate = 1.0
    with pytest.raises(AttributeError):
        view.new_attribute = 1.0


def test_rule_context_carries_no_world(spies):
    run()
    contexts = [obj for kind, _, obj in spies.seen if kind == "context"]
    assert contexts and all(isinstance(c, flowsim.RuleContext) for c in contexts)
    assert not isinstance(contexts[0], BaseModel)
    assert [f for f in spies.findings if f.startswith("context")] == []
