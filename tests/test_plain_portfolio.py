"""The engine against an independent model: the same worlds in plain, idiomatic SimPy.

``benchmarks/plain_portfolio.py`` models a portfolio under fifo / admit_all
with a process per project and per stage and a ``simpy.PriorityResource`` per
team: none of the engine's code.  It is the baseline the engine benchmark
compares a replication with, so it must do the same work: here both must
deliver every project at the same time, on the benchmark portfolio (crews,
stages in parallel, about 200 projects) and on a variant where projects
depend on others.  Effort distributions are continuous, so event times after
0 are distinct and the schedule is fully determined by the FIFO key.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import flowsim
from flowsim.engine.setup import build_rules, make_setup
from flowsim.engine.simulation import Simulation
from flowsim.scenario.load import read_yaml, scenario_from_dict
from flowsim.world import sample_world

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "scenarios" / "bench.yaml"


def _plain_portfolio():
    spec = importlib.util.spec_from_file_location("plain_portfolio", ROOT / "benchmarks" / "plain_portfolio.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _engine_deliveries(plain, scenario, setup, world, replication: int) -> dict[int, float]:
    rules = build_rules(scenario, setup, "fifo", scenario.policies["fifo"], scenario.seed, replication)
    simulation = Simulation(setup, world, rules)
    simulation.run()
    return plain.engine_deliveries(simulation)


def _with_dependencies() -> flowsim.Scenario:
    """The benchmark portfolio where every third listed project after the first four
    depends on the project listed four places before it."""
    data, source = read_yaml(BENCH)
    projects = data["projects"]
    for i in range(4, len(projects), 3):
        projects[i]["depends_on"] = [projects[i - 4]["id"]]
    return scenario_from_dict(data, source=source)


@pytest.mark.parametrize("variant", ["bench", "dependencies"])
def test_plain_simpy_delivers_every_project_when_the_engine_does(variant):
    plain = _plain_portfolio()
    scenario = flowsim.load_scenario(BENCH) if variant == "bench" else _with_dependencies()
    assert sum(1 for p in scenario.projects if p.depends_on) == (0 if variant == "bench" else 12)
    setup = make_setup(scenario)
    for replication in range(3):
        world = sample_world(scenario, scenario.seed, replication)
        engine = _engine_deliveries(plain, scenario, setup, world, replication)
        baseline, env = plain.simulate(world, setup)
        assert len(engine) > 150
        differ = plain.differences(engine, baseline)
        assert not differ, f"replication {replication}: deliveries differ (engine, plain): {differ}"
        # The plain model spends several SimPy events per stage where the engine spends about one.
        assert env.steps > 5 * len(engine)


@pytest.mark.parametrize(
    ("path", "refusal"),
    [("in_flight.yaml", "in flight"), ("bottleneck.yaml", "capacity changes"), ("mm1.yaml", "shared focus")],
)
def test_the_plain_model_refuses_what_it_does_not_model(path, refusal):
    plain = _plain_portfolio()
    data, source = read_yaml(ROOT / "scenarios" / "teaching" / path)
    if refusal == "capacity changes":
        data["teams"][next(iter(data["teams"]))]["capacity_changes"] = [{"at": 1, "capacity": 2}]
    if refusal == "shared focus":
        data["teams"][next(iter(data["teams"]))]["focus"] = "shared"
    scenario = scenario_from_dict(data, source=source)
    world = sample_world(scenario, scenario.seed, 0)
    with pytest.raises(ValueError, match=refusal):
        plain.simulate(world, make_setup(scenario))
