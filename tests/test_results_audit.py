"""Audit of issues 4-6: what the other test files leave unproven, checked so that it can fail.

* summary.csv / ``summary()`` / ``compare()`` recomputed independently from the
  projects and teams tables (scipy for every interval), and on a portfolio whose
  answer is known by hand; the CLI's one-line verdicts in money;
  ``project_summary.csv`` as the CLI writes it; the CSV outputs byte-identical
  for 1 worker and the default (all cores).
* Progress as a rich bar on a real terminal (a pty); streaming runs keep only
  the metric table in the parent; ``--target-metric`` other than value delivered.
* Pairing narrows the CI: a 4-standard-error test rather than a ratio picked by eye.
* Plots: every kind returns a new axes with ``ax=None`` and draws into the given one.
* ``flowsim run --report``, ``flowsim report DIR``, ``make run``; every figure of the
  report decodes in headless Chromium (not just present as an ``<img>`` tag).
* What-if pages for admit, stop and benefits; sweeps on the same worlds.
* Issue 6 point 6 by construction, with the numbers derived from the scenario, not
  from another output column; tolerances of 4 standard errors where random.
* Bad input on the whatif and sweep commands: exit 2, a message naming the
  file/key/value, no traceback; the cases the audit found crashing are refused or
  answered plainly.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_in_terminal as on_terminal
from matplotlib.axes import Axes
from scipy import stats
from test_whatif import LOADED
from typer.testing import CliRunner

import flowsim
from flowsim import plots
from flowsim.analysis import whatif
from flowsim.analysis.sweep import sweep
from flowsim.cli import app
from flowsim.format import money, verdict
from flowsim.runner import _work, default_chunk_size, execute
from flowsim.stats import target_half_widths
from flowsim.store import RunStore
from flowsim.tables import TABLES

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "fixtures" / "small_portfolio.yaml"  # horizon 52, teams dev and test
DEFAULT = ROOT / "scenarios" / "default.yaml"
FLOWSIM = str(Path(sys.executable).with_name("flowsim"))
CHROMIUM = "/usr/bin/chromium"
N = 30  # replications of the small portfolio: a fraction of a second
runner = CliRunner()

SUMMARY_COLUMNS = ["policy", "metric", "n", "mean", "ci_low", "ci_high", "p10", "p50", "p90", "delivered",
                   "diff", "diff_ci_low", "diff_ci_high", "better_share"]  # fmt: skip
PROJECT_SUMMARY_COLUMNS = ["policy", "project", "p50_delivery", "p85_delivery", "p_delivered", "promised",
                           "p_on_promise", "value_delayed"]  # fmt: skip
# More is better (+1), less is better (-1): the direction "better in x% of worlds" is counted in.
DIRECTION = {"value_delivered": 1, "value_delayed": -1, "npv": 1, "npv_delay_cost": -1, "throughput": 1,
             "delivered": 1, "cycle_time_mean": -1, "cycle_time_p90": -1}  # fmt: skip

# One multitasking developer (Weinberg), four fixed projects worth 1,000 a week, 60 weeks. By hand:
#   push (all four at once, 0.4 / 4 each): all delivered at 40    -> value 4 x 1000 x 20 = 80,000
#   wip1 (one at a time): delivered at 4, 8, 12, 16                -> 1000 x (56+52+48+44) = 200,000
# Ideal delivery is 4 for each (alone, no contention): value_ideal 4 x 1000 x 56 = 224,000.
WIP = {
    "name": "wip by hand",
    "horizon": 60,
    "teams": {"dev": {"capacity": 1, "focus": "shared", "switching": "weinberg"}},
    "projects": [{"id": f"p{i}", "value": {"rate": 1000}, "stages": [{"team": "dev", "effort": 4}]} for i in range(4)],
    "policies": {"push": {"intake": "admit_all", "sequencing": "fifo"},
                 "wip1": {"intake": {"rule": "wip_limit", "limit": 1}, "sequencing": "fifo"}},
}  # fmt: skip


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """``flowsim run`` of the small portfolio with --report, one worker: (folder, CLI result)."""
    out = tmp_path_factory.mktemp("small") / "run"
    result = invoke("run", SMALL, "-n", N, "--workers", "1", "--out", out, "--report")
    assert result.exit_code == 0, result.output
    return out, result


@pytest.fixture(scope="module")
def small_results(small_run):
    return flowsim.Results.load(small_run[0])


# ------------------------------------------------------------------ issue 4.1: summaries


def per_replication(results) -> pd.DataFrame:
    """Each replication's portfolio metrics recomputed from the projects and teams tables."""
    projects = results.projects.assign(policy=lambda f: f["policy"].astype(str))
    horizon = results.manifest["scenario"]["horizon"]
    rows = []
    for (policy, replication), group in projects.groupby(["policy", "replication"]):
        done = group[group["status"] == "delivered"]
        rows.append({
            "policy": policy, "replication": replication,
            "value_delivered": group["value_delivered"].sum(), "value_delayed": group["value_delayed"].sum(),
            "npv": group["npv"].sum(), "npv_delay_cost": (group["npv_ideal"] - group["npv"]).sum(),
            "delivered": float(len(done)), "throughput": len(done) / horizon,
            "cycle_time_mean": done["cycle_time"].mean(), "cycle_time_p90": done["cycle_time"].quantile(0.9),
        })  # fmt: skip
    frame = pd.DataFrame(rows).set_index(["policy", "replication"])
    teams = results.teams.assign(policy=lambda f: f["policy"].astype(str), team=lambda f: f["team"].astype(str))
    utilisation = teams.pivot_table(index=["policy", "replication"], columns="team", values="utilisation")
    return frame.join(utilisation.add_prefix("utilisation."))


def test_summary_csv_has_mean_ci_quantiles_and_paired_differences_for_every_metric(small_run, small_results):
    summary = pd.read_csv(small_run[0] / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    expected = per_replication(small_results)
    assert set(expected.columns) <= set(summary["metric"])  # incl. npv_ideal - npv and each team's utilisation
    base = small_results.baseline
    checked = 0
    for row in summary.itertuples():
        if row.metric not in expected.columns:
            continue
        values = expected.loc[row.policy, row.metric].sort_index().to_numpy(dtype=float)
        reference = expected.loc[base, row.metric].sort_index().to_numpy(dtype=float)
        assert row.n == len(values) == N
        sem = stats.sem(values)
        low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sem) if sem else (values[0],) * 2
        got = (row.mean, row.ci_low, row.ci_high, row.p10, row.p50, row.p90)
        want = (values.mean(), low, high, *pd.Series(values).quantile([0.1, 0.5, 0.9]))
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (row.policy, row.metric)
        if row.metric in ("cycle_time_mean", "cycle_time_p90"):  # beside the number delivered
            delivered = expected.loc[row.policy, "delivered"].to_numpy(dtype=float).mean()
            assert row.delivered == pytest.approx(delivered, rel=1e-12)
        else:
            assert math.isnan(row.delivered)
        if row.policy == base:
            assert math.isnan(row.diff) and math.isnan(row.diff_ci_low) and math.isnan(row.better_share)
        else:
            diff = values - reference
            assert row.diff == pytest.approx(diff.mean(), rel=1e-9, abs=1e-9)
            if np.ptp(diff) > 0:
                ci = stats.ttest_rel(values, reference).confidence_interval(0.95)
                assert (row.diff_ci_low, row.diff_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
            direction = DIRECTION.get(row.metric, 0)
            if direction:
                assert row.better_share == pytest.approx(np.mean(direction * diff > 0))
            else:
                assert math.isnan(row.better_share)
        checked += 1
    assert checked == len(expected.columns) * len(small_results.policies)


def test_compare_is_the_paired_part_of_the_summary(small_results):
    summary, compare = small_results.summary(), small_results.compare()
    assert list(compare.columns) == ["policy", "metric", "n", "diff", "diff_ci_low", "diff_ci_high", "better_share"]
    others = summary[summary["policy"] != small_results.baseline].reset_index(drop=True)
    pd.testing.assert_frame_equal(compare, others[list(compare.columns)])
    assert set(compare["policy"]) == set(small_results.policies[1:])


def test_summary_and_verdict_on_a_portfolio_known_by_hand(tmp_path):
    result = invoke("run", write(tmp_path / "wip.yaml", WIP), "-n", 3, "--workers", 1, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert ("wip1 delivers 120k more than push over 60 weeks, 95% CI 120k to 120k, better in 100% of worlds"
            in result.stdout.splitlines())  # fmt: skip
    summary = pd.read_csv(tmp_path / "run" / "summary.csv").set_index(["policy", "metric"])
    means = {("push", "value_delivered"): 80_000, ("wip1", "value_delivered"): 200_000,
             ("push", "value_delayed"): 144_000, ("wip1", "value_delayed"): 24_000,
             ("push", "cycle_time_mean"): 40, ("wip1", "cycle_time_mean"): 10,
             ("push", "cycle_time_p90"): 40, ("wip1", "cycle_time_p90"): 14.8,  # linear P90 of 4, 8, 12, 16
             ("push", "delivered"): 4, ("wip1", "throughput"): 4 / 60}  # fmt: skip
    for key, mean in means.items():
        assert summary.loc[key, "mean"] == pytest.approx(mean, rel=1e-12), key
    wip1 = summary.loc["wip1"]
    for metric, diff, better in (("value_delivered", 120_000, 1.0), ("value_delayed", -120_000, 1.0),
                                 ("npv_delay_cost", -120_000, 1.0), ("cycle_time_mean", -30, 1.0),
                                 ("delivered", 0, 0.0)):  # fmt: skip
        assert wip1.loc[metric, ["diff", "diff_ci_low", "diff_ci_high"]].tolist() == pytest.approx([diff] * 3)
        assert wip1.loc[metric, "better_share"] == better, metric  # a tie is not "better"


def test_cli_prints_one_verdict_in_money_per_policy(small_run, small_results):
    lines = small_run[1].stdout.splitlines()
    compare = small_results.compare().set_index(["policy", "metric"])
    for policy in small_results.policies[1:]:
        row = compare.loc[(policy, "value_delivered")]
        more = "more" if row["diff"] >= 0 else "less"
        # The interval's wording is checked case by case in test_verdict_amounts_read_in_the_sentences_sense.
        start = f"{policy} delivers {money(abs(row['diff']))} {more} than fifo over 1 year, 95% CI "
        end = f", better in {row['better_share']:.0%} of worlds"
        assert len([line for line in lines if line.startswith(start) and line.endswith(end)]) == 1, (start, lines)
    assert not [line for line in lines if line.startswith("fifo delivers")]  # none for the baseline


def test_cli_writes_project_summary_csv(small_run, small_results):
    written = pd.read_csv(small_run[0] / "project_summary.csv")
    assert list(written.columns) == PROJECT_SUMMARY_COLUMNS
    assert sorted(zip(written["policy"], written["project"], strict=True)) == sorted(
        (p, q) for p in small_results.policies for q in ("alpha", "beta")
    )  # listed projects only, not the arrivals
    expected = small_results.project_summary().assign(policy=lambda f: f["policy"].astype(str))
    pd.testing.assert_frame_equal(written, expected, check_dtype=False, rtol=1e-12)


def test_csv_outputs_are_identical_with_one_worker_and_all_cores(small_run, tmp_path):
    result = invoke("run", SMALL, "-n", N, "--out", tmp_path, "--quiet")  # no --workers: all cores
    assert result.exit_code == 0, result.output
    manifest = flowsim.Results.load(tmp_path).manifest
    assert manifest["execution"] == {"backend": "processes", "workers": os.cpu_count()}
    for name in ("summary.csv", "project_summary.csv"):
        assert (tmp_path / name).read_bytes() == (small_run[0] / name).read_bytes(), name


def test_an_existing_dask_scheduler_gives_the_frames_of_one_local_worker(tmp_path):
    """``--scheduler ADDRESS`` (not only ``local``): a cluster started outside flowsim."""
    distributed = pytest.importorskip("dask.distributed")
    import logging

    scenario = flowsim.load_scenario(SMALL)
    local = execute(scenario, replications=12, workers=1, out=tmp_path / "local")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:  # fmt: skip
        remote = execute(scenario, replications=12, scheduler=cluster.scheduler_address, out=tmp_path / "dask")
        with distributed.Client(cluster) as client:  # flowsim left the cluster running
            assert len(client.scheduler_info()["workers"]) == 2
    assert remote.manifest["execution"]["scheduler"] == cluster.scheduler_address
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(remote, table), getattr(local, table), obj=table)


# ------------------------------------------------------------------ issue 4.3: progress


def run_in_terminal(*args: str) -> tuple[int, str]:
    """``flowsim run ARGS`` with stderr on a pseudo-terminal; returns its exit code and what it drew."""
    return on_terminal("run", *args)


def test_progress_is_a_rich_bar_on_a_terminal(tmp_path):
    code, drawn = run_in_terminal(str(SMALL), "-n", "12", "--workers", "1", "--out", str(tmp_path / "a"))
    assert code == 0, drawn
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    assert "━" in plain  # the bar
    assert re.search(r"replications\s+━+\s+12/12 \d+\.\d/s \d+:\d\d:\d\d", plain), plain[-400:]  # done, rate, ETA
    assert "replications 12/12, " not in plain  # not the plain lines of a pipe
    code, drawn = run_in_terminal(str(SMALL), "-n", "4", "--workers", "1", "--out", str(tmp_path / "b"), "--quiet")
    assert code == 0 and drawn == ""


# ------------------------------------------------------------------ issue 4.5 and 4.7


def test_target_ci_on_another_metric_stops_where_that_metric_says(tmp_path):
    scenario = flowsim.load_scenario(SMALL)
    full = execute(scenario, replications=80, workers=1)
    frame = full.replications

    def stop(metric: str, target: float) -> int:
        values = {p: frame[frame["policy"] == p].sort_values("replication")[metric].to_numpy() for p in full.policies}
        for end in range(default_chunk_size(80), 81, default_chunk_size(80)):
            prefix = {p: v[:end] for p, v in values.items()}
            widths = target_half_widths(prefix, "fifo")
            if end >= 10 and all(w <= target * abs(prefix["fifo"].mean()) for w in widths.values()):
                return end
        return 80

    expected = stop("throughput", 0.03)
    assert 10 < expected < 80 and expected != stop("value_delivered", 0.03)  # the metric matters here
    results = execute(scenario, target_ci=0.03, target_metric="throughput", max_replications=80, workers=1)
    assert results.manifest["target"]["metric"] == "throughput"
    assert results.manifest["target"]["status"] == "reached"
    assert results.manifest["replications_completed"] == results.manifest["target"]["replications"] == expected


def test_a_run_folder_streams_only_the_metric_table_back_to_the_parent(tmp_path):
    scenario = flowsim.load_scenario(SMALL)
    RunStore(tmp_path).prepare()
    name, tables = _work((scenario, ("fifo", "cd3-wip"), 3, 0, 4, None, str(tmp_path)))
    assert set(tables) == {"replications"}  # the other tables stay in the worker's chunk files
    for table in TABLES:
        assert (tmp_path / f"{table}.parquet" / f"{name}.parquet").is_file(), table
    results = execute(scenario, replications=12, workers=2, out=tmp_path / "run")
    assert results._tables == {} and results._frames == {}  # nothing loaded until asked for
    assert len(results.projects) > 0


# ------------------------------------------------------------------ issue 4.6: pairing


def test_pairing_narrows_the_ci_on_the_default_scenario_by_more_than_4_standard_errors():
    """var(a - b) < var(a) + var(b) exactly when the policies are positively correlated across
    worlds; Fisher's z puts that correlation more than 4 standard errors above 0, and the paired
    interval is then narrower than the unpaired (Welch) one from the same replications."""
    n = 60
    results = execute(flowsim.load_scenario(DEFAULT), replications=n, policies=["push-fifo", "push-cd3"], workers=2)
    frame = results.replications
    fifo, cd3 = (frame[frame["policy"] == p].sort_values("replication")["value_delivered"].to_numpy()
                 for p in ("push-fifo", "push-cd3"))  # fmt: skip
    rho = np.corrcoef(fifo, cd3)[0, 1]
    assert math.atanh(rho) - 4 / math.sqrt(n - 3) > 0
    paired = stats.ttest_rel(cd3, fifo).confidence_interval(0.95)
    welch = stats.ttest_ind(cd3, fifo, equal_var=False).confidence_interval(0.95)
    assert paired.high - paired.low < welch.high - welch.low


# ------------------------------------------------------------------ issue 5.1: plots


def plot_calls(results, sweep_table):
    teams = results.manifest["scenario"]["teams"]
    return {
        "value_over_time": lambda ax: plots.value_over_time(results.timeline, ax),
        "cumulative_flow": lambda ax: plots.cumulative_flow(results.timeline, "fifo", ax),
        "team_load": lambda ax: plots.team_load(results.team_timeline, teams, "fifo", ax),
        "team_queue": lambda ax: plots.team_queue(results.team_timeline, "fifo", ax),
        "cycle_time_distribution": lambda ax: plots.cycle_time_distribution(results.projects, ax),
        "policy_differences": lambda ax: plots.policy_differences(results.compare(), "value_delivered", ax),
        "metric_vs_parameter": lambda ax: plots.metric_vs_parameter(
            sweep_table, "teams.dev.capacity", "value_delivered", ax
        ),
    }


def test_every_plot_returns_new_axes_or_draws_into_the_given_ones(small_results):
    table = sweep(SMALL, ["teams.dev.capacity=2,3"], replications=3, workers=1).table
    try:
        for name, draw in plot_calls(small_results, table).items():
            before = set(plt.get_fignums())
            made = draw(None)
            assert isinstance(made, Axes), name
            assert set(plt.get_fignums()) - before, f"{name}: no new figure with ax=None"
            assert made.has_data() or made.images, f"{name}: nothing drawn"
            _fig, ax = plt.subplots()
            assert draw(ax) is ax, name
            assert ax.has_data() or ax.images, f"{name}: nothing drawn into the given axes"
    finally:
        plt.close("all")


# ------------------------------------------------------------------ issue 5.2/5.4: report


def test_run_with_report_and_report_command(small_run, tmp_path):
    out, result = small_run
    page = out / "report.html"
    assert f"report: {page}" in result.stdout.splitlines()
    assert "Summary by policy" in page.read_text(encoding="utf-8")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    again = invoke("report", copy)
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == f"report: {copy / 'report.html'}"
    missing = invoke("report", tmp_path / "nothing")
    assert missing.exit_code == 2
    expected = f"{tmp_path / 'nothing'}: must be a run folder with manifest.json, got no such folder"
    assert missing.stderr.strip() == expected
    (tmp_path / "empty").mkdir()
    (tmp_path / "a.txt").write_text("")
    for path, found in ((tmp_path / "empty", "a folder without one"), (tmp_path / "a.txt", "a file")):
        wrong = invoke("report", path)
        assert wrong.exit_code == 2
        assert wrong.stderr.strip() == f"{path}: must be a run folder with manifest.json, got {found}"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"policies": ["a"], "completed_chunks": []}', "got no scenario"),
        ("{not json", "got unreadable JSON"),
        ("[1, 2]", "got list"),
        ("5", "got int"),
    ],
)
def test_report_on_a_broken_manifest_names_the_file(tmp_path, text, found):
    (tmp_path / "manifest.json").write_text(text)
    result = invoke("report", tmp_path)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith(f"{tmp_path / 'manifest.json'}: must be ") and found in line
    assert "\n" not in line and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("damage", "found"),
    [
        ("cut", "got a file it cannot read (Parquet magic bytes not found in footer"),
        ("garbage", "got a file it cannot read (Parquet file size is 7 bytes"),
        ("another table", "got a file it cannot read (No match for FieldRef.Name("),
    ],
)
def test_report_on_a_damaged_table_names_the_file(tmp_path, damage, found):
    # A damaged chunk (a copy cut short, a disk error) gave an Arrow traceback and exit 1.
    out = tmp_path / "out"
    execute(flowsim.load_scenario(SMALL), replications=2, workers=1, out=out)
    chunk = sorted((out / "projects.parquet").iterdir())[0]
    if damage == "cut":
        chunk.write_bytes(chunk.read_bytes()[:1000])
    elif damage == "garbage":
        chunk.write_text("garbage")
    else:
        shutil.copy(sorted((out / "teams.parquet").iterdir())[0], chunk)
    result = invoke("report", out)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{chunk}: must be a table written by flowsim run, ") and found in line, line
    assert "Traceback" not in result.output


def test_capacity_with_no_team_able_to_take_the_delta_lists_each_team(tmp_path):
    result = invoke("whatif", "capacity", SMALL, "--delta", "-5", "-n", 2, "-w", 1, "-q")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"{SMALL}: teams.dev.capacity must stay at least 1 after --delta -5, got -3",
        f"{SMALL}: teams.test.capacity must stay at least 1 after --delta -5, got -4",
    ]


def test_a_missing_project_file_is_called_a_project_file(tmp_path):
    missing = tmp_path / "new.yaml"
    result = invoke("whatif", "admit", SMALL, "--project", missing, "-n", 2, "-w", 1, "-q")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{missing} must be an existing project file, got no such file"


def png_width(tag: str) -> int:
    data = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', tag).group(1))
    return struct.unpack(">I", data[16:20])[0]  # IHDR width


@pytest.mark.browser
def test_every_report_figure_decodes_in_headless_chromium(small_run, tmp_path):
    """An <img> tag in the DOM is not a rendered figure: once the page has loaded, a probe
    script records each image's natural width (it must be the PNG's) and draws it on a
    canvas, where every pixel must be opaque (a truncated or corrupt PNG leaves holes)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed: apt-get install chromium")
    page = (small_run[0] / "report.html").read_text(encoding="utf-8")
    widths = [png_width(tag) for tag in re.findall(r"<img\b[^>]*>", page)]
    assert len(widths) == 5
    # Matplotlib's PNGs are opaque: a pixel left transparent is one Chromium could not decode.
    probe = """<script>addEventListener('load', () => {
      for (const image of document.images) {
        const canvas = document.createElement('canvas');
        canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(image, 0, 0);
        let holes = canvas.width * canvas.height;
        if (holes) {
          holes = 0;
          const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
          for (let k = 3; k < pixels.length; k += 4) if (pixels[k] < 255) holes++;
        }
        image.setAttribute('data-w', image.naturalWidth);
        image.setAttribute('data-holes', holes);
      }
      document.body.setAttribute('data-loaded', '1');
    });</script></body>"""
    (tmp_path / "probe.html").write_text(page.replace("</body>", probe), encoding="utf-8")
    loaded = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", (tmp_path / "probe.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert 'data-loaded="1"' in loaded.stdout
    rendered = [int(w) for w in re.findall(r'<img\b[^>]*data-w="(\d+)"', loaded.stdout)]
    assert rendered == widths and all(w > 0 for w in rendered)
    holes = [int(h) for h in re.findall(r'<img\b[^>]*data-holes="(\d+)"', loaded.stdout)]
    assert holes == [0] * len(widths)  # every pixel of every figure decoded
    assert [line for line in loaded.stderr.splitlines() if ":CONSOLE" in line] == []


def test_make_run_ends_by_writing_the_report_and_printing_its_path(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    # Never reinstall the venv from a test; no "Entering directory" lines when the suite runs under make.
    keep = ["--no-print-directory", "-o", ".venv/.installed", "-o", ".venv/bin/activate"]
    dry = subprocess.run(["make", "-n", *keep, "run"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert ".venv/bin/flowsim run scenarios/default.yaml --out results/default --report" in dry.stdout
    out = tmp_path / "made"
    done = subprocess.run(["make", *keep, "run", f"SCENARIO={SMALL}", f"OUT={out}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"report: {out}/report.html" in done.stdout.splitlines()
    assert done.stdout.rstrip().endswith(f"open {out}/report.html in a browser")
    assert (out / "report.html").stat().st_size > 10_000


# ------------------------------------------------------------------ issue 6: what-if pages, sweeps


@pytest.mark.parametrize(
    ("question", "extra"), [("admit", ["--project", "alpha"]), ("stop", []), ("benefits", [])]
)  # fmt: skip
def test_whatif_pages_carry_the_printed_answer_and_tables(tmp_path, question, extra):
    result = invoke("whatif", question, SMALL, *extra, "-n", 4, "-w", 1, "-q", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    answer = result.stdout.splitlines()[2]  # settings line, blank line, the answer
    assert answer.endswith("(policy fifo, 4 worlds).")
    page = (tmp_path / f"whatif_{question}.html").read_text()
    assert html.escape(answer) in page and "<table" in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    table = pd.read_csv(tmp_path / f"whatif_{question}.csv")
    assert len(table) >= 1 and (tmp_path / f"whatif_{question}_totals.csv").is_file()


def test_every_sweep_value_meets_the_same_worlds():
    """A setting that changes nothing (the scenario's name) must give the first setting's
    numbers in every replication: the worlds are shared, not redrawn per value."""
    result = sweep(SMALL, {"name": ["a", "b"]}, replications=6, workers=1)
    values = result.replications.pivot(index="replication", columns="name", values="value_delivered")
    assert values["a"].nunique() == 6  # worlds differ from one another ...
    assert (values["a"] == values["b"]).all()  # ... and each is met by both settings
    assert result.table.loc[1, ["diff", "diff_ci_low", "diff_ci_high"]].tolist() == [0.0, 0.0, 0.0]


# ------------------------------------------------------------------ issue 6.6, by construction

# One team of 2, FIFO, every stage needs the whole team. "a" is in flight: effort 10, 4 done,
# so 6 remain: 3 weeks of the team. Stopping it moves b, c and d exactly 3 weeks earlier.
FIXED_CHAIN = {
    "horizon": 100,
    "seed": 11,
    "teams": {"build": {"capacity": 2}},
    "projects": [
        {"id": "a", "value": {"rate": 100}, "stages": [{"team": "build", "effort": 10, "done": 4, "crew": 2}]},
        {"id": "b", "value": {"rate": 100},
         "stages": [{"team": "build", "effort": {"dist": "uniform", "low": 4, "high": 6}, "crew": 2}]},
        {"id": "c", "value": {"rate": 100}, "stages": [{"team": "build", "effort": 6, "crew": 2}]},
        {"id": "d", "arrival": 1, "value": {"rate": 100}, "stages": [{"team": "build", "effort": 2, "crew": 2}]},
    ],
}  # fmt: skip


def test_stopping_frees_exactly_the_remaining_effort_given_in_the_scenario():
    result = whatif.stop(FIXED_CHAIN, ["a"], replications=5, workers=1)
    pairs = result.replications
    others = pairs[pairs["project"].isin(["b", "c", "d"])]
    np.testing.assert_allclose(others["delivery_change"], -3.0, rtol=0, atol=1e-9)
    row = result.table.iloc[0]
    assert row["freed_mean"] == pytest.approx(3 * 100 * 3, rel=1e-9)  # three projects, 3 weeks, 100 a week
    assert row["lost_mean"] == pytest.approx(100 * (100 - 3), rel=1e-9)  # a's own stream from week 3
    assert row["net_mean"] == pytest.approx(900 - 9700, rel=1e-9)


# LOADED: test_whatif's scenario where one team (busy) has all the load.


def test_one_more_unit_on_the_loaded_team_beats_every_other_team_by_4_standard_errors():
    n = 12
    result = whatif.capacity(LOADED, replications=n, workers=1)
    assert result.table.loc[0, "team"] == "busy" and bool(result.table.loc[0, "constraint"])
    change = result.replications.pivot(index="replication", columns="team", values="value_change")
    for team in ("idle", "spare"):
        gap = (change["busy"] - change[team]).to_numpy()  # paired: the same worlds
        assert gap.mean() - 4 * gap.std(ddof=1) / math.sqrt(n) > 0, team


def test_the_same_project_without_slack_is_less_likely_on_time():
    """One project, the same worlds (its id keys its draws), promised at 6 or at 10 weeks,
    effort U(4, 8) alone on its team: on time with the tight promise implies on time with
    the slack one in every world; P(tight) = 1/2 and P(slack) = 1."""
    n = 40
    base = {"horizon": 40, "seed": 9, "teams": {"t": {"capacity": 1}},
            "projects": [{"id": "job", "value": {"rate": 100},
                          "stages": [{"team": "t", "effort": {"dist": "uniform", "low": 4, "high": 8}}]}]}  # fmt: skip
    on_time = {}
    for promise in (6, 10):
        data = yaml.safe_load(yaml.safe_dump(base))
        data["projects"][0]["promised"] = promise
        reps = whatif.benefits(data, replications=n, workers=1).replications.sort_values("replication")
        on_time[promise] = reps["on_time"].to_numpy(dtype=float)
    assert np.all(on_time[6] <= on_time[10]) and on_time[10].all()
    gap = on_time[10] - on_time[6]
    assert gap.mean() - 4 * gap.std(ddof=1) / math.sqrt(n) > 0
    assert abs(on_time[6].mean() - 0.5) < 4 * math.sqrt(0.25 / n)


# ------------------------------------------------------------------ bad input on whatif and sweep


def bad_project(tmp_path: Path) -> Path:
    project = {"id": "x", "value": {"rate": 1}, "stages": [{"team": "ops", "effort": 1}]}
    return write(tmp_path / "bad_project.yaml", project)


BAD_INPUT = {
    "unknown project id (stop)": (
        ["whatif", "stop", "{s}", "--project", "gamma"],
        "{s}: --project must be the id of a listed project (known: alpha, beta), got 'gamma'",
    ),
    "unknown project id (admit)": (["whatif", "admit", "{s}", "--project", "gamma"], "got 'gamma'"),
    "bad project file": (["whatif", "admit", "{s}", "--project", "{bad}"],
                         "{bad}: stages[0].team must be a team defined under teams (known: dev, test), got 'ops'"),
    "missing project file": (["whatif", "admit", "{s}", "--project", "{tmp}/gone.yaml"],
                             "{tmp}/gone.yaml must be an existing"),
    "unknown team": (["whatif", "capacity", "{s}", "--team", "ops"],
                     "{s}: team (--team) must be one of dev, test, got 'ops'"),
    "missing scenario (benefits)": (["whatif", "benefits", "{tmp}/none.yaml"],
                                    "{tmp}/none.yaml must be an existing scenario file, got no such file"),
    "bad key path (mapping)": (["sweep", "{s}", "--set", "teams.ops.capacity=1,2"],
                               "{s}: --set key must be a path of keys in the scenario (teams has no key 'ops'; "
                               "known: dev, test), got 'teams.ops.capacity'"),
    "bad key path (list)": (["sweep", "{s}", "--set", "projects.gamma.value.rate=1,2"],
                            "(projects has no item 'gamma'; known: alpha, beta), got 'projects.gamma.value.rate'"),
    "bad value": (["sweep", "{s}", "--set", "teams.dev.capacity=2,x"],
                  "{s}: teams.dev.capacity must be a whole number, got 'x'"),
    "bad metric": (["sweep", "{s}", "--set", "teams.dev.capacity=2,3", "--metric", "speed"],
                   "metric (--metric) must be one of"),
    "missing scenario (sweep)": (["sweep", "{tmp}/none.yaml", "--set", "teams.dev.capacity=1,2"],
                                 "{tmp}/none.yaml must be an existing scenario file, got no such file"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_on_whatif_and_sweep_exits_2_naming_the_problem(tmp_path, case):
    args, message = BAD_INPUT[case]
    fill = {"s": SMALL, "tmp": tmp_path, "bad": bad_project(tmp_path)}
    result = invoke(*(a.format(**fill) for a in args), "-n", 2, "-w", 1, "-q")
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # handled, not an exception escaping the command
    assert message.format(**fill) in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


NOT_LISTED = {"name": "arrivals only", "horizon": 20, "teams": {"t": {"capacity": 1}},
              "templates": {"req": {"value": {"rate": 10}, "stages": [{"team": "t", "effort": 1}]}},
              "arrivals": [{"template": "req", "rate": 0.5}]}  # fmt: skip
NEVER_DELIVERED = {"name": "nothing delivered", "horizon": 5, "teams": {"t": {"capacity": 1}},
                   "projects": [{"id": "a", "value": {"rate": 10},
                                 "stages": [{"team": "t", "effort": 50}]}]}  # fmt: skip


def test_benefits_without_listed_projects_is_refused(tmp_path):
    path = write(tmp_path / "s.yaml", NOT_LISTED)
    result = invoke("whatif", "benefits", path, "-n", 2, "-w", 1, "-q")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"{path}: projects must list at least one project for whatif benefits (business cases belong to "
        "listed projects; projects from arrival streams differ between worlds), got none"
    )


def test_sweep_of_a_metric_never_defined_says_so(tmp_path):
    scenario = write(tmp_path / "s.yaml", NEVER_DELIVERED)
    args = ["sweep", scenario, "--set", "teams.t.capacity=1,2", "--metric", "cycle_time_mean"]
    result = invoke(*args, "-n", 2, "-w", 1, "-q")
    assert result.exit_code == 0, result.output
    assert "cycle_time_mean is undefined in every world at every setting" in result.stdout


def test_sweep_of_the_seed_is_refused():
    # Every value must meet the same worlds: sweeping the seed would compare worlds, not settings.
    with pytest.raises(flowsim.FlowsimError, match=r"not seed .*choose them with --seed\), got seed=1,2$"):
        sweep(SMALL, ["seed=1,2"], replications=4, workers=1)


def test_a_bad_sweep_value_is_one_line(tmp_path):
    result = invoke("sweep", SMALL, "--set", "teams.dev.capacity=2,x", "-n", 2, "-w", 1, "-q")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("diff", "low", "high", "better", "expected"),
    [
        (1.2e6, 0.9e6, 1.5e6, 0.97, "1.2M more than b over 1 year, 95% CI 900k to 1.5M, better in 97% of worlds"),
        (-983e3, -1.5e6, -469e3, 0.0, "983k less than b over 1 year, 95% CI 469k to 1.5M less, better in 0% of worlds"),
        (-1e5, -3e5, 1e5, 0.3, "100k less than b over 1 year, 95% CI 300k less to 100k more, better in 30% of worlds"),
        (0.0, 0.0, 0.0, 0.0, "the same as b over 1 year in every world"),
        (5e3, math.nan, math.nan, 1.0, "5k more than b over 1 year, no 95% CI from one world, better in 100% of worlds"),  # noqa: E501
    ],
)
def test_verdict_amounts_read_in_the_sentences_sense(diff, low, high, better, expected):
    # Before: "983k less ..., 95% CI -1.5M to -469k"; identical runs read "0 more ..., better in 0%".
    row = SimpleNamespace(policy="p", diff=diff, diff_ci_low=low, diff_ci_high=high, better_share=better)
    assert verdict(row, "b", 52, "week") == "p delivers " + expected
