"""Sequencing rules: the order in which constrained capacity works (DESIGN section 7).

A project has one score, used in every team's queue and in the funnel; higher
is served first, ties go to the FIFO key.  Scores come from estimates at the
moment a unit is free, so urgency that grows with time is seen.
"""

from __future__ import annotations

import math

from ..value import CONSTANT, LIVE
from .protocol import SequencingRule

# A remaining critical path is never taken below this (time units), so that
# CD3 of a project believed finished stays finite.
_TINY = 1e-9


def _standard(project) -> bool:
    return project.profile == "standard"


def _cod_trend(project, now: float) -> tuple[str, float]:
    """Trend of a rank that is the cost of delay at the projected delivery divided by a
    positive amount of remaining work: both fixed while none of the project's stages
    runs, so the rank moves as the CoD does while the projected delivery moves with
    ``now`` (flowsim.value.cost_of_delay_trend)."""
    if project.running_stages:
        return LIVE, math.inf  # remaining work shrinks as it runs; re-filed when it stops
    if _standard(project):
        return CONSTANT, math.inf  # the CoD is the rate (the common case: no need to ask the value model)
    remaining = project.remaining_critical_path(now)
    trend, until = project.cod_trend(now + remaining)
    return trend, until - remaining


def _due(project) -> float:
    """The date that makes a project urgent: ``due`` or, failing that, ``closes``."""
    return project.due if math.isfinite(project.due) else project.closes


class Fifo(SequencingRule):
    """First in, first out: the FIFO key alone."""

    constant = True
    pure = True

    def priority(self, project, now):
        return 0.0

    def is_stable(self, project):
        return True


class Random(SequencingRule):
    """A random order: one uniform draw per project from the rule's own stream."""

    constant = True
    # Not ``pure``: a project's draw is made when it is first ranked, so ranks left out
    # would change who gets which draw.

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        self._scores: dict[int, float] = {}

    def priority(self, project, now):
        score = self._scores.get(project.index)
        if score is None:
            score = self._scores[project.index] = float(self.context.rng.random())
        return score

    def is_stable(self, project):
        return True


class Value(SequencingRule):
    """Highest cost of delay first."""

    pure = True

    def priority(self, project, now):
        return project.cost_of_delay(now)

    def is_stable(self, project):
        return _standard(project)

    def rank_trend(self, project, now):
        # Standard: the rate, whatever runs.  Else the CoD moves with the projected delivery.
        return (CONSTANT, math.inf) if _standard(project) else _cod_trend(project, now)


class ShortestJob(SequencingRule):
    """Shortest estimated remaining critical path first."""

    pure = True

    def priority(self, project, now):
        return -project.remaining_critical_path(now)

    def is_stable(self, project):
        return project.running_stages == 0


class EarliestDue(SequencingRule):
    """Earliest ``due`` (or window ``closes``) first; projects with neither go last."""

    constant = True
    pure = True

    def priority(self, project, now):
        return -_due(project)

    def is_stable(self, project):
        return True


class Cd3(SequencingRule):
    """CoD divided by duration: cost of delay / estimated remaining critical path."""

    pure = True

    def priority(self, project, now):
        remaining = project.remaining_critical_path(now)
        return project.cod_at(now + remaining) / max(remaining, _TINY)

    def is_stable(self, project):
        return _standard(project) and project.running_stages == 0

    def rank_trend(self, project, now):
        return _cod_trend(project, now)


class Cd3Bottleneck(SequencingRule):
    """Value per constrained hour: cost of delay / estimated remaining work on the planning
    bottleneck.  Projects with no work left there rank by ``cd3``."""

    pure = True

    def priority(self, project, now):
        remaining = project.remaining_critical_path(now)
        cod = project.cod_at(now + remaining)
        on_bottleneck = project.remaining_work(now, self.context.bottleneck)
        if on_bottleneck > 0:
            return cod / on_bottleneck
        return cod / max(remaining, _TINY)

    def is_stable(self, project):
        return _standard(project) and project.running_stages == 0

    def rank_trend(self, project, now):
        return _cod_trend(project, now)


class Wsjf(SequencingRule):
    """SAFe's weighted shortest job first: (business value + time criticality +
    risk reduction) / job size, from the project's own fields."""

    constant = True
    pure = True

    def priority(self, project, now):
        business_value, time_criticality, risk_reduction, job_size = project.wsjf
        return (business_value + time_criticality + risk_reduction) / job_size

    def is_stable(self, project):
        return True


class LeastSlack(SequencingRule):
    """Least slack first: due minus now minus estimated remaining critical path.

    At any instant every project's slack holds the same ``- now``, so the score
    leaves it out: ``remaining - due`` orders the queue exactly as ``-slack``
    does, and it changes only when the project's work does, so a queue of
    thousands is ranked once rather than at every start.
    """

    pure = True

    def priority(self, project, now):
        due = _due(project)
        if not math.isfinite(due):
            return -math.inf
        return project.remaining_critical_path(now) - due

    def is_stable(self, project):
        return project.running_stages == 0


BUILTIN = {
    "fifo": Fifo,
    "random": Random,
    "value": Value,
    "sjf": ShortestJob,
    "edd": EarliestDue,
    "cd3": Cd3,
    "cd3_bottleneck": Cd3Bottleneck,
    "wsjf": Wsjf,
    "least_slack": LeastSlack,
}
