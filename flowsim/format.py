"""Numbers for people: money, durations and one-line verdicts."""

from __future__ import annotations

import math


def money(amount: float) -> str:
    """1234567 -> '1.23M'; keeps the sign; NaN -> 'n/a'."""
    if amount is None or (isinstance(amount, float) and math.isnan(amount)):
        return "n/a"
    sign = "-" if amount < 0 else ""
    value = abs(amount)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{sign}{value / size:.3g}{suffix}"
    return f"{sign}{value:.3g}"


def span(horizon: float, unit: str) -> str:
    per_year = 52 if unit == "week" else 365
    years = horizon / per_year
    if abs(years - round(years)) < 1e-9 and years >= 1:
        return f"{round(years)} year{'s' if round(years) != 1 else ''}"
    return f"{horizon:g} {unit}s"


def verdict(row, baseline: str, horizon: float, unit: str) -> str:
    """'P delivers 1.2M more than B over 3 years, 95% CI 0.9M to 1.5M, better in 97% of worlds'."""
    more = "more" if row.diff >= 0 else "less"
    share = "" if math.isnan(row.better_share) else f", better in {row.better_share:.0%} of worlds"
    return (
        f"{row.policy} delivers {money(abs(row.diff))} {more} than {baseline} over {span(horizon, unit)}, "
        f"95% CI {money(row.diff_ci_low)} to {money(row.diff_ci_high)}{share}"
    )
