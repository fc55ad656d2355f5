"""The same portfolio in plain, idiomatic SimPy: the baseline a replication is compared with.

``benchmarks/engine.py`` compares the engine's cost per SimPy event with a
plain M/M/1 (issue 2), but an engine event and an M/M/1 event are not the same
amount of work.  This module models the *same* world under ``fifo`` and
``admit_all`` the way a SimPy user would write it from the tutorial: a process
per project and per stage, a ``simpy.PriorityResource`` per team, a crew as
that many requests, ``AllOf`` for stages that wait for others and for projects
that depend on others.  It keeps no value accounting, no event log, no
timelines and no costs: it is what the engine's bookkeeping is measured
against.

It follows the engine's rules where they decide the schedule: a stage is
ranked by its FIFO key (time it entered the queue, project arrival, project
order, stage order), a crew waits for all its units and is never overtaken
(the first unit it gets is held idle meanwhile: only utilisation differs), and
what happens at one instant is decided in key order.  Ties at one instant
other than time 0 are left to SimPy, so the two schedules agree exactly only
when event times are distinct after 0, as with continuous effort
distributions; ``tests/test_plain_portfolio.py`` checks that they do.

Only what ``scenarios/bench.yaml`` uses is supported: no capacity changes, no
shared focus, no stage already in flight (``simulate`` refuses them).  It
reads the world and the engine's ``SimulationSetup`` (capacities).
"""

from __future__ import annotations

import math

import simpy


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts processed events (``env.step()`` calls)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        super().step()


def simulate(world, setup, environment=CountingEnvironment) -> tuple[dict[int, float], object]:
    """Run ``world`` under fifo / admit_all in plain SimPy until the horizon.

    Returns the delivery time (time units) of each delivered project by index,
    and the environment (``steps`` counts its events).
    """
    if any(p.in_flight for p in world.projects):
        raise ValueError("plain_portfolio: stages already in flight are not modelled")
    if any(setup.capacity_changes):
        raise ValueError("plain_portfolio: capacity changes are not modelled")
    if any(switching is not None for switching in setup.switching):
        raise ValueError("plain_portfolio: shared focus is not modelled")
    env = environment()
    teams = [simpy.PriorityResource(env, capacity=c) for c in setup.capacity]
    delivered_event = {p.index: env.event() for p in world.projects}
    delivered_at: dict[int, float] = {}

    def stage(project, spec, finished):
        if spec.preds:
            yield env.all_of([finished[i] for i in spec.preds])
        team = teams[spec.team]
        key = (env.now, project.arrival, project.index, spec.index)
        requests = [team.request(priority=key) for _ in range(spec.crew)]
        yield env.all_of(requests)
        yield env.timeout(project.remaining_actual(spec.index) / spec.crew)
        for request in requests:
            team.release(request)
        finished[spec.index].succeed()

    def project_process(project):
        yield env.timeout(project.arrival)
        waiting = [delivered_event[i] for i in project.depends_on if not delivered_event[i].processed]
        if waiting:  # an all_of on delivered projects would still cost a step, and fall behind other arrivals
            yield env.all_of(waiting)
        finished = [env.event() for _ in project.stages]
        for spec in project.stages:
            env.process(stage(project, spec, finished))
        yield env.all_of(finished)
        delivered_at[project.index] = env.now
        delivered_event[project.index].succeed()

    for project in world.projects:
        if project.arrival < world.horizon:
            env.process(project_process(project))
    env.run(until=world.horizon)
    return delivered_at, env


def engine_deliveries(simulation) -> dict[int, float]:
    """Delivery time of each project a finished engine ``Simulation`` delivered, by index."""
    return {p.index: p.delivered_at for p in simulation.projects if not math.isnan(p.delivered_at)}


def differences(engine: dict[int, float], plain: dict[int, float]) -> dict[int, tuple[float, float]]:
    """Projects delivered by one model only, or at different times (1e-9 relative):
    index -> (engine time, plain time), NaN where one did not deliver."""
    out = {}
    for index in engine.keys() | plain.keys():
        a, b = engine.get(index, math.nan), plain.get(index, math.nan)
        if not abs(a - b) <= 1e-9 * max(1.0, abs(a)):
            out[index] = (a, b)
    return out
