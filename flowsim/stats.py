"""Confidence intervals and paired differences across replications."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of independent replications' values.

    NaN values (a metric undefined in a replication, e.g. no delivery) are dropped.
    With fewer than two values the interval is NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
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
