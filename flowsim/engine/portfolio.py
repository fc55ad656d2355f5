"""The ``PortfolioView`` handed to intake and intervention rules."""

from __future__ import annotations

from .teams import TeamState


class PortfolioState:
    """The ``PortfolioView`` handed to intake and intervention rules."""

    __slots__ = ("_sim", "_team_index")

    def __init__(self, simulation: object):
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
        return self._team(team).queued

    def team_wip(self, team: str) -> int:
        return self._team(team).wip

    def estimated_load(self, team: str) -> float:
        """Estimated remaining effort at ``team`` of admitted projects (queued, running or upstream)."""
        index, now = self._team_index[team], self.now
        return sum(p.remaining_work(now, index) for p in self._sim.active)


