"""Intake rules: what enters the active portfolio from the funnel (DESIGN section 7)."""

from __future__ import annotations

from .protocol import ADMIT, HOLD, REJECT, STOP, IntakeRule, every


class AdmitAll(IntakeRule):
    """Admit every project as soon as it may start (push)."""

    def decide(self, candidate, portfolio):
        return ADMIT


class WipLimit(IntakeRule):
    """At most ``limit`` active projects."""

    def start_pass(self, portfolio):
        return portfolio.active_count < self.params.limit

    def decide(self, candidate, portfolio):
        return ADMIT if portfolio.active_count < self.params.limit else STOP


class TeamWip(IntakeRule):
    """Admit a project only while every team its remaining stages need has fewer than
    ``limits[team]`` admitted stages queued or in progress there."""

    def hold_key(self, candidate):
        """The limited teams a candidate's unfinished stages need: candidates needing the same
        ones get the same answer, and a held one stays held for the pass (admissions only add)."""
        limits = self.params.limits
        return frozenset(s.team for s in candidate.stages if s.status != "finished" and s.team in limits)

    def decide(self, candidate, portfolio):
        limits = self.params.limits
        for stage in candidate.stages:
            limit = limits.get(stage.team)
            if limit is not None and stage.status != "finished" and portfolio.team_wip(stage.team) >= limit:
                return HOLD
        return ADMIT


class Drum(IntakeRule):
    """CCPM pipelining: admit work for the drum (the planning bottleneck) only while
    its estimated admitted work is under ``buffer`` time units of its capacity.
    Projects with no work on the drum are admitted."""

    def hold_key(self, candidate):
        """Whether a candidate has work on the drum (a waiting project's work does not change):
        those that have are held together, the others always admitted."""
        return candidate.remaining_work(0.0, self.params.team or self.context.bottleneck) > 0

    def decide(self, candidate, portfolio):
        drum = self.params.team or portfolio.bottleneck
        if candidate.remaining_work(portfolio.now, drum) <= 0:
            return ADMIT
        if portfolio.estimated_load(drum) < self.params.buffer * portfolio.capacity(drum):
            return ADMIT
        return HOLD


class Threshold(IntakeRule):
    """Reject projects whose CD3 score (cost of delay / estimated remaining critical
    path, money per time unit squared) is below ``min``."""

    def decide(self, candidate, portfolio):
        now = portfolio.now
        remaining = candidate.remaining_critical_path(now)
        score = candidate.cod_at(now + remaining) / max(remaining, 1e-9)
        if score < self.params.min:
            return (REJECT, f"cd3 {score:.6g} below min {self.params.min:g}")
        return ADMIT


class Cadence(IntakeRule):
    """Admit only at planning points every ``every`` time units (from 0), at most
    ``limit`` projects per point (no limit when not given)."""

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        self._point = None
        self._admitted = 0
        self._points: set[float] = set()

    def decision_times(self, horizon):
        times = every(self.params.every, horizon, start=0.0)
        self._points = set(times)
        return times

    def start_pass(self, portfolio):
        if portfolio.now not in self._points:
            return False
        if self._point != portfolio.now:
            self._point, self._admitted = portfolio.now, 0
        return True

    def decide(self, candidate, portfolio):
        if self.params.limit is not None and self._admitted >= self.params.limit:
            return STOP
        self._admitted += 1
        return ADMIT
