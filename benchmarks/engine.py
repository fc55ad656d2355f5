"""Engine cost per SimPy event against plain SimPy (issue 2, point 9).

Times one replication of ``scenarios/bench.yaml`` under each of its policies
(building the simulation, running it and collecting its record: what a
replication costs the engine; the world is sampled once and shared, as in a
real run) and a plain SimPy M/M/1 with one process per customer that makes
the same number of SimPy events.  Both count ``env.step()`` calls the same
way.  The two are interleaved and each is the best of several repeats, since
these machines are shared and noisy.

A second baseline does the same work as the engine: the same world under fifo
in plain, idiomatic SimPy (``plain_portfolio.py``: a process per project and
per stage, a ``PriorityResource`` per team, no accounting or logs).  Its
deliveries must equal the engine's, which is checked, and the two are compared
per replication, the unit of a Monte Carlo run.

Usage: python benchmarks/engine.py [--repeats 7] [--replication 0]
The last line is ``per-event cost vs plain SimPy: R`` (goal: R <= 3).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import simpy

import flowsim
from flowsim.engine import simulation as engine_module
from flowsim.engine.events import FINISHED
from flowsim.engine.setup import build_rules, make_setup
from flowsim.world import sample_world

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_portfolio import CountingEnvironment, differences, engine_deliveries
from plain_portfolio import simulate as plain_portfolio

BENCH = Path(__file__).resolve().parent.parent / "scenarios" / "bench.yaml"


def one_replication(scenario, setup, world, seed: int, replication: int):
    """Seconds, SimPy events and stages served (finished) per policy of the scenario on one
    world, and the deliveries under ``fifo`` (None without a fifo policy)."""
    engine_module.simpy.Environment = CountingEnvironment
    try:
        out, fifo = {}, None
        for name, policy in scenario.policies.items():
            rules = build_rules(scenario, setup, name, policy, seed, replication)
            start = time.perf_counter()
            simulation = engine_module.Simulation(setup, world, rules)
            simulation.run()
            served = sum(1 for row in simulation.log if row[4] == FINISHED)
            out[name] = (time.perf_counter() - start, simulation.env.steps, served)
            if name == "fifo":
                fifo = engine_deliveries(simulation)
        return out, fifo
    finally:
        engine_module.simpy.Environment = simpy.Environment


def plain_mm1(events: int, seed: int = 1) -> tuple[float, int, int]:
    """Plain SimPy M/M/1 (rho = 0.8), one process per customer, run for ``events`` steps:
    seconds, steps and customers served."""
    env = CountingEnvironment()
    server = simpy.Resource(env, capacity=1)
    rng = random.Random(seed)
    served = 0

    def customer():
        nonlocal served
        with server.request() as request:
            yield request
            yield env.timeout(rng.expovariate(1.0))
        served += 1

    def source():
        while True:
            yield env.timeout(rng.expovariate(0.8))
            env.process(customer())

    env.process(source())
    start = time.perf_counter()
    while env.steps < events:
        env.step()
    return time.perf_counter() - start, env.steps, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--replication", type=int, default=0)
    args = parser.parse_args()

    scenario = flowsim.load_scenario(BENCH)
    setup = make_setup(scenario)
    seed = scenario.seed
    # A run shares one cache between its replications (means, stage structures): warm it first.
    cache: dict = {}
    sample_world(scenario, seed, args.replication + 1, cache)
    world_seconds = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        world = sample_world(scenario, seed, args.replication, cache)
        world_seconds = min(world_seconds, time.perf_counter() - start)

    best: dict[str, float] = {}
    steps: dict[str, int] = {}
    served: dict[str, int] = {}
    plain_best, plain_served = float("inf"), 0
    portfolio_best, portfolio_steps, fifo_deliveries, portfolio_deliveries = float("inf"), 0, None, None
    for _ in range(args.repeats):
        runs, fifo_deliveries = one_replication(scenario, setup, world, seed, args.replication)
        for name, (seconds, count, stages) in runs.items():
            best[name] = min(best.get(name, float("inf")), seconds)
            steps[name], served[name] = count, stages
        plain_seconds, _, plain_served = plain_mm1(sum(steps.values()))
        plain_best = min(plain_best, plain_seconds)
        start = time.perf_counter()
        portfolio_deliveries, portfolio_env = plain_portfolio(world, setup)
        portfolio_best = min(portfolio_best, time.perf_counter() - start)
        portfolio_steps = portfolio_env.steps

    total_steps = sum(steps.values())
    engine_best = sum(best.values())
    plain_per_event = plain_best / total_steps
    engine_per_event = engine_best / total_steps
    plain_per_job = plain_best / plain_served
    policies = len(scenario.policies)
    print(f"scenario: {BENCH.name}, {len(world.projects)} projects, {len(world.team_names)} teams, {policies} policies")
    print(f"world sampling: {world_seconds * 1e3:.1f} ms per replication (shared by the policies)")
    for name in best:
        per_event = best[name] / steps[name]
        per_job = best[name] / served[name]
        print(f"  {name:<12} {best[name] * 1e3:6.1f} ms  {steps[name]:5d} events  {per_event * 1e6:5.2f} us/event  "
              f"R {per_event / plain_per_event:4.1f}  {served[name]:4d} stages served  "
              f"{per_job * 1e6:5.1f} us/stage ({per_job / plain_per_job:3.1f}x a plain customer)")
    print(f"plain SimPy M/M/1: {plain_best * 1e3:.1f} ms for the same {total_steps} events, "
          f"{plain_per_event * 1e6:.2f} us/event; {plain_served} customers served, {plain_per_job * 1e6:.2f} us each")
    # Per job served is the fairer unit: a stage here is one SimPy event (its completion; starts
    # and decisions run inline), where a plain SimPy customer takes four or five.
    print(f"engine: {engine_best * 1e3:.1f} ms for {policies} policies, {total_steps} SimPy events, "
          f"{engine_per_event * 1e6:.2f} us/event (best of {args.repeats}); "
          f"per stage served vs per plain customer served: {engine_best / sum(served.values()) / plain_per_job:.2f}")
    if fifo_deliveries is not None:
        same = not differences(fifo_deliveries, portfolio_deliveries)
        print(f"plain SimPy portfolio (same world, fifo; a process per project and per stage, no accounting): "
              f"{portfolio_best * 1e3:.1f} ms, {portfolio_steps} events, {portfolio_best / portfolio_steps * 1e6:.2f} "
              f"us/event (its own per-event R: {portfolio_best / portfolio_steps / plain_per_event:.2f}); "
              f"same {len(portfolio_deliveries)} deliveries as the engine: {'yes' if same else 'NO'}")
        print(f"per replication, engine fifo (build, run, record) vs plain SimPy portfolio: "
              f"{best['fifo'] / portfolio_best:.2f}; every policy's mean: "
              f"{engine_best / len(best) / portfolio_best:.2f}")
    print(f"per-event cost vs plain SimPy: {engine_per_event / plain_per_event:.2f}")


if __name__ == "__main__":
    main()
