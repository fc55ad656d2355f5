"""A priority queue whose ranks may be static or live.

Rules rank work "when a unit is free" (DESIGN section 7), so a rank may change
with time (deadlines, decay, slack) or with progress made elsewhere in the same
project.  Re-ranking everything at every decision is O(n) per start, which is
what makes queues of thousands slow (DESIGN section 13).  So each entry is
either *stable* (its rank cannot change until its project changes, when the
engine re-files it) and lives in a heap with lazy deletion, or *live* and is
ranked afresh at every look-up.  With ``fifo`` or ``cd3`` on standard value
streams nearly everything is stable: O(log n) per operation.

Order: highest rank first, then the smallest FIFO key (DESIGN section 7).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable
from typing import Any

# Heap entries are lists so that removal can blank them in place (lazy deletion);
# a sequence number keeps a re-filed item's fresh entry from being compared with
# its blanked old one.
_RANK, _KEY, _SEQ, _ITEM = 0, 1, 2, 3


class RankedQueue:
    """Items ranked by ``rank(item, now)`` (higher first), ties broken by FIFO key.

    ``is_stable(item)`` says whether an item's rank can be computed once and
    kept until the item is re-filed with ``refile``.
    """

    __slots__ = ("_entries", "_heap", "_is_stable", "_live", "_rank", "_sequence")

    def __init__(self, rank: Callable[[Any, float], float], is_stable: Callable[[Any], bool]):
        self._rank = rank
        self._is_stable = is_stable
        self._heap: list[list] = []
        self._live: dict[Hashable, tuple] = {}  # item -> FIFO key
        self._entries: dict[Hashable, list] = {}  # item -> its live heap entry
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._entries) + len(self._live)

    def __contains__(self, item: Hashable) -> bool:
        return item in self._entries or item in self._live

    def push(self, item: Hashable, key: tuple, now: float) -> None:
        if self._is_stable(item):
            entry = [-self._rank(item, now), key, next(self._sequence), item]
            self._entries[item] = entry
            heapq.heappush(self._heap, entry)
        else:
            self._live[item] = key

    def remove(self, item: Hashable) -> tuple:
        """Take an item out wherever it is; returns its FIFO key."""
        entry = self._entries.pop(item, None)
        if entry is not None:
            entry[_ITEM] = None
            return entry[_KEY]
        return self._live.pop(item)

    def refile(self, item: Hashable, now: float) -> None:
        """Re-rank an item whose project changed (its FIFO key is kept)."""
        if item in self:
            self.push(item, self.remove(item), now)

    def _stable_top(self) -> list | None:
        heap = self._heap
        while heap and heap[0][_ITEM] is None:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def peek(self, now: float) -> Any | None:
        """The item that would be served now, or None when empty."""
        best = self._stable_top()
        best_rank = best[_RANK] if best is not None else None
        best_key = best[_KEY] if best is not None else None
        best_item = best[_ITEM] if best is not None else None
        rank = self._rank
        for item, key in self._live.items():
            negated = -rank(item, now)
            if best_item is None or negated < best_rank or (negated == best_rank and key < best_key):
                best_rank, best_key, best_item = negated, key, item
        return best_item

    def ordered(self, now: float) -> list:
        """Every item in service order at ``now`` (O(n log n); for scans and reports)."""
        rank = self._rank
        rows = [(e[_RANK], e[_KEY], i) for i, e in enumerate(self._heap) if e[_ITEM] is not None]
        items = [e[_ITEM] for e in self._heap]
        ranked = [(r, k, items[i]) for r, k, i in rows]
        ranked += [(-rank(item, now), key, item) for item, key in self._live.items()]
        ranked.sort(key=lambda row: (row[0], row[1]))
        return [item for _, _, item in ranked]

    def items(self) -> list:
        return list(self._entries) + list(self._live)
