"""The runner: identical frames whatever the workers or backend, progress output, run folders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas.testing as pdt
import pytest
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.cli_run import ProgressReporter
from flowsim.errors import FlowsimError
from flowsim.results import Results
from flowsim.runner import default_chunk_size, execute, metric_names
from flowsim.tables import TABLES

FLOWSIM = str(Path(sys.executable).with_name("flowsim"))

# Small but with every source of randomness the runner must keep paired and
# reproducible: uncertain efforts, estimation noise, an arrival stream, a rule
# with its own stream (random) and an intervention.
SMALL = (Path(__file__).resolve().parent / "fixtures" / "small_portfolio.yaml").read_text()


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "small.yaml"
    path.write_text(SMALL)
    return path


@pytest.fixture(scope="module")
def small(small_file):
    return flowsim.load_scenario(small_file)


def assert_same_tables(left: Results, right: Results) -> None:
    for table in TABLES:
        pdt.assert_frame_equal(getattr(left, table), getattr(right, table), obj=table)


@pytest.fixture(scope="module")
def one_worker(small, tmp_path_factory) -> Results:
    return execute(small, replications=12, workers=1, out=tmp_path_factory.mktemp("w1"))


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_give_identical_frames(small, one_worker, workers, tmp_path):
    results = execute(small, replications=12, workers=workers, out=tmp_path)
    assert_same_tables(one_worker, results)
    # The chunk files do not depend on the workers either.
    for table in TABLES:
        assert sorted(os.listdir(tmp_path / f"{table}.parquet")) == sorted(
            os.listdir(one_worker.root / f"{table}.parquet")
        )


def test_in_memory_run_matches_the_run_folder(small, one_worker):
    results = execute(small, replications=12, workers=2)
    assert results.root is None
    assert_same_tables(one_worker, results)
    assert not results.partial


def test_rows_are_in_replication_order(one_worker):
    for table in TABLES:
        replication = getattr(one_worker, table)["replication"]
        assert replication.is_monotonic_increasing, table
        assert set(replication) == set(range(12)), table


def test_manifest_of_a_complete_run(one_worker, small):
    manifest = json.loads((one_worker.root / "manifest.json").read_text())
    assert manifest["partial"] is False
    assert manifest["replications_requested"] == manifest["replications_completed"] == 12
    assert manifest["chunk_size"] == default_chunk_size(12) == 2
    assert len(manifest["completed_chunks"]) == 6
    assert manifest["policies"] == list(small.policies)
    assert manifest["execution"] == {"backend": "processes", "workers": 1}


def test_metric_names_are_the_replications_columns(small, one_worker):
    columns = [c for c in one_worker.replications.columns if c not in ("policy", "replication")]
    assert sorted(metric_names(small)) == sorted(columns)


def test_a_new_run_in_a_used_folder_leaves_no_stale_chunks(small, tmp_path):
    execute(small, replications=12, workers=1, out=tmp_path)  # chunks of 2
    results = execute(small, replications=4, workers=1, out=tmp_path)  # chunks of 1
    assert sorted(p.stem for p in (tmp_path / "projects.parquet").iterdir()) == results.manifest["completed_chunks"]
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "replications.parquet")) == 4 * 3


def test_dask_local_cluster_gives_the_same_frames(small, one_worker, tmp_path):
    pytest.importorskip("dask.distributed")
    started = time.monotonic()
    results = execute(small, replications=12, workers=2, scheduler="local", out=tmp_path)
    assert time.monotonic() - started < 30
    assert_same_tables(one_worker, results)
    assert results.manifest["execution"] == {"backend": "dask", "workers": 2, "scheduler": "local"}
    assert sorted(p.stem for p in (tmp_path / "events.parquet").iterdir()) == results.manifest["completed_chunks"]


def test_scheduler_without_dask_says_how_to_install(small, monkeypatch, tmp_path):
    # A None entry in sys.modules makes the import fail as if Dask were not installed.
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(FlowsimError, match=re.escape("--scheduler needs Dask: pip install 'flowsim[dask]'")):
        execute(small, replications=2, scheduler="local", out=tmp_path)
    assert not (tmp_path / "manifest.json").exists()


def test_cli_scheduler_without_dask_exits_2(small_file, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    result = CliRunner().invoke(app, ["run", str(small_file), "--scheduler", "local", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--scheduler needs Dask: pip install 'flowsim[dask]'" in result.output


def test_unknown_scheduler_address_is_bad_input(small, tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr("flowsim.distributed.CONNECT_TIMEOUT", "1s")
    with pytest.raises(FlowsimError, match="--scheduler must be the address of a running Dask scheduler"):
        execute(small, replications=2, scheduler="tcp://127.0.0.1:9", out=tmp_path)


# ------------------------------------------------------------------ progress


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([FLOWSIM, "run", *args], capture_output=True, text=True, timeout=timeout)


def test_progress_is_plain_lines_on_stderr_when_not_a_terminal(small_file, tmp_path):
    done = run_cli(str(small_file), "-n", "12", "--workers", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines, "no progress lines"
    for line in lines:
        assert re.fullmatch(r"replications \d+/12, (\d+\.\d|-)/s, eta (\d+s|\?)", line), line
    assert lines[-1].startswith("replications 12/12, ")
    assert "\x1b[" not in done.stderr  # no terminal control codes
    assert "Small portfolio for runner tests: 12 replications" in done.stdout


def test_quiet_prints_nothing(small_file, tmp_path):
    done = run_cli(str(small_file), "-n", "4", "--workers", "2", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""
    assert (tmp_path / "summary.csv").exists()


def test_progress_rate_counts_only_this_session(capsys, monkeypatch):
    now = [100.0]
    monkeypatch.setattr("flowsim.cli_run.time.monotonic", lambda: now[0])
    with ProgressReporter(quiet=False) as progress:
        progress(40, 100)  # found done by --resume: no line, no rate yet
        now[0] = 110.0
        progress(60, 100)  # 20 in 10 s
    assert capsys.readouterr().err == "replications 60/100, 2.0/s, eta 20s\n"
