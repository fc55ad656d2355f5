"""What the engine knows about projects and stages that decision-makers may see.

These objects hold estimates and progress only.  The realised world (actual
efforts, actual values) stays in private arrays of the simulation, so a rule
holding a view can never reach it (DESIGN section 4, "Estimates vs actuals").
Units: times in the scenario's time unit; efforts in capacity-unit x time units.
"""

from __future__ import annotations

import math

from ..value import cost_of_delay, cost_of_delay_trend
from ..world import ValueSpec

# Project status codes (the order matches flowsim.record.STATUS_NAMES).
NOT_ARRIVED, WAITING, ACTIVE, DELIVERED, REJECTED, CANCELLED = range(6)
STATUS_NAMES = ("not_arrived", "waiting", "active", "delivered", "rejected", "cancelled")

# Stage status codes.
BLOCKED, QUEUED, RUNNING, FINISHED = range(4)
STAGE_STATUS_NAMES = ("blocked", "queued", "running", "finished")

# An overrunning stage is believed nearly done, never free (DESIGN section 4).
_MIN_REMAINING_SHARE = 0.1


class StageState:
    __slots__ = (
        "crew",
        "done",
        "estimate",
        "finished_at",
        "index",
        "key",
        "name",
        "preds",
        "project",
        "queued_at",
        "rate",
        "share",
        "since",
        "started_at",
        "status",
        "succs",
        "team",
        "uid",
        "units",
        "waiting_preds",
    )

    def __init__(self, project, index, name, team, crew, preds, estimate, done, uid):
        self.project = project
        self.index = index
        self.name = name
        self.team = team  # team index
        self.crew = crew
        self.preds = preds
        self.succs: list[int] = []
        self.estimate = estimate  # estimated total effort
        self.done = done  # effort worked, as of ``since`` (or as of joining a shared team)
        self.rate = 0.0  # effort per time unit while running (single focus)
        self.units = 0  # capacity units held (single focus)
        self.since = 0.0
        self.share = None  # on a shared team, its place on the team's crew clock (sharing.py)
        self.status = BLOCKED
        self.queued_at = math.nan
        self.started_at = math.nan
        self.finished_at = math.nan
        self.uid = uid  # index into the simulation's private arrays
        self.key = ()  # FIFO key while queued or running: (entered queue, arrival, order, stage)
        self.waiting_preds = len(preds)

    def done_at(self, now: float) -> float:
        """Effort worked by ``now``."""
        if self.status == RUNNING:
            share = self.share
            return self.done + self.rate * (now - self.since) if share is None else share.done(now)
        return self.done

    def remaining_estimate(self, now: float) -> float:
        """Estimated remaining effort: ``max(estimate - done, 0.1 * estimate)``; 0 once finished."""
        if self.status == FINISHED:
            return 0.0
        return max(self.estimate - self.done_at(now), _MIN_REMAINING_SHARE * self.estimate)


class ProjectState:
    __slots__ = (
        "admitted_at",
        "arrival",
        "chain",
        "cost_pv",
        "cp_cache",
        "delivered_at",
        "dependants",
        "depends_on",
        "ended_at",
        "expedited",
        "id",
        "ideal_estimate",
        "index",
        "name",
        "pending_deps",
        "promised",
        "queued",
        "rank",
        "rank_at",
        "rank_version",
        "running",
        "stages",
        "started_at",
        "status",
        "template",
        "topological",
        "unfinished",
        "value",
        "version",
        "wsjf",
    )

    def __init__(
        self, index, id, name, template, arrival, depends_on, promised, value: ValueSpec, wsjf
    ):
        self.index = index
        self.id = id
        self.name = name
        self.template = template
        self.arrival = arrival
        self.depends_on = depends_on
        self.dependants: list[int] = []
        self.promised = promised
        self.value = value  # estimated terms (realised ones under perfect information)
        self.wsjf = wsjf
        self.stages: list[StageState] = []
        self.topological: list[StageState] = []
        self.chain = False  # every stage follows the one before it: the critical path is a sum
        self.status = NOT_ARRIVED
        self.admitted_at = math.nan
        self.started_at = math.nan
        self.delivered_at = math.nan
        self.ended_at = math.nan
        self.expedited = False
        self.running = 0  # stages holding capacity
        self.queued = 0  # stages in a team's queue: most re-ranks find none, and need not look
        self.unfinished = 0
        self.pending_deps = len(depends_on)
        self.cost_pv = 0.0  # discounted cost of capacity occupied so far (money)
        self.ideal_estimate = math.nan
        self.version = 0  # bumped whenever a stage starts, stops or finishes
        self.cp_cache = (-1, 0.0)  # (version, remaining critical path) while nothing runs
        self.rank, self.rank_at, self.rank_version = 0.0, math.nan, -1

    def remaining_critical_path(self, now: float) -> float:
        """Longest chain of estimated remaining durations (remaining / crew), time units."""
        if self.running == 0:
            # Nothing progresses while nothing runs: the value holds until the next change.
            version, value = self.cp_cache
            if version == self.version:
                return value
        # ``StageState.remaining_estimate`` inlined (but for running stages, a few per project): this
        # is the hottest call of the ranking rules.
        if self.chain:
            longest = 0.0
            for stage in self.stages:
                status = stage.status
                if status != FINISHED:
                    estimate = stage.estimate
                    done = stage.done_at(now) if status == RUNNING else stage.done
                    left = estimate - done
                    floor = _MIN_REMAINING_SHARE * estimate
                    longest += (left if left > floor else floor) / stage.crew
        else:
            finish: dict[int, float] = {}
            longest = 0.0
            for stage in self.topological:
                ready = 0.0
                for p in stage.preds:
                    if finish[p] > ready:
                        ready = finish[p]
                status = stage.status
                if status == FINISHED:
                    end = ready
                else:
                    estimate = stage.estimate
                    done = stage.done_at(now) if status == RUNNING else stage.done
                    left = estimate - done
                    floor = _MIN_REMAINING_SHARE * estimate
                    end = ready + (left if left > floor else floor) / stage.crew
                finish[stage.index] = end
                if end > longest:
                    longest = end
        if self.running == 0:
            self.cp_cache = (self.version, longest)
        return longest

    def remaining_work(self, now: float, team: int | None = None) -> float:
        """Estimated remaining effort of unfinished stages (at one team, if given)."""
        return sum(
            s.remaining_estimate(now)
            for s in self.stages
            if s.status != FINISHED and (team is None or s.team == team)
        )


class StageView:
    """Read-only view of a stage: estimates and progress, never realised effort."""

    __slots__ = ("_stage", "_team_names")

    def __init__(self, stage: StageState, team_names: tuple[str, ...]):
        self._stage = stage
        self._team_names = team_names

    name = property(lambda self: self._stage.name)
    team = property(lambda self: self._team_names[self._stage.team])
    crew = property(lambda self: self._stage.crew)
    estimate = property(lambda self: self._stage.estimate, doc="Estimated total effort.")
    status = property(lambda self: STAGE_STATUS_NAMES[self._stage.status])
    queued_at = property(lambda self: self._stage.queued_at)
    started_at = property(lambda self: self._stage.started_at)

    def done(self, now: float) -> float:
        return self._stage.done_at(now)

    def remaining(self, now: float) -> float:
        return self._stage.remaining_estimate(now)


class ProjectView:
    """What a rule sees of a project: estimates, progress and time.

    Value terms are the business case as decision-makers see it (estimates;
    realised values only under ``perfect_information``).  Money per time unit
    for rates; times in the scenario's time unit.
    """

    __slots__ = ("_horizon", "_project", "_stage_views", "_team_names")

    def __init__(self, project: ProjectState, team_names: tuple[str, ...], horizon: float):
        self._project = project
        self._team_names = team_names
        self._horizon = horizon
        self._stage_views: tuple[StageView, ...] | None = None

    id = property(lambda self: self._project.id)
    index = property(lambda self: self._project.index)
    name = property(lambda self: self._project.name)
    template = property(lambda self: self._project.template)
    arrival = property(lambda self: self._project.arrival)
    promised = property(lambda self: self._project.promised)
    status = property(lambda self: STATUS_NAMES[self._project.status])
    admitted_at = property(lambda self: self._project.admitted_at)
    started_at = property(lambda self: self._project.started_at)
    expedited = property(lambda self: self._project.expedited)
    running_stages = property(lambda self: self._project.running)
    rate = property(lambda self: self._project.value.rate, doc="Estimated benefit per time unit.")
    lump = property(lambda self: self._project.value.lump)
    life = property(lambda self: self._project.value.life)
    profile = property(lambda self: ("standard", "window", "decay", "deadline")[self._project.value.profile])
    closes = property(lambda self: self._project.value.closes)
    due = property(lambda self: self._project.value.due)
    half_life = property(lambda self: self._project.value.half_life)
    penalty = property(lambda self: self._project.value.penalty)
    fine = property(lambda self: self._project.value.fine)
    wsjf = property(
        lambda self: self._project.wsjf,
        doc="(business_value, time_criticality, risk_reduction, job_size) or None.",
    )
    ideal_estimate = property(lambda self: self._project.ideal_estimate)

    @property
    def stages(self) -> tuple[StageView, ...]:
        if self._stage_views is None:
            self._stage_views = tuple(StageView(s, self._team_names) for s in self._project.stages)
        return self._stage_views

    def remaining_work(self, now: float, team: str | None = None) -> float:
        """Estimated remaining effort (capacity-unit x time units), at one team if named."""
        index = None if team is None else self._team_names.index(team)
        return self._project.remaining_work(now, index)

    def remaining_critical_path(self, now: float) -> float:
        return self._project.remaining_critical_path(now)

    def projected_delivery(self, now: float) -> float:
        """``now`` plus the estimated remaining critical path."""
        return now + self._project.remaining_critical_path(now)

    def cost_of_delay(self, now: float) -> float:
        """Money lost per time unit of delay at the projected delivery (flowsim.value.cost_of_delay)."""
        return self.cod_at(now + self._project.remaining_critical_path(now))

    def cod_at(self, projected: float) -> float:
        v = self._project.value
        return cost_of_delay(
            v.rate,
            v.lump,
            v.life,
            v.profile,
            v.closes,
            v.half_life,
            v.due,
            v.penalty,
            v.fine,
            projected,
            self._project.ideal_estimate,
            self._horizon,
        )

    def cod_trend(self, projected: float) -> tuple[str, float]:
        """How ``cod_at`` moves as the projected delivery grows from ``projected``:
        ``(trend, until)`` in projected-delivery time (flowsim.value.cost_of_delay_trend)."""
        v = self._project.value
        return cost_of_delay_trend(v.profile, v.life, v.lump, v.due, projected, self._horizon)
