"""Value accounting and cost of delay (DESIGN section 5), against hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsim.value import (
    DEADLINE,
    DECAY,
    PROFILE_CODES,
    STANDARD,
    WINDOW,
    ValueTerms,
    cd3,
    cost_of_delay,
    discount_rate_per_time,
    discounted_cost,
    present_value,
    value_delivered,
    value_ideal,
    value_timeline,
)

INF = math.inf
NAN = math.nan


def vd(d, d_ideal=None, horizon=156.0, **terms) -> float:
    """value_delivered of one project."""
    d_ideal = d if d_ideal is None else d_ideal
    return float(value_delivered(ValueTerms.make(**terms), d, d_ideal, horizon)[0])


# --- each profile by hand ---------------------------------------------------------------------


def test_standard_by_hand():
    assert vd(10, rate=20000, life=104) == 20000 * 104
    assert vd(60, rate=20000, life=104) == 20000 * (156 - 60)  # cut by the horizon
    assert vd(10, rate=20000, horizon=104) == 20000 * (104 - 10)  # without end
    assert vd(10, rate=1000, lump=5000, horizon=50) == 1000 * (50 - 10) + 5000
    assert vd(155.5, rate=1000, lump=5000) == 1000 * (156 - 155.5) + 5000


def test_delivered_at_or_after_horizon_or_never_is_worth_nothing():
    for d in (156, 170, NAN, INF):
        assert vd(d, rate=1000, lump=5000) == 0


def test_window_by_hand():
    window = dict(rate=1000, lump=500, profile="window", closes=40, horizon=100)
    assert vd(10, **window) == 1000 * (40 - 10) + 500
    assert vd(10, life=20, **window) == 1000 * 20 + 500
    assert vd(39, **window) == 1000 * (40 - 39) + 500
    assert vd(40, **window) == 0  # at closes: stream and lump lost
    assert vd(45, **window) == 0


def test_decay_by_hand():
    decay = dict(rate=1000, lump=800, profile="decay", half_life=26, horizon=100)
    assert vd(10, 10, **decay) == 1000 * (100 - 10) + 800
    assert vd(10 + 2 * 26, 10, **decay) == pytest.approx((1000 * (100 - 62) + 800) / 4, rel=1e-12)
    assert vd(10 + 26, 10, life=5, **decay) == pytest.approx((1000 * 5 + 800) / 2, rel=1e-12)


def test_deadline_by_hand():
    deadline = dict(rate=6000, profile="deadline", due=26, penalty=0.5, fine=50000)
    assert vd(20, **deadline) == 6000 * (156 - 20)
    assert vd(26, **deadline) == 6000 * (156 - 26)  # on the due date is on time
    assert vd(30, **deadline) == 6000 * (1 - 0.5) * (156 - 30) - 50000
    assert vd(NAN, **deadline) == -50000  # never delivered: fine still charged
    assert vd(INF, **deadline) == -50000
    assert vd(160, **deadline) == -50000  # delivered after H: no benefit, fine charged
    assert vd(30, rate=6000, profile="deadline", due=26, penalty=0.25) == 6000 * (1 - 0.25) * (156 - 30)


def test_fine_due_after_horizon_is_not_charged():
    deadline = dict(rate=6000, profile="deadline", due=160, penalty=0.5, fine=50000)
    assert vd(NAN, **deadline) == 0
    assert vd(150, **deadline) == 6000 * (156 - 150)


def test_fields_of_other_profiles_are_ignored():
    assert vd(50, rate=100, profile="standard", closes=40, due=10, fine=7, half_life=1) == 100 * (156 - 50)


def test_value_ideal_is_delivered_at_ideal():
    terms = ValueTerms.make(rate=[1000, 1000], profile=[STANDARD, DECAY], half_life=[INF, 5])
    np.testing.assert_array_equal(value_ideal(terms, [10, 10], 100), [1000 * 90, 1000 * 90])


def test_profile_codes():
    assert PROFILE_CODES == {"standard": STANDARD, "window": WINDOW, "decay": DECAY, "deadline": DEADLINE}
    assert (STANDARD, WINDOW, DECAY, DEADLINE) == (0, 1, 2, 3)


# --- value_ideal == value_delivered + value_delayed, value_delayed >= 0 --------------------------

times = st.floats(0, 300, allow_nan=False)


@st.composite
def project(draw):
    profile = draw(st.sampled_from([STANDARD, WINDOW, DECAY, DEADLINE]))
    d_ideal = draw(times)
    d = draw(st.one_of(st.just(INF), st.just(NAN), st.floats(0, 200).map(lambda x: d_ideal + x)))
    return dict(
        rate=draw(st.floats(0, 1e5)), lump=draw(st.floats(0, 1e6)),
        life=draw(st.one_of(st.just(INF), st.floats(0, 300))), profile=profile,
        closes=draw(times) if profile == WINDOW else INF,
        half_life=draw(st.floats(0.1, 200)) if profile == DECAY else INF,
        due=draw(times) if profile == DEADLINE else INF,
        penalty=draw(st.floats(0, 1)) if profile == DEADLINE else 0.0,
        fine=draw(st.floats(0, 1e6)) if profile == DEADLINE else 0.0,
        d=d, d_ideal=d_ideal,
    )


def stack(projects: list[dict]) -> tuple[ValueTerms, np.ndarray, np.ndarray]:
    fields = ("rate", "lump", "life", "profile", "closes", "half_life", "due", "penalty", "fine")
    terms = ValueTerms.make(**{f: [p[f] for p in projects] for f in fields})
    return terms, np.array([p["d"] for p in projects]), np.array([p["d_ideal"] for p in projects])


@settings(max_examples=150, deadline=None)
@given(st.lists(project(), min_size=1, max_size=20), st.floats(1, 400))
def test_value_delayed_is_never_negative(projects, horizon):
    terms, d, d_ideal = stack(projects)
    ideal = value_ideal(terms, d_ideal, horizon)
    delivered = value_delivered(terms, d, d_ideal, horizon)
    delayed = ideal - delivered
    scale = np.maximum(np.abs(ideal), np.abs(delivered))
    assert np.all(delayed >= -1e-9 * scale)
    assert np.all(np.abs(delivered + delayed - ideal) <= 1e-12 * scale)


# --- present value and costs ------------------------------------------------------------------


def random_portfolio(n: int, seed: int, horizon: float = 156.0):
    rng = np.random.default_rng(seed)
    profile = rng.integers(0, 4, n)
    d_ideal = rng.uniform(0, 1.2 * horizon, n)
    d = d_ideal + rng.exponential(30, n)
    d[rng.random(n) < 0.1] = np.nan
    d[rng.random(n) < 0.05] = np.inf
    d[:4] = [horizon, 0.0, d_ideal[2], horizon - 1]  # boundaries
    terms = ValueTerms.make(
        rate=rng.uniform(0, 20000, n), lump=np.where(rng.random(n) < 0.5, rng.uniform(0, 1e5, n), 0.0),
        life=np.where(rng.random(n) < 0.5, rng.uniform(0, 120, n), np.inf), profile=profile,
        closes=np.where(profile == WINDOW, rng.uniform(0, 1.3 * horizon, n), np.inf),
        half_life=np.where(profile == DECAY, rng.uniform(1, 60, n), np.inf),
        due=np.where(profile == DEADLINE, rng.uniform(0, 1.3 * horizon, n), np.inf),
        penalty=np.where(profile == DEADLINE, rng.uniform(0, 1, n), 0.0),
        fine=np.where(profile == DEADLINE, rng.uniform(0, 1e5, n), 0.0),
    )
    return terms, d, d_ideal


def test_present_value_at_zero_rate_is_exactly_undiscounted():
    terms, d, d_ideal = random_portfolio(500, seed=1)
    undiscounted = value_delivered(terms, d, d_ideal, 156)
    np.testing.assert_array_equal(present_value(terms, d, d_ideal, 156, 0.0), undiscounted)
    np.testing.assert_allclose(present_value(terms, d, d_ideal, 156, 1e-13), undiscounted,
                               rtol=1e-9, atol=1e-6)


def test_present_value_by_hand():
    rho = 0.01
    pv = present_value(ValueTerms.make(rate=1000, lump=500, life=20), 10, 10, 100, rho)[0]
    assert pv == pytest.approx(1000 * (math.exp(-rho * 10) - math.exp(-rho * 30)) / rho
                               + 500 * math.exp(-rho * 10), rel=1e-12)
    cut = present_value(ValueTerms.make(rate=1000), 10, 10, 100, rho)[0]
    assert cut == pytest.approx(1000 * (math.exp(-rho * 10) - math.exp(-rho * 100)) / rho, rel=1e-12)
    fined = ValueTerms.make(rate=1000, profile="deadline", due=26, fine=50000)
    assert present_value(fined, NAN, 20, 100, rho)[0] == pytest.approx(-50000 * math.exp(-rho * 26))


def test_discount_rate_per_time():
    assert discount_rate_per_time(0.08, 52) == pytest.approx(math.log(1.08) / 52, rel=1e-15)
    assert discount_rate_per_time(0.0, 365) == 0.0
    with pytest.raises(ValueError, match="periods_per_year"):
        discount_rate_per_time(0.08, 0)


def test_discounted_cost():
    rho = 0.01
    assert discounted_cost(2500 * 2, 4, 10, 0.0) == 2500 * 2 * (10 - 4)
    assert discounted_cost(2500 * 2, 4, 10, rho) == pytest.approx(
        2500 * 2 * (math.exp(-rho * 4) - math.exp(-rho * 10)) / rho, rel=1e-12)
    assert isinstance(discounted_cost(1.0, 0.0, 1.0, rho), float)
    np.testing.assert_allclose(discounted_cost(np.array([100.0, 200.0]), np.array([0.0, 5.0]), 10.0, rho),
                               [100 * -math.expm1(-rho * 10) / rho,
                                200 * (math.exp(-rho * 5) - math.exp(-rho * 10)) / rho], rtol=1e-12)


# --- value over time --------------------------------------------------------------------------


def value_at(t, rate, lump, life, profile, closes, half_life, due, penalty, fine, d, d_ideal, horizon):
    """One project's value realised by time t, written straight from DESIGN section 5."""
    v = 0.0
    delivered = math.isfinite(d)
    if profile == DEADLINE and due < horizon and due <= t and (not delivered or d > due):
        v -= fine
    if not delivered or d >= horizon or (profile == WINDOW and d >= closes):
        return v
    factor = 2 ** (-(d - d_ideal) / half_life) if profile == DECAY else 1.0
    rate = rate * factor * (1 - penalty if profile == DEADLINE and d > due else 1.0)
    end = min(d + life, horizon, closes if profile == WINDOW else INF)
    return v + (lump * factor if d <= t else 0.0) + rate * max(0.0, min(t, end) - d)


def brute_force(terms: ValueTerms, d, d_ideal, horizon, grid):
    fields = [terms.rate, terms.lump, terms.life, terms.profile, terms.closes, terms.half_life,
              terms.due, terms.penalty, terms.fine, d, d_ideal]
    rows = [[float(x) if i != 3 else int(x) for i, x in enumerate(row)] for row in zip(*fields, strict=True)]
    return np.array([sum(value_at(t, *row, horizon) for row in rows) for t in grid])


def test_timeline_equals_brute_force():
    horizon = 156.0
    terms, d, d_ideal = random_portfolio(200, seed=2, horizon=horizon)
    rng = np.random.default_rng(3)
    grid = np.concatenate([[-1.0, 0.0, horizon, horizon + 10], rng.uniform(-5, horizon + 5, 150),
                           d[np.isfinite(d)][:20], terms.due[np.isfinite(terms.due)][:20]])
    rng.shuffle(grid)  # any order
    v, v_ideal = value_timeline(terms, d, d_ideal, horizon, grid)
    scale = np.abs(terms.rate).sum() * horizon
    np.testing.assert_allclose(v, brute_force(terms, d, d_ideal, horizon, grid),
                               rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(v_ideal, brute_force(terms, d_ideal, d_ideal, horizon, grid),
                               rtol=1e-9, atol=1e-12 * scale)


def test_brute_force_agrees_with_accounting_at_horizon():
    terms, d, d_ideal = random_portfolio(300, seed=4)
    per_project = [brute_force(ValueTerms(*(np.asarray(f)[i:i + 1] for f in vars(terms).values())),
                               d[i:i + 1], d_ideal[i:i + 1], 156, [156])[0] for i in range(300)]
    np.testing.assert_allclose(value_delivered(terms, d, d_ideal, 156), per_project, rtol=1e-12, atol=1e-6)


def test_timeline_at_horizon_equals_value_delivered_at_scale():
    horizon = 156.0
    terms, d, d_ideal = random_portfolio(35_000, seed=5, horizon=horizon)
    grid = np.linspace(0, horizon, 50_000)
    v, v_ideal = value_timeline(terms, d, d_ideal, horizon, grid)
    assert v[-1] == pytest.approx(value_delivered(terms, d, d_ideal, horizon).sum(), rel=1e-9)
    assert v_ideal[-1] == pytest.approx(value_ideal(terms, d_ideal, horizon).sum(), rel=1e-9)


def test_delayed_value_falls_when_a_finite_stream_catches_up():
    terms = ValueTerms.make(rate=100, life=10)
    v, v_ideal = value_timeline(terms, [5.0], [0.0], 100, [0, 5, 10, 15, 100])
    np.testing.assert_allclose(v_ideal, [0, 100 * 5, 100 * 10, 100 * 10, 100 * 10])
    np.testing.assert_allclose(v, [0, 0, 100 * 5, 100 * 10, 100 * 10])
    delayed = v_ideal - v
    assert delayed[2] == 100 * 10 - 100 * 5 and delayed[3] == 0  # D(t) fell


def test_timeline_jumps_and_flat_after_horizon():
    terms = ValueTerms.make(rate=[0.0, 0.0], lump=[700, 0], profile=["standard", "deadline"], due=[INF, 30],
                            fine=[0, 400])
    v, _ = value_timeline(terms, [20.0, NAN], [20.0, 10.0], 100, [19.9, 20, 29.9, 30, 200])
    np.testing.assert_array_equal(v, [0, 700, 700, 700 - 400, 700 - 400])
    assert value_timeline(ValueTerms.make(rate=[]), [], [], 100, [0, 5])[0].tolist() == [0, 0]


# --- cost of delay as policies see it ---------------------------------------------------------

COD_FIELDS = ("rate", "lump", "life", "profile", "closes", "half_life", "due", "penalty", "fine")


def cod(p, reference=0.0, horizon=156.0, **kw):
    terms = dict(rate=0.0, lump=0.0, life=INF, profile=STANDARD, closes=INF, half_life=INF, due=INF,
                 penalty=0.0, fine=0.0) | kw
    return cost_of_delay(*(terms[f] for f in COD_FIELDS), p, reference, horizon)


def test_standard_and_window_cost_of_delay():
    assert cod(10, rate=20000) == 20000
    assert cod(200, rate=20000, profile="standard") == 20000
    assert cod(39.5, rate=800, profile=WINDOW, closes=40) == 800
    assert cod(40, rate=800, profile=WINDOW, closes=40) == 0
    assert cod(50, rate=800, profile=WINDOW, closes=40) == 0


def test_decay_and_deadline_cost_of_delay_by_hand():
    # finite stream well inside H: delay only shrinks it by the decay factor
    assert cod(0, rate=1000, life=10, profile=DECAY, half_life=1, horizon=100) == 1000 * 10 * (1 - 0.5)
    assert cod(1, rate=1000, life=10, profile=DECAY, half_life=1, horizon=100) == 1000 * 10 * (0.5 - 0.25)
    deadline = dict(rate=6000, profile=DEADLINE, due=26, penalty=0.5, fine=50000)
    assert cod(25.5, **deadline) == 6000 * (156 - 25.5) - (6000 * 0.5 * (156 - 26.5) - 50000)
    assert cod(20, **deadline) == 6000  # on time either way: one unit of stream lost to the horizon
    assert cod(30, **deadline) == 6000 * 0.5
    assert cod(20, life=10, **deadline) == 0  # finite stream inside H: delay costs nothing undiscounted


@pytest.mark.parametrize("profile", [DECAY, DEADLINE])
@pytest.mark.parametrize("life", [INF, 30.0])
@pytest.mark.parametrize("due", [26.0, 170.0])
def test_cost_of_delay_is_a_forward_difference_of_the_accounting(profile, life, due):
    horizon, reference = 156.0, 12.0
    kw = dict(rate=6000.0, lump=25000.0, life=life, profile=profile, closes=INF,
              half_life=20.0 if profile == DECAY else INF, due=due if profile == DEADLINE else INF,
              penalty=0.4 if profile == DEADLINE else 0.0, fine=50000.0 if profile == DEADLINE else 0.0)
    ps = np.concatenate([np.linspace(0, 170, 341), [due - 1, due - 1e-7, due - 0.3, due, due + 1e-7,
                                                     horizon - 1, horizon - 1.5, horizon - 0.2, horizon,
                                                     horizon - life - 1, horizon - life - 0.5]])
    ps = ps[np.isfinite(ps)]
    terms = ValueTerms.make(**kw)
    now = value_delivered(terms, ps, reference, horizon)
    later = value_delivered(terms, ps + 1, reference, horizon)
    got = np.array([cod(p, reference, horizon, **kw) for p in ps])
    np.testing.assert_allclose(got, now - later, rtol=1e-9, atol=1e-9 * np.abs(now).max())
    assert np.all(got >= 0)


@given(st.floats(0.0, 155.0), st.floats(0.0, 155.0))
@settings(max_examples=300, deadline=None)
def test_a_flat_deadline_cost_of_delay_is_exactly_flat(p, q):
    # Wherever the closed form is flat (late: rate x (1 - penalty) x one unit lost to the
    # horizon), every projected delivery must give the same float: a rank promised to fall
    # rose by 1e-12 from a difference of two large numbers, and reordered exact ties
    # (tests/test_pure_properties.py::test_tied_late_projects_queued_alone_then_together).
    deadline = dict(rate=1000.0, lump=500.0, profile=DEADLINE, due=1.0, penalty=0.5, horizon=156.0)
    if min(p, q) > 1.0 and max(p, q) + 1.0 < 156.0:  # late, and lump and stream still within H
        assert cod(p, **deadline) == cod(q, **deadline) == 500.0
    on_time = dict(deadline, due=200.0)
    if max(p, q) + 1.0 < 156.0:
        assert cod(p, **on_time) == cod(q, **on_time) == 1000.0


def test_cost_of_delay_unknown_profile():
    with pytest.raises(ValueError, match="profile"):
        cod(1, profile=7)


def test_cd3():
    assert cd3(100.0, 4.0) == 100 / 4
    assert cd3(100.0, 0.0) == 100 / 1e-9
    assert cd3(100.0, -2.0) == 100 / 1e-9
