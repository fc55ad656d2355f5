"""A priority queue whose ranks may be constant, falling or live.

Rules rank work "when a unit is free" (DESIGN section 7), so a rank may change
with time (deadlines, decay, slack) or with progress made elsewhere in the same
project.  Re-ranking everything at every decision is O(n) per start, which is
what makes queues of thousands slow (DESIGN section 13).  So the rule tells,
per item, how its rank moves until a given time (``rank_trend``):

* *constant*: ranked once, kept in a heap with lazy deletion;
* *falling* (never rises): kept in the same heap under the rank it had when
  last checked, which bounds every later rank from above.  A look-up checks the
  top entry's rank now; if it fell, the entry sinks to its new rank and the
  next top is checked.  When the top's checked rank is current, nothing below
  can beat it, so the answer is exact while most entries are never touched;
* *live*: ranked afresh at every look-up.

At the time the trend was promised ``until``, the item is asked again (a falling
rank may then rise, e.g. a deadline's fine coming into view).  The engine
re-files an item whenever its project changes.  With ``fifo`` or ``cd3``
nearly everything is constant or falling: O(log n) per operation.

Order: highest rank first, then the smallest FIFO key (DESIGN section 7).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Hashable
from typing import Any

from ..value import CONSTANT, LIVE

# Heap entries are lists so that removal can blank them in place (lazy deletion);
# a sequence number keeps a re-filed item's fresh entry from being compared with
# its blanked old one.  ``_CHECKED`` is when the stored rank was last known to be
# the current one (inf: constant); ``_UNTIL`` when the rule must be asked again.
_RANK, _KEY, _SEQ, _ITEM, _CHECKED, _UNTIL = 0, 1, 2, 3, 4, 5


class RankedQueue:
    """Items ranked by ``rank(item, now)`` (higher first), ties broken by FIFO key.

    ``trend(item, now)`` returns ``(kind, until)``: how the item's rank moves
    (``"constant"``, ``"falling"`` or ``"live"``) from ``now`` until ``until``,
    as long as the item is not re-filed with ``refile``.  ``trend=None`` means
    every rank is constant (a rule declared ``constant``): nothing to ask.
    """

    __slots__ = ("_entries", "_expiry", "_heap", "_live", "_rank", "_sequence", "_trend")

    def __init__(
        self, rank: Callable[[Any, float], float], trend: Callable[[Any, float], tuple[str, float]] | None = None
    ):
        self._rank = rank
        self._trend = trend
        self._heap: list[list] = []
        self._live: dict[Hashable, tuple] = {}  # item -> (FIFO key, when to ask the rule again)
        self._entries: dict[Hashable, list] = {}  # item -> its current heap entry
        self._expiry: list[tuple] = []  # (until, sequence, item) of heap entries
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._entries) + len(self._live)

    def __contains__(self, item: Hashable) -> bool:
        return item in self._entries or item in self._live

    def push(self, item: Hashable, key: tuple, now: float) -> None:
        if self._trend is None:
            entry = [-self._rank(item, now), key, next(self._sequence), item, math.inf, math.inf]
            self._entries[item] = entry
            heapq.heappush(self._heap, entry)
            return
        kind, until = self._trend(item, now)
        if kind == LIVE or until <= now:
            self._live[item] = (key, until)
            return
        sequence = next(self._sequence)
        checked = math.inf if kind == CONSTANT else now
        entry = [-self._rank(item, now), key, sequence, item, checked, until]
        self._entries[item] = entry
        heapq.heappush(self._heap, entry)
        if until < math.inf:
            heapq.heappush(self._expiry, (until, sequence, item))

    def remove(self, item: Hashable) -> tuple:
        """Take an item out wherever it is; returns its FIFO key."""
        entry = self._entries.pop(item, None)
        if entry is not None:
            entry[_ITEM] = None
            return entry[_KEY]
        return self._live.pop(item)[0]

    def refile(self, item: Hashable, now: float) -> None:
        """Re-rank an item whose project changed (its FIFO key is kept)."""
        if item in self:
            self.push(item, self.remove(item), now)

    def _expire(self, now: float) -> None:
        """Ask the rule again about every heap entry whose promise ran out."""
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, _, item = heapq.heappop(expiry)
            entry = self._entries.get(item)
            if entry is not None and entry[_UNTIL] <= now:  # else: removed or re-filed since
                self.refile(item, now)

    def _heap_top(self, now: float) -> list | None:
        """The heap entry served first at ``now``, its rank brought up to date."""
        heap, rank = self._heap, self._rank
        while heap:
            top = heap[0]
            item = top[_ITEM]
            if item is None:
                heapq.heappop(heap)
                continue
            if top[_CHECKED] >= now:
                return top
            negated = -rank(item, now)
            if negated == top[_RANK]:
                top[_CHECKED] = now
                return top
            # The rank fell: the entry sinks to it, and the next top is checked.
            top[_ITEM] = None
            fresh = [negated, top[_KEY], next(self._sequence), item, now, top[_UNTIL]]
            self._entries[item] = fresh
            heapq.heapreplace(heap, fresh)
        return None

    def peek(self, now: float) -> Any | None:
        """The item that would be served now, or None when empty."""
        if self._expiry and self._expiry[0][0] <= now:
            self._expire(now)
        best = self._heap_top(now)
        best_rank = best[_RANK] if best is not None else None
        best_key = best[_KEY] if best is not None else None
        best_item = best[_ITEM] if best is not None else None
        if not self._live:
            return best_item
        rank = self._rank
        due = []
        for item, (key, until) in self._live.items():
            negated = -rank(item, now)
            if best_item is None or negated < best_rank or (negated == best_rank and key < best_key):
                best_rank, best_key, best_item = negated, key, item
            if until <= now:
                due.append(item)
        for item in due:  # the rule's "live" spell is over: ask it again
            self.push(item, self._live.pop(item)[0], now)
        return best_item

    def ordered(self, now: float) -> list:
        """Every item in service order at ``now`` (O(n log n); for scans and reports)."""
        rank = self._rank
        ranked = [
            (e[_RANK] if e[_CHECKED] >= now else -rank(e[_ITEM], now), e[_KEY], e[_ITEM])
            for e in self._heap
            if e[_ITEM] is not None
        ]
        ranked += [(-rank(item, now), key, item) for item, (key, _) in self._live.items()]
        ranked.sort(key=lambda row: (row[0], row[1]))
        return [item for _, _, item in ranked]

    def items(self) -> list:
        return list(self._entries) + list(self._live)
