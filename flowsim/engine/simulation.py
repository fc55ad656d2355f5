"""One policy on one world: the discrete-event model on a SimPy environment.

Projects arrive, wait in the funnel, are admitted by the intake rule, and
their stages queue at teams, where free capacity units go to the stage with
the highest priority under the sequencing rule.  Everything that happens at
time t (arrivals, completions, capacity changes, review ticks) is applied
first; a single *decision* event then runs at t, after every other event at t
(it is scheduled at a lower SimPy priority): intervention, intake, then
dispatch at every team (DESIGN section 7, "Order of events").

State changes are callbacks on SimPy events rather than one process per
project: a process costs a generator and extra events per step, and engine
overhead per event is where speed is won (DESIGN section 13).
"""

from __future__ import annotations

import math

import simpy
from simpy.events import NORMAL, Event, Timeout

from ..errors import FlowsimError
from ..policies.protocol import ADMIT, HOLD, REJECT, STOP, Action
from ..world import ProjectWorld, World, critical_path
from . import events as ev
from .queue import RankedQueue
from .setup import PolicyRules, SimulationSetup
from .state import (
    ACTIVE,
    BLOCKED,
    CANCELLED,
    DELIVERED,
    FINISHED,
    QUEUED,
    REJECTED,
    RUNNING,
    WAITING,
    ProjectState,
    StageState,
)
from .teams import TeamState

# Decisions run after every ordinary event at the same instant.
_DECISION_PRIORITY = NORMAL + 1
_EXPEDITED = math.inf


class _Decision(Event):
    """An already-triggered event scheduled behind everything else at ``now``."""

    def __init__(self, env: simpy.Environment, callback):
        self.env = env
        self.callbacks = [callback]
        self._value = None
        self._ok = True
        env.schedule(self, _DECISION_PRIORITY)


class Simulation:
    """Simulates ``rules`` on ``world`` from 0 to the horizon; ``run()`` returns the record."""

    def __init__(self, setup: SimulationSetup, world: World, rules: PolicyRules):
        self.setup = setup
        self.world = world
        self.rules = rules
        self.env = simpy.Environment()
        self.horizon = world.horizon
        self.rho = setup.rho
        self.log: list[tuple] = []  # (time, project, stage, team, event, units, reason)
        self.levels: list[tuple] = []  # (time, wip, in_system, arrived, admitted, delivered, cancelled, rejected)
        self.counts = [0, 0, 0, 0, 0, 0, 0]
        self._decision_pending = False
        self._review_due = False

        sequencing = rules.sequencing
        self._priority = sequencing.priority

        def project_rank(project: ProjectState, now: float) -> float:
            # A project's rank is asked for by each of its queued stages and at
            # every look-up within an instant: compute it once per (time, version).
            if project.rank_at == now and project.rank_version == project.version:
                return project.rank
            rank = _EXPEDITED if project.expedited else self._priority(project.view, now)
            project.rank, project.rank_at, project.rank_version = rank, now, project.version
            return rank

        def stage_rank(stage: StageState, now: float) -> float:
            return project_rank(stage.project, now)

        def stage_stable(stage: StageState) -> bool:
            project = stage.project
            return project.expedited or sequencing.is_stable(project.view)

        def project_stable(project: ProjectState) -> bool:
            return project.expedited or sequencing.is_stable(project.view)

        self.teams = [
            TeamState(i, name, setup.capacity[i], setup.cost_rate[i], RankedQueue(stage_rank, stage_stable))
            for i, name in enumerate(world.team_names)
        ]
        self.funnel = RankedQueue(project_rank, project_stable)
        self.active: dict[ProjectState, None] = {}
        self.portfolio = PortfolioState(self)
        self._build_projects(rules.perfect_information)

    # ------------------------------------------------------------------ setup

    def _build_projects(self, perfect_information: bool) -> None:
        """Project states from the world; realised efforts go to private arrays."""
        self.projects: list[ProjectState] = []
        self._remaining: list[float] = []  # realised effort still to work, per stage uid
        self._token: list[int] = []  # completion events carry the token they were made with
        names, horizon = self.world.team_names, self.horizon
        for pw in self.world.projects:
            value = pw.value_actual if perfect_information else pw.value_estimate
            estimates = pw.effort_actual if perfect_information else pw.effort_estimate
            project = ProjectState(
                pw.index, pw.id, pw.name, pw.template, pw.arrival, pw.depends_on,
                pw.promised, value, pw.wsjf, names, horizon,
            )  # fmt: skip
            for spec in pw.stages:
                stage = StageState(
                    project, spec.index, spec.name, spec.team, spec.crew, spec.preds,
                    estimates[spec.index], spec.done_effort, len(self._remaining),
                )  # fmt: skip
                if spec.done_fully:
                    stage.status = FINISHED
                    stage.done = stage.estimate
                self._remaining.append(pw.remaining_actual(spec.index))
                self._token.append(0)
                project.stages.append(stage)
            for stage in project.stages:
                for p in stage.preds:
                    project.stages[p].succs.append(stage.index)
            for stage in project.stages:
                stage.waiting_preds = sum(1 for p in stage.preds if project.stages[p].status != FINISHED)
            project.topological = _topological(project.stages)
            project.chain = all(s.preds == ((s.index - 1,) if s.index else ()) for s in project.stages)
            project.unfinished = sum(1 for s in project.stages if s.status != FINISHED)
            project.ideal_estimate = _estimated_ideal(pw, estimates)
            self.projects.append(project)
        for project in self.projects:
            for d in project.depends_on:
                self.projects[d].dependants.append(project.index)
        # The decay reference of a dependant needs its predecessors' estimated ideals.
        for project in self.projects:
            if project.depends_on:
                project.ideal_estimate = self._ideal_with_predecessors(project.index, {})

    def _ideal_with_predecessors(self, index: int, memo: dict[int, float]) -> float:
        if index not in memo:
            project = self.projects[index]
            pw = self.world.projects[index]
            start = max([pw.arrival, *(self._ideal_with_predecessors(d, memo) for d in pw.depends_on)])
            estimates = [s.estimate for s in project.stages]
            memo[index] = critical_path(pw, tuple(estimates), start)
        return memo[index]

    # ------------------------------------------------------------------- run

    def run(self):
        from .record import collect  # the record layer depends on the engine, not vice versa

        env = self.env
        for project in self.projects:
            if project.arrival < self.horizon:
                timer = Timeout(env, project.arrival, project)
                timer.callbacks.append(self._on_arrival)
        for team_index, changes in enumerate(self.setup.capacity_changes):
            for at, capacity in changes:
                timer = Timeout(env, at, (team_index, capacity))
                timer.callbacks.append(self._on_capacity_change)
        for at in self.rules.intake.decision_times(self.horizon):
            Timeout(env, at).callbacks.append(self._on_tick)
        if self.rules.intervention is not None:
            for at in self.rules.intervention.decision_times(self.horizon):
                Timeout(env, at).callbacks.append(self._on_review)
        env.run(until=self.horizon)
        self._close(self.horizon)
        return collect(self, self.setup.timeline_step)

    def _close(self, now: float) -> None:
        """Account for work still running at the horizon (costs, tallies)."""
        for team in self.teams:
            team.advance(now)
            for stage in team.running:
                self._charge(stage, now)

    # --------------------------------------------------------- event handlers

    def _on_arrival(self, event) -> None:
        project: ProjectState = event._value
        now = self.env._now
        self._log(now, project, None, ev.ARRIVED)
        self._count(arrived=1, in_system=1)
        failed = [d for d in project.depends_on if self.projects[d].status in (CANCELLED, REJECTED)]
        if failed:
            project.status = WAITING
            self._cancel(project, f"depends on {self.projects[failed[0]].id}, not delivered", now)
            return
        if self.world.projects[project.index].in_flight:
            # Work already under way counts as admitted at time 0 (DESIGN section 4).
            project.status = WAITING
            self._admit(project, now)
        else:
            project.status = WAITING
            if project.pending_deps == 0:
                self.funnel.push(project, (now, project.arrival, project.index), now)
        self._request_decision()

    def _on_finish(self, event) -> None:
        stage, token = event._value
        if token != self._token[stage.uid]:
            return  # superseded: the stage was interrupted or its rate changed
        now = self.env._now
        team = self.teams[stage.team]
        team.advance(now)
        self._stop(stage, team, now)
        team.wip -= 1
        team.record(now)
        stage.status = FINISHED
        stage.finished_at = now
        self._log(now, stage.project, stage, ev.FINISHED, stage.crew)
        project = stage.project
        project.unfinished -= 1
        if project.unfinished == 0:
            self._deliver(project, now)
        else:
            for succ in stage.succs:
                follower = project.stages[succ]
                follower.waiting_preds -= 1
                if follower.waiting_preds == 0 and project.status == ACTIVE:
                    self._enqueue(follower, now)
            self._refile(project, now)
        self._request_decision()

    def _on_capacity_change(self, event) -> None:
        team_index, capacity = event._value
        team = self.teams[team_index]
        team.advance(self.env._now)
        team.capacity = capacity
        self._request_decision()

    def _on_tick(self, event) -> None:
        self._request_decision()

    def _on_review(self, event) -> None:
        self._review_due = True
        self._request_decision()

    def _request_decision(self) -> None:
        if not self._decision_pending:
            self._decision_pending = True
            _Decision(self.env, self._decide)

    # -------------------------------------------------------------- decisions

    def _decide(self, event) -> None:
        self._decision_pending = False
        now = self.env._now
        if self._review_due:
            self._review_due = False
            self._apply(self.rules.intervention.review(self.portfolio), now)
        if self.funnel:
            self._intake(now)
        for team in self.teams:
            if team.busy < team.capacity and team.queue:
                self._dispatch(team, now)

    def _intake(self, now: float) -> None:
        rule = self.rules.intake
        portfolio = self.portfolio
        if not rule.start_pass(portfolio):
            return
        funnel = self.funnel
        ordered: list | None = None  # built on the first HOLD: most passes stop at the top
        position = 0
        while True:
            if ordered is None:
                project = funnel.peek(now)
            else:
                project = ordered[position] if position < len(ordered) else None
                position += 1
            if project is None:
                break
            decision = rule.decide(project.view, portfolio)
            action, reason = decision if isinstance(decision, tuple) else (decision, "")
            if action == ADMIT:
                funnel.remove(project)
                self._admit(project, now)
            elif action == REJECT:
                funnel.remove(project)
                self._reject(project, reason or "rejected by intake rule", now)
            elif action == STOP:
                break
            elif action == HOLD:
                if ordered is None:
                    # Ranks depend on a project and the time only: one ordering serves the pass.
                    ordered = funnel.ordered(now)
                    position = ordered.index(project) + 1
            else:
                raise FlowsimError(
                    f"intake rule {type(rule).__name__} must return admit, reject, hold or stop, got {action!r}"
                )

    def _dispatch(self, team: TeamState, now: float) -> None:
        queue = team.queue
        started = False
        while team.busy < team.capacity:
            stage = queue.peek(now)
            if stage is None or stage.crew > team.capacity - team.busy:
                break  # strict order: a big crew is not overtaken
            if not started:
                team.advance(now)
                started = True
            queue.remove(stage)
            self._start(stage, team, now)
        if started:
            team.record(now)

    def _apply(self, actions, now: float) -> None:
        by_id = None
        for action in actions or ():
            if not isinstance(action, Action):
                raise FlowsimError(f"an intervention rule must return Action objects, got {action!r}")
            if by_id is None:
                by_id = {p.id: p for p in self.projects}
            project = by_id.get(action.project)
            if project is None:
                raise FlowsimError(f"an intervention names unknown project {action.project!r}")
            if action.kind == "cancel":
                if project.status in (WAITING, ACTIVE):
                    self._cancel(project, action.reason, now)
            elif action.kind == "pause":
                if project.status == ACTIVE:
                    self._pause(project, action.reason, now)
            elif action.kind == "expedite":
                if project.status in (WAITING, ACTIVE) and not project.expedited:
                    project.expedited = True
                    self._log(now, project, None, ev.EXPEDITED, 0, action.reason)
                    self._refile(project, now)
            else:
                raise FlowsimError(f"an action must be cancel, pause or expedite, got {action.kind!r}")

    # ------------------------------------------------------ project lifecycle

    def _admit(self, project: ProjectState, now: float) -> None:
        first = math.isnan(project.admitted_at)
        project.status = ACTIVE
        if first:
            project.admitted_at = now
        self.active[project] = None
        self._log(now, project, None, ev.ADMITTED, 0, "" if first else "resumed")
        self._count(wip=1, admitted=1 if first else 0)
        if project.unfinished == 0:
            self._deliver(project, now)
            return
        for stage in project.stages:
            if stage.status == BLOCKED and stage.waiting_preds == 0:
                self._enqueue(stage, now)

    def _enqueue(self, stage: StageState, now: float) -> None:
        team = self.teams[stage.team]
        team.advance(now)
        stage.status = QUEUED
        # A stage already under way at time 0 entered its queue before time 0.
        entered = -math.inf if (now == 0.0 and stage.done > 0 and math.isnan(stage.queued_at)) else now
        stage.queued_at = now
        project = stage.project
        team.queue.push(stage, (entered, project.arrival, project.index, stage.index), now)
        team.wip += 1
        team.record(now)
        self._log(now, project, stage, ev.QUEUED)

    def _start(self, stage: StageState, team: TeamState, now: float) -> None:
        project = stage.project
        stage.status = RUNNING
        stage.units = stage.crew
        stage.rate = float(stage.crew)
        stage.since = now
        if math.isnan(stage.started_at):
            stage.started_at = now
        if math.isnan(project.started_at):
            project.started_at = now
        team.busy += stage.crew
        team.rate_total += stage.rate
        team.running[stage] = None
        project.running += 1
        token = self._token[stage.uid] + 1
        self._token[stage.uid] = token
        timer = Timeout(self.env, self._remaining[stage.uid] / stage.rate, (stage, token))
        timer.callbacks.append(self._on_finish)
        self._log(now, project, stage, ev.STARTED, stage.crew)
        if project.running == 1:
            self._refile(project, now)

    def _stop(self, stage: StageState, team: TeamState, now: float) -> None:
        """Take a running stage off its team, keeping its progress (team already advanced)."""
        worked = stage.rate * (now - stage.since)
        stage.done += worked
        self._remaining[stage.uid] = max(self._remaining[stage.uid] - worked, 0.0)
        self._token[stage.uid] += 1
        self._charge(stage, now)
        team.busy -= stage.units
        team.rate_total -= stage.rate
        del team.running[stage]
        stage.rate = 0.0
        stage.units = 0
        stage.project.running -= 1

    def _charge(self, stage: StageState, now: float) -> None:
        cost = self.teams[stage.team].cost_rate * stage.units
        if cost > 0 and now > stage.since:
            stage.project.cost_pv += _discounted_cost(cost, stage.since, now, self.rho)
        stage.since = now

    def _withdraw(self, project: ProjectState, now: float) -> None:
        """Take every stage of a project off its team (running ones keep their progress)."""
        for stage in project.stages:
            if stage.status == RUNNING:
                team = self.teams[stage.team]
                team.advance(now)
                self._stop(stage, team, now)
                team.wip -= 1
                team.record(now)
                stage.status = BLOCKED
                self._log(now, project, stage, ev.PAUSED, 0, "project withdrawn")
            elif stage.status == QUEUED:
                team = self.teams[stage.team]
                team.advance(now)
                team.queue.remove(stage)
                team.wip -= 1
                team.record(now)
                stage.status = BLOCKED

    def _deliver(self, project: ProjectState, now: float) -> None:
        project.status = DELIVERED
        project.delivered_at = project.ended_at = now
        self.active.pop(project, None)
        self._log(now, project, None, ev.DELIVERED)
        self._count(wip=-1, in_system=-1, delivered=1)
        for index in project.dependants:
            dependant = self.projects[index]
            dependant.pending_deps -= 1
            if dependant.pending_deps == 0 and dependant.status == WAITING:
                self.funnel.push(dependant, (now, dependant.arrival, dependant.index), now)

    def _cancel(self, project: ProjectState, reason: str, now: float) -> None:
        was_active = project.status == ACTIVE
        if was_active:
            self._withdraw(project, now)
            self.active.pop(project, None)
        elif project in self.funnel:
            self.funnel.remove(project)
        project.status = CANCELLED
        project.ended_at = now
        self._log(now, project, None, ev.CANCELLED, 0, reason)
        self._count(wip=-1 if was_active else 0, in_system=-1, cancelled=1)
        self._cascade(project, now)

    def _reject(self, project: ProjectState, reason: str, now: float) -> None:
        project.status = REJECTED
        project.ended_at = now
        self._log(now, project, None, ev.REJECTED, 0, reason)
        self._count(in_system=-1, rejected=1)
        self._cascade(project, now)

    def _cascade(self, project: ProjectState, now: float) -> None:
        for index in project.dependants:
            dependant = self.projects[index]
            if dependant.status in (WAITING, ACTIVE):
                self._cancel(dependant, f"depends on {project.id}, not delivered", now)

    def _pause(self, project: ProjectState, reason: str, now: float) -> None:
        self._withdraw(project, now)
        self.active.pop(project, None)
        project.status = WAITING
        self._log(now, project, None, ev.PAUSED, 0, reason)
        self._count(wip=-1)
        self.funnel.push(project, (now, project.arrival, project.index), now)

    def _refile(self, project: ProjectState, now: float) -> None:
        """Re-rank a project's queued stages (and funnel entry) after it changed."""
        project.version += 1
        for stage in project.stages:
            if stage.status == QUEUED:
                self.teams[stage.team].queue.refile(stage, now)
        if project.status == WAITING:
            self.funnel.refile(project, now)

    # ----------------------------------------------------------------- output

    def _log(self, now, project, stage, event, units=0, reason=""):
        self.log.append(
            (
                now,
                project.index,
                -1 if stage is None else stage.index,
                -1 if stage is None else stage.team,
                event,
                units,
                reason,
            )
        )

    def _count(self, wip=0, in_system=0, arrived=0, admitted=0, delivered=0, cancelled=0, rejected=0):
        c = self.counts
        c[0] += wip
        c[1] += in_system
        c[2] += arrived
        c[3] += admitted
        c[4] += delivered
        c[5] += cancelled
        c[6] += rejected
        self.levels.append((self.env._now, *c))


class PortfolioState:
    """The ``PortfolioView`` handed to intake and intervention rules."""

    __slots__ = ("_sim", "_team_index")

    def __init__(self, simulation: Simulation):
        self._sim = simulation
        self._team_index = {name: i for i, name in enumerate(simulation.world.team_names)}

    @property
    def now(self) -> float:
        return self._sim.env._now

    @property
    def bottleneck(self) -> str:
        return self._sim.setup.bottleneck

    @property
    def active(self) -> tuple:
        return tuple(p.view for p in self._sim.active)

    @property
    def funnel(self) -> tuple:
        return tuple(p.view for p in self._sim.funnel.items())

    @property
    def active_count(self) -> int:
        return len(self._sim.active)

    def _team(self, team: str) -> TeamState:
        return self._sim.teams[self._team_index[team]]

    def capacity(self, team: str) -> int:
        return self._team(team).capacity

    def busy(self, team: str) -> int:
        return self._team(team).busy

    def queue_length(self, team: str) -> int:
        return len(self._team(team).queue)

    def team_wip(self, team: str) -> int:
        return self._team(team).wip

    def estimated_load(self, team: str) -> float:
        """Estimated remaining effort at ``team`` of admitted projects (queued, running or upstream)."""
        index, now = self._team_index[team], self.now
        return sum(p.remaining_work(now, index) for p in self._sim.active)


def _discounted_cost(cost_per_time: float, t0: float, t1: float, rho: float) -> float:
    """Scalar twin of ``flowsim.value.discounted_cost`` for the hot path (numpy per call is slow)."""
    if rho == 0.0:
        return cost_per_time * (t1 - t0)
    return cost_per_time * math.exp(-rho * t0) * -math.expm1(-rho * (t1 - t0)) / rho


def _topological(stages: list[StageState]) -> list[StageState]:
    order, seen = [], set()

    def visit(stage: StageState) -> None:
        if stage.index in seen:
            return
        seen.add(stage.index)
        for p in stage.preds:
            visit(stages[p])
        order.append(stage)

    for stage in stages:
        visit(stage)
    return order


def _estimated_ideal(pw: ProjectWorld, estimates) -> float:
    """Ideal delivery as decision-makers estimate it (the decay reference)."""
    return critical_path(pw, tuple(estimates), pw.arrival)
