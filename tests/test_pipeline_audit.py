"""Audit of the Monte Carlo pipeline: run folder, summaries, report.

Each statistic is recomputed here from the Parquet files with numpy/scipy, never
copied from flowsim's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.errors import FlowsimError
from flowsim.report import write_report
from flowsim.results import Results
from flowsim.runner import execute
from flowsim.target import JUDGED_FROM

SMALL = Path(__file__).resolve().parent / "fixtures" / "small_portfolio.yaml"

# Two projects of exponential effort in a short horizon: in some worlds a policy delivers
# nothing, so its cycle times are undefined (NaN) there and paired differences must drop them.
SCARCE = """
name: Scarce deliveries
horizon: 6
teams:
  dev: {capacity: 1}
projects:
  - id: a
    value: {rate: 1000}
    promised: 4
    stages: [{team: dev, effort: {dist: exponential, mean: 5}}]
  - id: b
    value: {rate: 3000}
    stages: [{team: dev, effort: {dist: exponential, mean: 3}}]
policies:
  fifo: {intake: admit_all, sequencing: fifo}
  sjf: {intake: admit_all, sequencing: sjf}
"""

# Only an arrival stream: no listed project, so project_summary has no row.
STREAM_ONLY = """
name: Arrivals only
horizon: 20
teams:
  dev: {capacity: 1}
templates:
  job:
    value: {rate: 100}
    stages: [{team: dev, effort: {dist: exponential, mean: 1}}]
arrivals:
  - {template: job, rate: 0.5, name: jobs}
"""

# The column names of the contract (README "Outputs"), written out here on purpose.
SUMMARY_COLUMNS = ["policy", "metric", "n", "mean", "ci_low", "ci_high", "p10", "p50", "p90", "delivered",
                   "diff", "diff_ci_low", "diff_ci_high", "better_share"]  # fmt: skip
PROJECT_SUMMARY_COLUMNS = ["policy", "project", "p50_delivery", "p85_delivery", "p_delivered", "promised",
                           "p_on_promise", "value_delayed"]  # fmt: skip


@pytest.fixture(scope="module")
def small():
    return flowsim.load_scenario(SMALL)


def scenario_from(text: str, folder: Path, name: str):
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return flowsim.load_scenario(path)


def metric_by_policy(root: Path, metric: str) -> pd.DataFrame:
    """One column per policy, one row per replication, straight from replications.parquet."""
    frame = pd.read_parquet(root / "replications.parquet")
    frame["policy"] = frame["policy"].astype(str)
    return frame.pivot(index="replication", columns="policy", values=metric).sort_index()


def t_interval(x: np.ndarray) -> tuple[float, float, float]:
    x = x[~np.isnan(x)]
    mean = x.mean()
    half = scipy_stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return mean, mean - half, mean + half


# ------------------------------------------------------------ --target-ci and the report


def test_a_target_run_that_stopped_early_is_complete_in_its_report(small, tmp_path):
    """A --target-ci run plans --max-replications and stops once the target is met: the
    report must not call that finished run partial (it did: "PARTIAL RUN: only 10 of 60")."""
    out = tmp_path / "target"
    ci, most = 0.05, 60
    execute(small, target_ci=ci, max_replications=most, chunk_size=5, workers=1, out=out)
    manifest = json.loads((out / "manifest.json").read_text())
    done = manifest["replications_completed"]
    assert done < most  # the premise: it stopped before the maximum
    # Independently: the paired 95% half-widths meet the target at `done`, and at no earlier
    # chunk boundary from JUDGED_FROM (30) on, so `done` replications is the whole run.
    values = metric_by_policy(out, "value_delivered")
    assert len(values) == done
    base = values[manifest["baseline"]].to_numpy()
    others = [p for p in manifest["policies"] if p != manifest["baseline"]]

    def met(n: int) -> bool:
        threshold = ci * abs(base[:n].mean())
        return all(
            scipy_stats.t.ppf(0.975, n - 1) * np.std(values[p].to_numpy()[:n] - base[:n], ddof=1) / np.sqrt(n)
            <= threshold
            for p in others
        )

    assert met(done)
    assert not any(met(n) for n in range(JUDGED_FROM, done, 5))

    page = write_report(out).read_text()
    assert "PARTIAL RUN" not in page
    assert "(partial)" not in page


def test_an_interrupted_target_run_is_still_partial_in_its_report(small, tmp_path):
    out = tmp_path / "interrupted"
    calls = []

    def interrupt_after_first_chunk(done, total):
        calls.append(done)
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(small, target_ci=0.001, max_replications=60, chunk_size=5, workers=1, out=out,
                progress=interrupt_after_first_chunk)  # fmt: skip
    assert len(pd.read_parquet(out / "replications.parquet")["replication"].unique()) == 5
    page = write_report(out).read_text()
    assert "PARTIAL RUN: only 5 of 60" in page


# ------------------------------------------------------------ chunks listed but missing


@pytest.fixture(scope="module")
def four_chunks(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("chunks") / "run"
    execute(small, replications=4, chunk_size=1, workers=1, out=out)
    return out


@pytest.mark.parametrize("table", ["projects", "replications"])
def test_a_listed_chunk_missing_from_the_folder_is_an_error_not_a_smaller_run(four_chunks, tmp_path, table):
    """The manifest says 4 replications; with one chunk file gone the tables held 3 and the
    summaries and report presented them as the whole run."""
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(four_chunks, out)
    (out / f"{table}.parquet" / "part-0000002-0000002.parquet").unlink()
    results = Results.load(out)
    with pytest.raises(FlowsimError, match=r"part-0000002-0000002\.parquet"):
        getattr(results, table)
    with pytest.raises(FlowsimError, match=rf"{table}\.parquet"):
        results.summary() if table == "replications" else results.project_summary()
    done = CliRunner().invoke(app, ["report", str(out)])
    assert done.exit_code == 2, done.output
    assert "part-0000002-0000002.parquet" in done.output
    assert not (out / "report.html").exists()


def test_the_intact_folder_reads_every_listed_replication(four_chunks):
    results = Results.load(four_chunks)
    assert sorted(results.replications["replication"].unique()) == [0, 1, 2, 3]
    assert sorted(results.projects["replication"].unique()) == [0, 1, 2, 3]


# ------------------------------------------------------------ empty summaries


def test_project_summary_csv_reads_back_when_no_project_is_listed(tmp_path):
    """With only arrival streams project_summary.csv was a lone newline: no header, and
    pandas.read_csv refused it (EmptyDataError)."""
    scenario = scenario_from(STREAM_ONLY, tmp_path, "streams")
    out = tmp_path / "run"
    results = execute(scenario, replications=2, workers=1, out=out)
    results.write_summaries(out)
    table = pd.read_csv(out / "project_summary.csv")
    assert list(table.columns) == PROJECT_SUMMARY_COLUMNS
    assert len(table) == 0
    assert list(pd.read_csv(out / "summary.csv").columns) == SUMMARY_COLUMNS


def test_a_folder_interrupted_before_its_first_chunk_summarises_to_empty_tables(small, tmp_path):
    """Results.load of such a folder gave KeyError: 'policy' from summary(), compare(),
    project_summary() and verdicts()."""
    out = tmp_path / "run"

    def interrupt_at_once(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(small, replications=4, workers=1, out=out, progress=interrupt_at_once)
    results = Results.load(out)
    assert results.partial and results.manifest["completed_chunks"] == []
    assert list(results.summary().columns) == SUMMARY_COLUMNS and results.summary().empty
    assert results.compare().empty
    assert list(results.project_summary().columns) == PROJECT_SUMMARY_COLUMNS
    assert results.verdicts() == []


# ------------------------------------------------------------ statistics, against scipy


@pytest.fixture(scope="module")
def scarce_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scarce")
    scenario = scenario_from(SCARCE, folder, "scarce")
    out = folder / "run"
    results = execute(scenario, replications=40, seed=11, workers=2, out=out)
    results.write_summaries(out)
    return out


def test_summary_csv_matches_an_independent_computation_with_undefined_cycle_times(scarce_run):
    summary = pd.read_csv(scarce_run / "summary.csv")
    projects = pd.read_parquet(scarce_run / "projects.parquet")
    projects["policy"] = projects["policy"].astype(str)
    # Cycle times per replication from the projects table, over deliveries only.
    delivered = projects[projects["status"] == "delivered"]
    cycle = delivered.groupby(["replication", "policy"])["cycle_time"].mean().unstack()
    cycle = cycle.reindex(range(40))
    assert cycle.isna().any().any()  # the premise: some worlds deliver nothing
    base = cycle["fifo"].to_numpy()
    for policy in ("fifo", "sjf"):
        x = cycle[policy].to_numpy()
        row = summary[(summary.policy == policy) & (summary.metric == "cycle_time_mean")].iloc[0]
        finite = x[~np.isnan(x)]
        mean, low, high = t_interval(x)
        assert row["n"] == len(finite)
        assert row[["mean", "ci_low", "ci_high"]].to_numpy(dtype=float) == pytest.approx([mean, low, high])
        assert row[["p10", "p50", "p90"]].to_numpy(dtype=float) == pytest.approx(np.percentile(finite, [10, 50, 90]))
        counts = delivered[delivered.policy == policy].groupby("replication").size().reindex(range(40), fill_value=0)
        assert row["delivered"] == pytest.approx(counts.mean())
    row = summary[(summary.policy == "sjf") & (summary.metric == "cycle_time_mean")].iloc[0]
    both = ~np.isnan(cycle["sjf"].to_numpy()) & ~np.isnan(base)
    diff = cycle["sjf"].to_numpy()[both] - base[both]
    d_mean, d_low, d_high = t_interval(diff)
    assert row[["diff", "diff_ci_low", "diff_ci_high"]].to_numpy(dtype=float) == pytest.approx([d_mean, d_low, d_high])
    assert row["better_share"] == pytest.approx(np.mean(diff < 0))  # shorter is better


def test_project_summary_csv_matches_an_independent_computation(scarce_run):
    table = pd.read_csv(scarce_run / "project_summary.csv")
    projects = pd.read_parquet(scarce_run / "projects.parquet")
    for (policy, project), rows in projects.groupby([projects.policy.astype(str), projects.project.astype(str)]):
        times = np.sort(rows["delivered"].fillna(np.inf).to_numpy())
        n = len(times)
        assert n == 40

        def empirical(q, times=times, n=n):  # the smallest time delivered in at least q of the worlds
            value = times[int(np.ceil(q * n)) - 1]
            return value if np.isfinite(value) else np.nan

        row = table[(table.policy == policy) & (table.project == project)].iloc[0]
        assert row["p50_delivery"] == pytest.approx(empirical(0.5), nan_ok=True)
        assert row["p85_delivery"] == pytest.approx(empirical(0.85), nan_ok=True)
        assert row["p_delivered"] == pytest.approx(np.isfinite(times).mean())
        if project == "a":
            assert row["p_on_promise"] == pytest.approx(np.mean(times <= 4))
        else:
            assert np.isnan(row["p_on_promise"])
        assert row["value_delayed"] == pytest.approx(rows["value_delayed"].mean())
