"""How many replications: --target-ci (sequential, deterministic) and what pairing saves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas.testing as pdt
import pytest
from scipy import stats as scipy_stats
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.errors import FlowsimError
from flowsim.runner import default_chunk_size, execute
from flowsim.stats import half_width, paired_ci, replications_needed, target_half_widths, welch_ci
from flowsim.tables import TABLES
from flowsim.target import JUDGED_FROM

ROOT = Path(__file__).resolve().parents[1]

SMALL = (Path(__file__).resolve().parent / "fixtures" / "small_portfolio.yaml").read_text()
MAX = 80  # chunks of 10
TARGET = 0.015


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "small.yaml"
    path.write_text(SMALL)
    return path


@pytest.fixture(scope="module")
def small(small_file):
    return flowsim.load_scenario(small_file)


@pytest.fixture(scope="module")
def full(small):
    """All MAX replications, no target: the same chunks a target run would use."""
    return execute(small, replications=MAX, workers=2)


@pytest.fixture(scope="module")
def targeted(small, tmp_path_factory):
    return execute(small, target_ci=TARGET, max_replications=MAX, workers=1, out=tmp_path_factory.mktemp("t1"))


def values_by_policy(results, metric="value_delivered", n=None) -> dict[str, np.ndarray]:
    frame = results.replications
    out = {}
    for policy in results.policies:
        rows = frame[frame["policy"] == policy].sort_values("replication")
        out[policy] = rows[metric].to_numpy(dtype=float)[:n]
    return out


def first_boundary_meeting(results, target: float, minimum: int, chunk: int, policies=None) -> int:
    """The rule, evaluated by brute force on a complete run (no stop judged before JUDGED_FROM)."""
    values = values_by_policy(results)
    if policies:
        values = {p: values[p] for p in policies}
    baseline = next(iter(values))
    for end in range(chunk, MAX + 1, chunk):
        if end < max(minimum, JUDGED_FROM):
            continue
        prefix = {p: v[:end] for p, v in values.items()}
        widths = target_half_widths(prefix, baseline)
        if all(w <= target * abs(prefix[baseline].mean()) for w in widths.values()):
            return end
    return MAX


def test_target_stops_at_the_first_chunk_boundary_meeting_it(targeted, full):
    chunk = default_chunk_size(MAX)
    expected = first_boundary_meeting(full, TARGET, 10, chunk)
    assert 10 < expected < MAX  # the scenario exercises an early stop
    target = targeted.manifest["target"]
    assert target["status"] == "reached"
    assert target["replications"] == expected == targeted.manifest["replications_completed"]
    assert targeted.manifest["partial"] is False
    assert target["threshold"] == pytest.approx(TARGET * abs(target["baseline_mean"]))
    assert target["half_width"] == max(target["half_widths"].values()) <= target["threshold"]
    assert set(target["half_widths"]) == {"cd3-wip", "random-review"}
    assert {k: target[k] for k in ("ci", "metric", "min_replications", "max_replications")} == {
        "ci": TARGET, "metric": "value_delivered", "min_replications": 30, "max_replications": MAX,
    }  # fmt: skip


def test_target_run_is_the_prefix_of_a_full_run(targeted, full):
    n = targeted.manifest["replications_completed"]
    for table in TABLES:
        whole = getattr(full, table)
        prefix = whole[whole["replication"] < n].reset_index(drop=True)
        pdt.assert_frame_equal(getattr(targeted, table), prefix, obj=table)


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_do_not_change_where_a_target_run_stops(small, targeted, workers, tmp_path):
    results = execute(small, target_ci=TARGET, max_replications=MAX, workers=workers, out=tmp_path)
    assert results.manifest["target"] == targeted.manifest["target"]
    for table in TABLES:
        pdt.assert_frame_equal(getattr(results, table), getattr(targeted, table), obj=table)
        # Chunks simulated ahead by idle workers are not left in the folder.
        assert sorted(p.stem for p in (tmp_path / f"{table}.parquet").iterdir()) == results.manifest["completed_chunks"]


def test_in_memory_target_run_through_the_public_api(small, targeted):
    results = flowsim.run(small, target_ci=TARGET, max_replications=MAX, workers=2)
    assert results.manifest["target"] == targeted.manifest["target"]
    pdt.assert_frame_equal(results.projects, targeted.projects)


def test_max_replications_reached(small, full):
    results = execute(small, target_ci=0.001, max_replications=MAX, workers=2)
    target = results.manifest["target"]
    assert target["status"] == "max_replications"
    assert target["replications"] == results.manifest["replications_completed"] == MAX
    assert target["half_width"] > target["threshold"]
    assert results.manifest["partial"] is False


def test_one_policy_uses_its_own_half_width(small, full):
    results = execute(small, policies=["fifo"], target_ci=0.03, max_replications=MAX, workers=2)
    target = results.manifest["target"]
    assert list(target["half_widths"]) == ["fifo"]
    expected = first_boundary_meeting(full, 0.03, 10, default_chunk_size(MAX), policies=["fifo"])
    assert target["replications"] == expected
    fifo = values_by_policy(full)["fifo"][:expected]
    assert target["half_width"] == pytest.approx(half_width(fifo))


def test_minimum_replications_before_stopping(small):
    results = execute(small, replications=50, target_ci=0.5, max_replications=MAX, workers=2)
    assert results.manifest["target"]["replications"] == 50
    assert results.manifest["target"]["min_replications"] == 50


def test_interrupted_target_run_resumes_to_the_same_stop(small, targeted, tmp_path):
    def interrupt(done, total):
        if done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(small, target_ci=TARGET, max_replications=MAX, workers=2, out=tmp_path, progress=interrupt)
    partial = flowsim.Results.load(tmp_path)
    assert partial.partial and partial.manifest["target"]["status"] == "running"
    results = execute(small, target_ci=TARGET, max_replications=MAX, workers=2, out=tmp_path, resume=True)
    assert results.manifest["target"] == targeted.manifest["target"]
    pdt.assert_frame_equal(results.events, targeted.events)
    with pytest.raises(FlowsimError, match="--resume must continue the same run: target was"):
        execute(small, target_ci=0.02, max_replications=MAX, out=tmp_path, resume=True)


def test_resume_refuses_a_target_run_judged_by_the_earlier_rule(small, tmp_path):
    """A --target-ci run written before JUDGED_FROM judged its stop from its minimum on
    (default 10).  Resumed by the new rule it would go on past the stop it reached, or stop
    elsewhere: it is refused, by its flowsim version and, were the version the same, by its
    stopping rule (``judged_from`` missing from its manifest).  Its manifest is untouched."""
    import json

    import flowsim

    execute(small, target_ci=0.5, max_replications=MAX, workers=2, out=tmp_path)
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest["target"]["judged_from"] == JUDGED_FROM
    old = json.loads(path.read_text())
    del old["target"]["judged_from"]
    old["target"].update(min_replications=10, replications=10)  # what the old rule reached
    old["completed_chunks"] = ["part-0000000-0000009"]
    old["replications_completed"] = 10
    for version, refused in (("0.3.2", "flowsim version was '0.3.2'"), (flowsim.__version__, "target was ")):
        old["versions"]["flowsim"] = version
        path.write_text(json.dumps(old))
        for minimum in (None, 10):
            with pytest.raises(FlowsimError, match=f"--resume must continue the same run: .*{refused}"):
                execute(small, target_ci=0.5, replications=minimum, max_replications=MAX, out=tmp_path, resume=True)
        assert json.loads(path.read_text()) == old  # untouched


def test_cli_reports_what_was_reached(small_file, full, tmp_path):
    runner = CliRunner()
    base = ["run", str(small_file), "--workers", "2", "--max-replications", str(MAX)]

    def outcome(*args: str) -> str:
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 0, result.output
        return next(line for line in result.output.splitlines() if line.startswith(("target", "max")))

    line = outcome("--target-ci", str(TARGET), "--out", str(tmp_path / "a"))
    expected = first_boundary_meeting(full, TARGET, 10, default_chunk_size(MAX))  # the rule, by brute force
    assert line.startswith(f"target reached after {expected} replications: half-width ")
    assert " <= " in line and "(0.015 x baseline mean " in line
    line = outcome("--target-ci", "0.001", "--out", str(tmp_path / "b"))
    assert line.startswith(f"max replications reached: {MAX} replications, half-width ")
    assert " > " in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-ci", "0"], "--target-ci must be above 0"),
        (["--target-ci", "0.1", "--target-metric", "profit"], "--target-metric must be one of value_delivered,"),
        (["--max-replications", "50"], "--max-replications bounds a --target-ci run"),
        (["--target-ci", "0.1", "-n", "60", "--max-replications", "50"], "must be at most --max-replications 50"),
    ],
)
def test_bad_target_options_exit_2(small_file, tmp_path, args, message):
    result = CliRunner().invoke(app, ["run", str(small_file), "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "manifest.json").exists()


# ------------------------------------------------------------ statistics


def test_welch_ci_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 30), rng.normal(9, 4, 20)
    diff, low, high = welch_ci(a, b)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert (low, high) == pytest.approx((expected.low, expected.high))


def test_paired_ci_is_the_ci_of_differences():
    rng = np.random.default_rng(2)
    a = rng.normal(size=25)
    b = a + rng.normal(0.5, 0.1, 25)
    mean, low, high = paired_ci(b, a)
    expected = scipy_stats.ttest_rel(b, a).confidence_interval(0.95)
    assert (low, high) == pytest.approx((expected.low, expected.high))
    assert mean == pytest.approx(np.mean(b - a))


def test_replications_needed_is_the_smallest_n_meeting_the_half_width():
    variance, target = 4.0, 0.5
    n = replications_needed(variance, target)
    t = scipy_stats.t.ppf(0.975, [n - 2, n - 1])
    assert t[1] * math.sqrt(variance / n) <= target < t[0] * math.sqrt(variance / (n - 1))
    assert replications_needed(0.0, 1.0) == 2


def test_pairing_narrows_the_ci_of_a_difference_on_the_default_scenario():
    """Common random numbers: the paired CI of cd3 - fifo is narrower than Welch's unpaired
    CI from the same replications, because the two policies' outcomes are positively
    correlated across worlds."""
    scenario = flowsim.load_scenario(ROOT / "scenarios" / "default.yaml")
    results = execute(scenario, replications=20, policies=["push-fifo", "push-cd3"], workers=2)
    values = values_by_policy(results)
    fifo, cd3 = values["push-fifo"], values["push-cd3"]
    assert np.corrcoef(fifo, cd3)[0, 1] > 0.5
    _mean, low, high = paired_ci(cd3, fifo)
    _diff, w_low, w_high = welch_ci(cd3, fifo)
    assert (high - low) < 0.8 * (w_high - w_low)
