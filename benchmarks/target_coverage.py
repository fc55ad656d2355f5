"""Do ``--target-ci`` runs keep the coverage of their 95% intervals?

A ``--target-ci`` run stops at the first chunk boundary where the paired CI is narrow
enough, so how many worlds an interval rests on depends on the spread it has seen:
a run that meets a small spread by chance stops early with an interval too narrow
(sequential fixed-width intervals, Chow and Robbins 1965).  This study measures the
cost on the closed-form backlog of ``tests/test_ci_coverage.py`` (six exponential jobs
on one person; every mean a Gamma integral, ``TRUTH`` there), on runs of flowsim
itself: ``flowsim.run(..., target_ci=..., workers=1)``, one process, one run per seed.

For each run it scores three intervals of ``Results.summary()`` against the truth:
the paired difference ``value - fifo`` in value delivered (the one the rule stops on,
skewness 0.4), fifo's mean value delivered and fifo's value delayed (skewness 0.3).

Baseline: fixed-length intervals of matching length.  Run ``s`` (in seed order) gets
the length the *previous* run stopped at (the last run's goes to the first), so the
lengths have exactly the distribution of the ``--target-ci`` runs but are chosen
without looking at the worlds they are scored on.  The fixed interval is on the same
seed (a ``--target-ci`` run is the prefix of a fixed run, ``test_replication_count``),
so the two are paired and their difference is estimated from per-seed differences.
Where the fixed length is at most the run's own, it is the t interval of that prefix
(``flowsim.stats.mean_ci``, what ``summary()`` computes); otherwise a fixed run of
that length (``flowsim.run(replications=...)``).

Standard errors: binomial, sqrt(p (1 - p) / runs); the difference's from the spread
of the per-seed differences of the two 0/1 outcomes.  A shortfall counts as shown at
4 SE.

``--mirror`` runs the same rule on an independent numpy implementation of the model
(not flowsim; the test checks the engine computes exactly these sums) for many more
runs, to compare stopping rules cheaply; flowsim runs then confirm the one chosen.

    python benchmarks/target_coverage.py --setting chunks10 --runs 6000   # about 20 min on one core
    python benchmarks/target_coverage.py --setting chunks25 --runs 1500   # about 8 min
    python benchmarks/target_coverage.py --mirror --runs 100000           # about 30 s

Results (paired difference value - fifo; fifo's mean and value delayed in the output).
Stops judged from 10 replications on (flowsim before ``JUDGED_FROM``):

    chunks10, 6,000 runs, mean 29.8 worlds (10: 8%, 20: 24%, 30: 36%, 40: 25%, 50+: 7%):
        0.938 +- 0.003, fixed length 0.952 +- 0.003, difference -0.014 +- 0.003 (-4.6 SE);
        251 of 370 misses with the interval below the truth (fixed: 168 of 288)
    chunks25, 1,500 runs, mean 66.8 worlds (25: 3%, 50: 35%, 75: 54%, 100+: 8%):
        0.945 +- 0.006, fixed 0.956 +- 0.005, difference -0.011 +- 0.005 (-2.3 SE)
    mirror, 100,000 runs: chunks10 0.936 (-0.014 +- 0.001 from fixed length),
        chunks25 0.943 (-0.006 +- 0.001)

Judged from 30 on (flowsim now): chunks10, 3,000 runs (the first 3,000 seeds above),
mean 33.9 worlds (30: 68%, 40: 25%, 50+: 7%): 0.949 +- 0.004, fixed 0.949 +- 0.004,
difference +0.000 +- 0.003; mirror chunks10 0.949 (-0.001 +- 0.001) at 34.0 worlds
instead of 29.7, chunks25 0.947 (-0.002 +- 0.001) at 67.8 instead of 66.9.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_ci_coverage import BACKLOG, BY_VALUE, FIFO, HORIZON, RATES, TRUTH  # noqa: E402

import flowsim  # noqa: E402
from flowsim.runner import default_chunk_size  # noqa: E402
from flowsim.stats import mean_ci  # noqa: E402
from flowsim.target import JUDGED_FROM  # noqa: E402

LEVEL = 0.95
OLD_MINIMUM = 10  # --target-ci judged stops from its minimum, 10 by default, before JUDGED_FROM
Z = 4.0

# name: (policy, metric, paired with fifo)
INTERVALS = {
    "value - fifo value_delivered": ("value", "value_delivered", True),
    "fifo value_delivered": ("fifo", "value_delivered", False),
    "fifo value_delayed": ("fifo", "value_delayed", False),
}


@dataclass(frozen=True)
class Setting:
    target: float
    max_replications: int
    seeds: int  # first seed

    @property
    def chunk(self) -> int:
        return default_chunk_size(self.max_replications)


SETTINGS = {
    # The CLI's default maximum: chunks of 25, stops after 25 to 125 worlds (most at 50 or 75).
    "chunks25": Setting(target=0.1, max_replications=1000, seeds=100_000),
    # --max-replications 80: chunks of 10, stops after 10 to 80 worlds (most at 20 to 40).
    "chunks10": Setting(target=0.15, max_replications=80, seeds=200_000),
}


# --------------------------------------------------------------------------- flowsim runs


def intervals_of(results) -> np.ndarray:
    """(mean, low, high) per interval, as ``Results.summary()`` reports them."""
    table = results.summary().set_index(["policy", "metric"])
    rows = []
    for policy, metric, paired in INTERVALS.values():
        row = table.loc[(policy, metric)]
        rows.append(row[["diff", "diff_ci_low", "diff_ci_high"] if paired else ["mean", "ci_low", "ci_high"]])
    return np.array(rows, dtype=float)


def values_of(results) -> dict[str, np.ndarray]:
    frame = results.replications.sort_values("replication")
    return {
        (policy, metric): frame.loc[frame["policy"] == policy, metric].to_numpy(float)
        for policy in ("fifo", "value")
        for metric in ("value_delivered", "value_delayed")
    }


def prefix_intervals(values: dict, n: int) -> np.ndarray:
    rows = []
    for policy, metric, paired in INTERVALS.values():
        x = values[(policy, metric)][:n]
        rows.append(mean_ci(x - values[("fifo", metric)][:n] if paired else x, LEVEL))
    return np.array(rows, dtype=float)


def covered(intervals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per interval (columns): covered, and missed with the truth above (the interval low)."""
    truth = np.array([TRUTH[name] for name in INTERVALS])
    low, high = intervals[..., 1], intervals[..., 2]
    return (low <= truth) & (truth <= high), high < truth


def flowsim_study(setting: Setting, runs: int, minimum: int | None, fixed: bool) -> None:
    seeds = range(setting.seeds, setting.seeds + runs)
    started = time.time()
    target, lengths, values = [], [], []
    for k, seed in enumerate(seeds):
        results = flowsim.run(
            BACKLOG,
            target_ci=setting.target,
            max_replications=setting.max_replications,
            replications=minimum,
            seed=seed,
            workers=1,
        )
        target.append(intervals_of(results))
        lengths.append(results.manifest["replications_completed"])
        values.append(values_of(results))
        if (k + 1) % 500 == 0:
            print(f"  {k + 1} runs, {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    target, lengths = np.array(target), np.array(lengths)
    settings = results.manifest["target"]
    print(
        f"--target-ci {setting.target} --max-replications {setting.max_replications} (chunks of {setting.chunk}),"
        f" minimum {settings['min_replications']}, judged from {settings.get('judged_from', '-')}:"
        f" {runs} runs, seeds {seeds.start}-{seeds.stop - 1}, {time.time() - started:.0f} s"
    )
    show_lengths(lengths)
    hit, low = covered(target)
    if not fixed:
        for j, name in enumerate(INTERVALS):
            p = hit[:, j].mean()
            se = binomial_se(p, runs)
            print(f"  {name:30s} --target-ci {p:.4f} +- {se:.4f} ({zscore(p, runs):+.1f} SE from 0.95)")
        return
    started = time.time()
    matched = np.roll(lengths, 1)  # the previous run's length: same distribution, blind to these worlds
    baseline = []
    for k, (seed, n) in enumerate(zip(seeds, matched, strict=True)):
        if n <= lengths[k]:
            baseline.append(prefix_intervals(values[k], n))
        else:
            baseline.append(intervals_of(flowsim.run(BACKLOG, replications=int(n), seed=seed, workers=1)))
        if k < 3 and n <= lengths[k]:  # the prefix is what a fixed run of that length reports
            check = intervals_of(flowsim.run(BACKLOG, replications=int(n), seed=seed, workers=1))
            assert np.allclose(check, baseline[-1], rtol=1e-12), (seed, n)
    baseline = np.array(baseline)
    print(f"  fixed-length baseline: {runs} runs of the same lengths, {time.time() - started:.0f} s")
    report(hit, low, *covered(baseline))


def show_lengths(lengths: np.ndarray) -> None:
    sizes, counts = np.unique(lengths, return_counts=True)
    shares = ", ".join(f"{s}: {c / len(lengths):.3f}" for s, c in zip(sizes, counts, strict=True))
    print(f"  worlds per run: mean {lengths.mean():.1f}; {shares}")


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), LEVEL * (1 - LEVEL) / n) / n)


def zscore(p: float, n: int) -> float:
    return (p - LEVEL) / binomial_se(p, n)


def report(hit, low, fixed_hit, fixed_low) -> None:
    runs = len(hit)
    print(f"  {'interval':30s} {'--target-ci':>17s} {'fixed length':>17s} {'difference':>17s}  misses low/high")
    for j, name in enumerate(INTERVALS):
        p, q = hit[:, j].mean(), fixed_hit[:, j].mean()
        d = hit[:, j].astype(float) - fixed_hit[:, j]
        d_se = d.std(ddof=1) / math.sqrt(runs)
        misses = f"{low[:, j].sum()}/{(~hit[:, j] & ~low[:, j]).sum()}"
        fixed_misses = f"{fixed_low[:, j].sum()}/{(~fixed_hit[:, j] & ~fixed_low[:, j]).sum()}"
        print(
            f"  {name:30s} {p:.4f} +- {binomial_se(p, runs):.4f} {q:.4f} +- {binomial_se(q, runs):.4f} "
            f"{p - q:+.4f} +- {d_se:.4f}  {misses} vs {fixed_misses}"
        )
        print(
            f"  {'':30s} ({zscore(p, runs):+.1f} SE)       ({zscore(q, runs):+.1f} SE)       "
            f"({(p - q) / d_se if d_se else 0:+.1f} SE)"
        )


# --------------------------------------------------------------------------- numpy mirror


def mirror_values(runs: int, worlds: int, seed: int) -> dict[str, np.ndarray]:
    """The model in numpy (as ``reference_worlds`` in the test): runs x worlds per interval,
    and fifo's value delivered (the rule's baseline)."""
    rates = np.asarray(RATES)
    out = {name: np.empty((runs, worlds)) for name in INTERVALS}
    rng = np.random.default_rng(seed)
    for start in range(0, runs, 5000):
        efforts = rng.exponential(1.0, size=(min(5000, runs - start), worlds, len(RATES)))

        def total(order, efforts=efforts):
            done = np.cumsum(efforts[..., order], axis=-1)
            return (rates[order] * np.clip(HORIZON - done, 0.0, None)).sum(axis=-1)

        fifo, value = total(FIFO), total(BY_VALUE)
        ideal = (rates * np.clip(HORIZON - efforts, 0.0, None)).sum(axis=-1)
        rows = slice(start, start + len(efforts))
        out["value - fifo value_delivered"][rows] = value - fifo
        out["fifo value_delivered"][rows] = fifo
        out["fifo value_delayed"][rows] = ideal - fifo
    return out


class Prefixes:
    """Means and t half-widths of every prefix length, from running sums."""

    def __init__(self, values: dict[str, np.ndarray]):
        self.sums = {k: np.cumsum(v, axis=1) for k, v in values.items()}
        self.squares = {k: np.cumsum(v**2, axis=1) for k, v in values.items()}

    def at(self, name: str, n: int, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
        mean = self.sums[name][:, n - 1] / n
        variance = np.maximum(self.squares[name][:, n - 1] - n * mean**2, 0.0) / (n - 1)
        return mean, stats.t.ppf(0.5 + level / 2, n - 1) * np.sqrt(variance / n)


@dataclass(frozen=True)
class Rule:
    label: str
    minimum: int  # no stop judged on fewer replications
    level: float = LEVEL  # of the half-width the rule stops on
    consecutive: int = 1  # boundaries in a row meeting the target


def mirror_stops(prefixes: Prefixes, setting: Setting, rule: Rule, worlds: int) -> np.ndarray:
    runs = len(prefixes.sums["fifo value_delivered"])
    ends = list(range(setting.chunk, setting.max_replications + 1, setting.chunk))
    stop = np.full(runs, ends[-1])
    decided = np.zeros(runs, bool)
    streak = np.zeros(runs, int)
    for end in ends:
        if end > worlds:
            break
        if end < rule.minimum and end < setting.max_replications:
            continue
        base, _ = prefixes.at("fifo value_delivered", end)
        _, half = prefixes.at("value - fifo value_delivered", end, rule.level)
        streak = np.where(half <= setting.target * np.abs(base), streak + 1, 0)
        new = ~decided & (streak >= rule.consecutive)
        stop[new], decided = end, decided | new
    assert decided.all() or ends[-1] <= worlds, "mirror: too few worlds drawn for this rule"
    return stop


def mirror_study(runs: int) -> None:
    rules = [
        Rule(f"from {OLD_MINIMUM} (flowsim before)", minimum=OLD_MINIMUM),
        Rule("from 20", minimum=20),
        Rule(f"from {JUDGED_FROM} (flowsim now)", minimum=JUDGED_FROM),
        Rule("from 50", minimum=50),
        Rule("two boundaries in a row", minimum=OLD_MINIMUM, consecutive=2),
        Rule("on a 99% half-width", minimum=OLD_MINIMUM, level=0.99),
    ]
    truth = np.array([TRUTH[name] for name in INTERVALS])
    for name, setting in SETTINGS.items():
        worlds = 300 if setting.max_replications > 300 else setting.max_replications
        prefixes = Prefixes(mirror_values(runs, worlds, seed=setting.seeds))
        print(f"mirror, {name}: --target-ci {setting.target}, chunks of {setting.chunk}, {runs} runs")
        for rule in rules:
            stop = mirror_stops(prefixes, setting, rule, worlds)
            fixed = np.roll(stop, 1)
            cells = []
            for j, interval in enumerate(INTERVALS):
                hit, fixed_hit = np.zeros(runs, bool), np.zeros(runs, bool)
                for n in np.unique(np.concatenate([stop, fixed])):
                    mean, half = prefixes.at(interval, int(n))
                    ok = np.abs(mean - truth[j]) <= half
                    hit[stop == n], fixed_hit[fixed == n] = ok[stop == n], ok[fixed == n]
                d = hit.astype(float) - fixed_hit
                cells.append(f"{hit.mean():.4f} ({d.mean():+.4f} +- {d.std(ddof=1) / math.sqrt(runs):.4f})")
            print(f"  {rule.label:28s} mean worlds {stop.mean():6.1f}  " + "  ".join(cells))
    print(f"  columns: {', '.join(INTERVALS)}: coverage (difference from fixed length +- SE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="chunks10")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--replications", type=int, default=None, help="the minimum (default: flowsim's)")
    parser.add_argument("--no-fixed", action="store_true", help="skip the fixed-length baseline")
    parser.add_argument("--mirror", action="store_true", help="the numpy mirror instead of flowsim runs")
    args = parser.parse_args()
    if args.mirror:
        mirror_study(args.runs)
    else:
        flowsim_study(SETTINGS[args.setting], args.runs, args.replications, fixed=not args.no_fixed)


if __name__ == "__main__":
    main()
