"""Intake passes by hold key: the same runs as walking the whole funnel (hypothesis).

An intake rule that declares ``hold_key`` (``team_wip``, ``drum``) promises that
candidates with the same key get the same answer for the rest of a pass once one of
them is held.  The engine then keeps one funnel queue per key and offers, at each
step of a pass, the best candidate among the keys not yet held
(``flowsim/engine/funnel.py``), instead of ordering the whole funnel and asking the
rule about every candidate: O(keys x log n) instead of O(n log n) per pass, which
made an overloaded portfolio under ``team_wip`` or ``drum`` quadratic
(``benchmarks/scale.py``).  The claim: every output is the same.  Each example is a
random portfolio of ``tests/test_pure_properties.py`` (teams shared or not, capacity
changes, DAG stages, crews, work in flight, dependencies, every value profile,
arrival streams, interventions that pause, expedite and cancel, funnel-watching
test rules, preemption, perfect information); every policy whose intake rule has a
hold key runs twice on one world, by key and with the key switched off, and the
raw event log, the levels, every table of the record and the team tallies must be
identical, bit for bit.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from test_pure_properties import SCRIPTED, SETTINGS, assert_same_run, scenarios, watchers  # noqa: F401

from flowsim.engine.setup import build_rules, make_setup
from flowsim.engine.simulation import Simulation
from flowsim.scenario import scenario_from_dict
from flowsim.world import sample_world

# The test rules the strategy draws: ``scripted`` (conftest.py) and ``watchers``.
pytestmark = pytest.mark.usefixtures("scripted", "watchers")


def run(scenario, setup, world, policy: str, keyed: bool):
    rules = build_rules(scenario, setup, policy, scenario.policies[policy], scenario.seed, 0)
    if not keyed:
        rules.intake.hold_key = None  # the engine then walks the funnel in order, asking about each
    simulation = Simulation(setup, world, rules)
    assert simulation.funnel.keyed is keyed
    record = simulation.run()
    teams = [(t.timeline, t.busy_area, t.queue_area, t.capacity_area, t.effort_area, t.max_queue)
             for t in simulation.teams]  # fmt: skip
    return simulation.log, simulation.levels, record, teams


def check_keys_are_invisible(data: dict) -> int:
    """Compare every keyed policy run both ways; returns how many policies were keyed."""
    scenario = scenario_from_dict(data, source="<hypothesis>")
    setup = make_setup(scenario)
    world = sample_world(scenario, scenario.seed, 0)
    keyed = 0
    for policy in scenario.policies:
        rules = build_rules(scenario, setup, policy, scenario.policies[policy], scenario.seed, 0)
        if getattr(rules.intake, "hold_key", None) is None:
            continue
        keyed += 1
        by_key = run(scenario, setup, world, policy, keyed=True)
        in_order = run(scenario, setup, world, policy, keyed=False)
        assert_same_run(by_key, in_order, f"policy {policy} ({scenario.policies[policy]})")
    return keyed


@settings(max_examples=100, **SETTINGS)
@given(data=scenarios(SCRIPTED))
def test_an_intake_pass_by_hold_key_runs_as_if_it_walked_the_funnel(data):
    check_keys_are_invisible(data)


@pytest.mark.slow
@settings(max_examples=2000, **SETTINGS)
@given(data=scenarios(SCRIPTED))
def test_an_intake_pass_by_hold_key_runs_as_if_it_walked_the_funnel_on_many_portfolios(data):
    check_keys_are_invisible(data)


def test_the_property_sees_keyed_policies():
    """The strategy draws team_wip and drum often enough for the property to mean something."""
    from hypothesis import find

    example = find(scenarios(SCRIPTED), lambda data: check_keys_are_invisible(data) >= 2,
                   settings=settings(max_examples=200, **SETTINGS))  # fmt: skip
    assert example["policies"]
