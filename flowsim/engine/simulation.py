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

import gc
import math
from contextlib import contextmanager

import simpy
from simpy.events import NORMAL, Event, Timeout

from ..errors import FlowsimError
from ..policies.protocol import ADMIT, REJECT, STOP
from ..value import CONSTANT
from ..world import World
from . import answers
from . import events as ev
from .capacity import CapacityMixin
from .funnel import Funnel
from .portfolio import PortfolioState
from .queue import AS_PUSHED, ON_COMPANY, RankedQueue
from .setup import PolicyRules, SimulationSetup
from .sharing import SharedPool
from .state import (
    ACTIVE,
    BLOCKED,
    CANCELLED,
    DELIVERED,
    FINISHED,
    QUEUED,
    REJECTED,
    WAITING,
    ProjectState,
    ProjectView,
    StageState,
)
from .teams import TeamState, switching_curve

# Decisions run after every ordinary event at the same instant.
_DECISION_PRIORITY = NORMAL + 1
_FOREVER = (CONSTANT, math.inf)  # an expedited project's rank never changes


@contextmanager
def paused_collector():
    """Pause Python's cyclic garbage collector, restoring its state after.

    The model's objects reference each other (projects, stages, views), so the
    collector would rescan them again and again during a run; a replication's
    garbage is bounded, and it is collected as usual once the collector resumes.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _stage_plan(world: World) -> list[tuple[tuple[float, ...], tuple[int, ...]]]:
    """Per project, each stage's realised effort still to work at time 0 and its number of
    unfinished predecessors: the world's alone, so computed once for every policy."""
    plan = world.derived.get("stage plan")
    if plan is None:
        plan = world.derived["stage plan"] = [
            (
                tuple(pw.remaining_actual(i) for i in range(len(pw.stages))),
                tuple(sum(1 for p in spec.preds if not pw.stages[p].done_fully) for spec in pw.stages),
            )
            for pw in world.projects
        ]
    return plan


class _Decision(Event):
    """An already-triggered event scheduled behind everything else at ``now``."""

    def __init__(self, env: simpy.Environment, callback):
        self.env = env
        self.callbacks = [callback]
        self._value = None
        self._ok = True
        env.schedule(self, _DECISION_PRIORITY)


class Simulation(CapacityMixin):
    """Simulates ``rules`` on ``world`` from 0 to the horizon; ``run()`` returns the record."""

    def __init__(self, setup: SimulationSetup, world: World, rules: PolicyRules):
        self.setup = setup
        self.world = world
        self.rules = rules
        self.env = simpy.Environment()
        self.horizon = world.horizon
        self.rho = setup.rho
        self.log: list[tuple] = []  # (time, project, stage, team, event, units, reason code)
        self.reasons: list[str] = [""]
        self._reason_codes: dict[str, int] = {}
        self.levels: list[tuple] = []  # (time, wip, in_system, arrived, admitted, delivered, cancelled, rejected)
        self.counts = [0, 0, 0, 0, 0, 0, 0]
        self._decision_pending = False
        self._review_due = False
        self._changed: list[TeamState] = []  # teams to dispatch at the next decision
        # Teams whose best waiting stage could not start although units were free (a crew
        # larger than them): ranks that move with time or with progress elsewhere may put a
        # stage that can start first, so they are dispatched at every decision (DESIGN
        # section 7: priorities are live).  A full team is not: nothing can start there, and
        # preemption checked at every decision would cost a run under `preempt` 40% more
        # (docs/policies.md).  Insertion ordered, so runs stay reproducible.
        self._stalled: dict[TeamState, None] = {}
        # Shared starts logged at this instant: (log row, stage, its token then).
        self._unsettled: list[tuple[int, StageState, int]] = []
        self._by_id: dict[str, ProjectState] | None = None  # projects by id, for intervention actions

        sequencing = rules.sequencing
        self._constant_rank = bool(getattr(sequencing, "constant", False))
        # A pure rule need not rank work alone in its queue (RankedQueue).  The funnel must
        # keep its filing order (``PortfolioView.funnel`` lists it); a team's queue shows
        # only what it serves, so its lone stage waits for company to be ranked.
        pure = bool(getattr(sequencing, "pure", False))
        stage_lone, project_lone = (ON_COMPANY, AS_PUSHED) if pure else (None, None)
        # The queues (which intake and intervention rules can see through the
        # portfolio view) keep these closures: they must reach the rule and the
        # project states only, never ``self`` and through it the realised world.
        priority = sequencing.priority
        # Each arrived project's view, by project index (None until it arrives: a view, like
        # the arrival it shows, must not be seen before).  Projects do not hold their views,
        # so a finished run has no project <-> view cycle to leave to the cyclic collector.
        self.views: list[ProjectView | None] = []
        views = self.views
        # A user's rule's ranks and trends are checked as they come (answers.py); built-in ones
        # are trusted, as they are asked thousands of times a replication.
        who = rules.labels.get("sequencing", "sequencing rule")
        trusted = answers.is_builtin(sequencing)

        def project_rank(project: ProjectState, now: float) -> float:
            # A project's rank is asked for by each of its queued stages and at
            # every look-up within an instant: compute it once per (time, version).
            if project.rank_at == now and project.rank_version == project.version:
                return project.rank
            if project.expedited:
                rank = answers.EXPEDITED
            else:
                rank = priority(views[project.index], now)
                if not trusted and (rank.__class__ is not float or not rank < answers.EXPEDITED):
                    rank = answers.checked_rank(rank, who, project.id, now)
            project.rank, project.rank_at, project.rank_version = rank, now, project.version
            return rank

        self._project_rank = project_rank

        def stage_rank(stage: StageState, now: float) -> float:
            return project_rank(stage.project, now)

        rank_trend = sequencing.rank_trend

        def project_trend(project: ProjectState, now: float) -> tuple[str, float]:
            if project.expedited:
                return _FOREVER
            trend = rank_trend(views[project.index], now)
            return trend if trusted else answers.checked_trend(trend, who, project.id, now)

        def stage_trend(stage: StageState, now: float) -> tuple[str, float]:
            return project_trend(stage.project, now)

        if self._constant_rank:  # every rank constant, expedited ones too: nothing to ask
            project_trend = stage_trend = None

        self.teams = [
            TeamState(
                i, name, setup.capacity[i], setup.cost_rate[i], RankedQueue(stage_rank, stage_trend, stage_lone),
                curve=switching_curve(setup.switching[i]) if setup.switching[i] is not None else None,
                grid=setup.grid,
            )
            for i, name in enumerate(world.team_names)
        ]
        # A shared team's crew clocks and its stages' targets: private, like ``_remaining``.
        self._pools = [SharedPool() if team.shared else None for team in self.teams]
        rule_key = answers.hold_key(rules.intake, pure or self._constant_rank)  # optional (funnel.py)
        project_key = None
        if rule_key is not None:
            intake_who = rules.labels.get("intake", "intake rule")

            def project_key(project: ProjectState):
                return answers.checked_key(rule_key(views[project.index]), intake_who, project.id)

        self.funnel = Funnel(project_rank, project_trend, project_lone, project_key)
        self.active: dict[ProjectState, None] = {}
        self.blocked: dict[ProjectState, None] = {}  # arrived, waiting for a predecessor's delivery
        self._build_projects(rules.perfect_information)
        self.portfolio = PortfolioState(
            self.active, self.funnel, self.blocked, self.views, self.teams, world.team_names, setup.bottleneck
        )

    # ------------------------------------------------------------------ setup

    def _build_projects(self, perfect_information: bool) -> None:
        """Project states from the world; realised efforts go to private arrays."""
        self.projects: list[ProjectState] = []
        # Realised effort still to work, per stage uid (on a shared team: the clock reading at
        # which it is done, sharing.py).
        self._remaining: list[float] = []
        remaining = self._remaining
        for pw, (actual, waiting) in zip(self.world.projects, _stage_plan(self.world), strict=True):
            value = pw.value_actual if perfect_information else pw.value_estimate
            estimates = pw.effort_actual if perfect_information else pw.effort_estimate
            project = ProjectState(
                pw.index, pw.id, pw.name, pw.template, pw.arrival, pw.depends_on, pw.promised, value, pw.wsjf,
            )  # fmt: skip
            self.views.append(None)
            stages = project.stages
            unfinished = 0
            for spec in pw.stages:
                stage = StageState(
                    project, spec.index, spec.name, spec.team, spec.crew, spec.preds,
                    estimates[spec.index], spec.done_effort, len(remaining) + spec.index,
                )  # fmt: skip
                stage.succs = pw.successors[spec.index]
                stage.waiting_preds = waiting[spec.index]
                if spec.done_fully:
                    stage.status = FINISHED
                    stage.done = stage.estimate
                else:
                    unfinished += 1
                stages.append(stage)
            remaining.extend(actual)
            project.topological = [stages[i] for i in pw.topological]
            project.chain = pw.chain
            project.unfinished = unfinished
            project.ideal_estimate = pw.ideal_delivery if perfect_information else pw.ideal_estimate
            self.projects.append(project)
        self._token = [0] * len(remaining)  # completion events carry the token they were made with
        for project in self.projects:
            for d in project.depends_on:
                self.projects[d].dependants.append(project.index)

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
        labels = self.rules.labels
        times = self.rules.intake.decision_times(self.horizon)
        for at in answers.decision_times(times, labels.get("intake", "intake rule")):
            if at < self.horizon:
                Timeout(env, at).callbacks.append(self._on_tick)
        if self.rules.intervention is not None:
            times = self.rules.intervention.decision_times(self.horizon)
            for at in answers.decision_times(times, labels.get("intervention", "intervention rule")):
                if at < self.horizon:
                    Timeout(env, at).callbacks.append(self._on_review)
        with paused_collector():
            env.run(until=self.horizon)
            self._close(self.horizon)
            record = collect(self)
            self._unlink()
            return record

    def _unlink(self) -> None:
        """Break the run's reference cycles so reference counting frees it at once.

        Stages point back at their project, and events still pending at the
        horizon at this simulation's handlers.  Left alone, these cycles wait
        for Python's cyclic collector, which then walks every object a
        replication made: about 12% of a whole run (``benchmarks/parallel.py``).
        Results read after ``run()`` (projects, stages, the log, teams) keep
        their values, and project and portfolio views a rule kept keep working.
        """
        for project in self.projects:
            for stage in project.stages:
                stage.project = None
                stage.share = None  # a shared team's stage and its place on the crew clock
        for pool in self._pools:
            if pool is not None:
                pool.clear()
        self.env._queue.clear()

    def _close(self, now: float) -> None:
        """Account for work still running at the horizon (costs, tallies), and note its
        progress: charging moves a stage's ``since``, and views a rule kept read ``done``."""
        for team in self.teams:
            team.close(now)
            if team.shared:
                self._pools[team.index].advance(now, self.rho)
            for stage in team.running:
                stage.done = stage.done_at(now)
                self._charge(stage, now)

    # --------------------------------------------------------- event handlers

    def _on_arrival(self, event) -> None:
        project: ProjectState = event._value
        now = self.env._now
        self.views[project.index] = ProjectView(project, self.world.team_names, self.horizon)
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
            else:
                self.blocked[project] = None
        self._request_decision()

    def _on_tick(self, event) -> None:
        self._request_decision()

    def _on_review(self, event) -> None:
        self._review_due = True
        self._request_decision()

    def _request_decision(self) -> None:
        """Decide once everything at this instant has happened (called last by every handler)."""
        if self._decision_pending:
            return
        env = self.env
        queue = env._queue
        if queue and queue[0][0] <= env._now:
            # More happens at this instant: decide after all of it, at a lower priority.
            self._decision_pending = True
            _Decision(env, self._decide)
        else:
            # Nothing else is due at this instant, so deciding now is deciding last;
            # it saves an event, and events are where engine time goes.
            self._decide(None)

    # -------------------------------------------------------------- decisions

    def _decide(self, event) -> None:
        self._decision_pending = False
        now = self.env._now
        self.portfolio._now = now
        if self._review_due:
            self._review_due = False
            self._apply(self.rules.intervention.review(self.portfolio), now)
        if self.funnel:
            self._intake(now)
        # Only teams where work was queued or capacity freed since the last decision, and
        # stalled ones: units are handed out when they become free (DESIGN section 7).
        if not self._constant_rank:  # constant ranks: a stalled team's order moves only by an expedite
            for team in self._stalled:
                self._mark(team)
        # Under preemption a start re-ranks its project, whose stages queued at other teams
        # may now take units there: such teams are marked again and dispatched in turn.
        while self._changed:
            changed, self._changed = self._changed, []
            for team in changed:
                team.changed = False
                if team.queued and (team.busy < team.capacity or self.rules.preempt):
                    self._dispatch(team, now)
        if self._unsettled:
            self._settle_started_units()

    def _settle_started_units(self) -> None:
        """A stage started on a shared team logs the share it holds once everything at the
        instant is done, not at its own start: two stages starting together both hold half
        the team, whichever started first.  A stage that left meanwhile keeps its row, even if
        it came back at the same instant (leaving bumps its token)."""
        log, tokens = self.log, self._token
        for index, stage, token in self._unsettled:
            if stage.share is not None and tokens[stage.uid] == token:
                row = log[index]
                log[index] = (*row[:5], stage.share.clock.units, row[6])
        self._unsettled.clear()

    def _intake(self, now: float) -> None:
        rule = self.rules.intake
        portfolio = self.portfolio
        if not rule.start_pass(portfolio):
            return
        funnel = self.funnel
        ordered: list | None = None  # built on the first HOLD: most passes stop at the top
        position = 0
        held: set | None = set() if funnel.keyed else None  # hold keys held in this pass (funnel.py)
        while True:
            if held:
                # After a HOLD, by key.  Until then the funnel's own look-up, as without keys:
                # look-ups leave their mark on its listing (queue.py), which rules may read.
                project = funnel.best(now, held)
            elif ordered is None:
                project = funnel.peek(now)
            else:
                project = ordered[position] if position < len(ordered) else None
                position += 1
            if project is None:
                break
            decision = rule.decide(self.views[project.index], portfolio)
            if decision.__class__ is str and decision in answers.INTAKE_ANSWERS:  # the usual answer
                action, reason = decision, ""
            else:
                action, reason = answers.intake_answer(decision, self.rules.labels.get("intake", "intake rule"))
            if action == ADMIT:
                funnel.remove(project)
                self._admit(project, now)
            elif action == REJECT:
                funnel.remove(project)
                self._reject(project, reason or "rejected by intake rule", now)
            elif action == STOP:
                break
            elif held is not None:  # HOLD, and so is every candidate with its key, this pass
                held.add(funnel.group_of(project))
            elif ordered is None:  # HOLD
                # Ranks depend on a project and the time only: one ordering serves the pass.
                ordered = funnel.ordered(now)
                position = ordered.index(project) + 1

    def _apply(self, actions, now: float) -> None:
        who = self.rules.labels.get("intervention", "intervention rule")
        for action in answers.review_actions(actions, who):
            if self._by_id is None:  # built once, at the first action
                self._by_id = {p.id: p for p in self.projects}
            project = self._by_id.get(action.project)
            if project is None:
                raise FlowsimError(f"{who}: an action must name a project of the scenario, got {action.project!r}")
            if action.kind == "cancel":
                if project.status in (WAITING, ACTIVE):
                    self._cancel(project, action.reason, now)
            elif action.kind == "pause":
                if project.status == ACTIVE:
                    self._pause(project, action.reason, now)
            elif project.status in (WAITING, ACTIVE) and not project.expedited:  # expedite
                project.expedited = True
                self._log(now, project, None, ev.EXPEDITED, 0, action.reason)
                self._refile(project, now, force=True)

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
        ready = [stage for stage in project.stages if stage.status == BLOCKED and stage.waiting_preds == 0]
        self._queue_stages(project, ready, now)

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
                self.blocked.pop(dependant, None)
                self.funnel.push(dependant, (now, dependant.arrival, dependant.index), now)

    def _cancel(self, project: ProjectState, reason: str, now: float) -> None:
        was_active = project.status == ACTIVE
        if was_active:
            self._withdraw(project, now)
            self.active.pop(project, None)
        elif project in self.funnel:
            self.funnel.remove(project)
        self.blocked.pop(project, None)
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

    def _refile(self, project: ProjectState, now: float, force: bool = False) -> None:
        """Re-rank a project's queued stages (and funnel entry) after it changed."""
        if self._constant_rank and not force:
            return
        # Forget the rank cached for this instant.  Progress (starts, stops, finishes) has
        # bumped ``version`` already; a change of status alone leaves the critical path as is.
        project.rank_at = math.nan
        # Stages just made ready are queued but not yet in a queue (``_queue_stages``), and
        # their teams are marked already: only stages in a queue have anything to re-rank.
        if project.queued:
            preempt = self.rules.preempt
            for stage in project.stages:
                if stage.status == QUEUED:
                    team = self.teams[stage.team]
                    team.queue.refile(stage, now)
                    if preempt or force:
                        # It may now outrank running work (an expedite, a rank that rose), or,
                        # expedited, a crew holding back a free unit (``_stalled``).
                        self._mark(team)
        if project.status == WAITING:
            self.funnel.refile(project, now)

    # ----------------------------------------------------------------- output

    def _log(self, now, project, stage, event, units=0, reason=""):
        # Reasons are stored as codes into ``self.reasons`` so the log stays numeric.
        code = 0
        if reason:
            code = self._reason_codes.get(reason)
            if code is None:
                code = self._reason_codes[reason] = len(self.reasons)
                self.reasons.append(reason)
        if stage is None:
            self.log.append((now, project.index, -1, -1, event, units, code))
        else:
            self.log.append((now, project.index, stage.index, stage.team, event, units, code))

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



