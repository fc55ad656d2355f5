"""What common random numbers save: paired vs unpaired CIs of policy differences.

Runs ``--replications`` worlds of a scenario (default scenarios/default.yaml, 100)
under every policy (or ``--policy``).  For each non-baseline policy and metric
it prints the paired CI half-width of its difference from the baseline (the
same worlds: var(a - b)), the unpaired Welch half-width from the same values
(as if the worlds were independent: var(a) + var(b)), the correlation of the
two policies across worlds, and how many replications each design needs for
the same half-width (``--half-width`` x the baseline's mean):
n_unpaired / n_paired is about (var(a) + var(b)) / var(a - b).  In the
unpaired design each policy needs its own n worlds.

    .venv/bin/python benchmarks/variance.py [--replications 100] [--half-width 0.01]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import flowsim
from flowsim.format import money
from flowsim.runner import execute
from flowsim.stats import paired_ci, replications_needed, welch_ci

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("value_delivered", "value_delayed", "npv", "cycle_time_mean")


def welch_df(var_a: float, var_b: float):
    """Welch-Satterthwaite degrees of freedom with n replications in each arm."""
    return lambda n: (var_a + var_b) ** 2 * (n - 1) / (var_a**2 + var_b**2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "default.yaml"))
    parser.add_argument("--replications", type=int, default=100)
    parser.add_argument("--policy", action="append", help="policy to include (repeat); default: all")
    parser.add_argument("--half-width", type=float, default=0.01, help="target half-width, x the baseline's mean")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    scenario = flowsim.load_scenario(args.scenario)
    started = time.perf_counter()
    results = execute(scenario, replications=args.replications, policies=args.policy, workers=args.workers)
    print(f"{scenario.name}: {args.replications} replications in {time.perf_counter() - started:.1f} s")
    frame = results.replications
    values = {
        p: frame[frame["policy"] == p].sort_values("replication") for p in results.policies
    }  # fmt: skip
    base = results.baseline
    print(f"baseline {base}; target half-width {args.half_width:g} x the baseline's mean; 95% CIs\n")
    header = (f"{'policy':<18}{'metric':<17}{'corr':>6}{'paired +-':>11}{'Welch +-':>11}{'width ratio':>12}"
              f"{'n paired':>10}{'n unpaired':>12}{'n ratio':>9}{'var ratio':>11}")  # fmt: skip
    print(header)
    for policy in results.policies[1:]:
        for metric in METRICS:
            a = values[policy][metric].to_numpy(dtype=float)
            b = values[base][metric].to_numpy(dtype=float)
            keep = ~(np.isnan(a) | np.isnan(b))
            a, b = a[keep], b[keep]
            _d, low, high = paired_ci(a, b)
            _w, w_low, w_high = welch_ci(a, b)
            var_a, var_b, var_d = np.var(a, ddof=1), np.var(b, ddof=1), np.var(a - b, ddof=1)
            target = args.half_width * abs(b.mean())
            n_paired = replications_needed(var_d, target)
            n_unpaired = replications_needed(var_a + var_b, target, df=welch_df(var_a, var_b))
            show = money if metric.startswith(("value", "npv")) else (lambda x: f"{x:.3g}")
            print(
                f"{policy:<18}{metric:<17}{np.corrcoef(a, b)[0, 1]:6.2f}{show((high - low) / 2):>11}"
                f"{show((w_high - w_low) / 2):>11}{(w_high - w_low) / (high - low):11.2f}x"
                f"{n_paired:10d}{n_unpaired:12d}{n_unpaired / n_paired:8.2f}x{(var_a + var_b) / var_d:10.2f}x"
            )


if __name__ == "__main__":
    main()
