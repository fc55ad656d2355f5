"""World sampling: everything random about one replication, drawn up front.

A replication's world (arrival times, realised efforts and values, estimation
noise) is a pure function of ``(scenario, seed, replication)``.  Each named
stream gets its own generator from the SeedSequence tree
``seed -> replication -> stable_hash(stream name)``, so adding a project or an
arrival stream leaves every other draw unchanged, and every policy meets the
same world (common random numbers).  Nothing here touches global random state.

Stream names: ``project:<id>`` for a listed project; ``arrivals:<name>`` for an
arrival stream's times and ``arrivals:<name>:projects`` for the projects it
brings; ``rule:<policy>:<kind>`` for a rule that needs randomness.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from .scenario.distributions import Quantity, mean_of, sample_of
from .scenario.model import Project, Scenario, Template
from .value import PROFILE_CODES


def stable_hash(name: str) -> int:
    """A 64-bit hash of a stream name that is the same in every process and run.

    Python's ``hash()`` is salted per process, so it would break reproducibility
    across workers.
    """
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def stream(seed: int, replication: int, name: str) -> np.random.Generator:
    """The generator of the named stream of one replication."""
    sequence = np.random.SeedSequence(seed, spawn_key=(replication, stable_hash(name)))
    return np.random.Generator(np.random.PCG64(sequence))


def opaque_stream(seed: int, replication: int, name: str) -> np.random.Generator:
    """The named stream seeded from a hash of its place in the tree, for rules: a generator's
    ``bit_generator.seed_seq`` shows its seed, and from the run's seed and replication a rule
    could sample the realised world it must not see (DESIGN section 7)."""
    state = np.random.SeedSequence(seed, spawn_key=(replication, stable_hash(name))).generate_state(4)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(state)))


@dataclass(frozen=True, slots=True)
class StageSpec:
    """A stage's structure: the same in every world."""

    index: int
    name: str
    team: int  # index into World.team_names
    crew: int
    preds: tuple[int, ...]  # indices of stages that must finish first
    done_fully: bool  # ``done: true``: finished before time 0
    done_effort: float  # effort already worked at time 0 (capacity-unit x time units)


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """Business-case terms of one project; money per time unit for ``rate``."""

    rate: float
    lump: float
    life: float  # math.inf: without end
    profile: int  # flowsim.value profile code
    closes: float  # absolute time; math.inf when not a window
    half_life: float
    due: float
    penalty: float
    fine: float


@dataclass(slots=True)
class ProjectWorld:
    """One project as a replication realises it, and as decision-makers see it.

    ``*_actual`` is the realised world, hidden from policies; ``*_estimate`` is
    what policies see (the realised values when a policy has perfect information).
    Efforts are the total of each stage, in capacity-unit x time units.
    """

    index: int  # order in the file, then in arrival
    id: str
    name: str
    template: str | None
    arrival: float
    depends_on: tuple[int, ...]
    promised: float  # math.nan when not given
    stages: tuple[StageSpec, ...]
    effort_actual: tuple[float, ...]
    effort_estimate: tuple[float, ...]
    value_actual: ValueSpec
    value_estimate: ValueSpec
    wsjf: tuple[float, float, float, float] | None  # business_value, time_criticality, risk_reduction, job_size
    in_flight: bool  # some stage has ``done``: admitted at time 0
    # Structure shared by every policy, computed once per world:
    successors: tuple[tuple[int, ...], ...] = ()
    topological: tuple[int, ...] = ()
    chain: bool = True  # each stage follows the one before: a critical path is a sum
    ideal_delivery: float = math.nan  # with no contention, from realised efforts
    ideal_estimate: float = math.nan  # the same from estimates: what decision-makers expect

    def remaining_actual(self, stage: int) -> float:
        """Realised effort still to work on a stage at time 0."""
        spec = self.stages[stage]
        if spec.done_fully:
            return 0.0
        return max(self.effort_actual[stage] - spec.done_effort, 0.0)


@dataclass(frozen=True, slots=True)
class World:
    seed: int
    replication: int
    horizon: float
    team_names: tuple[str, ...]
    projects: tuple[ProjectWorld, ...]
    # Results that depend on the world alone (not on the policy), computed once
    # and shared by every policy simulated on it; never part of the world's identity.
    derived: dict = field(default_factory=dict, compare=False, repr=False)


def _value_spec(value, rate: float, lump: float, arrival: float) -> ValueSpec:
    def absolute(at, relative):
        if at is not None:
            return float(at)
        return arrival + float(relative) if relative is not None else math.inf

    return ValueSpec(
        rate=rate,
        lump=lump,
        life=float(value.life) if value.life is not None else math.inf,
        profile=PROFILE_CODES[value.profile],
        closes=absolute(value.closes, value.closes_in),
        half_life=float(value.half_life) if value.half_life is not None else math.inf,
        due=absolute(value.due, value.due_in),
        penalty=float(value.penalty or 0.0),
        fine=float(value.fine or 0.0),
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a project (or template) body fixes in every world: its stages'
    structure, and what its effort estimates are made of."""

    stages: tuple[StageSpec, ...]
    efforts: tuple[Quantity, ...]  # drawn in this order, after the value's rate and lump
    estimates: tuple[float | None, ...]  # a stage's given estimate, or None
    effort_means: tuple[float, ...]  # a stage's mean effort; NaN where an estimate is given
    successors: tuple[tuple[int, ...], ...]
    topological: tuple[int, ...]
    chain: bool
    in_flight: bool


class _Builder:
    """Draws the projects of one replication from their streams."""

    def __init__(self, scenario: Scenario, seed: int, replication: int, cache: dict | None = None):
        self.scenario = scenario
        # Means of distributions and shapes of project bodies, by object identity:
        # the same in every replication of one scenario object, and worth computing
        # once (scipy builds a frozen distribution per mean).
        self.cache: dict = {} if cache is None else cache
        self.seed = seed
        self.replication = replication
        self.team_index = {name: i for i, name in enumerate(scenario.teams)}
        self.sigma = scenario.estimation_error

    def mean(self, quantity: Quantity) -> float:
        if isinstance(quantity, (int, float)):
            return float(quantity)
        key = ("mean", id(quantity))
        if key not in self.cache:
            self.cache[key] = mean_of(quantity)
        return self.cache[key]

    def shape(self, body: Project | Template) -> _Shape:
        key = ("shape", id(body))
        shape = self.cache.get(key)
        if shape is None:
            shape = self.cache[key] = self._shape_of(body)
        return shape

    def _shape_of(self, body: Project | Template) -> _Shape:
        names = [s.name if s.name is not None else s.team for s in body.stages]
        position = {n: i for i, n in enumerate(names)}
        stages = []
        for i, stage in enumerate(body.stages):
            preds = ((i - 1,) if i > 0 else ()) if stage.after is None else tuple(position[n] for n in stage.after)
            done = stage.done
            stages.append(
                StageSpec(
                    index=i,
                    name=names[i],
                    team=self.team_index[stage.team],
                    crew=stage.crew,
                    preds=preds,
                    done_fully=done is True,
                    done_effort=0.0 if isinstance(done, bool) else float(done),
                )
            )
        return _Shape(
            stages=tuple(stages),
            efforts=tuple(stage.effort for stage in body.stages),
            estimates=tuple(float(s.estimate) if s.estimate is not None else None for s in body.stages),
            effort_means=tuple(math.nan if s.estimate is not None else self.mean(s.effort) for s in body.stages),
            successors=tuple(tuple(j for j, t in enumerate(stages) if i in t.preds) for i in range(len(stages))),
            topological=_topological_order(stages),
            chain=all(t.preds == ((t.index - 1,) if t.index else ()) for t in stages),
            in_flight=any(s.done_fully or s.done_effort > 0 for s in stages),
        )

    def project(
        self,
        body: Project | Template,
        rng: np.random.Generator,
        *,
        index: int,
        id: str,
        template: str | None,
        arrival: float,
        depends_on: tuple[int, ...] = (),
        promised: float = math.nan,
    ) -> ProjectWorld:
        # Estimation noise first, always two draws, so a change elsewhere in the
        # project never shifts it: one lognormal factor for effort, one for value.
        z_effort, z_value = rng.standard_normal(2)
        effort_factor = math.exp(self.sigma * z_effort)
        value_factor = math.exp(self.sigma * z_value)

        shape = self.shape(body)
        value = body.value
        rate = sample_of(value.rate, rng)
        lump = sample_of(value.lump, rng)
        actual = tuple([sample_of(effort, rng) for effort in shape.efforts])
        estimate = tuple(
            [
                given if given is not None else mean * effort_factor
                for given, mean in zip(shape.estimates, shape.effort_means, strict=True)
            ]
        )
        rate_estimate = float(value.estimate) if value.estimate is not None else self.mean(value.rate) * value_factor
        lump_estimate = self.mean(value.lump) * value_factor
        wsjf = None
        if body.job_size is not None:
            wsjf = (
                float(body.business_value or 0.0),
                float(body.time_criticality or 0.0),
                float(body.risk_reduction or 0.0),
                float(body.job_size),
            )
        return ProjectWorld(
            index=index,
            id=id,
            name=body.name or id,
            template=template,
            arrival=arrival,
            depends_on=depends_on,
            promised=promised,
            stages=shape.stages,
            effort_actual=actual,
            effort_estimate=estimate,
            value_actual=_value_spec(value, rate, lump, arrival),
            value_estimate=_value_spec(value, rate_estimate, lump_estimate, arrival),
            wsjf=wsjf,
            in_flight=shape.in_flight,
            successors=shape.successors,
            topological=shape.topological,
            chain=shape.chain,
        )

    def arrivals(self, first_index: int) -> list[ProjectWorld]:
        """Projects from every arrival stream, in arrival order (ties: stream order)."""
        scenario = self.scenario
        drawn: list[tuple[float, int, int, str, Template, np.random.Generator]] = []
        for order, spec in enumerate(scenario.arrivals):
            name = spec.stream_name
            times_rng = stream(self.seed, self.replication, f"arrivals:{name}")
            content_rng = stream(self.seed, self.replication, f"arrivals:{name}:projects")
            end = min(spec.end if spec.end is not None else math.inf, scenario.horizon)
            t, sequence = spec.start, 0
            template = scenario.templates[spec.template]
            while True:
                t += float(times_rng.exponential(1.0 / spec.rate))
                if t >= end:
                    break
                sequence += 1
                drawn.append((t, order, sequence, name, template, content_rng))
        # Contents are drawn per stream in sequence order, so a stream's projects
        # never depend on another stream's timing.
        built: dict[tuple[int, int], ProjectWorld] = {}
        for t, order, sequence, name, template, rng in drawn:
            built[(order, sequence)] = self.project(
                template,
                rng,
                index=-1,
                id=f"{name}-{sequence}",
                template=scenario.arrivals[order].template,
                arrival=t,
            )
        drawn.sort(key=lambda row: (row[0], row[1], row[2]))
        result = []
        for offset, (_, order, sequence, *_rest) in enumerate(drawn):
            world = built[(order, sequence)]
            world.index = first_index + offset
            result.append(world)
        return result


def _topological_order(stages: list[StageSpec]) -> tuple[int, ...]:
    order: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i not in seen:
            seen.add(i)
            for p in stages[i].preds:
                visit(p)
            order.append(i)

    for i in range(len(stages)):
        visit(i)
    return tuple(order)


def critical_path(project: ProjectWorld, efforts, start: float) -> float:
    """Finish time of a project started at ``start`` with no contention.

    Each unfinished stage takes ``remaining effort / crew`` once its
    predecessors finish (``efforts`` are totals; work already done is deducted).
    """
    stages = project.stages
    if project.chain:
        return start + sum(
            max(efforts[s.index] - s.done_effort, 0.0) / s.crew for s in stages if not s.done_fully
        )
    finish = [0.0] * len(stages)
    for i in project.topological:
        spec = stages[i]
        ready = max((finish[p] for p in spec.preds), default=start)
        work = 0.0 if spec.done_fully else max(efforts[i] - spec.done_effort, 0.0)
        finish[i] = ready + work / spec.crew
    return max(finish)


def sample_world(scenario: Scenario, seed: int, replication: int, cache: dict | None = None) -> World:
    """The world of one replication: a pure function of its first three arguments.

    ``cache`` is an optional dict, shared between replications of the same
    scenario object, where what every replication computes alike (distribution
    means, the stages' structure) is kept: a speed-up only.
    """
    builder = _Builder(scenario, seed, replication, cache)
    index_of = {p.id: i for i, p in enumerate(scenario.projects)}
    listed = []
    for i, project in enumerate(scenario.projects):
        rng = stream(seed, replication, f"project:{project.id}")
        listed.append(
            builder.project(
                project,
                rng,
                index=i,
                id=project.id,
                template=None,
                arrival=float(project.arrival),
                depends_on=tuple(index_of[d] for d in project.depends_on),
                promised=float(project.promised) if project.promised is not None else math.nan,
            )
        )
    projects = listed + builder.arrivals(len(listed))
    return World(
        seed=seed,
        replication=replication,
        horizon=float(scenario.horizon),
        team_names=tuple(scenario.teams),
        projects=tuple(_with_ideal_deliveries(projects)),
    )


def _with_ideal_deliveries(projects: list[ProjectWorld]) -> list[ProjectWorld]:
    """Ideal delivery: the later of arrival and predecessors' ideal deliveries, plus
    the project's own realised critical path at crew rates (DESIGN section 5).
    The same from estimates gives what decision-makers expect (the decay reference)."""

    def fill(i: int) -> None:
        project = projects[i]
        if math.isnan(project.ideal_delivery):
            for d in project.depends_on:
                fill(d)
            start = max([project.arrival, *(projects[d].ideal_delivery for d in project.depends_on)])
            expected = max([project.arrival, *(projects[d].ideal_estimate for d in project.depends_on)])
            project.ideal_delivery = critical_path(project, project.effort_actual, start)
            project.ideal_estimate = critical_path(project, project.effort_estimate, expected)

    for i in range(len(projects)):
        fill(i)
    return projects
