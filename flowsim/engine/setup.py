"""What a simulation needs from the scenario, computed once per run.

``SimulationSetup`` holds the scenario-level numbers the engine reads on every
replication (capacities, cost rates, discount rate, planning bottleneck);
``build_rules`` makes a policy's rules for one replication, with the rules'
random streams keyed by policy name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from ..errors import FlowsimError
from ..policies.protocol import RuleContext
from ..policies.registry import lookup
from ..scenario.distributions import mean_of
from ..scenario.model import Policy, Scenario
from ..value import discount_rate_per_time
from ..world import opaque_stream
from .answers import label
from .teams import switching_points


@dataclass(frozen=True)
class SimulationSetup:
    horizon: float
    rho: float  # continuous discount rate per time unit
    team_names: tuple[str, ...]
    capacity: tuple[int, ...]  # at time 0
    cost_rate: tuple[float, ...]  # money per capacity unit per time unit
    capacity_changes: tuple[tuple[tuple[float, int], ...], ...]  # per team: (at, capacity)
    bottleneck: str  # planning bottleneck: highest estimated demand per unit of capacity
    time_unit: str
    timeline_step: float
    grid: tuple[float, ...]  # the timeline's points (``timeline_grid``), which team states sample
    switching: tuple  # per team: switching table points when focus is shared, else None


@dataclass(frozen=True)
class PolicyRules:
    name: str
    intake: Any
    sequencing: Any
    intervention: Any | None
    preempt: bool
    perfect_information: bool
    # How messages name each rule: "intake rule wip_limit of policy lean" (answers.label).
    labels: dict[str, str] = field(default_factory=dict)


# The methods the engine calls on each kind of rule (docs/policies.md).
_METHODS = {
    "intake": ("decide", "start_pass", "decision_times"),
    "sequencing": ("priority", "rank_trend"),
    "intervention": ("review", "decision_times"),
}


def make_setup(scenario: Scenario, timeline_step: float | None = None) -> SimulationSetup:
    check_supported(scenario)
    teams = scenario.teams
    step = float(timeline_step if timeline_step is not None else scenario.timeline_step)
    return SimulationSetup(
        horizon=float(scenario.horizon),
        rho=discount_rate_per_time(scenario.discount_rate, scenario.periods_per_year),
        team_names=tuple(teams),
        capacity=tuple(t.capacity for t in teams.values()),
        cost_rate=tuple(float(t.cost_rate) for t in teams.values()),
        capacity_changes=tuple(tuple((c.at, c.capacity) for c in t.capacity_changes) for t in teams.values()),
        bottleneck=planning_bottleneck(scenario),
        time_unit=scenario.time_unit,
        timeline_step=step,
        grid=tuple(timeline_grid(float(scenario.horizon), step).tolist()),
        switching=tuple(
            switching_points(t.switching_curve()) if t.focus == "shared" else None for t in teams.values()
        ),
    )


def timeline_grid(horizon: float, step: float) -> np.ndarray:
    """Time points 0, step, 2 step, ... below the horizon, and the horizon itself.

    Each point is rounded to the decimal places of the step as written, so a step of
    0.3 gives 0.9, not 3 x 0.3 = 0.8999999999999999 (which would miss an event at 0.9).
    A step with more than 12 places (1/3) is used as it is.
    """
    count = math.floor(horizon / step + 1e-9)
    grid = np.arange(count + 1, dtype=np.float64) * step
    places = max(-Decimal(repr(step)).as_tuple().exponent, 0)
    if places <= 12:
        grid = np.round(grid, places)
    grid = grid[grid < horizon - 1e-9 * max(horizon, 1.0)]
    return np.append(grid, horizon)


def check_supported(scenario: Scenario) -> None:
    """Stop, naming the feature, on valid scenario features the engine cannot run.

    Every feature of DESIGN section 11 is simulated; this is where a feature
    that validates before its engine part exists is refused (exit 2).
    """
    return None


def estimated_demand(scenario: Scenario) -> dict[str, float]:
    """Expected effort per team over the horizon, from estimates (explicit or mean):
    listed projects' remaining work plus arrivals' rate x duration x template effort."""
    demand = dict.fromkeys(scenario.teams, 0.0)
    for project in scenario.projects:
        if project.arrival >= scenario.horizon:
            continue
        for stage in project.stages:
            if stage.done is True:
                continue
            estimate = stage.estimate if stage.estimate is not None else mean_of(stage.effort)
            demand[stage.team] += max(estimate - float(stage.done), 0.1 * estimate)
    for spec in scenario.arrivals:
        end = min(spec.end if spec.end is not None else math.inf, scenario.horizon)
        expected = spec.rate * max(end - spec.start, 0.0)
        for stage in scenario.templates[spec.template].stages:
            estimate = stage.estimate if stage.estimate is not None else mean_of(stage.effort)
            demand[stage.team] += expected * estimate
    return demand


def mean_capacity(scenario: Scenario, team: str) -> float:
    """Time-weighted capacity of a team over the horizon (units)."""
    spec = scenario.teams[team]
    horizon = float(scenario.horizon)
    area, level, since = 0.0, spec.capacity, 0.0
    for change in spec.capacity_changes:
        area += level * (change.at - since)
        level, since = change.capacity, change.at
    area += level * (horizon - since)
    return area / horizon


def planning_bottleneck(scenario: Scenario) -> str:
    """The team with the highest estimated demand over the horizon per unit of capacity
    (ex ante; ties go to the team listed first)."""
    demand = estimated_demand(scenario)

    def load(team: str) -> float:
        capacity = mean_capacity(scenario, team)
        return demand[team] / capacity if capacity > 0 else math.inf

    return max(scenario.teams, key=load)


def build_rules(
    scenario: Scenario, setup: SimulationSetup, name: str, policy: Policy, seed: int, replication: int
) -> PolicyRules:
    """Fresh rule objects for one (policy, replication): rules may keep state."""

    labels: dict[str, str] = {}

    def make(kind: str, ref):
        info = lookup(kind, ref.rule)
        params = info.params.model_validate(ref.params)
        context = RuleContext(
            policy=name,
            horizon=setup.horizon,
            time_unit=setup.time_unit,
            capacity=dict(zip(setup.team_names, setup.capacity, strict=True)),
            bottleneck=setup.bottleneck,
            # Opaque: a rule's generator must not give away the seed of the world (its seed_seq would).
            rng=opaque_stream(seed, replication, f"rule:{name}:{kind}"),
        )
        rule = info.factory(params, context)
        labels[kind] = who = label(kind, ref.rule, rule, name)
        for method in _METHODS[kind]:
            if not callable(getattr(rule, method, None)):
                raise FlowsimError(
                    f"{who}: must have a {method} method (docs/policies.md), got a {type(rule).__name__} without one"
                )
        return rule

    return PolicyRules(
        name=name,
        intake=make("intake", policy.intake),
        sequencing=make("sequencing", policy.sequencing),
        intervention=make("intervention", policy.intervention) if policy.intervention else None,
        preempt=policy.preempt,
        perfect_information=policy.perfect_information,
        labels=labels,
    )
