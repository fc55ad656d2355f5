"""The ``PortfolioView`` handed to intake and intervention rules."""

from __future__ import annotations

from .teams import TeamState


class PortfolioState:
    """The ``PortfolioView`` handed to intake and intervention rules.

    It holds only what it shows (active projects, the funnel, team states:
    estimates and progress) and never the simulation, whose private arrays
    and world hold the realised values rules must not see.  The simulation
    sets ``now`` before every rule call.
    """

    __slots__ = ("_active", "_blocked", "_bottleneck", "_funnel", "_now", "_team_index", "_teams", "_views")

    def __init__(
        self,
        active: dict,
        funnel,
        blocked: dict,
        views: list,
        teams: list[TeamState],
        team_names: tuple[str, ...],
        bottleneck: str,
    ):
        self._active = active
        self._funnel = funnel
        self._blocked = blocked  # arrived projects waiting for a predecessor (what is yet to arrive is unseen)
        self._views = views  # project index -> its view (None before it arrives)
        self._teams = teams
        self._team_index = {name: i for i, name in enumerate(team_names)}
        self._bottleneck = bottleneck
        self._now = 0.0  # set by the engine before every rule call

    # Read-only: intake and intervention rules share one view within a decision.
    now = property(lambda self: self._now)
    bottleneck = property(lambda self: self._bottleneck)

    @property
    def active(self) -> tuple:
        return tuple(self._views[p.index] for p in self._active)

    @property
    def funnel(self) -> tuple:
        return tuple(self._views[p.index] for p in self._funnel.items())

    @property
    def blocked(self) -> tuple:
        """Arrived projects waiting for a project they depend on to be delivered: not yet in
        the funnel, so intake cannot see them, but an intervention may cancel them."""
        return tuple(self._views[p.index] for p in self._blocked)

    @property
    def active_count(self) -> int:
        return len(self._active)

    def _team(self, team: str) -> TeamState:
        return self._teams[self._team_index[team]]

    def capacity(self, team: str) -> int:
        return self._team(team).capacity

    def busy(self, team: str) -> float:
        return self._team(team).busy

    def queue_length(self, team: str) -> int:
        team_state = self._team(team)
        return team_state.queued + team_state.excess

    def team_wip(self, team: str) -> int:
        return self._team(team).wip

    def estimated_load(self, team: str) -> float:
        """Estimated remaining effort at ``team`` of admitted projects (queued, running or upstream)."""
        index, now = self._team_index[team], self.now
        return sum(p.remaining_work(now, index) for p in self._active)


