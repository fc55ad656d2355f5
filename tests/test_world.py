"""World sampling and reproducibility (DESIGN section 8, and the run folder of section 9).

A replication's world is a pure function of (scenario, seed, replication), drawn
from named streams, so adding a project or a stream leaves every other draw
unchanged; results do not depend on the process, the number of workers or the
storage round trip.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import flowsim
from flowsim.runner import scenario_hash
from flowsim.scenario.load import scenario_from_dict
from flowsim.world import sample_world, stable_hash, stream

REPO = Path(__file__).resolve().parent.parent
FRAMES = ("projects", "events", "timeline", "teams", "team_timeline")

BASE = {
    "name": "worlds",
    "horizon": 52,
    "discount_rate": 0.05,
    "estimation_error": 0.4,
    "teams": {
        "dev": {"capacity": 2, "cost_rate": 100},
        "ops": {"capacity": 1, "cost_rate": 80, "capacity_changes": [{"at": 20, "capacity": 2}]},
    },
    "projects": [
        {
            "id": "a",
            "value": {
                "rate": {"dist": "lognormal", "median": 1000, "p90": 2500},
                "lump": {"dist": "uniform", "low": 0, "high": 5000},
            },
            "stages": [
                {"team": "dev", "effort": {"dist": "triangular", "low": 2, "mode": 4, "high": 9}},
                {"team": "ops", "effort": {"dist": "exponential", "mean": 3}},
            ],
        },
        {
            "id": "b",
            "arrival": 3,
            "value": {"rate": {"dist": "uniform", "low": 200, "high": 800}, "profile": "decay", "half_life": 10},
            "stages": [
                {"name": "x", "team": "dev", "effort": {"dist": "pert", "low": 1, "mode": 2, "high": 6}, "crew": 2},
                {"name": "y", "team": "ops", "effort": {"dist": "weibull", "shape": 1.5, "scale": 3}, "after": []},
            ],
        },
        {
            "id": "c",
            "depends_on": ["a"],
            "value": {"rate": 500, "profile": "deadline", "due": 30, "penalty": 0.5},
            "stages": [{"team": "dev", "effort": {"dist": "empirical", "samples": [1, 2, 2, 5]}}],
        },
    ],
    "templates": {
        "idea": {
            "value": {"rate": {"dist": "uniform", "low": 100, "high": 400}, "profile": "window", "closes_in": 20},
            "stages": [{"team": "dev", "effort": {"dist": "lognormal", "median": 1, "p90": 3}}],
        },
        "bug": {
            "value": {"rate": {"dist": "exponential", "mean": 50}},
            "stages": [{"team": "ops", "effort": {"dist": "uniform", "low": 0.2, "high": 1}}],
        },
    },
    "arrivals": [{"template": "idea", "rate": 0.3, "end": 40, "name": "ideas"}],
    "policies": {"fifo": {"sequencing": "fifo"}, "cd3": {"sequencing": "cd3"}},
}

NEW_PROJECT = {
    "id": "new",
    "value": {"rate": {"dist": "uniform", "low": 1, "high": 2}},
    "stages": [{"team": "dev", "effort": {"dist": "uniform", "low": 1, "high": 2}}],
}


def scenario(data=None, **changes):
    data = copy.deepcopy(BASE if data is None else data)
    data.update(changes)
    return scenario_from_dict(data, source="<test_world>")


def draws(project) -> tuple:
    """Everything random about one project in a world."""
    return (
        project.arrival,
        project.effort_actual,
        project.effort_estimate,
        project.value_actual,
        project.value_estimate,
        project.ideal_delivery,
    )


def by_id(world) -> dict:
    return {p.id: p for p in world.projects}


# --------------------------------------------------------------------------- (a) stream independence


def extended(project=True, stream_=True) -> dict:
    data = copy.deepcopy(BASE)
    if project:
        # In the middle of the list and at its head: every other project's index shifts.
        data["projects"].insert(1, copy.deepcopy(NEW_PROJECT))
        data["projects"].insert(0, {**copy.deepcopy(NEW_PROJECT), "id": "first"})
    if stream_:
        # Listed before the existing stream: its projects interleave with the ideas.
        data["arrivals"].insert(0, {"template": "bug", "rate": 0.5})
    return data


@pytest.mark.parametrize("project, stream_", [(True, False), (False, True), (True, True)])
def test_adding_a_project_or_a_stream_leaves_other_draws_unchanged(project, stream_):
    base, more = scenario(), scenario(extended(project, stream_))
    added_bugs = 0
    for replication in range(6):
        before = by_id(sample_world(base, 11, replication))
        after = by_id(sample_world(more, 11, replication))
        assert set(before) <= set(after)
        for id_, world in before.items():
            assert draws(after[id_]) == draws(world), (replication, id_)
        added = set(after) - set(before)
        if project:
            assert {"new", "first"} <= added
        added_bugs += sum(i.startswith("bug-") for i in added)
        assert not any(i.startswith("ideas-") for i in added)
    assert (added_bugs > 0) == stream_


def test_added_project_leaves_other_rows_of_the_run_unchanged():
    columns = ["arrival", "effort_actual", "effort_estimate", "ideal_delivery", "value_ideal"]
    base = flowsim.run(scenario(), replications=4, seed=5, workers=1).projects
    more = flowsim.run(scenario(extended()), replications=4, seed=5, workers=1).projects
    more = more[more["project"].isin(set(base["project"]))]
    key = ["policy", "replication", "project"]
    left = base.sort_values(key).reset_index(drop=True)[key + columns]
    right = more.sort_values(key).reset_index(drop=True)[key + columns]
    pd.testing.assert_frame_equal(left.astype({"project": object}), right.astype({"project": object}))


def test_estimation_error_does_not_shift_realised_draws():
    quiet, noisy = scenario(estimation_error=0), scenario(estimation_error=0.9)
    for replication in range(4):
        a, b = by_id(sample_world(quiet, 2, replication)), by_id(sample_world(noisy, 2, replication))
        assert set(a) == set(b)
        for id_ in a:
            assert a[id_].arrival == b[id_].arrival
            assert a[id_].effort_actual == b[id_].effort_actual
            assert a[id_].value_actual == b[id_].value_actual


def test_world_is_a_pure_function_of_scenario_seed_and_replication():
    s = scenario()
    assert sample_world(s, 4, 2) == sample_world(s, 4, 2)
    # Same scenario parsed again: equal, not just identical objects.
    assert sample_world(scenario(), 4, 2) == sample_world(s, 4, 2)
    # A cache of means and stage structures is a speed-up only.
    assert sample_world(s, 4, 2, cache={}) == sample_world(s, 4, 2)
    assert sample_world(s, 4, 2) != sample_world(s, 4, 3)
    assert sample_world(s, 4, 2) != sample_world(s, 5, 2)


def test_nothing_touches_global_random_state():
    np.random.seed(123)
    import random

    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())
    flowsim.run(scenario(), replications=2, seed=1, workers=1)
    after = (np.random.get_state()[1], random.getstate())
    assert (before[0] == after[0]).all()
    assert before[1] == after[1]


# --------------------------------------------------------------------------- (b) stable hash

NAMES = ["project:a", "arrivals:ideas", "arrivals:ideas:projects", "rule:cd3:sequencing", "", "ünïcode"]


def _in_subprocess(hash_seed: str) -> dict:
    code = (
        "import json, sys\n"
        "from flowsim.world import stable_hash, stream\n"
        "names = json.loads(sys.argv[1])\n"
        "print(json.dumps({'hashes': [stable_hash(n) for n in names], 'salted': hash('project:a'),\n"
        "                  'draws': [stream(7, 3, n).random() for n in names]}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(NAMES)],
        capture_output=True, text=True, env=env, cwd=REPO, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_stable_hash_is_the_same_in_every_process():
    here = {"hashes": [stable_hash(n) for n in NAMES], "draws": [stream(7, 3, n).random() for n in NAMES]}
    one, two = _in_subprocess("1"), _in_subprocess("4242")
    assert one["salted"] != two["salted"]  # the subprocesses really have different hash salts
    for other in (one, two):
        assert other["hashes"] == here["hashes"]
        assert other["draws"] == here["draws"]
    assert len(set(here["hashes"])) == len(NAMES)
    assert all(0 <= h < 2**64 for h in here["hashes"])


def test_streams_are_independent_by_name_replication_and_seed():
    first = stream(1, 0, "project:a").random(4)
    assert (stream(1, 0, "project:a").random(4) == first).all()
    assert not (stream(1, 0, "project:b").random(4) == first).any()
    assert not (stream(1, 1, "project:a").random(4) == first).any()
    assert not (stream(2, 0, "project:a").random(4) == first).any()


# --------------------------------------------------------------------------- (c), (d) reproducibility


def frames(results) -> dict[str, pd.DataFrame]:
    return {name: getattr(results, name) for name in FRAMES}


def assert_same_frames(left, right) -> None:
    for name in FRAMES:
        pd.testing.assert_frame_equal(left[name], right[name], check_exact=True, obj=name)


def test_same_seed_same_frames_and_different_seed_different_arrivals():
    s = scenario()
    one = frames(flowsim.run(s, replications=5, seed=9, workers=1))
    two = frames(flowsim.run(scenario(), replications=5, seed=9, workers=1))
    assert_same_frames(one, two)
    other = flowsim.run(s, replications=5, seed=10, workers=1).projects
    streamed = lambda f: f[f["template"].notna()].set_index(["policy", "replication", "project"])["arrival"]  # noqa: E731
    a, b = streamed(one["projects"]), streamed(other)
    assert len(a) and len(b)
    assert not a.sort_index().equals(b.sort_index())
    # Listed projects keep their fixed arrivals, but their efforts differ too.
    listed = lambda f: f[f["template"].isna()].set_index(["policy", "replication", "project"])  # noqa: E731
    la, lb = listed(one["projects"]), listed(other)
    assert (la["arrival"] == lb["arrival"]).all()
    assert not (la["effort_actual"] == lb["effort_actual"]).all()


def test_scenario_seed_is_the_default_seed():
    s = scenario(seed=9)
    default = frames(flowsim.run(s, replications=2, workers=1))
    explicit = frames(flowsim.run(s, replications=2, seed=9, workers=1))
    assert_same_frames(default, explicit)


def test_workers_do_not_change_results():
    s = scenario()
    # 16 replications: chunks of 2, so the pool really spreads them over workers.
    serial = frames(flowsim.run(s, replications=16, seed=3, workers=1))
    parallel = frames(flowsim.run(s, replications=16, seed=3, workers=2))
    assert_same_frames(serial, parallel)
    assert sorted(serial["projects"]["replication"].unique()) == list(range(16))


def test_a_replication_does_not_depend_on_the_others_in_its_run():
    s = scenario()
    many = flowsim.run(s, replications=6, seed=3, workers=1).projects
    few = flowsim.run(s, replications=3, seed=3, workers=1).projects
    pd.testing.assert_frame_equal(many[many["replication"] < 3].reset_index(drop=True), few)


# --------------------------------------------------------------------------- (e) estimation error

SIGMA = 0.5
N = 600


def noisy_scenario(**value_extra):
    return scenario_from_dict(
        {
            "horizon": 52,
            "estimation_error": SIGMA,
            "teams": {"t": {"capacity": 1}, "u": {"capacity": 2}},
            "projects": [
                {
                    "id": "p",
                    "value": {"rate": {"dist": "uniform", "low": 100, "high": 300}, "lump": 1000},
                    "stages": [
                        {"team": "t", "effort": {"dist": "triangular", "low": 1, "mode": 2, "high": 6}},
                        {"team": "u", "effort": 4},
                    ],
                },
                {
                    "id": "q",
                    "value": {"rate": {"dist": "lognormal", "median": 50, "p90": 100}},
                    "stages": [{"team": "t", "effort": {"dist": "exponential", "mean": 3}}],
                },
                {
                    "id": "told",
                    "value": {"rate": {"dist": "uniform", "low": 0, "high": 10}, "estimate": 1234},
                    "stages": [
                        {"team": "t", "effort": {"dist": "uniform", "low": 1, "high": 20}, "estimate": 7},
                        {"team": "u", "effort": 3},
                    ],
                },
            ],
        }
    )


def test_estimate_over_mean_is_lognormal_with_sigma():
    s = noisy_scenario()
    means = {
        "p": ((1 + 2 + 6) / 3, 4.0, 200.0, 1000.0),
        "q": (3.0, None, 50 * math.exp((math.log(2) / 1.2815515655446004) ** 2 / 2), None),
    }
    logs = {(id_, kind): [] for id_ in means for kind in ("effort", "value")}
    for replication in range(N):
        world = by_id(sample_world(s, 21, replication))
        for id_, (m0, m1, rate_mean, lump_mean) in means.items():
            pw = world[id_]
            factor = pw.effort_estimate[0] / m0
            if m1 is not None:  # one factor per project, shared by its stages
                assert pw.effort_estimate[1] / m1 == pytest.approx(factor, rel=1e-12)
            logs[(id_, "effort")].append(math.log(factor))
            value_factor = pw.value_estimate.rate / rate_mean
            if lump_mean is not None:  # the lump shares the value factor
                assert pw.value_estimate.lump / lump_mean == pytest.approx(value_factor, rel=1e-12)
            logs[(id_, "value")].append(math.log(value_factor))
    se_sd = SIGMA / math.sqrt(2 * (N - 1))
    se_mean = SIGMA / math.sqrt(N)
    for key, values in logs.items():
        values = np.asarray(values)
        assert abs(values.std(ddof=1) - SIGMA) < 4 * se_sd, (key, values.std(ddof=1))
        assert abs(values.mean()) < 4 * se_mean, (key, values.mean())  # median factor 1
    # Effort and value factors are independent draws, and differ between projects.
    for id_ in means:
        r = np.corrcoef(logs[(id_, "effort")], logs[(id_, "value")])[0, 1]
        assert abs(r) < 4 / math.sqrt(N), (id_, r)
    r = np.corrcoef(logs[("p", "effort")], logs[("q", "effort")])[0, 1]
    assert abs(r) < 4 / math.sqrt(N)


def test_explicit_estimates_are_taken_as_told():
    s = noisy_scenario()
    others = []
    for replication in range(50):
        told = by_id(sample_world(s, 21, replication))["told"]
        assert told.effort_estimate[0] == 7.0
        assert told.value_estimate.rate == 1234.0
        others.append(told.effort_estimate[1] / 3)  # a stage without an estimate is still perturbed
    assert np.std(np.log(others)) > 0.2
    # The run's effort_estimate is the project's estimated work remaining at arrival.
    results = flowsim.run(s, replications=5, seed=21, workers=1).projects
    for row in results.itertuples(index=False):
        pw = by_id(sample_world(s, 21, row.replication))[row.project]
        assert row.effort_estimate == pytest.approx(sum(pw.effort_estimate), rel=1e-12)
        assert row.effort_actual == pytest.approx(sum(pw.effort_actual), rel=1e-12)


def test_no_estimation_error_means_estimates_are_the_means():
    s = scenario(estimation_error=0)
    world = by_id(sample_world(s, 1, 0))
    assert world["a"].effort_estimate == pytest.approx((5.0, 3.0), rel=1e-12)
    assert world["b"].effort_estimate == pytest.approx(((1 + 4 * 2 + 6) / 6, 3 * math.gamma(1 + 1 / 1.5)), rel=1e-9)
    assert world["c"].effort_estimate == pytest.approx((2.5,), rel=1e-12)
    assert world["c"].value_estimate.rate == 500.0


# --------------------------------------------------------------------------- (f) run folder


def test_run_folder_round_trip(tmp_path):
    s = scenario()
    memory = flowsim.run(s, replications=6, seed=4, workers=2)
    written = flowsim.run(s, replications=6, seed=4, workers=2, out=tmp_path / "run")
    loaded = flowsim.Results.load(tmp_path / "run")
    assert_same_frames(frames(memory), frames(loaded))
    assert_same_frames(frames(written), frames(loaded))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["partial"] is False
    assert loaded.partial is False
    assert manifest["scenario_hash"] == scenario_hash(s)
    assert len(manifest["scenario_hash"]) == 64
    assert manifest["seed"] == 4
    assert manifest["replications_requested"] == manifest["replications_completed"] == 6
    assert manifest["policies"] == ["fifo", "cd3"]
    assert set(manifest["versions"]) >= {"flowsim", "numpy", "simpy"}
    # The manifest's resolved scenario is the scenario: it hashes the same when re-read.
    assert scenario_hash(scenario_from_dict(manifest["scenario"])) == scenario_hash(s)
    for name in ("projects", "events", "timeline", "teams", "team_timeline"):
        assert (tmp_path / "run" / f"{name}.parquet").is_dir()
        # Readable as a plain Parquet dataset, identical to the frames.
        direct = pd.read_parquet(tmp_path / "run" / f"{name}.parquet")
        assert len(direct) == len(getattr(loaded, name))


def test_scenario_hash_tells_scenarios_apart():
    assert scenario_hash(scenario()) == scenario_hash(scenario())
    assert scenario_hash(scenario()) != scenario_hash(scenario(horizon=53))
