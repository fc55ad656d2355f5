"""Value accounting and cost of delay (DESIGN section 5), pure numpy.

Times are in the scenario's ``time_unit``; money is in its currency. Every
array function is vectorised over N projects whose business-case terms are a
:class:`ValueTerms`. A delivery time ``d`` that is NaN or infinite means "never
delivered". Nothing after the horizon ``H`` counts.

Each project's value, as a function of the time ``t`` it is read at, is piecewise
linear: a stream of slope ``rate`` from ``d`` to ``min(d + life, closes, H)``,
a jump of ``lump`` at ``d`` and a jump of ``-fine`` at ``due``. The accounting
(:func:`value_delivered`), its present value and the timeline all read the
same pieces, so they agree by construction.

:func:`cost_of_delay` is the scalar, plain-Python view policies use in the
engine's hot loop; it works from estimates, not realised terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "DEADLINE",
    "DECAY",
    "PROFILE_CODES",
    "STANDARD",
    "WINDOW",
    "ValueTerms",
    "cd3",
    "cost_of_delay",
    "discount_rate_per_time",
    "discounted_cost",
    "present_value",
    "realised",
    "value_delivered",
    "value_ideal",
    "value_timeline",
]

STANDARD = 0
WINDOW = 1
DECAY = 2
DEADLINE = 3
PROFILE_CODES = {"standard": STANDARD, "window": WINDOW, "decay": DECAY, "deadline": DEADLINE}

#: Remaining work (time units) used by :func:`cd3` when the estimate is <= 0.
CD3_EPSILON = 1e-9


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is not a truth value
class ValueTerms:
    """Realised (or estimated) business-case terms of N projects, float64 arrays of shape (N,).

    Money in the scenario's currency, times in its ``time_unit``. A field that
    does not belong to a project's profile is ignored for that project (the
    neutral values below are what :meth:`make` fills in).
    """

    rate: np.ndarray  # benefit per time unit once delivered
    lump: np.ndarray  # one-off benefit at delivery (0 if none)
    life: np.ndarray  # stream length after delivery (np.inf: without end)
    profile: np.ndarray  # int8 codes
    closes: np.ndarray  # absolute time the window closes (np.inf if not window)
    half_life: np.ndarray  # decay half-life (np.inf if not decay)
    due: np.ndarray  # absolute due date (np.inf if not deadline)
    penalty: np.ndarray  # 0..1, fraction of rate lost if delivered after due (0 if none)
    fine: np.ndarray  # charged at `due` if not delivered by then (0 if none)

    @classmethod
    def make(
        cls, rate, *, lump=0.0, life=np.inf, profile=STANDARD, closes=np.inf,
        half_life=np.inf, due=np.inf, penalty=0.0, fine=0.0,
    ) -> ValueTerms:
        """Terms from scalars or arrays, broadcast to one shape (N,).

        ``profile`` is a code or a name (``"window"``) or an array of either.
        """
        prof = np.asarray(profile)
        if prof.dtype.kind in "UO":
            prof = np.vectorize(PROFILE_CODES.__getitem__, otypes=[np.int8])(prof)
        fields = np.broadcast_arrays(
            *(np.asarray(x, dtype=np.float64) for x in (rate, lump, life)), prof.astype(np.int8),
            *(np.asarray(x, dtype=np.float64) for x in (closes, half_life, due, penalty, fine)))
        return cls(*(np.array(x).reshape(-1) for x in fields))

    def __len__(self) -> int:
        return len(self.rate)


class _Pieces(NamedTuple):
    """One project's value as pieces: a stream, a lump and a fine (all (N,))."""

    start: np.ndarray  # stream start = delivery time (0 where never delivered)
    end: np.ndarray  # stream end, <= H
    length: np.ndarray  # realised stream length within H (>= 0)
    rate: np.ndarray  # realised rate after decay and penalty (0 where no stream)
    lump: np.ndarray  # realised lump, counted at `start` (0 where lost)
    fine: np.ndarray  # fine charged before H (0 where none)
    fine_time: np.ndarray  # when the fine is charged (0 where none)


def _pieces(terms: ValueTerms, d, d_ideal, horizon: float) -> _Pieces:
    d = np.asarray(d, dtype=np.float64)
    d_ideal = np.asarray(d_ideal, dtype=np.float64)
    shape = np.broadcast_shapes(terms.rate.shape, d.shape, d_ideal.shape)
    d, d_ideal = np.broadcast_to(d, shape), np.broadcast_to(d_ideal, shape)
    t = ValueTerms(*(np.broadcast_to(x, shape) for x in vars(terms).values()))
    h = float(horizon)
    prof = t.profile
    delivered = np.isfinite(d)
    start = np.where(delivered, d, 0.0)
    before_h = delivered & (start < h)

    closes = np.where(prof == WINDOW, t.closes, np.inf)
    end = np.minimum(np.minimum(start + t.life, closes), h)
    length = np.where(before_h, np.maximum(end - start, 0.0), 0.0)

    # Decay is measured from the ideal delivery; with none known there is no
    # delay to measure, so the factor is 1.
    decays = (prof == DECAY) & delivered & np.isfinite(d_ideal)
    delay = np.where(decays, start - np.where(decays, d_ideal, 0.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # masked out by the where
        factor = np.exp2(-np.where(decays, delay / t.half_life, 0.0))

    due = np.where(prof == DEADLINE, t.due, np.inf)
    late = (prof == DEADLINE) & (~delivered | (start > due))
    rate = np.where(length > 0, t.rate * factor * np.where(late, 1.0 - t.penalty, 1.0), 0.0)
    lump = np.where(before_h & (start < closes), t.lump * factor, 0.0)
    charged = late & (due < h)
    return _Pieces(start, end, length, rate, lump,
                   np.where(charged, t.fine, 0.0), np.where(charged, due, 0.0))


def value_delivered(terms: ValueTerms, d, d_ideal, horizon: float) -> np.ndarray:
    """Undiscounted value (money) each project realises within the horizon, shape (N,).

    The stream realised between ``d`` and ``min(d + life, closes, H)``, plus the
    lump if ``d < H``, minus the fine if it is charged before ``H`` (at ``due``,
    when ``d > due`` or never delivered). Window: delivered at or after
    ``closes``, stream and lump are lost. Decay: rate and lump times
    ``2 ** (-(d - d_ideal) / half_life)``. Deadline: delivered after ``due``,
    rate times ``1 - penalty`` for the whole stream. Can be negative.

    ``d`` and ``d_ideal`` (time units) broadcast against the terms, so one
    project's terms can be read at many delivery times.
    """
    return _undiscounted(_pieces(terms, d, d_ideal, horizon))


def _undiscounted(p: _Pieces) -> np.ndarray:
    return p.rate * p.length + p.lump - p.fine


def value_ideal(terms: ValueTerms, d_ideal, horizon: float) -> np.ndarray:
    """:func:`value_delivered` at the ideal delivery ``d_ideal`` (decay factor 1)."""
    return value_delivered(terms, d_ideal, d_ideal, horizon)


def _annuity(length, rho: float):
    """Integral of exp(-rho s) for s in [0, length]; exactly ``length`` when rho == 0."""
    if rho == 0:
        return length
    return -np.expm1(-rho * np.asarray(length, dtype=np.float64)) / rho


def present_value(terms: ValueTerms, d, d_ideal, horizon: float, rho: float) -> np.ndarray:
    """The benefits of :func:`value_delivered` discounted to time 0, shape (N,).

    ``rho`` is the continuous discount rate per time unit (factor
    ``exp(-rho t)``, see :func:`discount_rate_per_time`): the stream is worth
    ``rate * (exp(-rho d) - exp(-rho e)) / rho``, the lump ``lump * exp(-rho d)``
    and the fine ``fine * exp(-rho due)``. ``rho == 0`` gives exactly
    :func:`value_delivered`. Capacity costs are not included (see
    :func:`discounted_cost`).
    """
    return _discounted(_pieces(terms, d, d_ideal, horizon), rho)


def _discounted(p: _Pieces, rho: float) -> np.ndarray:
    at_start = np.exp(-rho * p.start)
    return (p.rate * at_start * _annuity(p.length, rho) + p.lump * at_start
            - p.fine * np.exp(-rho * p.fine_time))


def discount_rate_per_time(discount_rate_per_year: float, periods_per_year: float) -> float:
    """Continuous discount rate per time unit, ``ln(1 + r) / P`` (P = 52 for weeks, 365 for days)."""
    if not discount_rate_per_year > -1 or not periods_per_year > 0:
        raise ValueError(
            "discount_rate_per_time needs discount_rate_per_year > -1 and periods_per_year > 0, "
            f"got {discount_rate_per_year!r} and {periods_per_year!r}")
    return math.log1p(discount_rate_per_year) / periods_per_year


def discounted_cost(cost_per_time, t0, t1, rho: float):
    """Money of occupying capacity at ``cost_per_time`` (money per time unit) from ``t0`` to ``t1``.

    Discounted continuously at ``rho`` per time unit:
    ``cost * (exp(-rho t0) - exp(-rho t1)) / rho``; ``cost * (t1 - t0)`` when
    ``rho == 0``. The caller clips ``t1`` to the horizon. Scalars give a float,
    arrays an array.
    """
    cost, t0, t1 = (np.asarray(x, dtype=np.float64) for x in (cost_per_time, t0, t1))
    out = cost * np.exp(-rho * t0) * _annuity(t1 - t0, rho)
    return float(out) if out.ndim == 0 else out


def _cumulative(p: _Pieces, grid: np.ndarray) -> np.ndarray:
    """Sum over projects of value realised by each grid time, from breakpoints."""
    streams = p.length > 0
    lumps = p.lump != 0
    fines = p.fine != 0
    times = np.concatenate([p.start[streams], p.end[streams], p.start[lumps], p.fine_time[fines]])
    if times.size == 0:
        return np.zeros(grid.shape)
    rate = p.rate[streams]
    none_s, none_j = np.zeros(lumps.sum() + fines.sum()), np.zeros(2 * streams.sum())
    slope_change = np.concatenate([rate, -rate, none_s])
    jump = np.concatenate([none_j, p.lump[lumps], -p.fine[fines]])
    order = np.argsort(times, kind="stable")
    times, slope_change, jump = times[order], slope_change[order], jump[order]
    slope = np.cumsum(slope_change)  # slope in force just after each breakpoint
    # Value just after breakpoint k: accrue the previous slope over the gap, then jump.
    # (Accruing gap by gap avoids cancelling large slope*t and sum(slope_k*t_k) terms.)
    accrued = np.empty_like(times)
    accrued[0] = 0.0
    accrued[1:] = slope[:-1] * np.diff(times)
    level = np.cumsum(accrued + jump)
    k = np.searchsorted(times, grid, side="right") - 1
    kk = np.maximum(k, 0)
    return np.where(k >= 0, level[kk] + slope[kk] * (grid - times[kk]), 0.0)


def value_timeline(terms: ValueTerms, d, d_ideal, horizon: float, grid) -> tuple[np.ndarray, np.ndarray]:
    """``(V(grid), V_ideal(grid))``: cumulative undiscounted value (money) summed over projects.

    ``V(t)`` counts each stream accrued up to ``t``, each lump at ``d`` once
    ``d <= t`` and each charged fine at ``due`` once ``due <= t``; ``V_ideal``
    the same at the ideal deliveries. ``D(t) = V_ideal(t) - V(t)``. Both are
    flat after ``H`` and ``V(H)`` equals ``value_delivered(...).sum()``. The grid
    may be in any order. Cost: O((N + G) log N) for N projects, G grid points.
    """
    grid = np.asarray(grid, dtype=np.float64)
    return (_cumulative(_pieces(terms, d, d_ideal, horizon), grid),
            _cumulative(_pieces(terms, d_ideal, d_ideal, horizon), grid))


def realised(terms: ValueTerms, d, d_ideal, horizon: float, rho: float, grid) -> tuple[np.ndarray, ...]:
    """``(value_delivered, present_value, V(grid))`` at deliveries ``d``, from one reading of the terms.

    The same numbers as the three functions called apart (each reads the terms into
    pieces first); a replication's record needs all three, so it reads them once.
    """
    p = _pieces(terms, d, d_ideal, horizon)
    return _undiscounted(p), _discounted(p, rho), _cumulative(p, np.asarray(grid, dtype=np.float64))


def _within(life: float, left: float) -> float:
    """Stream length realised within the horizon when ``left`` time units remain:
    ``max(0.0, min(life, left))``, spelt out (ranking rules call it at every look-up)."""
    within = left if left < life else life
    return within if within > 0.0 else 0.0


def _lost_length(life: float, horizon: float, p: float) -> float:
    """``L(p) - L(p + 1)``: how much of the stream one more unit of delay pushes past the
    horizon; exactly 0 or 1 away from the edges, where a difference would carry rounding."""
    left = horizon - p
    if left - 1.0 >= life or left <= 0.0:  # the whole life fits even a unit later; or nothing is left
        return 0.0
    if left <= life and left >= 1.0:  # cut by the horizon now and a unit later: one unit lost
        return 1.0
    return _within(life, left) - _within(life, left - 1.0)


def cost_of_delay(rate: float, lump: float, life: float, profile: int, closes: float, half_life: float,
                  due: float, penalty: float, fine: float, projected_delivery: float,
                  reference_delivery: float, horizon: float) -> float:
    """Cost of delay (money per time unit) as policies see it, from estimates. Scalar, no numpy.

    With ``p`` the projected delivery, ``H`` the horizon and
    ``L(x) = max(0, min(life, H - x))`` the stream length within the horizon:

    * standard: ``rate``;
    * window: ``rate`` if ``p < closes`` else 0;
    * decay: ``V(p) - V(p + 1)``, the value lost by one more time unit of delay, with
      ``V(x) = 2**(-(x - r) / half_life) * (rate * L(x) + lump * [x < H])`` and ``r`` =
      ``reference_delivery`` (the estimated ideal delivery). Closed form, with
      ``g = 2**(-(p - r) / half_life)`` and ``q = 2**(-1 / half_life)``::

          g * (rate * (L(p) - q * L(p + 1)) + lump * ([p < H] - q * [p + 1 < H]))

      which is ``g * (1 - q) * (rate * life + lump)`` while ``p + 1 <= H - life``.
    * deadline: ``V(p) - V(p + 1)`` with ``V(x) = rate * (1 - penalty * [x > due]) * L(x)
      + lump * [x < H] - fine * [x > due] * [due < H]``. With
      ``dL = L(p) - L(p + 1)`` (0 while ``p + 1 <= H - life``, 1 once the stream
      is cut by the horizon, in between partial) and ``dJ = lump * ([p < H] - [p + 1 < H])``:

      - on time even a unit later (``p + 1 <= due``): ``rate * dL + dJ``;
      - crossing due (``p <= due < p + 1``):
        ``rate * (L(p) - (1 - penalty) * L(p + 1)) + fine * [due < H] + dJ``;
      - already late (``p > due``): ``rate * (1 - penalty) * dL + dJ``.

    The lump is counted only before ``H``, as in :func:`value_delivered`, so the
    decay and deadline forms are exactly its one-unit forward difference.
    ``profile`` is a code (``DECAY``) or a name (``"decay"``).
    """
    if isinstance(profile, str):
        profile = PROFILE_CODES[profile]
    p, h = projected_delivery, horizon
    if profile == STANDARD:
        return rate
    if profile == WINDOW:
        return rate if p < closes else 0.0
    lump0 = lump if p < h else 0.0
    lump1 = lump if p + 1.0 < h else 0.0
    if profile == DECAY:
        now = 2.0 ** (-(p - reference_delivery) / half_life)
        later = 2.0 ** (-(p + 1.0 - reference_delivery) / half_life)
        return (now * (rate * _within(life, h - p) + lump0)
                - later * (rate * _within(life, h - p - 1.0) + lump1))
    if profile == DEADLINE:
        # The closed forms above, not V(p) - V(p + 1): that difference of two large numbers
        # wobbles by rounding where the CoD is flat (a late project's rate x (1 - penalty)),
        # and a rank promised to fall must not rise by 1e-12 (it reorders exact ties).
        kept = 1.0 - penalty
        if p + 1.0 <= due:  # on time even a unit later
            return rate * _lost_length(life, h, p) + lump0 - lump1
        if p > due:  # already late
            return rate * kept * _lost_length(life, h, p) + lump0 - lump1
        charged = fine if due < h else 0.0
        return rate * (_within(life, h - p) - kept * _within(life, h - p - 1.0)) + charged + lump0 - lump1
    raise ValueError(f"cost_of_delay: profile must be a code in {sorted(PROFILE_CODES.values())} "
                     f"or a name in {sorted(PROFILE_CODES)}, got {profile!r}")


# How a rank moves with time until the rule is asked again (see SequencingRule.rank_trend).
CONSTANT, FALLING, LIVE = "constant", "falling", "live"


def cost_of_delay_trend(profile: int, life: float, lump: float, due: float, projected_delivery: float,
                        horizon: float) -> tuple[str, float]:
    """How :func:`cost_of_delay` moves as the projected delivery ``p`` grows: ``(trend, until)``.

    ``trend`` holds for every projected delivery in ``[p, until)``: ``CONSTANT``,
    ``FALLING`` (never rises: it may stay or fall, by steps or smoothly) or ``LIVE``
    (may rise).  Rates, lumps and fines are never negative, so from the forms of
    :func:`cost_of_delay`, with ``E = H - life``:

    * standard: constant; window: falling (``rate`` until ``closes``, then 0);
    * decay: the factor ``2**(-(p - r) / half_life)`` falls; its bracket falls
      except on ``[E - 1, E)``, where ``L(p) = life`` but ``L(p + 1)`` shrinks
      (the CoD rises), and at ``H - 1``, where a lump starts to be lost by one
      more unit of delay (a step up);
    * deadline: as decay, plus a step up just after ``due - 1``, where one more
      unit of delay starts to cost the fine and the penalty.

    The edges are taken conservatively (a rise is never inside a falling span);
    ``test_policy_theory`` checks every trend against a fine grid of the closed form.
    """
    if isinstance(profile, str):
        profile = PROFILE_CODES[profile]
    if profile == STANDARD:
        return CONSTANT, math.inf
    if profile == WINDOW:
        return FALLING, math.inf
    p, h = projected_delivery, horizon
    rises: list[float] = []  # where a falling span must end (a rise starts there)
    if math.isfinite(life):
        start, end = h - life - 1.0, h - life
        if start <= p < end:
            return LIVE, end
        rises.append(start)
    if lump > 0:
        rises.append(h - 1.0)
    if profile == DEADLINE and math.isfinite(due):
        # The step up is just after ``due - 1``, where ``p + 1 <= due`` (as cost_of_delay computes
        # it) turns false: ``p + 1.0`` rounds to ``due`` for every p within an ulp of 1 of it,
        # not at ``p == due - 1.0`` alone (p = 6e-87 with due 1 is such a point).
        if p == due - 1.0 or p + 1.0 == due:
            return LIVE, due
        rises.append(due - 1.0)
    until = math.inf
    for r in rises:
        if p < r < until:
            until = r
    return FALLING, until


def cd3(cod: float, remaining: float) -> float:
    """CD3 score: cost of delay (money per time unit) divided by estimated remaining time.

    A remaining estimate <= 0 is replaced by ``CD3_EPSILON`` (1e-9 time units),
    so finished-looking work ranks first instead of dividing by zero.
    """
    return cod / (remaining if remaining > 0 else CD3_EPSILON)
