"""Uncertain quantities: efforts, value rates and lumps.

A quantity in a scenario is a plain number or a distribution written with its
natural parameters, ``{dist: triangular, low: 8, mode: 12, high: 24}``.  Each
distribution knows its scipy.stats equivalent (``frozen()``), which is the
reference for its mean and quantiles, and samples with numpy's ``Generator``
methods, which draw the same law without scipy's per-call overhead (a world
draws hundreds of values per replication).  Tests check the two agree.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


def _num(x: float) -> str:
    """A bound in a message, written as the user would: 5 rather than 5.0."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


# z such that P(Z <= z) = 0.9 for a standard normal: links a lognormal's p90 to sigma.
_Z90 = NormalDist().inv_cdf(0.9)


def _scipy_stats():
    """scipy.stats, imported on first use: it takes half a second, and validating a
    scenario or sampling a world never needs it (only ``frozen()`` does)."""
    from scipy import stats

    return stats


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def frozen(self):  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def mean(self) -> float:
        # Subclasses give the closed form (scipy builds a frozen distribution per
        # call, far too slow for world sampling); tests check it against scipy.
        return float(self.frozen().mean())

    def support(self) -> tuple[float, float]:
        """Smallest and largest values the distribution can produce (closed forms in
        the subclasses, tested against scipy's ``support()``)."""
        low, high = self.frozen().support()
        return float(low), float(high)

    def lower_bound(self) -> float:
        """Smallest value the distribution can produce."""
        return self.support()[0]

    def sample(self, rng: np.random.Generator) -> float:  # pragma: no cover
        raise NotImplementedError


class Fixed(_Dist):
    dist: Literal["fixed"]
    value: float = Field(allow_inf_nan=False)

    def frozen(self):
        # scipy has no degenerate continuous law (uniform with scale 0 gives nan):
        # a one-point discrete law is the exact equivalent.
        return _scipy_stats().rv_discrete(values=([self.value], [1.0]))

    def mean(self) -> float:
        return self.value

    def support(self) -> tuple[float, float]:
        return self.value, self.value

    def sample(self, rng):
        return self.value


class Uniform(_Dist):
    dist: Literal["uniform"]
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)

    # Checked on the later field so the message points at the key to fix.
    @field_validator("high")
    @classmethod
    def _ordered(cls, high: float, info: ValidationInfo) -> float:
        low = info.data.get("low")
        if low is not None and not high > low:
            raise ValueError(f"above low ({_num(low)})")
        return high

    def mean(self) -> float:
        return (self.low + self.high) / 2

    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def frozen(self):
        return _scipy_stats().uniform(loc=self.low, scale=self.high - self.low)

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))


class _ThreePoint(_Dist):
    low: float = Field(allow_inf_nan=False)
    mode: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)

    # low <= mode <= high with low < high, checked on the later field so the
    # message points at the key to fix.
    @field_validator("mode", "high")
    @classmethod
    def _ordered(cls, value: float, info: ValidationInfo) -> float:
        low, mode = info.data.get("low"), info.data.get("mode")
        if info.field_name == "mode":
            if low is not None and value < low:
                raise ValueError(f"at least low ({_num(low)})")
        elif mode is not None and value < mode:
            raise ValueError(f"at least mode ({_num(mode)})")
        elif low is not None and not value > low:
            raise ValueError(f"above low ({_num(low)})")
        return value

    def support(self) -> tuple[float, float]:
        return self.low, self.high


class Triangular(_ThreePoint):
    dist: Literal["triangular"]

    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3

    def frozen(self):
        width = self.high - self.low
        return _scipy_stats().triang(c=(self.mode - self.low) / width, loc=self.low, scale=width)

    def sample(self, rng):
        return float(rng.triangular(self.low, self.mode, self.high))


class Pert(_ThreePoint):
    """Beta-PERT with the classic weight 4 on the mode: mean (low + 4 mode + high) / 6."""

    dist: Literal["pert"]

    def _shape(self) -> tuple[float, float]:
        width = self.high - self.low
        return (1 + 4 * (self.mode - self.low) / width, 1 + 4 * (self.high - self.mode) / width)

    def mean(self) -> float:
        return (self.low + 4 * self.mode + self.high) / 6

    def frozen(self):
        a, b = self._shape()
        return _scipy_stats().beta(a, b, loc=self.low, scale=self.high - self.low)

    def sample(self, rng):
        a, b = self._shape()
        return float(self.low + (self.high - self.low) * rng.beta(a, b))


class Lognormal(_Dist):
    """Lognormal given by its median and 90th percentile (sigma = ln(p90/median) / z90)."""

    dist: Literal["lognormal"]
    median: float = Field(gt=0, allow_inf_nan=False)
    p90: float = Field(gt=0, allow_inf_nan=False)

    @field_validator("p90")
    @classmethod
    def _ordered(cls, p90: float, info: ValidationInfo) -> float:
        median = info.data.get("median")
        if median is not None and not p90 > median:
            raise ValueError(f"above median ({_num(median)})")
        return p90

    @property
    def sigma(self) -> float:
        return math.log(self.p90 / self.median) / _Z90

    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def frozen(self):
        return _scipy_stats().lognorm(s=self.sigma, scale=self.median)

    def support(self) -> tuple[float, float]:
        return 0.0, math.inf

    def sample(self, rng):
        return float(self.median * math.exp(self.sigma * rng.standard_normal()))


class Exponential(_Dist):
    dist: Literal["exponential"]
    mean_: float = Field(alias="mean", gt=0, allow_inf_nan=False)

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    def frozen(self):
        return _scipy_stats().expon(scale=self.mean_)

    def mean(self) -> float:
        return self.mean_

    def support(self) -> tuple[float, float]:
        return 0.0, math.inf

    def sample(self, rng):
        return float(rng.exponential(self.mean_))


class Weibull(_Dist):
    dist: Literal["weibull"]
    shape: float = Field(gt=0, allow_inf_nan=False)
    scale: float = Field(gt=0, allow_inf_nan=False)

    def mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)

    def frozen(self):
        return _scipy_stats().weibull_min(c=self.shape, scale=self.scale)

    def support(self) -> tuple[float, float]:
        return 0.0, math.inf

    def sample(self, rng):
        return float(self.scale * rng.weibull(self.shape))


class Empirical(_Dist):
    """Resamples the given observations with equal weight (a bootstrap of past actuals)."""

    dist: Literal["empirical"]
    samples: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(min_length=1)

    def frozen(self):
        # Repeated observations weigh more: merge them, since rv_discrete needs distinct points.
        points, counts = np.unique(np.asarray(self.samples, dtype=float), return_counts=True)
        return _scipy_stats().rv_discrete(values=(points, counts / counts.sum()))

    def mean(self) -> float:
        return float(np.mean(self.samples))

    def support(self) -> tuple[float, float]:
        return float(min(self.samples)), float(max(self.samples))

    def sample(self, rng):
        return float(self.samples[int(rng.integers(len(self.samples)))])


Distribution = Annotated[
    Fixed | Uniform | Triangular | Pert | Lognormal | Exponential | Weibull | Empirical,
    Field(discriminator="dist"),
]

DIST_NAMES = ("fixed", "uniform", "triangular", "pert", "lognormal", "exponential", "weibull", "empirical")

# A number or a distribution: what efforts, value rates and lumps accept.
Quantity = Annotated[float, Field(allow_inf_nan=False)] | Distribution


def mean_of(quantity: Quantity) -> float:
    """The expected value of a quantity (a plain number is its own mean)."""
    return float(quantity) if isinstance(quantity, (int, float)) else quantity.mean()


def lower_bound_of(quantity: Quantity) -> float:
    return float(quantity) if isinstance(quantity, (int, float)) else quantity.lower_bound()


def sample_of(quantity: Quantity, rng: np.random.Generator) -> float:
    """One draw; a plain number consumes no randomness."""
    return float(quantity) if isinstance(quantity, (int, float)) else quantity.sample(rng)
