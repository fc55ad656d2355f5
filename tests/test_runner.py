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
from flowsim.runner import default_chunk_size, execute
from flowsim.tables import TABLES
from flowsim.target import metric_names

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


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "foo"])
def test_unknown_scheduler_address_is_bad_input_and_keeps_the_run_in_the_folder(small, tmp_path, monkeypatch, address):
    # The cluster is reached before the folder is touched: a mistyped address once emptied the
    # folder of its earlier run, then refused the address (found by a new-user audit).
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr("flowsim.distributed.CONNECT_TIMEOUT", "1s")
    execute(small, replications=2, workers=1, out=tmp_path)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    replaced = []
    with pytest.raises(FlowsimError, match="--scheduler must be the address of a running Dask scheduler"):
        execute(small, replications=2, scheduler=address, out=tmp_path, replacing=replaced.append)
    assert not replaced
    assert {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


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


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": -1}, "seed (--seed) must be a whole number of at least 0, got -1"),
        ({"seed": 1.5}, "seed (--seed) must be a whole number of at least 0, got 1.5"),
        ({"replications": 2.5}, "replications (--replications) must be a whole number of at least 1, got 2.5"),
        ({"replications": True}, "replications (--replications) must be a whole number of at least 1, got true"),
        ({"workers": 0}, "workers (--workers) must be a whole number of at least 1, got 0"),
        (
            {"target_ci": 0.1, "max_replications": 1.5},
            "max_replications (--max-replications) must be a whole number of at least 2, got 1.5",
        ),
    ],
)
def test_bad_run_options_are_named_not_numpy_errors(small, options, message):
    # Before: numpy's "expected non-negative integer", range()'s TypeError, or a silent 1 worker.
    with pytest.raises(FlowsimError) as error:
        execute(small, **options)
    assert str(error.value) == message


def test_cli_negative_seed_exits_2_with_one_line(small_file, tmp_path):
    result = CliRunner().invoke(app, ["run", str(small_file), "--seed", "-1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.strip() == "seed (--seed) must be a whole number of at least 0, got -1"
    assert not (tmp_path / "r").exists()


def test_a_fresh_api_run_in_a_used_folder_leaves_no_stale_summaries(small, tmp_path):
    # flowsim.run(out=...) used to keep an earlier run's summary.csv and report.html beside
    # the new tables, where they described the old run.
    out = tmp_path / "run"
    first = execute(small, replications=4, workers=1, out=out)
    first.write_summaries(out)
    (out / "report.html").write_text("the earlier run's report")
    (out / "notes.txt").write_text("the user's own file")
    execute(small, replications=2, seed=99, workers=1, out=out)
    assert not (out / "summary.csv").exists()
    assert not (out / "project_summary.csv").exists()
    assert not (out / "report.html").exists()
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert sorted(Results.load(out).projects["replication"].unique()) == [0, 1]


def test_a_bad_option_leaves_the_previous_run_folder_alone(small_file, tmp_path):
    out = tmp_path / "run"
    first = CliRunner().invoke(app, ["run", str(small_file), "-n", "2", "-w", "1", "--out", str(out), "-q"])
    assert first.exit_code == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = CliRunner().invoke(app, ["run", str(small_file), "--seed", "-1", "--out", str(out)])
    assert result.exit_code == 2
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_an_out_folder_that_cannot_be_made_is_bad_input(small_file, tmp_path):
    # Used to end in NotADirectoryError with exit 1, after a run's options were checked.
    (tmp_path / "a.txt").write_text("keep")
    for out, found in ((tmp_path / "a.txt", f"the file {str(tmp_path / 'a.txt')!r}"),
                       (tmp_path / "a.txt" / "sub", f"{str(tmp_path / 'a.txt' / 'sub')!r} inside the file "
                                                    f"{str(tmp_path / 'a.txt')!r}")):  # fmt: skip
        result = CliRunner().invoke(app, ["run", str(small_file), "-n", "2", "--out", str(out)])
        assert result.exit_code == 2
        assert result.output.strip() == f"--out must be a folder, got {found}"
    assert (tmp_path / "a.txt").read_text() == "keep"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["-n", "0"], "replications (--replications) must be a whole number of at least 1, got 0"),
        (["--workers", "0"], "workers (--workers) must be a whole number of at least 1, got 0"),
        (["--timeline-step", "-1"], "timeline_step (--timeline-step) must be a finite number above 0, got -1"),
        (["--timeline-step", "0"], "timeline_step (--timeline-step) must be a finite number above 0, got 0"),
    ],
)
def test_out_of_range_options_name_the_option_and_the_value(small_file, tmp_path, option, message):
    # These were click's boxed "Input should be greater than or equal to 1", without the value.
    result = CliRunner().invoke(app, ["run", str(small_file), *option, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.strip() == message


def test_the_manifest_is_readable_like_the_tables(small, tmp_path):
    # It was written through a 0600 temporary file: other users and Dask workers could not read it.
    out = tmp_path / "r"
    execute(small, replications=2, workers=1, out=out)
    table_mode = next((out / "projects.parquet").glob("*.parquet")).stat().st_mode & 0o777
    assert (out / "manifest.json").stat().st_mode & 0o777 == table_mode
    assert table_mode & 0o044  # group and others can read it (under a usual umask)


# ------------------------------------------------------------------ --policy


def test_one_policy_name_as_text_is_that_policy_not_its_letters(small):
    # flowsim.run(s, policies="fifo") once listed 'f', 'i', 'f', 'o' as unknown policies.
    by_name = flowsim.run(small, replications=2, workers=1, policies="cd3-wip")
    assert by_name.policies == ["cd3-wip"]
    assert_same_tables(by_name, flowsim.run(small, replications=2, workers=1, policies=["cd3-wip"]))


def test_a_policy_named_twice_is_refused(small_file, tmp_path):
    result = CliRunner().invoke(
        app, ["run", str(small_file), "-n", "2", "--policy", "fifo", "--policy", "cd3-wip", "--policy", "fifo",
              "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip() == "--policy must name each policy once, got 'fifo' more than once"
    assert not (tmp_path / "out").exists()


def test_the_folder_is_checked_before_a_cluster_is_reached(small, tmp_path, monkeypatch):
    # Someone else's manifest.json is refused at once, not after a cluster has started (or, here,
    # after the wait for an address where nothing listens).
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr("flowsim.distributed.CONNECT_TIMEOUT", "1s")
    (tmp_path / "manifest.json").write_text('{"name": "my-pwa"}')
    with pytest.raises(FlowsimError, match=r"must be a new folder or one holding a flowsim run"):
        execute(small, replications=2, scheduler="tcp://127.0.0.1:9", out=tmp_path)
