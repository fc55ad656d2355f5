"""What rules answer the engine, checked where the engine receives it.

A rule is the user's code (docs/policies.md): an answer the engine cannot use
stops the run with one ``FlowsimError`` naming the rule, its policy and the
value, rather than a traceback from deep inside a queue or, worse, a run that
goes on with a NaN.  Built-in rules are trusted on the hot path (ranks and
trends, asked thousands of times a replication); everything else is checked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

from ..errors import FlowsimError
from ..policies.protocol import ADMIT, HOLD, REJECT, STOP, Action
from ..value import CONSTANT, FALLING, LIVE

INTAKE_ANSWERS = (ADMIT, REJECT, HOLD, STOP)
TREND_KINDS = frozenset((CONSTANT, FALLING, LIVE))
# An expedited project ranks above every score (docs/policies.md), a rule's own +inf included:
# the engine ranks it +inf, and a rule's +inf counts as the largest finite rank.
EXPEDITED = math.inf
TOP_RANK = 1.7976931348623157e308  # sys.float_info.max


def label(kind: str, name: str, rule: object, policy: str) -> str:
    """How messages name a rule: ``sequencing rule my_rule (MyRule) of policy p``."""
    cls = type(rule).__name__
    shown = name if cls.lower() == name.replace("_", "").lower() else f"{name} ({cls})"
    return f"{kind} rule {shown} of policy {policy}"


def is_builtin(rule: object) -> bool:
    return type(rule).__module__.startswith("flowsim.policies.")


def checked_rank(rank: object, who: str, project_id: str, now: float) -> float:
    """A rule's priority as a float: a number, never NaN; +inf becomes ``TOP_RANK``."""
    if isinstance(rank, bool) or not isinstance(rank, Real):
        raise FlowsimError(f"{who}: priority must be a number, got {rank!r} for {project_id} at {now:g}")
    value = float(rank)
    if math.isnan(value):
        raise FlowsimError(f"{who}: priority must be a number, got nan for {project_id} at {now:g}")
    return TOP_RANK if value == math.inf else value


def checked_trend(trend: object, who: str, project_id: str, now: float) -> tuple[str, float]:
    """A rule's ``rank_trend``: ``(kind, until)`` with a known kind and a time that is not NaN."""
    try:
        kind, until = trend  # type: ignore[misc]
    except (TypeError, ValueError):
        kind, until = None, None
    if kind not in TREND_KINDS or isinstance(until, bool) or not isinstance(until, Real) or until != until:
        raise FlowsimError(
            f"{who}: rank_trend must be (kind, until) with kind one of constant, falling, live and until a time, "
            f"got {trend!r} for {project_id} at {now:g}"
        )
    return kind, float(until)


def hold_key(intake: object, ranks_pure: bool):
    """The intake rule's ``hold_key`` if the engine may go by it (funnel.py), else None.

    Only when ``decide`` comes from the class that defined ``hold_key``: a subclass that
    answers otherwise (a built-in's ``decide`` overridden) inherits a promise it does not
    keep.  And only when ranks have no side effects (a pure or constant sequencing rule): a
    pass by key asks for fewer ranks than a walk down the funnel, and a rule that draws at
    every call would see its runs change.
    """
    key = getattr(intake, "hold_key", None)
    if key is None or not ranks_pure:
        return None
    cls = type(intake)
    if _defined_in(cls, "hold_key") is not _defined_in(cls, "decide"):
        return None
    return key


def _defined_in(cls: type, name: str) -> type | None:
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


def checked_key(key: object, who: str, project_id: str):
    try:
        hash(key)
    except TypeError:
        raise FlowsimError(f"{who}: hold_key must return a hashable value, got {key!r} for {project_id}") from None
    return key


def decision_times(times: Iterable[object] | None, who: str) -> list[float]:
    """A rule's planning points: numbers of at least 0 (those at or after the horizon are never reached)."""
    checked = []
    for at in times if times is not None else ():
        if isinstance(at, bool) or not isinstance(at, Real) or not float(at) >= 0:
            raise FlowsimError(f"{who}: decision_times must be times of at least 0, got {at!r}")
        checked.append(float(at))
    return checked


def intake_answer(decision: object, who: str) -> tuple[str, str]:
    """``(answer, reason)`` from what ``decide`` returned: an answer or ``(answer, reason)``."""
    reason = ""
    if isinstance(decision, tuple):
        if len(decision) != 2:
            raise FlowsimError(f"{who}: decide must return admit, reject, hold or stop, or (answer, reason), "
                               f"got {decision!r}")  # fmt: skip
        decision, reason = decision
        if not isinstance(reason, str):
            raise FlowsimError(f"{who}: a reason must be text, got {reason!r}")
    if decision not in INTAKE_ANSWERS:
        raise FlowsimError(f"{who}: decide must return admit, reject, hold or stop, got {decision!r}")
    return decision, reason


def review_actions(actions: object, who: str) -> list[Action]:
    """The ``Action`` objects ``review`` returned (None: none)."""
    if actions is None:
        return []
    if isinstance(actions, (Action, str, bytes)) or not isinstance(actions, Iterable):
        raise FlowsimError(f"{who}: review must return a list of Action objects, got {actions!r}")
    out = []
    for action in actions:
        if not isinstance(action, Action):
            raise FlowsimError(f"{who}: review must return Action objects, got {action!r}")
        if action.kind not in ("cancel", "pause", "expedite"):
            raise FlowsimError(f"{who}: an action must be cancel, pause or expedite, got {action.kind!r}")
        if not isinstance(action.reason, str):
            raise FlowsimError(f"{who}: a reason must be text, got {action.reason!r}")
        out.append(action)
    return out
