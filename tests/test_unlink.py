"""A finished replication is freed by reference counting, not left to the cyclic collector.

Stages, projects and views reference each other, and events pending at the
horizon reference the simulation's handlers.  ``Simulation.run`` breaks these
cycles once the record is collected; otherwise Python's cyclic collector walks
every object of every replication, about 12% of a whole run.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import flowsim
from flowsim.engine.setup import build_rules, make_setup
from flowsim.engine.simulation import Simulation
from flowsim.engine.state import ACTIVE, STAGE_STATUS_NAMES, STATUS_NAMES, WAITING
from flowsim.policies import unregister
from flowsim.policies.intake import AdmitAll
from flowsim.policies.protocol import InterventionRule
from flowsim.policies.sequencing import Cd3
from flowsim.scenario.load import read_yaml, scenario_from_dict
from flowsim.world import sample_world

ROOT = Path(__file__).resolve().parent.parent


def _left_for_the_collector(path: Path, policy: str) -> int:
    """Objects only the cyclic collector can free after one replication under ``policy``: the
    least of three runs, since ``gc.collect`` also counts garbage other threads make meanwhile
    (a Dask cluster another test left running), which only ever adds."""
    return min(_left_once(path, policy) for _ in range(3))


def _left_once(path: Path, policy: str) -> int:
    scenario = flowsim.load_scenario(path)
    setup = make_setup(scenario)
    world = sample_world(scenario, scenario.seed, 0)
    rules = build_rules(scenario, setup, policy, scenario.policies[policy], scenario.seed, 0)
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        record = Simulation(setup, world, rules).run()
        left = gc.collect()
    finally:
        if collecting:
            gc.enable()
    assert len(record.projects["project"]) > 0
    return left


def test_a_replication_leaves_no_cycles_that_grow_with_its_size():
    # SimPy's Environment keeps a few bound methods of itself: a constant handful of
    # objects.  The benchmark portfolio makes tens of thousands; none may be left.
    small = _left_for_the_collector(ROOT / "scenarios" / "teaching" / "mm1.yaml", "fifo")
    for policy in ("fifo", "cd3", "wip-cd3", "sjf"):
        big = _left_for_the_collector(ROOT / "scenarios" / "bench.yaml", policy)
        assert big == small, f"{policy}: {big} objects left for the cyclic collector, {small} for mm1"
    # A shared team keeps its stages on crew clocks (engine/sharing.py); work still in progress
    # at the horizon holds a clock place under every one of these policies.
    for policy in ("push-cd3", "wip2-cd3", "wip8-cd3"):
        shared = _left_for_the_collector(ROOT / "scenarios" / "teaching" / "wip_limits.yaml", policy)
        assert shared == small, f"{policy}: {shared} objects left for the cyclic collector, {small} for mm1"
    assert small < 20


class _Keeper(Cd3):
    """cd3 that keeps every project view it is shown, as a notebook user's rule might."""

    seen: ClassVar[list] = []

    def priority(self, project, now):
        self.seen.append(project)
        return super().priority(project, now)


class _ProgressKeeper(InterventionRule):
    """Reviews every time unit and keeps each active project's view and progress."""

    progress: ClassVar[list] = []  # (view, time, each stage's effort done then)

    def decision_times(self, horizon):
        return [float(t) for t in range(1, int(horizon))]

    def review(self, portfolio):
        for view in portfolio.active:
            self.progress.append((view, portfolio.now, [stage.done(portfolio.now) for stage in view.stages]))
        return []


class _PortfolioKeeper(AdmitAll):
    """admit_all that keeps the portfolio view it is shown."""

    kept: ClassVar[list] = []

    def decide(self, candidate, portfolio):
        self.kept.append(portfolio)
        return super().decide(candidate, portfolio)


@pytest.mark.parametrize("focus", ["single", "shared"])
def test_results_and_kept_views_still_read_after_the_run(focus):
    flowsim.register("sequencing", "test_keeper", replace=True)(_Keeper)
    flowsim.register("intake", "test_portfolio_keeper", replace=True)(_PortfolioKeeper)
    flowsim.register("intervention", "test_progress_keeper", replace=True)(_ProgressKeeper)
    try:
        data, source = read_yaml(ROOT / "scenarios" / "teaching" / "cost_of_delay.yaml")
        data["policies"] = {"keeper": {"sequencing": "test_keeper", "intake": "test_portfolio_keeper",
                                       "intervention": "test_progress_keeper"}}
        data["horizon"] = 12  # work still under way at the horizon
        for team in data["teams"].values():
            team["focus"] = focus
        scenario = scenario_from_dict(data, source=source)
        setup = make_setup(scenario)
        world = sample_world(scenario, scenario.seed, 0)
        rules = build_rules(scenario, setup, "keeper", scenario.policies["keeper"], scenario.seed, 0)
        _Keeper.seen, _ProgressKeeper.progress, _PortfolioKeeper.kept = [], [], []
        simulation = Simulation(setup, world, rules)
        record = simulation.run()
    finally:
        unregister("sequencing", "test_keeper")
        unregister("intake", "test_portfolio_keeper")
        unregister("intervention", "test_progress_keeper")
    assert _Keeper.seen and _PortfolioKeeper.kept
    by_id = {p.id: p for p in simulation.projects}
    for view in _Keeper.seen:
        # A kept view answers with its project's final state.
        project = by_id[view.id]
        assert view.status == STATUS_NAMES[project.status]
        assert view.remaining_work(world.horizon) == project.remaining_work(world.horizon)
        assert [s.status for s in view.stages] == [STAGE_STATUS_NAMES[s.status] for s in project.stages]
    # Progress read after the run is the progress made by the horizon: never less than seen before.
    assert any(s.status == "running" for view, _, _ in _ProgressKeeper.progress for s in view.stages)
    for view, now, done in _ProgressKeeper.progress:
        after = [stage.done(world.horizon) for stage in view.stages]
        assert all(a >= d - 1e-9 for a, d in zip(after, done, strict=True)), (view.id, now, done, after)
    # A kept portfolio view lists the projects active (and waiting) at the horizon.
    portfolio = _PortfolioKeeper.kept[-1]
    assert sorted(v.id for v in portfolio.active) == sorted(p.id for p in by_id.values() if p.status == ACTIVE)
    assert sorted(v.id for v in portfolio.funnel) == sorted(p.id for p in by_id.values() if p.status == WAITING)
    # The engine's objects keep the values the record was built from.
    got = [simulation.projects[i].delivered_at for i in record.projects["project"]]
    np.testing.assert_array_equal(got, record.projects["delivered"])
