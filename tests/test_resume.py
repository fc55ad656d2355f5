"""Interrupted runs (kill -9, Ctrl-C) keep their completed chunks; --resume completes them
into exactly the tables of an uninterrupted run.  Real ``flowsim run`` subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas.testing as pdt
import pytest
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.results import Results
from flowsim.runner import execute
from flowsim.tables import TABLES

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "scenarios" / "bench.yaml"
FLOWSIM = str(Path(sys.executable).with_name("flowsim"))
# 24 replications in 8 chunks of 3; two policies: a couple of seconds on two workers.
N = 24
ARGS = [str(BENCH), "-n", str(N), "--policy", "fifo", "--policy", "cd3", "--workers", "2", "--quiet"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Results:
    scenario = flowsim.load_scenario(BENCH)
    return execute(scenario, replications=N, policies=["fifo", "cd3"], workers=2, out=tmp_path_factory.mktemp("ref"))


def start(out: Path, *extra: str) -> subprocess.Popen:
    # Its own process group, so the test can signal (or clean up) the pool's workers too.
    return subprocess.Popen(
        [FLOWSIM, "run", *ARGS, "--out", str(out), *extra],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def wait_for_chunks(process: subprocess.Popen, out: Path, timeout: float = 60) -> dict:
    """Poll manifest.json until it lists a completed chunk."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended early: {process.communicate()}"
        try:
            current = manifest(out)
        except (FileNotFoundError, json.JSONDecodeError):
            current = {}
        if current.get("completed_chunks"):
            return current
        time.sleep(0.02)
    raise AssertionError("no chunk completed in time")


def end_group(process: subprocess.Popen) -> None:
    """Whatever happened, leave no process of the run behind."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def live_members(pgid: int) -> list[int]:
    """Processes of the group that still run (zombies waiting to be reaped do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def group_is_gone(pgid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not live_members(pgid):
            return True
        time.sleep(0.05)
    return False


def assert_partial(out: Path) -> dict:
    state = manifest(out)
    assert state["partial"] is True
    completed = state["completed_chunks"]
    assert completed
    sizes = [int(n.split("-")[2]) - int(n.split("-")[1]) + 1 for n in completed]
    assert state["replications_completed"] == sum(sizes) < N
    return state


def resume_and_compare(out: Path, uninterrupted: Results) -> None:
    done = subprocess.run([FLOWSIM, "run", *ARGS, "--out", str(out), "--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    state = manifest(out)
    assert state["partial"] is False
    assert state["replications_completed"] == N
    resumed = Results.load(out)
    for table in TABLES:
        pdt.assert_frame_equal(getattr(resumed, table), getattr(uninterrupted, table), obj=table)
        # Only listed chunks remain: a killed worker's half-written or unlisted files are gone.
        assert sorted(p.stem for p in (out / f"{table}.parquet").iterdir()) == state["completed_chunks"]


def test_kill_9_then_resume_gives_the_uninterrupted_tables(tmp_path, uninterrupted):
    out = tmp_path / "run"
    process = start(out)
    try:
        wait_for_chunks(process, out)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        end_group(process)
    assert process.returncode == -signal.SIGKILL
    before = assert_partial(out)
    resume_and_compare(out, uninterrupted)
    assert manifest(out)["started"] == before["started"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers follow a killed parent through prctl")
def test_kill_9_of_the_parent_alone_leaves_no_workers(tmp_path):
    out = tmp_path / "run"
    process = start(out)
    try:
        wait_for_chunks(process, out)
        os.kill(process.pid, signal.SIGKILL)  # the workers are not signalled
        process.communicate(timeout=30)
        assert group_is_gone(process.pid), "orphan pool workers still running"
    finally:
        end_group(process)


def test_ctrl_c_exits_130_with_a_partial_manifest_then_resumes(tmp_path, uninterrupted):
    out = tmp_path / "run"
    process = start(out)
    try:
        wait_for_chunks(process, out)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        _stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 130, stderr
        assert "interrupted: partial results kept" in stderr
        assert "Traceback" not in stderr
        if sys.platform.startswith("linux"):
            assert group_is_gone(process.pid), "pool workers outlived the interrupted run"
    finally:
        end_group(process)
    assert_partial(out)
    resume_and_compare(out, uninterrupted)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--seed", "99"], "--resume must continue the same run: seed was 1, now 99"),
        (["-n", "25"], "--resume must continue the same run: replications_requested was 24, now 25"),
        (["--policy", "sjf"], "--resume must continue the same run: policies was ['fifo', 'cd3'], now"),
    ],
)
def test_resume_refuses_a_different_run(uninterrupted, change, message):
    out = uninterrupted.root
    before = (out / "manifest.json").read_text()
    result = CliRunner().invoke(app, ["run", *ARGS, "--out", str(out), "--resume", *change])
    assert result.exit_code == 2
    assert message in result.output
    assert (out / "manifest.json").read_text() == before


def test_resume_refuses_a_different_scenario(uninterrupted, tmp_path):
    other = tmp_path / "bench.yaml"
    other.write_text(BENCH.read_text().replace("name: Benchmark portfolio", "name: Another portfolio"))
    args = [str(other), *ARGS[1:]]
    result = CliRunner().invoke(app, ["run", *args, "--out", str(uninterrupted.root), "--resume"])
    assert result.exit_code == 2
    assert (
        f"--resume must continue the same run: {uninterrupted.root} holds a run of {BENCH} (scenario_hash "
        in result.output
    )
    assert f"not of {other}; or the file changed since" in result.output


def test_resume_of_a_complete_run_computes_nothing(uninterrupted):
    out = uninterrupted.root
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*.parquet/*")}
    scenario = flowsim.load_scenario(BENCH)
    results = execute(scenario, replications=N, policies=["fifo", "cd3"], out=out, resume=True)
    assert not results.partial
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.parquet/*")} == stamps


def test_resume_needs_a_folder():
    scenario = flowsim.load_scenario(BENCH)
    with pytest.raises(flowsim.FlowsimError, match="--resume needs the run folder"):
        execute(scenario, replications=2, resume=True)


def test_resume_refuses_chunks_of_another_flowsim_version(uninterrupted, tmp_path):
    # Chunks simulated by two versions of the model would make one run of two models.
    out = tmp_path / "older"
    out.mkdir()
    for path in uninterrupted.root.iterdir():
        if path.name == "manifest.json":
            old = json.loads(path.read_text())
            old["versions"]["flowsim"] = "0.0.1"
            (out / path.name).write_text(json.dumps(old))
    scenario = flowsim.load_scenario(BENCH)
    with pytest.raises(flowsim.FlowsimError) as error:
        execute(scenario, replications=N, policies=["fifo", "cd3"], out=out, resume=True)
    assert str(error.value) == (
        f"--resume must continue the same run: flowsim version was '0.0.1', now {flowsim.__version__!r} "
        "(start the run afresh, without --resume)"
    )


def test_resume_with_nothing_to_resume_says_it_starts_afresh(tmp_path):
    result = CliRunner().invoke(app, ["run", *ARGS[:2], "2", "--workers", "1", "--quiet", "--out",
                                      str(tmp_path / "new"), "--resume"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"note: no run to resume in {tmp_path / 'new'}/: starting it afresh"
    assert json.loads((tmp_path / "new" / "manifest.json").read_text())["replications_completed"] == 2
