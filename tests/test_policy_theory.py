"""Sequencing and intake rules checked against queueing and scheduling theory.

* Cobham (1954): non-preemptive priority M/G/1, class k (1 = highest) waits on average
  ``W_k = W0 / ((1 - s_{k-1}) (1 - s_k))`` with ``s_k = rho_1 + ... + rho_k`` and
  ``W0 = sum_i lambda_i E[S_i^2] / 2`` (the mean residual work found by an arrival).
* Kleinrock's conservation law: for every work-conserving, non-preemptive rule that does
  not look at realised service times, ``sum_k rho_k W_k = rho W0 / (1 - rho)``, the FIFO
  (Pollaczek-Khinchine) value.
* M/M/1 processor sharing (``focus: shared``, ``switching: none``, one unit): mean cycle
  time ``1 / (mu - lambda)`` and, for a job of size x, ``E[T | x] = x / (1 - rho)``.
* Goldratt's P&Q: when one team is the constraint, value per constrained hour
  (``cd3_bottleneck``) beats value per calendar time (``cd3``) and value alone.
* Weinberg's multitasking: with a shared team losing time to switching, value delivered
  rises then falls as the WIP limit grows.

Statistics (as in ``test_theory.py``): one long run per check, cut into ``BATCHES``
batches of consecutive arrivals after a warm-up; batch means are nearly independent
(each batch spans thousands of time units, far beyond the relaxation time of these
queues, about 1 / (1 - sqrt(rho))^2 = 40 time units at rho = 0.7), so the standard
error is the batch means' standard deviation / sqrt(BATCHES).  Tolerance: ``Z = 4``
standard errors (|t| > 4 by chance: about 4e-4 per comparison, 25 batches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import flowsim
from flowsim.scenario import scenario_from_dict
from flowsim.world import sample_world

BATCHES = 25
Z = 4.0
WARMUP = 0.05  # share of the horizon left out at the start
MARGIN = 300.0  # arrivals in the last MARGIN time units are not measured (no censoring)


@dataclass(frozen=True)
class Estimate:
    value: float
    se: float


def check(name: str, estimate: Estimate, theory: float, z: float = Z) -> None:
    t = (estimate.value - theory) / estimate.se
    line = f"{name}: estimate {estimate.value:.4f}, theory {theory:.4f}, SE {estimate.se:.4f}, t {t:+.2f}"
    print(line)
    assert estimate.se > 0, line
    assert abs(t) < z, line


def from_batches(values) -> Estimate:
    values = np.asarray(values, dtype=float)
    assert len(values) == BATCHES
    return Estimate(float(values.mean()), float(values.std(ddof=1) / math.sqrt(BATCHES)))


def run(data: dict, *, seed: int, replications: int = 1) -> flowsim.Results:
    return flowsim.run(scenario_from_dict({"name": "theory", **data}, source="<test_policy_theory>"),
                       replications=replications, seed=seed, workers=1)  # fmt: skip


def measured(projects: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """Projects arriving after the warm-up and MARGIN before the horizon, each with its batch
    (equal time windows), with ``wait`` = started - arrival.  All must have started."""
    start, end = WARMUP * horizon, horizon - MARGIN
    p = projects[(projects.arrival >= start) & (projects.arrival < end)].copy()
    assert p.started.notna().all(), "a measured project never started: censoring"
    p["wait"] = p.started - p.arrival
    p["batch"] = np.minimum(((p.arrival - start) / (end - start) * BATCHES).astype(int), BATCHES - 1)
    return p


def exponential(mean: float) -> dict:
    return {"dist": "exponential", "mean": mean}


# =========================================================================== Cobham

# Two classes with the same exponential effort (mean 1), so the same service distribution,
# and different value rates: cd3 = rate / 1 ranks "high" (rate 2) above "low" (rate 1).
LAMBDA_HIGH, LAMBDA_LOW, MEAN = 0.3, 0.4, 1.0
COBHAM_H = 40_000.0


def two_classes(policies: dict, horizon: float = COBHAM_H) -> dict:
    return {
        "horizon": horizon,
        "teams": {"T": {"capacity": 1}},
        "templates": {
            "high": {"value": {"rate": 2}, "stages": [{"team": "T", "effort": exponential(MEAN)}]},
            "low": {"value": {"rate": 1}, "stages": [{"team": "T", "effort": exponential(MEAN)}]},
        },
        "arrivals": [{"template": "high", "rate": LAMBDA_HIGH}, {"template": "low", "rate": LAMBDA_LOW}],
        "policies": policies,
    }


def class_waits(p: pd.DataFrame, template: str) -> Estimate:
    q = p[p.template == template]
    return from_batches(q.groupby("batch").wait.mean().reindex(range(BATCHES)))


def test_cd3_two_classes_match_cobham():
    rho1, rho2 = LAMBDA_HIGH * MEAN, LAMBDA_LOW * MEAN  # 0.3, 0.4
    w0 = (LAMBDA_HIGH + LAMBDA_LOW) * 2 * MEAN**2 / 2  # E[S^2] = 2 mean^2 for an exponential: 0.7
    w_high = w0 / (1 - rho1)  # 0.7 / 0.7 = 1
    w_low = w0 / ((1 - rho1) * (1 - rho1 - rho2))  # 0.7 / (0.7 x 0.3) = 3.333
    assert (w_high, w_low) == (pytest.approx(1.0), pytest.approx(10 / 3))
    results = run(two_classes({"cd3": {"sequencing": "cd3"}, "fifo": {"sequencing": "fifo"}}), seed=2)
    p = measured(results.projects, COBHAM_H)
    cd3, fifo = p[p.policy == "cd3"], p[p.policy == "fifo"]
    check("Cobham W_high (cd3)", class_waits(cd3, "high"), w_high)
    check("Cobham W_low (cd3)", class_waits(cd3, "low"), w_low)
    # FIFO does not tell the classes apart: both wait the M/M/1 Wq = rho / (mu - lambda) = 7/3.
    rho = rho1 + rho2
    check("FIFO W_high", class_waits(fifo, "high"), rho / (1 - rho))
    check("FIFO W_low", class_waits(fifo, "low"), rho / (1 - rho))


# =========================================================================== conservation

# Two classes with different effort means, so sjf, cd3 and value really differ:
#   small: exponential mean 0.5, rate 1, lambda 0.6 (rho 0.3): cd3 1 / 0.5 = 2
#   big:   exponential mean 1.6, rate 3, lambda 0.25 (rho 0.4): cd3 3 / 1.6 = 1.875
# sjf and cd3 serve small first, value serves big first; edd and least_slack rank by window
# dates (big's closes 5 time units earlier relative to arrival, both far beyond the horizon,
# so the value is never lost); random is random.  None of them looks at realised effort.
SMALL = (0.6, 0.5, 1.0, 50_000.0)  # lambda, mean effort, rate, closes_in
BIG = (0.25, 1.6, 3.0, 49_995.0)
CONSERVATION_RULES = ("fifo", "cd3", "sjf", "value", "random", "edd", "least_slack")


def conservation_scenario(horizon: float, rules=CONSERVATION_RULES) -> dict:
    def template(spec):
        _, mean, rate, closes_in = spec
        return {"value": {"rate": rate, "profile": "window", "closes_in": closes_in},
                "stages": [{"team": "T", "effort": exponential(mean)}]}  # fmt: skip

    return {
        "horizon": horizon,
        "teams": {"T": {"capacity": 1}},
        "templates": {"small": template(SMALL), "big": template(BIG)},
        "arrivals": [{"template": "small", "rate": SMALL[0]}, {"template": "big", "rate": BIG[0]}],
        "policies": {rule: {"sequencing": rule} for rule in rules},
    }


def load_weighted_wait(p: pd.DataFrame) -> np.ndarray:
    """Per batch: sum_k rho_k W_k with the classes' offered loads rho_k = lambda_k E[S_k]."""
    rho = {"small": SMALL[0] * SMALL[1], "big": BIG[0] * BIG[1]}
    means = p.groupby(["batch", "template"], observed=True).wait.mean().unstack()
    return (means["small"] * rho["small"] + means["big"] * rho["big"]).reindex(range(BATCHES)).to_numpy()


def conservation_check(horizon: float, seed: int, rules) -> None:
    lam = {"small": SMALL[0], "big": BIG[0]}
    mean = {"small": SMALL[1], "big": BIG[1]}
    rho = sum(lam[k] * mean[k] for k in lam)  # 0.3 + 0.4 = 0.7
    w0 = sum(lam[k] * 2 * mean[k] ** 2 / 2 for k in lam)  # 0.6 x 0.25 + 0.25 x 2.56 = 0.79
    theory = rho * w0 / (1 - rho)  # 0.7 x 0.79 / 0.3 = 1.84333
    assert theory == pytest.approx(0.7 * 0.79 / 0.3)
    p = measured(run(conservation_scenario(horizon, rules), seed=seed).projects, horizon)
    per_rule = {rule: load_weighted_wait(p[p.policy == rule]) for rule in rules}
    for rule, values in per_rule.items():
        check(f"conservation sum rho_k W_k ({rule})", from_batches(values), theory)
    # The rules do differ class by class (otherwise the law is tested on one rule only).
    small = p[p.template == "small"].groupby("policy", observed=True).wait.mean()
    assert small["cd3"] < small["fifo"] < small["value"]
    # Paired (same worlds, same batches): every rule minus fifo is 0 within Z standard errors.
    for rule, values in per_rule.items():
        if rule != "fifo":
            check(f"conservation {rule} - fifo (paired)", from_batches(values - per_rule["fifo"]), 0.0)


def test_kleinrock_conservation_fast():
    conservation_check(30_000.0, seed=8, rules=("fifo", "cd3", "value", "random", "edd"))


@pytest.mark.slow
def test_kleinrock_conservation_every_non_preemptive_rule():
    conservation_check(100_000.0, seed=9, rules=CONSERVATION_RULES)


# =========================================================================== processor sharing

PS_LAMBDA, PS_MU = 0.7, 1.0


def processor_sharing(horizon: float) -> dict:
    return {
        "horizon": horizon,
        "teams": {"T": {"capacity": 1, "focus": "shared", "switching": "none"}},
        "templates": {"job": {"value": {"rate": 1}, "stages": [{"team": "T", "effort": exponential(1 / PS_MU)}]}},
        "arrivals": [{"template": "job", "rate": PS_LAMBDA}],
    }


def ps_check(horizon: float, seed: int) -> None:
    rho = PS_LAMBDA / PS_MU
    scenario = scenario_from_dict({"name": "ps", **processor_sharing(horizon)})
    results = flowsim.run(scenario, replications=1, seed=seed, workers=1)
    p = measured(results.projects, horizon)
    assert (p.status == "delivered").all()
    # effort_actual is the realised effort of the world (the same as sample_world's).
    world = sample_world(scenario, seed, 0)
    realised = {w.id: sum(w.effort_actual) for w in world.projects}
    assert np.allclose(p.effort_actual, p.project.map(realised))
    check("M/M/1-PS mean cycle time", from_batches(p.groupby("batch").cycle_time.mean()), 1 / (PS_MU - PS_LAMBDA))
    # E[T | x] = x / (1 - rho): regress cycle time on realised effort, batch by batch.
    slopes, intercepts = [], []
    for _, batch in p.groupby("batch"):
        slope, intercept = np.polyfit(batch.effort_actual, batch.cycle_time, 1)
        slopes.append(slope)
        intercepts.append(intercept)
    check("M/M/1-PS slope of E[T | x]", from_batches(slopes), 1 / (1 - rho))
    check("M/M/1-PS intercept of E[T | x]", from_batches(intercepts), 0.0)
    # Mean slowdown T / x is 1 / (1 - rho) too (every size is slowed down alike).
    slowdown = (p.cycle_time / p.effort_actual).groupby(p.batch).mean()
    check("M/M/1-PS mean slowdown", from_batches(slowdown), 1 / (1 - rho))


def test_mm1_processor_sharing():
    ps_check(30_000.0, seed=5)


# =========================================================================== bottleneck (P&Q)

# A small case by hand.  data (1 unit) is the bottleneck, dev has 2 units; every project is
# data then dev; horizon 20, all arrive at 0, so value_delayed = rate x (delivery - ideal).
#   project  data  dev  rate  ideal  value  cd3 = rate/(data+dev)  per data week = rate/data
#   C         4     1    12     5     12        12/5 = 2.4              3
#   B         2     1     9     3      9         9/3 = 3                4.5
#   A         1     6    10     7     10        10/7 = 1.43            10
# value: C, A, B.  cd3: B, C, A.  cd3_bottleneck: A, B, C.  fifo: file order C, B, A.
# In dev's queue (no data work left) cd3 and cd3_bottleneck both rank by rate/dev; dev never
# has more than 2 projects at once below, so its order never matters.
#   value:          data C 0-4, A 4-5, B 5-7; dev C 4-5, A 5-11, B 7-8.
#                   delays C 0, A (11-7) 10 = 40, B (8-3) 9 = 45: 85
#   cd3:            data B 0-2, C 2-6, A 6-7; dev B 2-3, C 6-7, A 7-13.
#                   delays B 0, C (7-5) 12 = 24, A (13-7) 10 = 60: 84
#   cd3_bottleneck: data A 0-1, B 1-3, C 3-7; dev A 1-7, B 3-4, C 7-8.
#                   delays A 0, B (4-3) 9 = 9, C (8-5) 12 = 36: 45
#   fifo:           data C 0-4, B 4-6, A 6-7; dev C 4-5, B 6-7, A 7-13.
#                   delays C 0, B (7-3) 9 = 36, A 60: 96
PQ = {
    "horizon": 20,
    "teams": {"data": {"capacity": 1}, "dev": {"capacity": 2}},
    "projects": [
        {
            "id": pid,
            "value": {"rate": rate},
            "stages": [{"team": "data", "effort": data}, {"team": "dev", "effort": dev}],
        }
        for pid, data, dev, rate in (("C", 4, 1, 12), ("B", 2, 1, 9), ("A", 1, 6, 10))
    ],
    "policies": {rule: {"sequencing": rule} for rule in ("fifo", "value", "cd3", "cd3_bottleneck")},
}


def test_cd3_bottleneck_beats_cd3_and_value_by_hand():
    results = run(PQ, seed=0)
    delayed = results.projects.groupby("policy", observed=True).value_delayed.sum()
    by_hand = {"value": 40 + 45, "cd3": 24 + 60, "cd3_bottleneck": 9 + 36, "fifo": 36 + 60}
    for policy, total in by_hand.items():
        assert delayed[policy] == pytest.approx(total, abs=1e-9), policy
    assert delayed["value"] - delayed["cd3_bottleneck"] == pytest.approx(40)
    assert delayed["cd3"] - delayed["cd3_bottleneck"] == pytest.approx(39)
    deliveries = results.projects.pivot(index="project", columns="policy", values="delivered")
    assert deliveries["cd3_bottleneck"].to_dict() == {"A": 7.0, "B": 4.0, "C": 8.0}
    assert deliveries["cd3"].to_dict() == {"A": 13.0, "B": 3.0, "C": 7.0}


def flow_shop(projects, data_key, dev_key, dev_units: int, horizon: float) -> float:
    """Total value_delayed of a data -> dev flow shop, all projects at 0, computed without
    flowsim: data (1 unit) works in ``data_key`` order (static: nothing progresses while
    queued); dev units take the best queued project by ``dev_key(project, entered)`` whenever
    free, after every completion at that instant (DESIGN section 7's order of events)."""
    clock, ready = 0.0, []
    for p in sorted(projects, key=data_key):
        clock += p["data"]
        ready.append((clock, p))  # enters dev's queue when its data stage finishes
    running: list[float] = []  # finish times of busy dev units
    queue: list = []
    delivered = {}
    events = sorted({t for t, _ in ready})
    while events:
        t = events.pop(0)
        running = [f for f in running if f > t]
        queue += [(t, p) for e, p in ready if e == t]
        queue.sort(key=lambda row: dev_key(row[1], row[0]))
        while queue and len(running) < dev_units:
            _, p = queue.pop(0)
            running.append(t + p["dev"])
            delivered[p["id"]] = t + p["dev"]
            events = sorted(set(events) | {t + p["dev"]})
    total = 0.0
    for p in projects:
        ideal = p["data"] + p["dev"]
        total += p["rate"] * (min(delivered[p["id"]], horizon) - ideal)
    return total


def test_teaching_bottleneck_values_rederived():
    """scenarios/teaching/bottleneck.yaml: its comments give fifo 2.25M, value 2.32M,
    cd3 2.80M, cd3_bottleneck 1.51M value delayed; re-derived here by an independent
    flow-shop calculation and compared with the engine exactly."""
    scenario = flowsim.load_scenario("scenarios/teaching/bottleneck.yaml")
    horizon = scenario.horizon
    projects = [
        {"id": p.id, "order": i, "rate": float(p.value.rate), "data": float(p.stages[0].effort),
         "dev": float(p.stages[1].effort)}
        for i, p in enumerate(scenario.projects)
    ]  # fmt: skip
    by = {
        # data queue (all entered at 0): score high first, then file order
        "fifo": (lambda p: p["order"], lambda p, t: (t, p["order"])),
        "value": (lambda p: (-p["rate"], p["order"]), lambda p, t: (-p["rate"], t, p["order"])),
        "cd3": (lambda p: (-p["rate"] / (p["data"] + p["dev"]), p["order"]),
                lambda p, t: (-p["rate"] / p["dev"], t, p["order"])),
        # no data work left in dev's queue: cd3_bottleneck ranks by cd3 there
        "cd3-bottleneck": (lambda p: (-p["rate"] / p["data"], p["order"]),
                           lambda p, t: (-p["rate"] / p["dev"], t, p["order"])),
    }  # fmt: skip
    expected = {name: flow_shop(projects, dk, vk, 3, horizon) for name, (dk, vk) in by.items()}
    comments = {"fifo": 2.25e6, "value": 2.32e6, "cd3": 2.80e6, "cd3-bottleneck": 1.51e6}
    for name, total in expected.items():
        assert total == pytest.approx(comments[name], abs=0.005e6), name  # the comment's rounding
    results = flowsim.run(scenario, replications=1, seed=1, workers=1)
    delayed = results.projects.groupby("policy", observed=True).value_delayed.sum()
    for name, total in expected.items():
        assert delayed[name] == pytest.approx(total, rel=1e-12), name
    assert delayed["cd3-bottleneck"] < min(delayed["fifo"], delayed["value"], delayed["cd3"])


def test_teaching_wip_limits_lesson_holds():
    """scenarios/teaching/wip_limits.yaml's comments rank its policies wip2 > wip4 > wip8 > push
    in value delivered: each step is checked as a paired difference, above 0 by 4 standard errors."""
    results = flowsim.run("scenarios/teaching/wip_limits.yaml", replications=20, seed=5, workers=1)
    by = results.replications.pivot(index="replication", columns="policy", values="value_delivered")
    for better, worse in (("wip2-cd3", "wip4-cd3"), ("wip4-cd3", "wip8-cd3"), ("wip8-cd3", "push-cd3")):
        diff = (by[better] - by[worse]).to_numpy()
        assert diff.mean() > 4 * diff.std(ddof=1) / math.sqrt(len(diff)), (better, worse)


# =========================================================================== WIP sweep (Weinberg)


def wip_sweep(limits, replications: int, seed: int, switching: str = "weinberg") -> pd.DataFrame:
    """value_delivered per replication (rows) and WIP limit (columns) on a push portfolio: a
    shared dev team (2 units, Weinberg switching unless told) then a single tester, 8 projects at 0 and
    new requests at 0.15 per week; every policy sequences by cd3."""
    triangular = {"dist": "triangular", "low": 3, "mode": 5, "high": 10}
    data = {
        "horizon": 104,
        "teams": {"dev": {"capacity": 2, "focus": "shared", "switching": switching}, "test": {"capacity": 1}},
        "projects": [
            {"id": f"p{i}", "value": {"rate": rate},
             "stages": [{"team": "dev", "effort": {"dist": "triangular", "low": dev - 2, "mode": dev, "high": dev + 4}},
                        {"team": "test", "effort": 1}]}
            for i, (dev, rate) in enumerate([(6, 6000), (3, 4000), (8, 8000), (7, 12000), (4, 3000), (3, 1500),
                                             (5, 5000), (8, 7000)])
        ],
        "templates": {"request": {"value": {"rate": {"dist": "uniform", "low": 1000, "high": 10000}},
                                  "stages": [{"team": "dev", "effort": triangular},
                                             {"team": "test", "effort": {"dist": "pert", "low": 0.5, "mode": 1,
                                                                         "high": 2}}]}},
        "arrivals": [{"template": "request", "rate": 0.15}],
        "policies": {f"wip{k}": {"intake": {"rule": "wip_limit", "limit": k}, "sequencing": "cd3"} for k in limits},
    }  # fmt: skip
    reps = run(data, seed=seed, replications=replications).replications
    table = reps.pivot(index="replication", columns="policy", values="value_delivered")
    return table[[f"wip{k}" for k in limits]]


def paired(table: pd.DataFrame, a: str, b: str) -> Estimate:
    diff = (table[a] - table[b]).to_numpy()
    return Estimate(float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff))))


def sweep_check(limits, replications: int, seed: int) -> None:
    table = wip_sweep(limits, replications, seed)
    means = table.mean()
    print(means.round(0).to_dict())
    best = means.idxmax()
    assert best not in (table.columns[0], table.columns[-1]), f"peak at an end of the sweep: {best}"
    # The peak beats both ends with paired 4-SE confidence (same worlds under every limit).
    for end in (table.columns[0], table.columns[-1]):
        gain = paired(table, best, end)
        print(f"{best} - {end}: {gain.value:.0f} (SE {gain.se:.0f})")
        assert gain.value - Z * gain.se > 0, f"{best} does not beat {end}: {gain}"


def test_wip_limit_sweep_rises_then_falls_fast():
    sweep_check((1, 2, 4, 8), replications=30, seed=3)


@pytest.mark.slow
def test_wip_limit_sweep_rises_then_falls():
    sweep_check(tuple(range(1, 11)), replications=200, seed=3)
