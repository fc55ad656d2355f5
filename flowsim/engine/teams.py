"""Teams: rate-based pools of capacity units on the simulation clock.

A team is not a ``simpy.Resource``: work is a rate applied to a stage's
remaining effort, which is what preemption with progress kept, pausing,
processor sharing and capacity changes need.  The team also keeps the
time-weighted tallies its report needs (busy units, queue length, effort done).
"""

from __future__ import annotations

from .queue import RankedQueue


class TeamState:
    __slots__ = (
        "busy",
        "busy_area",
        "capacity",
        "capacity_area",
        "cost_rate",
        "effort_area",
        "index",
        "last",
        "max_queue",
        "name",
        "queue",
        "queue_area",
        "rate_total",
        "running",
        "timeline",
        "wip",
    )

    def __init__(self, index: int, name: str, capacity: int, cost_rate: float, queue: RankedQueue):
        self.index = index
        self.name = name
        self.capacity = capacity
        self.cost_rate = cost_rate  # money per capacity unit per time unit
        self.queue = queue
        self.running: dict = {}  # StageState -> None, in start order
        self.busy = 0  # capacity units held by running stages
        self.rate_total = 0.0  # effort per time unit done by the team now
        self.wip = 0  # admitted stages queued or running here
        self.last = 0.0
        self.busy_area = 0.0  # integral of busy units over time
        self.queue_area = 0.0
        self.capacity_area = 0.0
        self.effort_area = 0.0
        self.max_queue = 0
        self.timeline: list[tuple[float, int, int]] = [(0.0, 0, 0)]  # (time, busy, queue) on change

    def advance(self, now: float) -> None:
        """Accumulate the time-weighted tallies up to ``now``; call before any change."""
        dt = now - self.last
        if dt > 0:
            self.busy_area += self.busy * dt
            self.queue_area += len(self.queue) * dt
            self.capacity_area += self.capacity * dt
            self.effort_area += self.rate_total * dt
            self.last = now

    def record(self, now: float) -> None:
        """Note the levels after a change, for the team timeline."""
        length = len(self.queue)
        if length > self.max_queue:
            self.max_queue = length
        self.timeline.append((now, self.busy, length))
