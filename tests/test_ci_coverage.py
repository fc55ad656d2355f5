"""Do the confidence intervals flowsim reports cover the truth as often as they say?

``test_replication_count`` checks the formulas against scipy; this module checks the
intervals flowsim prints for its own simulation outputs.  Each interval comes from the
code path a user meets: ``Results.summary()`` (summary.csv, ``compare()``, the verdicts
``flowsim run`` prints: a policy's mean and its paired difference from the baseline) and
``whatif.stop`` (the what-if table's CIs); each from its own run of ``worlds``
replications with its own seed, as a user's run would be.  Counting how many of ``cis``
such intervals contain the true mean gives the coverage, compared with the nominal 0.95.

The truth.  A backlog of six projects on one person (capacity 1), all waiting at time 0,
each one exponential stage of mean 1 week, each earning ``rate`` per week from delivery,
horizon H = 6 weeks.  A project in queue position j is delivered at the sum of j
exponential efforts, a Gamma(j) time C_j, so E[value] = rate * E[(H - C_j)+] with
E[(H - C)+] = H F_j(H) - j F_{j+1}(H) (F_j the Gamma(j, 1) distribution function): every
mean below is exact, from the order each policy works in (``fifo``: file order;
``value``: highest rate first; stopping p3: the others move up).  Efforts are drawn per
project id, so one seed and replication give every policy and variant the same efforts:
the differences are paired (``test_engine_computes_the_models_sums`` checks that the
engine computes exactly these sums on its own draws).

The deadlines teaching scenario (fines, market windows, triangular efforts: a skewed,
lumpy value) has no closed form; its truth is the mean of a much larger run with other
seeds (slow test only).

Tolerances.  With ``cis`` independent intervals (different seeds) the number covering is
binomial, so the coverage is held to 0.95 +- ``Z`` = 4 binomial standard errors,
sqrt(0.95 x 0.05 / cis): 0.062 at 200 intervals, 0.044 at 400.  A 4-SE miss happens by
chance with probability below 1e-4; the tests are seeded, so a given engine gives a given
verdict.  The upper bound exceeds 1 below 304 intervals, so an interval too wide (pairs
treated as unpaired, say, which covers nearly always) would pass a count; each interval's
width is therefore also checked against the spread it should reflect (``check_width``).

The Student-t interval is exact only for normal data.  On these metrics, the same model
computed in numpy while writing this module (2 million worlds, not flowsim) gives
t intervals a coverage of 0.946-0.951 at 10 worlds and 0.949-0.950 at 100 for every
interval tested by default, so a correct flowsim sits at the centre of the tolerance;
what the skewed ones left out at 10 worlds give is said where they are left out.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import cache, partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

import flowsim
from flowsim.analysis import whatif
from flowsim.runner import chunks_of, default_chunk_size
from flowsim.scenario.load import scenario_from_dict
from flowsim.stats import mean_ci, welch_ci
from flowsim.store import chunk_name
from flowsim.tables import Categories
from flowsim.target import JUDGED_FROM, Target, TargetTracker, make_target

ROOT = Path(__file__).resolve().parents[1]

LEVEL = 0.95  # every interval flowsim reports is a 95% interval
Z = 4.0  # tolerance in standard errors

RATES = (1000.0, 3000.0, 2000.0, 4000.0, 1500.0, 2500.0)  # p0..p5, in file (fifo) order
HORIZON = 6.0
STOPPED = 3  # p3: stopped in the what-if


@dataclass(frozen=True)
class Design:
    cis: int  # intervals counted
    worlds: int  # replications behind each interval: its own run, its own seed


# Default: 200 intervals of 10 worlds each (7-9 s per family of intervals on two cores); the slow
# variant uses the CLI's default of 100 worlds per interval and 400 intervals, enough for
# the upper bound of the count (0.994) to mean something.
DESIGNS = [
    pytest.param(Design(cis=200, worlds=10), id="200x10"),
    pytest.param(Design(cis=400, worlds=100), marks=pytest.mark.slow, id="400x100"),
]


# --------------------------------------------------------------------------- the truth


def backlog_data() -> dict:
    return {
        "name": "backlog on one person",
        "horizon": HORIZON,
        "seed": 1,
        "teams": {"team": {"capacity": 1}},
        "projects": [
            {
                "id": f"p{i}",
                "value": {"rate": rate},
                "stages": [{"team": "team", "effort": {"dist": "exponential", "mean": 1.0}}],
            }
            for i, rate in enumerate(RATES)
        ],
        "policies": {
            "fifo": {"intake": "admit_all", "sequencing": "fifo"},
            "value": {"intake": "admit_all", "sequencing": "value"},
        },
    }


BACKLOG = scenario_from_dict(backlog_data(), source="<test_ci_coverage>")
FIFO = list(range(len(RATES)))
BY_VALUE = sorted(FIFO, key=lambda i: -RATES[i])
WITHOUT_STOPPED = [i for i in FIFO if i != STOPPED]


def left_at_horizon(position: int) -> float:
    """E[(H - C)+] for C ~ Gamma(position, 1): the expected weeks of value of the project
    delivered ``position``-th.  E[(H - C)+] = H P(C <= H) - E[C; C <= H], and for a Gamma(j)
    E[C; C <= H] = j P(Gamma(j + 1) <= H)."""
    return HORIZON * stats.gamma.cdf(HORIZON, position) - position * stats.gamma.cdf(HORIZON, position + 1)


def expected_value(order: list[int]) -> float:
    """Mean value delivered by the horizon when the projects are worked in ``order``."""
    return sum(RATES[i] * left_at_horizon(position) for position, i in enumerate(order, start=1))


TRUTH = {
    "fifo value_delivered": expected_value(FIFO),
    "fifo value_delayed": sum(RATES) * left_at_horizon(1) - expected_value(FIFO),
    "value value_delivered": expected_value(BY_VALUE),
    "value - fifo value_delivered": expected_value(BY_VALUE) - expected_value(FIFO),
    "stop net": expected_value(WITHOUT_STOPPED) - expected_value(FIFO),
    "stop lost": RATES[STOPPED] * left_at_horizon(STOPPED + 1),
}
TRUTH["stop freed"] = TRUTH["stop net"] + TRUTH["stop lost"]


def reference_worlds(count: int, seed: int) -> dict[str, np.ndarray]:
    """The same metrics computed in numpy from ``count`` worlds of exponential efforts
    (an independent implementation of the model, not flowsim): their variances are what
    each interval's width must reflect."""
    rates = np.asarray(RATES)
    efforts = np.random.default_rng(seed).exponential(1.0, size=(count, len(RATES)))

    def total(order: list[int]) -> np.ndarray:
        done = np.cumsum(efforts[:, order], axis=1)
        return (rates[order] * np.clip(HORIZON - done, 0.0, None)).sum(axis=1)

    fifo = total(FIFO)
    ideal = (rates * np.clip(HORIZON - efforts, 0.0, None)).sum(axis=1)
    lost = rates[STOPPED] * np.clip(HORIZON - efforts[:, : STOPPED + 1].sum(axis=1), 0.0, None)
    net = total(WITHOUT_STOPPED) - fifo
    return {
        "fifo value_delivered": fifo,
        "fifo value_delayed": ideal - fifo,
        "value value_delivered": total(BY_VALUE),
        "value - fifo value_delivered": total(BY_VALUE) - fifo,
        "stop net": net,
        "stop lost": lost,
        "stop freed": net + lost,
    }


@dataclass(frozen=True)
class Spread:
    variance: float  # of one world's value
    se: float  # of that variance estimate


def spread_of(values: np.ndarray) -> Spread:
    """Sample variance of one world's value, and its SE: sqrt((mu4 - sigma^4) / n)."""
    centred = values - values.mean()
    variance = float(centred.var(ddof=1))
    return Spread(variance, math.sqrt(max(float(np.mean(centred**4)) - variance**2, 0.0) / len(values)))


@cache
def reference() -> dict[str, np.ndarray]:
    return reference_worlds(400_000, seed=20240601)


@cache
def reference_spread() -> dict[str, Spread]:
    return {name: spread_of(values) for name, values in reference().items()}


def test_reference_model_is_the_theory():
    """The numpy reference gives the closed-form means (within 4 SE of 400,000 worlds), so the
    variances it supplies are those of the model whose means are the truth."""
    for name, values in reference().items():
        se = values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - TRUTH[name]) < Z * se, (name, values.mean(), TRUTH[name], se)


def test_engine_computes_the_models_sums():
    """The premise of the closed forms, on flowsim's own draws: each replication's value
    delivered is, exactly, the sum over projects of rate x (H - delivery)+ with deliveries
    at the partial sums of the realised efforts in fifo or value order."""
    results = flowsim.run(BACKLOG, replications=20, seed=5, workers=1)
    projects = results.projects.sort_values(["policy", "replication", "project"])
    metrics = results.replications.set_index(["policy", "replication"])["value_delivered"]
    for policy, order in (("fifo", FIFO), ("value", BY_VALUE)):
        for replication in range(20):
            rows = projects[(projects["policy"] == policy) & (projects["replication"] == replication)]
            efforts = rows["effort_actual"].to_numpy()
            delivered = np.empty(len(RATES))
            delivered[order] = np.cumsum(efforts[order])
            # Delivered at the partial sums; after the horizon, not delivered (NaN).
            assert np.allclose(
                rows["delivered"].to_numpy(),
                np.where(delivered <= HORIZON, delivered, np.nan),
                equal_nan=True,
                rtol=1e-12,
                atol=1e-9,
            )
            expected = float(np.sum(np.asarray(RATES) * np.clip(HORIZON - delivered, 0.0, None)))
            assert metrics[(policy, replication)] == pytest.approx(expected, rel=1e-12, abs=1e-6)


# --------------------------------------------------------------------------- checks


def truth_allowance(truth_se: float, interval_se: float) -> float:
    """Coverage an exact interval loses when the truth it is scored against is off by
    ``Z`` of its own standard errors: 0.95 - P(|N(d, 1)| < 1.96), d = Z truth_se / interval_se
    (normal approximation).  0 for a truth known in closed form."""
    if truth_se == 0:
        return 0.0
    q = stats.norm.ppf(0.5 + LEVEL / 2)
    d = Z * truth_se / interval_se
    return LEVEL - float(stats.norm.cdf(q - d) - stats.norm.cdf(-q - d))


def check_coverage(
    name: str, intervals: np.ndarray, truth: float, truth_se: float = 0.0, sd: float = 0.0, worlds: int = 1
) -> float:
    """``intervals``: rows of (mean, low, high) as flowsim reported them.  The share holding
    ``truth`` is within Z binomial SEs of 0.95, less ``truth_allowance`` below; prints the
    numbers (``pytest -s`` shows them), misses below and above the truth apart."""
    low, high = intervals[:, 1], intervals[:, 2]
    assert not np.isnan(intervals).any(), name
    # The binomial tolerance takes the intervals to be independent: different seeds, different worlds.
    assert len(np.unique(intervals[:, 0])) == len(intervals), f"{name}: some intervals repeat one another"
    covered = float(np.mean((low <= truth) & (truth <= high)))
    count = len(intervals)
    se = math.sqrt(LEVEL * (1 - LEVEL) / count)
    allowance = truth_allowance(truth_se, sd / math.sqrt(worlds))
    line = (
        f"{name}: covered {covered:.3f} of {count} (nominal {LEVEL}, tolerance {Z:g} x {se:.4f}"
        f"{f' + {allowance:.4f} for the truth' if allowance else ''}); missed low {np.sum(high < truth)}, "
        f"high {np.sum(low > truth)}; truth {truth:,.1f}"
    )
    print(line)
    assert LEVEL - Z * se - allowance <= covered <= LEVEL + Z * se, line
    return covered


def check_width(name: str, intervals: np.ndarray, worlds: int, spread: Spread) -> float:
    """Each interval's half-width implies the sample variance it was built from:
    s^2 = (half-width x sqrt(n) / t(0.975, n - 1))^2.  With the n - 1 divisor a sample
    variance is unbiased for any distribution, so their mean must equal the variance of one
    world's value (a paired difference: the variance of the differences).  Too narrow (z for
    t, no n - 1) or too wide (pairs as unpaired) both fail."""
    half = (intervals[:, 2] - intervals[:, 1]) / 2
    return check_variance(name, (half * math.sqrt(worlds) / stats.t.ppf(0.5 + LEVEL / 2, worlds - 1)) ** 2, spread)


def check_variance(name: str, implied: np.ndarray, spread: Spread) -> float:
    """The mean of the variances the intervals imply equals the reference ``spread`` within
    Z standard errors: that of the mean of ``implied`` (their spread over the intervals)
    and the reference's own, in quadrature."""
    se = math.sqrt(implied.var(ddof=1) / len(implied) + spread.se**2)
    ratio = implied.mean() / spread.variance
    line = (
        f"{name}: mean implied variance / reference {ratio:.3f} "
        f"(t {(implied.mean() - spread.variance) / se:+.2f} SE, SE {se / spread.variance:.3f})"
    )
    print(line)
    assert abs(implied.mean() - spread.variance) <= Z * se, line
    return ratio


# --------------------------------------------------------------------------- summary


def across_seeds(task, setting, seeds: range) -> list:
    """``task(setting, seed)`` for every seed, in seed order, on two forked processes (the
    intervals are independent, and this machine has two cores); each run itself on one."""
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("fork")) as pool:
        return list(pool.map(partial(task, setting), seeds, chunksize=10))


def summary_rows(worlds: int, seed: int) -> dict[str, np.ndarray]:
    """One run of both policies: the rows of ``Results.summary()`` (as summary.csv holds
    them) for fifo and value, and each policy's value delivered per replication."""
    results = flowsim.run(BACKLOG, replications=worlds, seed=seed, workers=1)
    table = results.summary().set_index(["policy", "metric"])
    fifo, value = table.loc[("fifo", "value_delivered")], table.loc[("value", "value_delivered")]
    assert fifo["n"] == value["n"] == worlds
    frame = results.replications.sort_values("replication")
    return {
        "fifo value_delivered": fifo[["mean", "ci_low", "ci_high"]].to_numpy(float),
        "fifo value_delayed": table.loc[("fifo", "value_delayed"), ["mean", "ci_low", "ci_high"]].to_numpy(float),
        "value - fifo value_delivered": value[["diff", "diff_ci_low", "diff_ci_high"]].to_numpy(float),
        **{p: frame.loc[frame["policy"] == p, "value_delivered"].to_numpy(float) for p in ("fifo", "value")},
    }


@dataclass
class Runs:
    design: Design
    rows: dict[str, np.ndarray]  # name -> one row per seed: (mean, low, high), or a policy's values


def stacked(design: Design, rows: list[dict[str, np.ndarray]]) -> Runs:
    return Runs(design, {name: np.stack([row[name] for row in rows]) for name in rows[0]})


@pytest.fixture(scope="module", params=DESIGNS)
def summary_runs(request) -> Runs:
    """``cis`` runs of both policies, seeds 1000, 1001, ..."""
    design: Design = request.param
    return stacked(design, across_seeds(summary_rows, design.worlds, range(1000, 1000 + design.cis)))


@pytest.mark.parametrize("name", ["fifo value_delivered", "fifo value_delayed"])
def test_summary_mean_ci_covers_the_true_mean(summary_runs, name):
    """A policy's mean and 95% CI in summary.csv, for the value it delivers and the value
    it delays, against the closed-form means; and the widths against the reference
    variance (an interval that is right on average but too wide would pass the count)."""
    design = summary_runs.design
    intervals = summary_runs.rows[name]
    check_coverage(name, intervals, TRUTH[name])
    check_width(name, intervals, design.worlds, reference_spread()[name])


def test_summary_paired_difference_covers_the_true_difference(summary_runs):
    """The paired difference from the baseline in summary.csv (``diff``, ``diff_ci_*``: what
    ``compare()`` and the printed verdicts say), value minus fifo, against the closed-form
    difference.  Its width must reflect the variance of the differences on the same worlds,
    var(a) + var(b) - 2 cov(a, b), which here is 0.36 of var(a) + var(b) (correlation 0.64
    in the reference): an interval treating the pairs as independent (Welch) is about 1.6
    times as wide and covers nearly always (planted while writing this test: 0.995 of
    200, which the count alone accepts; the width check fails at 24 SE)."""
    design = summary_runs.design
    name = "value - fifo value_delivered"
    intervals = summary_runs.rows[name]
    check_coverage(name, intervals, TRUTH[name])
    check_width(name, intervals, design.worlds, reference_spread()[name])


def test_welch_ci_covers_on_independent_worlds(summary_runs):
    """``flowsim.stats.welch_ci`` (the unpaired interval ``benchmarks/variance.py`` reports
    to show what pairing saves) is valid when the two samples ARE independent: value from
    run 2k + 1 against fifo from run 2k (different seeds, so different worlds), disjoint
    pairs of runs so the intervals are independent; half as many intervals, so a wider
    tolerance (0.087 at 100).  The reference gives 0.951 for this construction at 10 worlds.

    Width: half-width / t(0.975, df) is sqrt(var_a / n + var_b / n), whose square times n
    is unbiased for var(a) + var(b); df is Welch-Satterthwaite's from the same values.  The
    two reference variances come from the same reference worlds, so their SEs are added,
    not taken in quadrature (an upper bound whatever their correlation)."""
    design = summary_runs.design
    n = design.worlds
    fifo, value = summary_runs.rows["fifo"][0::2], summary_runs.rows["value"][1::2]
    intervals = np.array([welch_ci(b, a) for a, b in zip(fifo, value, strict=True)])
    name = "Welch, value - fifo on independent worlds"
    check_coverage(name, intervals, TRUTH["value value_delivered"] - TRUTH["fifo value_delivered"])
    va, vb = fifo.var(axis=1, ddof=1) / n, value.var(axis=1, ddof=1) / n
    df = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / (n - 1))
    half = (intervals[:, 2] - intervals[:, 1]) / 2
    a, b = reference_spread()["fifo value_delivered"], reference_spread()["value value_delivered"]
    check_variance(
        name, n * (half / stats.t.ppf(0.5 + LEVEL / 2, df)) ** 2, Spread(a.variance + b.variance, a.se + b.se)
    )


# --------------------------------------------------------------------------- what-if


def stop_rows(worlds: int, seed: int) -> dict[str, np.ndarray]:
    """One what-if analysis, stopping p3 now under fifo: the table's ``net``, ``lost`` and
    ``freed`` (mean, CI)."""
    answer = whatif.stop(BACKLOG, [f"p{STOPPED}"], replications=worlds, seed=seed, policy="fifo", workers=1)
    (row,) = answer.table.to_dict("records")
    return {
        f"stop {part}": np.array([row[f"{part}_mean"], row[f"{part}_ci_low"], row[f"{part}_ci_high"]], dtype=float)
        for part in ("net", "lost", "freed")
    }


@pytest.fixture(scope="module", params=DESIGNS)
def stop_runs(request) -> Runs:
    """``cis`` what-if analyses, seeds 5000, 5001, ..."""
    design: Design = request.param
    return stacked(design, across_seeds(stop_rows, design.worlds, range(5000, 5000 + design.cis)))


def test_whatif_stop_ci_covers_the_true_change(stop_runs):
    """``whatif stop``: the change in total value if p3 were stopped now (``net``, a paired
    difference between the scenario and its variant on the same worlds) and the value p3
    itself delivers (``lost``), against the closed forms; widths against the reference.

    ``freed`` (what the capacity brings the others) is right-skewed (skewness 1.7: most
    worlds gain little, a few a lot) and the t interval is not exact for it: the reference
    gives coverage 0.901 at 10 worlds, 0.921 at 20 and 0.942 at 100 (flowsim itself,
    400 analyses of 10 worlds: 0.903, 33 of the 39 misses below the truth).  That is the
    Student-t approximation, not a bug; it is counted only at 100 worlds (slow)."""
    design, intervals = stop_runs.design, stop_runs.rows
    names = ["stop net", "stop lost"] + (["stop freed"] if design.worlds >= 100 else [])
    for name in names:
        check_coverage(name, intervals[name], TRUTH[name])
        check_width(name, intervals[name], design.worlds, reference_spread()[name])


# --------------------------------------------------------------------------- deadlines


DEADLINES = flowsim.load_scenario(ROOT / "scenarios" / "teaching" / "deadlines.yaml")


def deadline_rows(worlds: int, seed: int) -> dict[str, np.ndarray]:
    """One run of fifo and edd on the deadlines scenario: ``Results.summary()`` rows."""
    results = flowsim.run(DEADLINES, replications=worlds, seed=seed, policies=["fifo", "edd"], workers=1)
    table = results.summary().set_index(["policy", "metric"])
    edd = table.loc[("edd", "value_delivered")]
    return {
        "fifo value_delivered": table.loc[("fifo", "value_delivered"), ["mean", "ci_low", "ci_high"]].to_numpy(float),
        "edd value_delivered": edd[["mean", "ci_low", "ci_high"]].to_numpy(float),
        "edd - fifo value_delivered": edd[["diff", "diff_ci_low", "diff_ci_high"]].to_numpy(float),
    }


@pytest.mark.slow
def test_summary_ci_coverage_on_the_deadlines_scenario():
    """The teaching deadlines scenario (fines, market windows, triangular efforts; fifo
    against edd): no closed form, so the truth is the mean of one run of 10,000 worlds
    (seed 777, none of the intervals' seeds 3000-3299), and so is the variance the widths
    are checked against.  The truth's SE is sqrt(20 / 10,000) = 0.045 of an interval's SE:
    off by 4 of them it costs an exact interval 0.004 of coverage (``truth_allowance``).

    300 intervals of 20 worlds.  fifo's value delivered is skewed (skewness 1.4: fines of
    100-200k hit some worlds and not others): resampling a 20,000-world run gives the t
    interval a coverage of 0.88 at 10 worlds, 0.92 at 20, 0.94 at 100; edd's value
    (skewness 0.8) and the paired difference (0.2) 0.93-0.95 from 10 worlds on."""
    truth_run = flowsim.run(DEADLINES, replications=10_000, seed=777, policies=["fifo", "edd"], workers=2)
    frame = truth_run.replications.sort_values("replication")
    fifo, edd = (frame.loc[frame["policy"] == p, "value_delivered"].to_numpy(float) for p in ("fifo", "edd"))
    reference = {"fifo value_delivered": fifo, "edd value_delivered": edd, "edd - fifo value_delivered": edd - fifo}
    worlds, cis = 20, 300
    runs = stacked(Design(cis, worlds), across_seeds(deadline_rows, worlds, range(3000, 3000 + cis)))
    for name, values in reference.items():
        spread = spread_of(values)
        sd = math.sqrt(spread.variance)
        truth_se = sd / math.sqrt(len(values))
        check_coverage(name, runs.rows[name], float(values.mean()), truth_se=truth_se, sd=sd, worlds=worlds)
        check_width(name, runs.rows[name], worlds, spread)


# --------------------------------------------------------------------------- --target-ci


# Chunks of 10 (--max-replications 80): the setting where stopping costs most coverage.
# Runs stopped from 10 replications on would end after 10 to 80, mostly 20 to 40; stopped
# from flowsim's JUDGED_FROM = 30 on, mostly at 30.  (benchmarks/target_coverage.py.)
TARGET_CI, TARGET_MAX = 0.15, 80


def tracked_stops(worlds: dict[str, np.ndarray], target: Target) -> np.ndarray:
    """Where flowsim's stopping rule stops each run: a ``TargetTracker`` fed the model's
    worlds (``worlds[policy]``: runs x replications of value delivered) chunk by chunk,
    as the runner feeds it each chunk's ``replications`` table."""
    categories = Categories.of(BACKLOG)
    chunks = chunks_of(target.max_replications, default_chunk_size(target.max_replications))
    policies = list(worlds)
    stops = []
    for run in range(len(worlds[policies[0]])):
        tracker = TargetTracker(target, policies, categories, chunks)
        for first, last in chunks:
            n = last - first + 1
            codes = np.repeat([categories.policies.index(p) for p in policies], n).astype(np.int16)
            table = pa.table({
                "policy": pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(list(categories.policies))),
                "replication": np.tile(np.arange(first, last + 1), len(policies)),
                target.metric: np.concatenate([worlds[p][run, first : last + 1] for p in policies]),
            })  # fmt: skip
            if tracker.add(chunk_name(first, last), table):
                break
        stops.append(tracker.stop)
    return np.array(stops)


def stopped_intervals(values: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """(mean, low, high) of each run's values up to its stop, as ``Results.summary()``
    computes them (``mean_ci``)."""
    return np.array([mean_ci(row[:n]) for row, n in zip(values, stops, strict=True)])


def check_stopping_rule(target: Target, runs: int, seed: int) -> None:
    """``runs`` runs of the model (``reference_worlds``, TARGET_MAX worlds each), stopped
    by ``TargetTracker``: the intervals at the stops cover within Z binomial SEs of 0.95,
    and, run by run, no less often than fixed-length intervals of matching length (each
    run scored at the length the previous run stopped at, blind to its own worlds; the
    difference's SE from the spread of the per-run differences)."""
    model = reference_worlds(runs * TARGET_MAX, seed)
    fifo = model["fifo value_delivered"].reshape(runs, TARGET_MAX)
    value = model["value value_delivered"].reshape(runs, TARGET_MAX)
    stops = tracked_stops({"fifo": fifo, "value": value}, target)
    print("worlds per run:", dict(zip(*np.unique(stops, return_counts=True), strict=True)))
    assert len(np.unique(stops)) >= 3  # the rule stops runs at different lengths
    matched = np.roll(stops, 1)
    for name, values in (("value - fifo value_delivered", value - fifo), ("fifo value_delivered", fifo)):
        intervals = stopped_intervals(values, stops)
        check_coverage(f"rule: {name}", intervals, TRUTH[name])
        fixed = stopped_intervals(values, matched)
        hit = (intervals[:, 1] <= TRUTH[name]) & (TRUTH[name] <= intervals[:, 2])
        fixed_hit = (fixed[:, 1] <= TRUTH[name]) & (TRUTH[name] <= fixed[:, 2])
        difference = hit.astype(float) - fixed_hit
        se = difference.std(ddof=1) / math.sqrt(runs)
        line = f"rule: {name}: coverage {hit.mean():.4f}, fixed length {fixed_hit.mean():.4f}, difference SE {se:.4f}"
        print(line)
        assert difference.mean() >= -Z * se, line


def rule_target(judged_from: int = JUDGED_FROM) -> Target:
    target = make_target(BACKLOG, ci=TARGET_CI, metric=None, replications=None, max_replications=TARGET_MAX)
    # The rule as it was: the minimum (then 10 by default) was also where stops were judged from.
    return replace(target, judged_from=judged_from, min_replications=judged_from)


RULE_RUNS, RULE_SEED = 8000, 424242  # about 6 s a check


def test_target_ci_stopping_rule_keeps_its_coverage():
    """flowsim's ``--target-ci`` rule (``TargetTracker``) on 8,000 runs of the model's worlds
    in numpy (the engine computes exactly these sums: ``test_engine_computes_the_models_sums``;
    a ``--target-ci`` run is the prefix of a fixed run: ``test_replication_count``),
    --target-ci 0.15 in chunks of 10, judged from JUDGED_FROM = 30 replications on.

    Here 0.950 for the difference (fixed-length intervals of matching length: 0.952) and
    0.957 for fifo's mean (0.951: a run going on past 30 has met a wide spread, and its
    interval covers more often).  The study behind the rule (``benchmarks/target_coverage.py``,
    100,000 runs of the same model): 0.949 and 0.952, against 0.936 and 0.944 judged from
    10 on; 6,000 flowsim runs judged from 10 on: 0.938 +- 0.003 for the difference, 4.6 SE
    below fixed lengths."""
    check_stopping_rule(rule_target(), runs=RULE_RUNS, seed=RULE_SEED)


def test_the_coverage_check_fails_stops_judged_from_10_on():
    """The check above fails on the rule as it was (stops judged from 10 replications on,
    after 10 to 70 here): the difference covered 0.938 of 8,000, below 0.95 by more than 4
    binomial SEs (0.0097)."""
    with pytest.raises(AssertionError, match="rule: value - fifo value_delivered"):
        check_stopping_rule(rule_target(judged_from=10), runs=RULE_RUNS, seed=RULE_SEED)


def target_rows(setting: tuple[float, int], seed: int) -> dict[str, np.ndarray]:
    """One ``--target-ci`` run of both policies: its summary rows and its length."""
    ci, most = setting
    results = flowsim.run(BACKLOG, target_ci=ci, max_replications=most, seed=seed, workers=1)
    table = results.summary().set_index(["policy", "metric"])
    value = table.loc[("value", "value_delivered")]
    return {
        "fifo value_delivered": table.loc[("fifo", "value_delivered"), ["mean", "ci_low", "ci_high"]].to_numpy(float),
        "value - fifo value_delivered": value[["diff", "diff_ci_low", "diff_ci_high"]].to_numpy(float),
        "worlds": np.array(results.manifest["replications_completed"]),
    }


@pytest.mark.slow
def test_target_ci_run_keeps_its_coverage():
    """End to end: 1,200 ``--target-ci 0.15 --max-replications 80`` runs of flowsim itself
    (seeds 7000-8199), the paired difference and fifo's mean against the closed forms, held
    to the same 4-SE tolerance (0.025 at 1,200).  No width check: the length is chosen by
    the spread.

    This alone cannot tell the rule's old shortfall (1.4 points) from chance: that took
    6,000 runs (``benchmarks/target_coverage.py``: 0.938 +- 0.003 against 0.952 for fixed
    lengths, -4.6 SE); ``test_target_ci_stopping_rule_keeps_its_coverage`` detects it
    cheaply.  Here the runs must stop from JUDGED_FROM on, at several lengths (30: 68%,
    40: 25%, 50-70: 7%), and cover: 0.942 for the difference, 0.960 for fifo's mean
    (2 min 16 s on one process, about half that on the two ``across_seeds`` uses)."""
    runs = across_seeds(target_rows, (TARGET_CI, TARGET_MAX), range(7000, 8200))
    worlds = np.array([int(run["worlds"]) for run in runs])
    print("worlds per --target-ci run:", dict(zip(*np.unique(worlds, return_counts=True), strict=True)))
    assert worlds.min() >= JUDGED_FROM and len(np.unique(worlds)) >= 3
    for name in ("value - fifo value_delivered", "fifo value_delivered"):
        check_coverage(f"--target-ci {TARGET_CI}: {name}", np.stack([run[name] for run in runs]), TRUTH[name])
