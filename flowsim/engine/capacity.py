"""How stages hold and work team capacity (DESIGN section 3), mixed into ``Simulation``.

Single focus: a free unit goes to the best waiting stage; a crew of k starts
only when k units are free and is never overtaken (strict order).  With a
``preempt: true`` policy, a waiting stage takes units from running stages of
strictly lower priority, whose progress is kept.

Shared focus: every stage that needs the team starts at once and shares it;
with c units and n stages each progresses at ``min(crew, c * f(n / c) / n)``,
recomputed whenever a stage starts or stops or the capacity changes.  Progress
is kept on one clock per crew size (``sharing.py``), so a change costs O(log n),
not a visit to every stage.  One completion timer per shared team (the next
stage to finish) keeps the event count independent of n; a superseded timer is
recognised by its token.
"""

from __future__ import annotations

import math

from simpy.events import Timeout

from . import events as ev
from .state import ACTIVE, BLOCKED, FINISHED, QUEUED, RUNNING, StageState
from .teams import TeamState


class CapacityMixin:
    # ---------------------------------------------------------------- events

    def _on_finish(self, event) -> None:
        stage, token = event._value
        team = self.teams[stage.team]
        if token != (team.token if team.shared else self._token[stage.uid]):
            return  # superseded: the stage was interrupted or its rate changed
        now = self.env._now
        team.advance(now)
        if team.shared and stage in team.not_started:  # no work left when it joined a team without capacity
            del team.not_started[stage]
            self._note_start(stage, now)
        units = stage.units if stage.share is None else stage.share.clock.units
        self._stop(stage, team, now)
        team.wip -= 1
        stage.status = FINISHED
        stage.finished_at = now
        stage.project.version += 1
        self._log(now, stage.project, stage, ev.FINISHED, units)
        self._released(team, now)
        project = stage.project
        project.unfinished -= 1
        if project.unfinished == 0:
            self._deliver(project, now)
        else:
            ready = []
            for succ in stage.succs:
                follower = project.stages[succ]
                follower.waiting_preds -= 1
                # A follower may be finished already (``done: true``): never work it again.
                if follower.waiting_preds == 0 and follower.status == BLOCKED and project.status == ACTIVE:
                    ready.append(follower)
            self._queue_stages(project, ready, now)
        self._request_decision()

    def _queue_stages(self, project, stages: list[StageState], now: float) -> None:
        """Queue stages of one project that just became ready, then rank them.

        Ranks are taken once every stage is queued, since a rule may rank by which
        stages wait: the project's stages queued before are re-ranked, the new ones
        ranked for the first time (each once)."""
        if self._constant_rank:  # ranks never change: nothing to settle first
            for stage in stages:
                self._enqueue(stage, now)
            return
        unranked = [stage for stage in stages if self._enqueue(stage, now, rank_later=True)]
        self._refile(project, now)
        for stage in unranked:
            self.teams[stage.team].queue.push(stage, stage.key, now)
        project.queued += len(unranked)

    def _mark(self, team: TeamState) -> None:
        """Have the next decision hand out this team's free units."""
        if not team.changed:
            team.changed = True
            self._changed.append(team)

    def _on_capacity_change(self, event) -> None:
        team_index, capacity = event._value
        team = self.teams[team_index]
        now = self.env._now
        team.advance(now)
        team.capacity = capacity
        self._mark(team)
        if team.shared:
            self._reshare(team, now)
        self._request_decision()

    # ------------------------------------------------------------- dispatch

    def _enqueue(self, stage: StageState, now: float, rank_later: bool = False) -> bool:
        """Queue a stage at its team (a shared team starts it at once).  With ``rank_later``,
        a stage of a single-focus team is counted as queued but the caller puts it in the
        queue under ``stage.key`` once its project's state is settled; returns whether it must."""
        team = self.teams[stage.team]
        team.advance(now)
        stage.status = QUEUED
        project = stage.project
        # A stage already under way at time 0 entered its queue before time 0.
        entered = -math.inf if (now == 0.0 and stage.done > 0 and math.isnan(stage.queued_at)) else now
        stage.queued_at = now
        team.wip += 1
        self._log(now, project, stage, ev.QUEUED)
        if team.shared:
            self._start(stage, team, now)
            self._reshare(team, now)
            return False
        key = (entered, project.arrival, project.index, stage.index)
        if rank_later:
            stage.key = key
        else:
            team.queue.push(stage, key, now)
            project.queued += 1
        team.queued += 1
        self._mark(team)
        return rank_later

    def _dispatch(self, team: TeamState, now: float) -> None:
        queue = team.queue
        advanced = False
        while True:
            stage = queue.peek(now)
            if stage is None:
                break
            # Strict order: a big crew is not overtaken; it may preempt lower work.
            if stage.crew > team.capacity - team.busy and not (
                self.rules.preempt and self._preempt_for(stage, team, now)
            ):
                break
            if not advanced:
                team.advance(now)
                advanced = True
            key = queue.remove(stage)
            stage.key = key
            team.queued -= 1
            stage.project.queued -= 1
            self._start(stage, team, now)
        if stage is not None and team.busy < team.capacity:
            self._stalled[team] = None  # look again at the next decision (``Simulation._stalled``)
        else:
            self._stalled.pop(team, None)

    def _preempt_for(self, stage: StageState, team: TeamState, now: float) -> bool:
        """Free enough units for ``stage`` from running stages of strictly lower priority,
        lowest first (latest started first among equals).  False if it cannot.

        A stage that started at this instant is not taken: a rule that ranks a project
        lower while it runs would otherwise have two stages take the unit from each
        other for ever without the clock moving."""
        rank = self._project_rank(stage.project, now)
        lower = [
            (self._project_rank(r.project, now), -r.since, r)
            for r in team.running
            if r.since < now and self._project_rank(r.project, now) < rank
        ]
        lower.sort(key=lambda row: (row[0], row[1]))
        needed = stage.crew - (team.capacity - team.busy)
        victims = []
        for _, _, victim in lower:
            if needed <= 0:
                break
            victims.append(victim)
            needed -= victim.units
        if needed > 0:
            return False
        team.advance(now)
        for victim in victims:
            self._stop(victim, team, now)
            victim.status = QUEUED
            self._log(now, victim.project, victim, ev.PAUSED, 0, f"preempted by {stage.project.id}")
            team.queue.push(victim, victim.key, now)
            victim.project.queued += 1
            team.queued += 1
            self._refile(victim.project, now)
        return True

    # ------------------------------------------------------- holding capacity

    def _start(self, stage: StageState, team: TeamState, now: float) -> None:
        project = stage.project
        stage.status = RUNNING
        stage.since = now
        team.running[stage] = None
        project.running += 1
        project.version += 1
        if team.shared:
            # Work on a shared team starts when it receives a share of capacity: ``_reshare``,
            # called next, gives it its rate, and notes and logs the start (at once unless the
            # team has no capacity now).
            team.not_started[stage] = None
            pool = self._pools[team.index]
            pool.advance(now, self.rho)  # the others' progress so far, at the rates held until now
            # While on the team, the private array holds the clock reading at which the stage's
            # realised effort is done (its target), not the effort left.
            uid = stage.uid
            stage.share, self._remaining[uid] = pool.join(stage, stage.done, self._remaining[uid], now)
        else:
            if math.isnan(stage.started_at):
                stage.started_at = now
            if math.isnan(project.started_at):
                project.started_at = now
            stage.units = stage.crew
            stage.rate = float(stage.crew)
            team.busy += stage.crew
            team.rate_total += stage.rate
            token = self._token[stage.uid] + 1
            self._token[stage.uid] = token
            timer = Timeout(self.env, self._remaining[stage.uid] / stage.rate, (stage, token))
            timer.callbacks.append(self._on_finish)
            self._log(now, project, stage, ev.STARTED, stage.crew)
        # Every start, not only the first: a rule's promise holds only until one of the
        # project's stages starts, finishes or is interrupted (docs/policies.md).
        self._refile(project, now)

    def _stop(self, stage: StageState, team: TeamState, now: float) -> None:
        """Take a running stage off its team, keeping its progress (team already advanced).
        Shared teams must be re-shared by the caller (``_released``)."""
        share = stage.share
        if share is None:
            worked = stage.rate * (now - stage.since)
            stage.done += worked
            self._remaining[stage.uid] = max(self._remaining[stage.uid] - worked, 0.0)
            self._charge(stage, now)
            team.busy -= stage.units
            team.rate_total -= stage.rate
        else:
            pool = self._pools[team.index]
            pool.advance(now, self.rho)
            self._charge(stage, now)
            stage.done, self._remaining[stage.uid] = pool.leave(share, self._remaining[stage.uid])
            stage.share = None  # the team's busy units and rate are set anew by ``_reshare``
            team.not_started.pop(stage, None)
        self._token[stage.uid] += 1
        del team.running[stage]
        self._mark(team)
        stage.rate = 0.0
        stage.units = 0
        stage.project.running -= 1
        stage.project.version += 1

    def _released(self, team: TeamState, now: float) -> None:
        """After stages left a team: a shared team is shared anew."""
        if team.shared:
            self._reshare(team, now)

    def _charge(self, stage: StageState, now: float) -> None:
        """Add the discounted cost of the capacity a running stage held since it was last
        charged (a shared team's crew clocks already advanced to ``now``)."""
        share = stage.share
        if share is not None:
            held = share.clock.cost - share.cost_from  # discounted capacity-time
            share.cost_from = share.clock.cost
            cost = self.teams[stage.team].cost_rate * held
            if cost > 0:
                stage.project.cost_pv += cost
            return
        cost = self.teams[stage.team].cost_rate * stage.units
        if cost > 0 and now > stage.since:
            stage.project.cost_pv += _discounted_cost(cost, stage.since, now, self.rho)
        stage.since = now

    def _reshare(self, team: TeamState, now: float) -> None:
        """Give every stage of a shared team its new rate (O(crew sizes + log n))."""
        pool = self._pools[team.index]
        pool.advance(now, self.rho)  # progress and held capacity so far, at the old rates
        n, capacity = len(team.running), team.capacity
        team.token += 1
        team.excess = n - capacity if n > capacity else 0  # its queue (teams.py)
        if not n or capacity <= 0:
            rate = 0.0
            team.busy, team.rate_total = pool.set_rates(0.0, 0.0)
        else:
            # Effort per time unit per stage, and capacity units each stage occupies, time-sliced
            # (a switching table may give no productive time at all: rate 0).
            rate = capacity * team.curve(n / capacity) / n
            team.busy, team.rate_total = pool.set_rates(rate, capacity / n)
        if rate > 0:
            share, due = pool.next_finish()
        else:
            # Nothing progresses now, but a stage whose work was done at this very instant (its
            # completion and the change fall together) finishes now, not when work resumes.
            share, due = pool.finished_without_capacity(_DONE), 0.0
        if share is not None:
            timer = Timeout(self.env, due, (share.stage, team.token))
            timer.callbacks.append(self._on_finish)
        if capacity <= 0:
            return  # no stage holds a share: those that joined have not started
        if team.not_started:
            for stage in team.not_started:
                self._note_start(stage, now)
            team.not_started.clear()

    def _note_start(self, stage: StageState, now: float) -> None:
        """A stage that joined a shared team starts: it holds a share of the team now."""
        project = stage.project
        if math.isnan(stage.started_at):
            stage.started_at = now
        if math.isnan(project.started_at):
            project.started_at = now
        self._log(now, project, stage, ev.STARTED, stage.share.clock.units)
        # Others may join at this instant and shrink the share: the decision ending the instant
        # writes the share the stage then holds (``_settle_started_units``).
        self._unsettled.append((len(self.log) - 1, stage, self._token[stage.uid]))  # leaving bumps it

    def _withdraw(self, project, now: float) -> None:
        """Take every stage of a project off its team (running ones keep their progress)."""
        for stage in project.stages:
            if stage.status == RUNNING:
                team = self.teams[stage.team]
                team.advance(now)
                started = stage not in team.not_started  # a shared team without capacity never started it
                self._stop(stage, team, now)
                team.wip -= 1
                stage.status = BLOCKED
                if started:
                    self._log(now, project, stage, ev.PAUSED, 0, "project withdrawn")
                self._released(team, now)
            elif stage.status == QUEUED:
                team = self.teams[stage.team]
                team.advance(now)
                team.queue.remove(stage)
                team.queued -= 1
                team.wip -= 1
                stage.status = BLOCKED
                project.queued -= 1
                self._mark(team)  # it may have held back the stages behind it (strict order)
        project.rank_at = math.nan  # its stages' statuses changed: forget this instant's rank


# Realised effort left below this share of the effort worked (floating-point residue) is no work.
_DONE = 1e-9


def _discounted_cost(cost_per_time: float, t0: float, t1: float, rho: float) -> float:
    """Scalar twin of ``flowsim.value.discounted_cost`` for the hot path (numpy per call is slow)."""
    if rho == 0.0:
        return cost_per_time * (t1 - t0)
    return cost_per_time * math.exp(-rho * t0) * -math.expm1(-rho * (t1 - t0)) / rho
