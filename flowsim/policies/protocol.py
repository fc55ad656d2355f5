"""The protocol every rule follows, built-in or user-written.

A rule is built once per simulated policy run by its registered factory,
``factory(params, context)``, where ``params`` is the validated parameter model
and ``context`` a ``RuleContext``.  Rules see ``ProjectView`` and
``PortfolioView`` objects only: estimates, progress and time, never the
realised world.  Times are in the scenario's time unit, money in its currency.

Sequencing: ``priority(project, now) -> float``, higher served first, ties by
the FIFO key.  Two optional speed-ups keep long queues fast; both promise
something only while none of the project's stages is queued, starts, finishes
or is interrupted (the engine asks again when one is).  ``is_stable(project)`` may
return True when the priority cannot change at all.  ``rank_trend(project, now)``
says more: ``("constant", until)``, ``("falling", until)`` (it never rises) or
``("live", until)`` (anything), holding from ``now`` until the time ``until``,
when the engine asks again.  By default it is ``("constant", inf)`` for a stable
project and ``("live", inf)`` otherwise.  ``pure = True`` declares that these
calls have no side effects, so the engine may leave out ranks it does not need.

Intake: ``decide(candidate, portfolio)`` returns ``ADMIT``, ``REJECT`` (or a
tuple ``(REJECT, reason)``), ``HOLD`` (skip it, look at the next) or ``STOP``
(look no further now).  Candidates come in the funnel's order (the policy's
sequencing rule).  ``start_pass(portfolio)`` may veto a whole pass and
``decision_times(horizon)`` asks for planning points.  An optional
``hold_key(candidate)`` promises that candidates with the same key get the
same answer for the rest of a pass once one of them is held (engine/funnel.py).

Intervention: ``review(portfolio)`` returns ``Action`` objects at the times
given by ``decision_times(horizon)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from ..value import CONSTANT, LIVE

ADMIT, REJECT, HOLD, STOP = "admit", "reject", "hold", "stop"


@dataclass(frozen=True)
class RuleContext:
    """What a rule may know when it is built."""

    policy: str
    horizon: float
    time_unit: str
    capacity: Mapping[str, int]  # initial capacity per team
    bottleneck: str  # the planning bottleneck (ex ante, from estimates)
    rng: np.random.Generator  # the rule's own named stream


@dataclass(frozen=True)
class Action:
    """An intervention on one project, logged as an event with its reason."""

    kind: Literal["cancel", "pause", "expedite"]
    project: str  # project id
    reason: str


class PortfolioView(Protocol):
    """What intake and intervention rules see of the whole portfolio at ``now``."""

    now: float
    bottleneck: str

    @property
    def active(self) -> tuple: ...  # ProjectView of admitted, undelivered projects
    @property
    def funnel(self) -> tuple: ...  # ProjectView of arrived projects not admitted
    @property
    def blocked(self) -> tuple: ...  # ProjectView of arrived projects waiting on depends_on (not in the funnel)
    @property
    def active_count(self) -> int: ...
    def capacity(self, team: str) -> int: ...
    def busy(self, team: str) -> float: ...  # units held (a shared team's are time-sliced shares)
    def queue_length(self, team: str) -> int: ...  # on a shared team: stages in progress beyond one per unit
    def team_wip(self, team: str) -> int: ...  # admitted stages queued or running there
    def estimated_load(self, team: str) -> float: ...  # estimated remaining effort of admitted work


def every(step: float, horizon: float, *, start: float) -> list[float]:
    """Planning points ``start, start + step, ...`` strictly before ``horizon``."""
    count = math.ceil((horizon - start) / step)
    return [start + k * step for k in range(count) if start + k * step < horizon]


class SequencingRule:
    """Base class: override ``priority``; override ``is_stable`` for speed.

    ``constant = True`` declares that a project's priority never changes at all
    (FIFO, EDD, WSJF, random): the engine then never re-ranks queued work.

    ``pure = True`` declares that ``priority``, ``is_stable`` and ``rank_trend``
    have no side effects (no random draws, no state kept from call to call): how
    often they are called then cannot change a run, and the engine leaves out ranks
    that order nothing (work alone in its queue is ranked only once it must be).
    Every built-in rule but ``random`` is pure; subclasses inherit it.
    """

    constant = False
    pure = False

    def __init__(self, params=None, context: RuleContext | None = None):
        self.params = params
        self.context = context

    def priority(self, project, now: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def is_stable(self, project) -> bool:
        return False

    def rank_trend(self, project, now: float) -> tuple[str, float]:
        """How ``priority(project, t)`` moves for ``t`` from ``now`` to the returned time:
        ``"constant"``, ``"falling"`` (never rising) or ``"live"`` (time units)."""
        return (CONSTANT, math.inf) if self.is_stable(project) else (LIVE, math.inf)


class IntakeRule:
    def __init__(self, params=None, context: RuleContext | None = None):
        self.params = params
        self.context = context

    def decision_times(self, horizon: float) -> Iterable[float]:
        return ()

    def start_pass(self, portfolio: PortfolioView) -> bool:
        return True

    def decide(self, candidate, portfolio: PortfolioView):  # pragma: no cover - abstract
        raise NotImplementedError


class InterventionRule:
    def __init__(self, params=None, context: RuleContext | None = None):
        self.params = params
        self.context = context

    def decision_times(self, horizon: float) -> Iterable[float]:
        return ()

    def review(self, portfolio: PortfolioView) -> Iterable[Action]:  # pragma: no cover - abstract
        raise NotImplementedError
