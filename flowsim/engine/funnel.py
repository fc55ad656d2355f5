"""The funnel: arrived projects waiting to be admitted, in the sequencing rule's order.

An intake pass offers candidates best first until the rule stops it.  A rule
that holds candidates back (``team_wip``, ``drum``) would make every pass walk
the whole funnel in order: in an overloaded portfolio, with thousands waiting
and a full team, that is O(n log n) at every decision, O(n^2) over a run.

So an intake rule may declare ``hold_key(candidate)``: candidates with the same
key get the same answer from ``decide`` for the rest of a pass once one of them
is held (``team_wip``: the limited teams a project needs; ``drum``: whether it
has work on the drum).  The funnel then also keeps one queue per key, and a pass
takes the best top among the keys not yet held: O(keys x log n) per candidate
offered, whatever the funnel's length.  The main queue stays as it is, in its
filing order, for what rules see of the funnel (``PortfolioView.funnel``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from .queue import RankedQueue


class Funnel:
    """A ``RankedQueue`` of projects, plus one per ``hold_key`` when the intake rule gives one."""

    __slots__ = ("_group_of", "_groups", "_hold_key", "_make", "queue")

    def __init__(
        self,
        rank: Callable[[Any, float], float],
        trend: Callable[[Any, float], tuple[str, float]] | None,
        lone: str | None,
        hold_key: Callable[[Any], Hashable] | None = None,
    ):
        self.queue = RankedQueue(rank, trend, lone)
        self._hold_key = hold_key
        self._groups: dict[Hashable, RankedQueue] = {}
        self._group_of: dict[Any, Hashable] = {}
        self._make = lambda: RankedQueue(rank, trend, lone)

    @property
    def keyed(self) -> bool:
        return self._hold_key is not None

    def __len__(self) -> int:
        return len(self.queue)

    def __contains__(self, item) -> bool:
        return item in self.queue

    def push(self, item, key: tuple, now: float) -> None:
        self.queue.push(item, key, now)
        if self._hold_key is not None:
            # A waiting project makes no progress, so its key holds while it waits; a paused
            # project coming back is pushed, and keyed, afresh.
            group = self._group_of[item] = self._hold_key(item)
            queue = self._groups.get(group)
            if queue is None:
                queue = self._groups[group] = self._make()
            queue.push(item, key, now)

    def remove(self, item) -> tuple:
        """Take a project out; returns its FIFO key."""
        key = self.queue.remove(item)
        if self._hold_key is not None:
            self._groups[self._group_of.pop(item)].remove(item)
        return key

    def refile(self, item, now: float) -> None:
        self.queue.refile(item, now)
        group = self._group_of.get(item)
        if group is not None:
            self._groups[group].refile(item, now)

    def peek(self, now: float):
        return self.queue.peek(now)

    def ordered(self, now: float) -> list:
        return self.queue.ordered(now)

    def items(self) -> list:
        return self.queue.items()

    def group_of(self, item) -> Hashable:
        return self._group_of[item]

    def best(self, now: float, held: set) -> Any | None:
        """The best project at ``now`` among those whose key is not in ``held`` (keyed only)."""
        open_groups = [queue for group, queue in self._groups.items() if queue and group not in held]
        if not open_groups:
            return None
        if len(open_groups) == 1:
            return open_groups[0].peek(now)
        # Ranks, then FIFO keys, as one queue would order them (every top's rank is current).
        return min((queue.top(now) for queue in open_groups), key=lambda top: (top[0], top[1]))[2]
