"""Each distribution's fast numpy sampler draws the law of its scipy reference.

``sample`` (numpy ``Generator`` methods) is what worlds use; ``frozen()``
(scipy.stats) is the reference for means and quantiles.  Seeded, so the
statistical checks are deterministic; tolerances are 4 standard errors and a
KS p-value above 1e-3, so a correct sampler passes with any seed bar ~1e-3.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter
from scipy import stats

from flowsim.errors import ScenarioError
from flowsim.scenario import Distribution, scenario_from_dict
from flowsim.scenario.distributions import DIST_NAMES, lower_bound_of, mean_of, sample_of

N = 20_000
PARSE = TypeAdapter(Distribution)

CONTINUOUS = {
    "uniform": {"dist": "uniform", "low": 2, "high": 7},
    "triangular": {"dist": "triangular", "low": 8, "mode": 12, "high": 24},
    "triangular-at-low": {"dist": "triangular", "low": 1, "mode": 1, "high": 4},
    "pert": {"dist": "pert", "low": 0.5, "mode": 1, "high": 3},
    "pert-at-high": {"dist": "pert", "low": 0, "mode": 5, "high": 5},
    "lognormal": {"dist": "lognormal", "median": 3, "p90": 6},
    "exponential": {"dist": "exponential", "mean": 2},
    "weibull": {"dist": "weibull", "shape": 1.5, "scale": 4},
    "weibull-heavy": {"dist": "weibull", "shape": 0.7, "scale": 2},
}


def draw(dist, seed: int = 20240601) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([dist.sample(rng) for _ in range(N)])


@pytest.mark.parametrize("spec", CONTINUOUS.values(), ids=CONTINUOUS.keys())
def test_continuous_sampler_matches_scipy(spec):
    dist = PARSE.validate_python(spec)
    reference = dist.frozen()
    samples = draw(dist)
    standard_error = reference.std() / math.sqrt(N)
    assert abs(samples.mean() - reference.mean()) < 4 * standard_error
    assert stats.kstest(samples, reference.cdf).pvalue > 1e-3
    assert dist.mean() == pytest.approx(reference.mean(), rel=1e-12)
    assert dist.support() == pytest.approx(reference.support())
    assert dist.lower_bound() == dist.support()[0]


def test_sampler_draws_scipy_quantiles_not_just_the_mean():
    # The KS test above covers shape; this guards the lognormal's p90 parametrisation directly.
    dist = PARSE.validate_python(CONTINUOUS["lognormal"])
    samples = draw(dist)
    assert np.quantile(samples, 0.5) == pytest.approx(3, rel=0.03)
    assert np.quantile(samples, 0.9) == pytest.approx(6, rel=0.03)
    assert dist.frozen().ppf(0.9) == pytest.approx(6, rel=1e-12)


def test_empirical_resamples_the_observations_with_equal_weight():
    # A discrete law: the KS test does not apply (its p-values are wrong for
    # atoms), so the counts are compared with a chi-square test instead.
    dist = PARSE.validate_python({"dist": "empirical", "samples": [1.5, 2.5, 2.5, 4, 10]})
    reference = dist.frozen()
    samples = draw(dist)
    points, counts = np.unique(samples, return_counts=True)
    assert list(points) == [1.5, 2.5, 4, 10]
    expected = reference.pmf(points) * N
    assert list(reference.pmf(points)) == pytest.approx([0.2, 0.4, 0.2, 0.2])
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    standard_error = reference.std() / math.sqrt(N)
    assert abs(samples.mean() - reference.mean()) < 4 * standard_error
    assert dist.mean() == pytest.approx(reference.mean(), rel=1e-12) == pytest.approx(4.1)
    assert dist.support() == (1.5, 10.0) == tuple(reference.support())


def test_fixed_is_one_point():
    dist = PARSE.validate_python({"dist": "fixed", "value": 3.5})
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    assert {dist.sample(rng) for _ in range(10)} == {3.5}
    assert rng.bit_generator.state == state  # a fixed value consumes no randomness
    reference = dist.frozen()
    assert dist.mean() == reference.mean() == 3.5
    assert reference.std() == 0
    assert tuple(reference.support()) == (3.5, 3.5) == dist.support()
    assert reference.cdf(3.49) == 0 and reference.cdf(3.5) == 1


def test_validating_a_scenario_does_not_import_scipy_stats():
    # Half a second of start-up for every `flowsim validate`: scipy.stats is the reference, not a dependency of use.
    code = (
        "import sys; from flowsim import load_scenario; load_scenario('scenarios/default.yaml'); "
        "print('scipy.stats' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_distribution_is_covered():
    covered = {spec["dist"] for spec in CONTINUOUS.values()} | {"empirical", "fixed"}
    assert covered == set(DIST_NAMES)


def test_plain_numbers_are_their_own_distribution():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert mean_of(4.0) == lower_bound_of(4.0) == sample_of(4.0, rng) == 4.0
    assert rng.bit_generator.state == state


def test_same_seed_same_draws():
    dist = PARSE.validate_python(CONTINUOUS["pert"])
    assert np.array_equal(draw(dist, seed=5)[:100], draw(dist, seed=5)[:100])


# -- impossible parameters: one message per mistake, at the key to fix --------

BAD = [
    ({"dist": "uniform", "low": 5, "high": 5}, "effort.high must be above low (5), got 5"),
    ({"dist": "triangular", "low": 1, "mode": 0, "high": 3}, "effort.mode must be at least low (1), got 0"),
    ({"dist": "triangular", "low": 1, "mode": 4, "high": 3}, "effort.high must be at least mode (4), got 3"),
    ({"dist": "pert", "low": 2, "mode": 2, "high": 2}, "effort.high must be above low (2), got 2"),
    ({"dist": "lognormal", "median": 4, "p90": 4}, "effort.p90 must be above median (4), got 4"),
    ({"dist": "lognormal", "median": 0, "p90": 4}, "effort.median must be a number above 0, got 0"),
    ({"dist": "exponential", "mean": 0}, "effort.mean must be a number above 0, got 0"),
    ({"dist": "weibull", "shape": -1, "scale": 2}, "effort.shape must be a number above 0, got -1"),
    ({"dist": "empirical", "samples": []}, "effort.samples must be a list of at least 1 item, got []"),
    ({"dist": "fixed", "value": float("nan")}, "effort.value must be a finite number, got nan"),
    ({"dist": "uniform", "low": 1}, "effort.high must be given, got nothing"),
    (
        {"dist": "exponential", "mean": 2, "rate": 1},
        "effort.rate must be a known key (allowed: dist, mean), got 'rate'",
    ),
]


@pytest.mark.parametrize(("effort", "message"), BAD, ids=[m.split(" must")[0] + "-" + e["dist"] for e, m in BAD])
def test_impossible_parameters_name_the_key(effort, message):
    data = {
        "horizon": 10,
        "teams": {"dev": {"capacity": 1}},
        "projects": [{"id": "a", "stages": [{"team": "dev", "effort": effort}]}],
    }
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(data, source="d.yaml")
    assert [str(p) for p in caught.value.problems] == [f"d.yaml: projects[0].stages[0].{message}"]
