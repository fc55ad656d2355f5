"""Processor sharing on a ``focus: shared`` team at O(log n) per event (DESIGN section 3).

With c units and n stages in progress, every stage of crew k progresses at
``min(k, c * f(n / c) / n)`` effort per time unit and holds ``min(k, c / n)``
units.  All stages of one crew size therefore move together, so each crew size
keeps a *virtual clock*: the effort each of its members has progressed since
the clock's origin, and the discounted capacity-time each has held.  A stage
that joins with effort w left finishes when its clock reaches (clock at join +
w); its progress and cost are differences of clock readings.  A change of n or
capacity then updates one clock per crew size, not every stage, and the next
completion is the top of a heap per crew size.  An overloaded shared team with
thousands of stages in progress costs O(log n) per event instead of O(n)
(``benchmarks/scale.py --shared``).

Units: effort in capacity-unit x time units; times in the scenario's time unit;
costs are discounted capacity-time (the caller multiplies by ``cost_rate``).
"""

from __future__ import annotations

import heapq
import math
import sys

# What is left of a member's work below this share of its target reading is rounding residue.
_RESIDUE = 64 * sys.float_info.epsilon


class CrewClock:
    """The common progress of a shared team's stages of one crew size (progress only:
    stages reach it, and through their views, rules)."""

    __slots__ = ("cost", "crew", "last", "members", "rate", "units", "work")

    def __init__(self, crew: int, now: float):
        self.crew = crew
        self.members = 0
        self.rate = 0.0  # effort per time unit of each member
        self.units = 0.0  # capacity units each member holds (time-sliced)
        self.work = 0.0  # effort each member progressed since the origin
        self.cost = 0.0  # discounted capacity-time each member held since the origin
        self.last = now

    def work_at(self, now: float) -> float:
        return self.work + self.rate * (now - self.last)

    def advance(self, now: float, rho: float) -> None:
        dt = now - self.last
        if dt > 0.0:
            self.work += self.rate * dt
            if self.units:
                held = dt if rho == 0.0 else math.exp(-rho * self.last) * -math.expm1(-rho * dt) / rho
                self.cost += self.units * held
            self.last = now


class Share:
    """A stage's place on its crew size's clock, from the time it joined the team.

    It holds progress only.  When the stage's realised effort is done (its *target*
    clock reading) is the simulation's secret: it stays in ``SharedPool``, which only
    the simulation holds, never in what a stage or team state (and so a rule) reaches."""

    __slots__ = ("clock", "cost_from", "offset", "seq", "stage")

    def __init__(self, clock: CrewClock, stage, done: float, seq: int):
        self.clock = clock
        self.stage = stage
        self.seq = seq  # join order: breaks ties between equal finishing targets, oldest first
        self.offset = done - clock.work  # effort worked = offset + clock reading
        self.cost_from = clock.cost  # clock reading of held capacity-time not yet charged

    def done(self, now: float) -> float:
        """Effort worked by ``now``."""
        return self.offset + self.clock.work_at(now)


class SharedPool:
    """A shared team's crew clocks, and per crew size a heap of its members' targets."""

    __slots__ = ("clocks", "heaps", "joined")

    def __init__(self):
        self.clocks: dict[int, CrewClock] = {}
        self.heaps: dict[int, list[tuple[float, int, Share]]] = {}  # (target, seq, share); leavers linger
        self.joined = 0

    def advance(self, now: float, rho: float) -> None:
        """Bring every clock to ``now`` at the rates held since the last change."""
        for clock in self.clocks.values():
            clock.advance(now, rho)

    def join(self, stage, done: float, remaining: float, now: float) -> tuple[Share, float]:
        """Add a stage with ``remaining`` realised effort (clocks already advanced to
        ``now``; ``set_rates`` gives its rate): its share and its target clock reading."""
        crew = stage.crew
        clock = self.clocks.get(crew)
        if clock is None:
            clock = self.clocks[crew] = CrewClock(crew, now)
            self.heaps[crew] = []
        self.joined += 1
        share = Share(clock, stage, done, self.joined)
        target = clock.work + remaining
        clock.members += 1
        heapq.heappush(self.heaps[crew], (target, share.seq, share))
        return share, target

    def leave(self, share: Share, target: float) -> tuple[float, float]:
        """Take a member off (clocks already advanced, its cost charged): effort worked
        and realised effort left."""
        clock = share.clock
        left = target - clock.work
        result = (share.offset + clock.work, left if left > 0.0 else 0.0)
        clock.members -= 1
        if clock.members == 0:
            # Start the clock afresh: readings stay small, and so do their rounding errors.
            clock.work = clock.cost = 0.0
            self.heaps[clock.crew].clear()
        return result

    def set_rates(self, share_rate: float, held: float) -> tuple[float, float]:
        """Each crew size's rate and units from the per-stage share and units; returns the
        team's busy units and effort per time unit."""
        busy = total = 0.0
        for clock in self.clocks.values():
            crew = clock.crew
            clock.rate = crew if crew < share_rate else share_rate
            clock.units = crew if crew < held else held
            busy += clock.members * clock.units
            total += clock.members * clock.rate
        return busy, total

    def _top(self, crew: int) -> tuple[float, int, Share] | None:
        """The member of a crew size that finishes first (oldest among equals), dropping
        those that left."""
        heap = self.heaps[crew]
        while heap:
            entry = heap[0]
            if entry[2].stage.share is entry[2]:
                return entry
            heapq.heappop(heap)
        return None

    def next_finish(self) -> tuple[Share | None, float]:
        """The member to finish next and the time until then (inf if none progresses)."""
        best, best_due, best_seq = None, math.inf, 0
        for crew, clock in self.clocks.items():
            if clock.rate > 0.0:
                entry = self._top(crew)
                if entry is not None:
                    target, seq, share = entry
                    left = target - clock.work
                    # Within rounding of the clock's reading it is done now: two completions that
                    # fall together must not come one ulp apart, with a decision between them.
                    due = 0.0 if left <= _RESIDUE * max(1.0, abs(target)) else left / clock.rate
                    if due < best_due or (due == best_due and seq < best_seq):
                        best, best_due, best_seq = share, due, seq
        return best, best_due

    def finished_without_capacity(self, tolerance: float) -> Share | None:
        """A member whose work is done at this instant although nothing progresses now."""
        for crew, clock in self.clocks.items():
            entry = self._top(crew)
            if entry is not None:
                target, _, share = entry
                if target - clock.work <= tolerance * max(1.0, share.offset + clock.work):
                    return share
        return None

    def clear(self) -> None:
        """Drop every heap entry (each points at a share that points back at its stage)."""
        for heap in self.heaps.values():
            heap.clear()
