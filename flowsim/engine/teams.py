"""Teams: rate-based pools of capacity units on the simulation clock.

A team is not a ``simpy.Resource``: work is a rate applied to a stage's
remaining effort, which is what preemption with progress kept, pausing,
processor sharing and capacity changes need.  The team also keeps the
time-weighted tallies its report needs (busy units, queue length, effort done).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable

from .queue import RankedQueue

# Productive fraction of a unit's time when it juggles k tasks (DESIGN section 3):
# f(k) = 1 for k <= 1, linear between points, flat past the last.
SWITCHING_TABLES: dict[str, tuple[tuple[float, float], ...]] = {
    "none": ((1.0, 1.0),),
    "weinberg": ((1.0, 1.0), (2.0, 0.8), (3.0, 0.6), (4.0, 0.4), (5.0, 0.25)),
    # Value-adding time 70/80/60/45% at 1-4 tasks, normalised to one task.
    "wheelwright_clark": ((1.0, 1.0), (2.0, 0.80 / 0.70), (3.0, 0.60 / 0.70), (4.0, 0.45 / 0.70)),
}


def switching_curve(points: tuple[tuple[float, float], ...]) -> Callable[[float], float]:
    """f(k) from table points, by linear interpolation; 1 for k <= 1, flat past the last point."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]

    def f(tasks_per_unit: float) -> float:
        if tasks_per_unit <= 1.0:
            return 1.0
        if tasks_per_unit >= xs[-1]:
            return ys[-1]
        for i in range(1, len(xs)):
            if tasks_per_unit <= xs[i]:
                x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
                return y0 + (y1 - y0) * (tasks_per_unit - x0) / (x1 - x0)
        return ys[-1]  # pragma: no cover - unreachable

    return f


def switching_points(spec) -> tuple[tuple[float, float], ...]:
    """Table points of a scenario's ``Switching`` model."""
    if spec.rule == "flat":
        return ((1.0, 1.0), (2.0, 1.0 - spec.loss))
    if spec.rule == "table":
        points = tuple((float(k), float(f)) for k, f in spec.table)
        # f(k) = 1 for k <= 1 by definition; a table starting above 1 rises from (1, 1).
        return points if points[0][0] <= 1.0 else ((1.0, 1.0), *points)
    return SWITCHING_TABLES[spec.rule]


class TeamState:
    __slots__ = (
        "busy",
        "busy_area",
        "capacity",
        "capacity_area",
        "changed",
        "cost_rate",
        "curve",
        "effort_area",
        "excess",
        "grid",
        "index",
        "last",
        "max_queue",
        "name",
        "next_sample",
        "not_started",
        "queue",
        "queue_area",
        "queued",
        "rate_total",
        "running",
        "shared",
        "timeline",
        "token",
        "wip",
    )

    def __init__(
        self,
        index: int,
        name: str,
        capacity: int,
        cost_rate: float,
        queue: RankedQueue,
        curve: Callable[[float], float] | None = None,
        grid: tuple[float, ...] = (0.0,),
    ):
        self.index = index
        self.name = name
        self.capacity = capacity
        self.cost_rate = cost_rate  # money per capacity unit per time unit
        self.queue = queue
        self.shared = curve is not None  # focus: shared, with this switching curve
        self.curve = curve
        self.token = 0  # the valid completion timer of a shared team carries this
        self.queued = 0  # len(queue), kept as a plain number: it is read at every event
        # Shared focus: nothing queues, but the stages in progress beyond one per unit are work
        # that time-slicing delays, which would queue were the team to work them one per unit:
        # that is its queue in the tallies and the team timeline (with no switching loss, exactly
        # the M/M/c queue).  Always 0 on a single-focus team.
        self.excess = 0
        self.running: dict = {}  # StageState -> None, in start order
        # Shared focus: stages that joined the team while it had no capacity to share; each is
        # logged as started when it first receives some (DESIGN section 9, ``started``).
        self.not_started: dict = {}  # StageState -> None
        self.busy = 0  # capacity units held by running stages (time-sliced shares when shared)
        self.rate_total = 0.0  # effort per time unit done by the team now
        self.wip = 0  # admitted stages queued or running here
        self.changed = False  # queued work or freed capacity since the last decision
        self.last = 0.0
        self.busy_area = 0.0  # integral of busy units over time
        self.queue_area = 0.0
        self.capacity_area = 0.0
        self.effort_area = 0.0
        self.max_queue = 0
        # (since, busy, queue): the levels held from ``since`` until the next entry.  Only the
        # team timeline's grid (every ``step`` time units) is reported, so an entry is kept
        # only for spells that contain a grid point, not for every change.
        self.timeline: list[tuple[float, int, int]] = [(0.0, 0, 0)]
        self.grid = grid  # the team timeline's points (``setup.timeline_grid``), ascending
        self.next_sample = 0.0  # earliest grid point no entry covers yet

    def advance(self, now: float) -> None:
        """Accumulate the time-weighted tallies up to ``now``; call before any change.

        The levels have held since ``last``; when that spell covers grid points, they
        are the levels at those points, and are noted for the team timeline.
        """
        dt = now - self.last
        if dt > 0:
            queue = self.queued + self.excess
            self.busy_area += self.busy * dt
            self.queue_area += queue * dt
            self.capacity_area += self.capacity * dt
            self.effort_area += self.rate_total * dt
            # The largest queue held for some time, like its mean: within an instant stages come
            # and go one after another, and a level that lasts no time is no stage waiting
            # (README "max_queue").
            if queue > self.max_queue:
                self.max_queue = queue
            if self.next_sample < now:
                self.timeline.append((self.last, self.busy, queue))
                grid = self.grid
                at = bisect_left(grid, now)  # the least point not below ``now``
                self.next_sample = grid[at] if at < len(grid) else math.inf
            self.last = now

    def close(self, horizon: float) -> None:
        """Bring the tallies to the horizon and note the final levels."""
        self.advance(horizon)
        self.timeline.append((horizon, self.busy, self.queued + self.excess))
