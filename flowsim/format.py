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


def number(value: float | None, spec: str = ".1f") -> str:
    """``value`` formatted with ``spec``; 'n/a' when missing (None or NaN: e.g. nothing delivered)."""
    if value is None or math.isnan(value):
        return "n/a"
    return format(value, spec)


def signed_money(amount: float | None) -> str:
    """``money`` with a '+' on gains; 'n/a' when missing."""
    if amount is None or math.isnan(amount):
        return "n/a"
    return ("+" if amount > 0 else "") + money(amount)


def span(horizon: float, unit: str) -> str:
    per_year = 52 if unit == "week" else 365
    years = horizon / per_year
    if abs(years - round(years)) < 1e-9 and years >= 1:
        return f"{round(years)} year{'s' if round(years) != 1 else ''}"
    return f"{horizon:g} {unit}s"


def count(n: int, noun: str) -> str:
    """``1 world``, ``2 worlds``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def verdict(row, baseline: str, horizon: float, unit: str) -> str:
    """'P delivers 1.2M more than B over 3 years, 95% CI 0.9M to 1.5M, better in 97% of worlds'.

    Every amount reads in the sentence's own sense (a policy that delivers less gets
    '95% CI 0.5M to 1.5M less', not negative bounds); an interval straddling zero says
    so ('0.3M less to 0.1M more'); identical results in every world are said as such."""
    over = span(horizon, unit)
    low, high = row.diff_ci_low, row.diff_ci_high
    if row.diff == 0 and low == 0 and high == 0:
        return f"{row.policy} delivers the same as {baseline} over {over} in every world"
    more = "more" if row.diff >= 0 else "less"
    if math.isnan(low):
        ci = ", no 95% CI from one world"
    elif low >= 0:
        ci = f", 95% CI {money(low)} to {money(high)}"
    elif high <= 0:
        ci = f", 95% CI {money(-high)} to {money(-low)} less"
    else:
        ci = f", 95% CI {money(-low)} less to {money(high)} more"
    share = "" if math.isnan(row.better_share) else f", better in {row.better_share:.0%} of worlds"
    return f"{row.policy} delivers {money(abs(row.diff))} {more} than {baseline} over {over}{ci}{share}"
