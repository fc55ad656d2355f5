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

A rank only orders items, so a queue made with ``lone`` keeps an item pushed
into it while it is empty unranked and serves it as is.  About half of all
stages queue alone and leave before another comes, and in an uncongested
funnel nearly every project does (``scenarios/bench.yaml``): ranking them was
9% (``sjf``) to 17% (``cd3`` under a WIP limit) of a run.  The item is filed:

* ``lone=ON_COMPANY``: when another item joins, ranked as of then.  A look-up
  sees every item's rank as it is at that time however long ago the item was
  filed (the rule's promises kept), so only the calls the rule gets change,
  never an answer;
* ``lone=AS_PUSHED``: as it would have been filed when it was pushed, once
  another item joins or at the first look-up at a later time.  An item whose
  project changed since has been re-filed, so the rule, asked later as of
  then, answers as it would have then: the queue holds exactly what it would
  have held, in the same filing order (which ``items`` shows: the funnel's, as
  rules see it, needs this).

The engine asks for either only with a rule declared ``pure``: a rule with
side effects (random draws) would see fewer calls, and its runs would change.

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

# When a lone item is filed (module docstring).
ON_COMPANY, AS_PUSHED = "on company", "as pushed"


class RankedQueue:
    """Items ranked by ``rank(item, now)`` (higher first), ties broken by FIFO key.

    ``trend(item, now)`` returns ``(kind, until)``: how the item's rank moves
    (``"constant"``, ``"falling"`` or ``"live"``) from ``now`` until ``until``,
    as long as the item is not re-filed with ``refile``.  ``trend=None`` means
    every rank is constant (a rule declared ``constant``): nothing to ask.
    ``lone`` (``ON_COMPANY`` or ``AS_PUSHED``): an item alone in the queue is not
    ranked until it must be (module docstring).
    """

    __slots__ = (
        "_as_pushed", "_entries", "_expiry", "_heap", "_live", "_lone", "_rank", "_sequence", "_trend", "_unranked",
    )  # fmt: skip

    def __init__(
        self,
        rank: Callable[[Any, float], float],
        trend: Callable[[Any, float], tuple[str, float]] | None = None,
        lone: str | None = None,
    ):
        if lone not in (None, ON_COMPANY, AS_PUSHED):
            raise ValueError(f"lone must be None, {ON_COMPANY!r} or {AS_PUSHED!r}, got {lone!r}")
        self._rank = rank
        self._trend = trend
        self._lone = lone is not None
        self._as_pushed = lone == AS_PUSHED
        # (item, FIFO key, time pushed) of the one item while it is alone and unranked;
        # the heap and ``_live`` then hold no item.
        self._unranked: tuple | None = None
        self._heap: list[list] = []
        self._live: dict[Hashable, tuple] = {}  # item -> (FIFO key, when to ask the rule again)
        self._entries: dict[Hashable, list] = {}  # item -> its current heap entry
        self._expiry: list[tuple] = []  # (until, sequence, item) of heap entries
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._entries) + len(self._live) + (self._unranked is not None)

    def __contains__(self, item: Hashable) -> bool:
        return item in self._entries or item in self._live or (self._unranked is not None and self._unranked[0] is item)

    def push(self, item: Hashable, key: tuple, now: float) -> None:
        if self._lone:
            if self._unranked is not None:
                self._file_unranked(now)  # it has company now
            elif not self._entries and not self._live:
                self._unranked = (item, key, now)
                return
        self._file(item, key, now)

    def _file_unranked(self, now: float) -> None:
        """File the lone unranked item: as of when it was pushed or as of ``now``."""
        item, key, pushed = self._unranked
        self._unranked = None
        self._file(item, key, pushed if self._as_pushed else now)

    def _file(self, item: Hashable, key: tuple, now: float) -> None:
        """Rank an item and put it in the heap or among the live ones.  Re-files within a
        look-up (``_expire``, ``peek``) come here directly: an item turning unranked half-way
        through a look-up would be missed by it."""
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
        unranked = self._unranked
        if unranked is not None and unranked[0] is item:
            self._unranked = None
            return unranked[1]
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
                self._file(item, self.remove(item), now)

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
        unranked = self._unranked
        if unranked is not None and (not self._as_pushed or unranked[2] == now):
            return unranked[0]
        best = self._top(now)
        return None if best is None else best[2]

    def top(self, now: float) -> tuple | None:
        """``(-rank, FIFO key, item)`` of the item that would be served now, its rank as of
        ``now``, or None when empty (to compare the tops of several queues)."""
        unranked = self._unranked
        if unranked is not None and (not self._as_pushed or unranked[2] == now):
            item = unranked[0]
            return -self._rank(item, now), unranked[1], item
        return self._top(now)

    def _top(self, now: float) -> tuple | None:
        if self._unranked is not None:
            # A look at a later time: first file it, as the queue would hold it by now.
            self._file_unranked(now)
        if self._expiry and self._expiry[0][0] <= now:
            self._expire(now)
        best = self._heap_top(now)
        best_rank = best[_RANK] if best is not None else None
        best_key = best[_KEY] if best is not None else None
        best_item = best[_ITEM] if best is not None else None
        if not self._live:
            return None if best is None else (best_rank, best_key, best_item)
        rank = self._rank
        due = []
        for item, (key, until) in self._live.items():
            negated = -rank(item, now)
            if best_item is None or negated < best_rank or (negated == best_rank and key < best_key):
                best_rank, best_key, best_item = negated, key, item
            if until <= now:
                due.append(item)
        for item in due:  # the rule's "live" spell is over: ask it again
            self._file(item, self._live.pop(item)[0], now)
        return None if best_item is None else (best_rank, best_key, best_item)

    def ordered(self, now: float) -> list:
        """Every item in service order at ``now`` (O(n log n); for scans and reports)."""
        if self._unranked is not None:
            return [self._unranked[0]]
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
        if self._unranked is not None:
            return [self._unranked[0]]
        return list(self._entries) + list(self._live)
