"""Confidence intervals and paired differences across replications.

Every policy meets the same worlds (common random numbers), so a policy's
difference from the baseline is estimated from paired replications: the CI of
the mean of the differences, whose variance is ``var(a) + var(b) - 2 cov(a, b)``.
``welch_ci`` is the unpaired interval, kept to measure what pairing gains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
from scipy import stats


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return x[~np.isnan(x)]


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of independent replications' values.

    NaN values (a metric undefined in a replication, e.g. no delivery) are dropped.
    With fewer than two values the interval is NaN.
    """
    x = _finite(values)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def half_width(values, level: float = 0.95) -> float:
    _mean, low, high = mean_ci(values, level)
    return (high - low) / 2


def paired_ci(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired replications and its CI (pairs with a NaN dropped)."""
    return mean_ci(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), level)


def welch_ci(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """Difference of means ``a - b`` and its Welch CI, as if the samples were independent."""
    x, y = _finite(a), _finite(b)
    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan, math.nan
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = float(x.mean() - y.mean())
    if vx + vy == 0:
        return diff, diff, diff
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df) * math.sqrt(vx + vy))
    return diff, diff - half, diff + half


def replications_needed(
    variance: float, target: float, level: float = 0.95, df: Callable[[int], float] = lambda n: n - 1
) -> int:
    """Smallest n >= 2 with ``t(df(n)) * sqrt(variance / n) <= target`` (a CI half-width).

    ``df`` is the degrees of freedom at n replications: ``n - 1`` for a paired
    difference; for two independent arms of n each, Welch's value.
    """
    if not variance > 0:
        return 2
    if not target > 0:
        raise ValueError(f"The 'target' parameter of replications_needed must be above 0. Got {target!r} instead.")

    def fits(n: int) -> bool:
        return stats.t.ppf(0.5 + level / 2, df(n)) * math.sqrt(variance / n) <= target

    high = 2
    while not fits(high):
        high *= 2
    low = max(2, high // 2)
    while low < high:  # the half-width decreases with n: bisect for the first that fits
        middle = (low + high) // 2
        low, high = (middle + 1, high) if not fits(middle) else (low, middle)
    return low


def target_half_widths(values: Mapping[str, np.ndarray], baseline: str, level: float = 0.95) -> dict[str, float]:
    """Per policy, the CI half-width used by ``--target-ci``.

    Each non-baseline policy: the half-width of its paired difference from the
    baseline.  With the baseline alone: the baseline's own half-width.  NaN
    when fewer than two paired values are defined.
    """
    base = np.asarray(values[baseline], dtype=np.float64)
    others = [p for p in values if p != baseline]
    if not others:
        return {baseline: half_width(base, level)}
    return {p: half_width(np.asarray(values[p], dtype=np.float64) - base, level) for p in others}
