"""Command-line friction found in a documentation review: options silently ignored,
runs replaced without a word, a --resume refusal naming only hashes, help showing
flags as taking a value, a misleading --quiet, registry and rule-name messages
without the way out, and an ETA against a maximum a --target-ci run rarely reaches.
Each test failed before its fix."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from conftest import run_in_terminal
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.cli_run import ProgressReporter, replacing_note
from flowsim.errors import FlowsimError, ScenarioError
from flowsim.policies import unregister
from flowsim.policies.protocol import SequencingRule
from flowsim.runner import TARGET_METRIC_ALONE, execute

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "fixtures" / "small_portfolio.yaml"  # horizon 52, teams dev and test
FLOWSIM = str(Path(sys.executable).with_name("flowsim"))
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["run", *map(str, args)])


def copy_of(path: Path, tmp_path: Path, name: str, edit=lambda text: text) -> Path:
    target = tmp_path / name
    target.write_text(edit(path.read_text()))
    return target


# ------------------------------------------------------------------ 1. --target-metric alone


@pytest.mark.parametrize("metric", ["throughput", "value_delivered"])
def test_target_metric_without_target_ci_is_refused_like_max_replications(tmp_path, metric):
    result = run(SMALL, "-n", "2", "-w", "1", "-q", "--out", tmp_path / "out", "--target-metric", metric)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [TARGET_METRIC_ALONE]
    assert "--target-metric chooses the metric of --target-ci" in TARGET_METRIC_ALONE
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # refused before anything is simulated or written


def test_target_metric_with_target_ci_still_runs(tmp_path):
    result = run(SMALL, "-w", "1", "-q", "--out", tmp_path / "out", "--target-ci", "0.5", "--target-metric",
                 "throughput", "--max-replications", "20")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert flowsim.Results.load(tmp_path / "out").manifest["target"]["metric"] == "throughput"


@pytest.mark.parametrize("metric", ["throughput", "value_delivered"])
def test_the_python_api_refuses_a_metric_it_would_ignore(metric):
    scenario = flowsim.load_scenario(SMALL)
    with pytest.raises(FlowsimError) as error:
        flowsim.run(scenario, replications=2, workers=1, target_metric=metric)
    assert str(error.value) == TARGET_METRIC_ALONE
    with pytest.raises(FlowsimError):
        execute(scenario, replications=2, workers=1, target_metric=metric)
    assert flowsim.run(scenario, replications=2, workers=1).manifest["replications_completed"] == 2


# ------------------------------------------------------------------ 2. replacing a run


def test_a_fresh_run_over_a_run_says_which_run_it_replaces(tmp_path):
    out = tmp_path / "out"
    first = run(SMALL, "-n", "3", "-w", "1", "--out", out)
    assert first.exit_code == 0, first.output
    assert "note: replacing" not in first.stderr  # nothing to replace
    again = run(SMALL, "-n", "4", "-w", "1", "--out", out)
    assert again.exit_code == 0, again.output
    notes = [line for line in again.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: replacing the run in {out} ({SMALL}, 3 replications)"]
    assert again.stderr.splitlines()[0] == notes[0]  # before the progress lines
    assert flowsim.Results.load(out).manifest["replications_completed"] == 4  # still replaced


def test_replacing_note_even_when_quiet_and_none_when_resuming(tmp_path):
    # --quiet drops progress, table and verdicts, not the one warning that a run is deleted.
    out = tmp_path / "out"
    assert run(SMALL, "-n", "3", "-w", "1", "-q", "--out", out).exit_code == 0
    quiet = run(SMALL, "-n", "3", "-w", "1", "-q", "--out", out)
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert quiet.stderr == f"note: replacing the run in {out} ({SMALL}, 3 replications)\n"
    resumed = run(SMALL, "-n", "3", "-w", "1", "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "note:" not in resumed.stderr


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("{not json", "unreadable JSON (Expecting property name"),
        ("[1, 2]", "list"),
        ('{"name": "my-pwa"}', "no scenario, policies, completed_chunks"),
    ],
)
def test_a_manifest_flowsim_did_not_write_is_not_overwritten(tmp_path, text, found):
    # A folder whose manifest.json is someone else's (a web app's) is not a run to replace.
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(text)
    result = run(SMALL, "-n", "2", "-w", "1", "--out", out)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"--out {out}: must be a new folder or one holding a flowsim run, got a manifest.json flowsim did not "
        f"write ({found}"
    )
    assert line.endswith(f"; choose another folder, or remove {out / 'manifest.json'}")
    assert (out / "manifest.json").read_text() == text
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


def test_replacing_note_of_an_interrupted_run():
    manifest = {"scenario_file": "s.yaml", "replications_completed": 40, "partial": True}
    assert (
        replacing_note(Path("out"), manifest) == "note: replacing the run in out (s.yaml, 40 replications, interrupted)"
    )
    assert replacing_note(Path("out"), {"scenario_file": "s.yaml", "replications_completed": 1}) == (
        "note: replacing the run in out (s.yaml, 1 replication)"
    )


# ------------------------------------------------------------------ 3. --resume of another scenario


@pytest.fixture
def small_run(tmp_path) -> Path:
    out = tmp_path / "out"
    assert run(SMALL, "-n", "4", "-w", "1", "-q", "--out", out).exit_code == 0
    return out


def test_resume_refusal_names_the_scenario_files(small_run, tmp_path):
    other = copy_of(SMALL, tmp_path, "other.yaml", lambda t: t.replace("horizon: 52", "horizon: 50"))
    hashed = flowsim.Results.load(small_run).manifest["scenario_hash"][:8]
    result = run(other, "-n", "4", "-w", "1", "-q", "--out", small_run, "--resume")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"--resume must continue the same run: {small_run} holds a run of {SMALL} (scenario_hash {hashed}\u2026), "
        f"not of {other}; or the file changed since"
    ]


def test_resume_refusal_when_the_same_file_changed(tmp_path):
    scenario = copy_of(SMALL, tmp_path, "s.yaml")
    out = tmp_path / "out"
    assert run(scenario, "-n", "4", "-w", "1", "-q", "--out", out).exit_code == 0
    scenario.write_text(scenario.read_text().replace("horizon: 52", "horizon: 50"))
    result = run(scenario, "-n", "4", "-w", "1", "-q", "--out", out, "--resume")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"--resume must continue the same run: {out} holds a run of {scenario} as it was then")
    assert "the file changed since; start afresh, without --resume" in line


# ------------------------------------------------------------------ 4 and 5. --help


HELP = [
    (["run"], "SCENARIO"),
    (["validate"], "SCENARIO"),
    (["report"], "DIR"),
    (["whatif", "admit"], "SCENARIO"),
    (["whatif", "stop"], "SCENARIO"),
    (["whatif", "capacity"], "SCENARIO"),
    (["whatif", "benefits"], "SCENARIO"),
    (["sweep"], "SCENARIO"),
    ([], "COMMAND [ARGS]..."),
    (["whatif"], "COMMAND [ARGS]..."),
]


@pytest.mark.parametrize(("command", "argument"), HELP)
def test_help_shows_flags_without_a_value_and_arguments_by_name(command, argument):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    text = result.output
    usage = " ".join(["Usage: flowsim", *command, "[OPTIONS]", argument])
    assert usage in text
    assert "<bool>" not in text
    assert not re.search(r"\{[a-z_]+\}", text), text  # {scenario}
    assert re.search(r"--help\s+Show this message", text)
    if command == ["run"]:
        for flag in ("--resume", "--report"):
            assert re.search(rf"{flag}\s+(Complete|Write)", text), flag
        assert re.search(r"--quiet\s+-q\s+No progress bar", text)
        assert re.search(r"\*\s+SCENARIO\s+<path>", text)
    if command == []:
        assert re.search(r"--version\s+Show the version", text)


def test_missing_argument_is_named_as_in_the_usage():
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    # one line (tests/test_cli_usage_errors.py), no longer click's "Missing argument 'SCENARIO'." in a box
    assert result.stderr.splitlines() == [
        "missing SCENARIO: flowsim run needs the scenario file (YAML); see flowsim run --help"
    ]


def test_quiet_help_says_the_report_path_is_still_printed(tmp_path):
    params = {p.name: p for p in typer.main.get_command(app).commands["run"].params}
    assert params["quiet"].help == "No progress bar, results table or verdicts; with --report, only the report's path."
    result = run(SMALL, "-n", "2", "-w", "1", "-q", "--report", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"report: {tmp_path / 'out' / 'report.html'}"]
    assert result.stderr == ""


# ------------------------------------------------------------------ 6 and 7. rules


def test_registering_a_taken_name_says_how_to_replace_it():
    class Mine(SequencingRule):
        def priority(self, project, now):
            return 0.0

    with pytest.raises(ValueError) as error:
        flowsim.register("sequencing", "fifo")(Mine)
    assert str(error.value) == "sequencing rule 'fifo' is already registered (pass replace=True to replace it)"
    flowsim.register("sequencing", "test_friction")(Mine)
    try:
        with pytest.raises(ValueError, match=r"\(pass replace=True to replace it\)"):
            flowsim.register("sequencing", "test_friction")(Mine)
    finally:
        unregister("sequencing", "test_friction")


def scenario_with_rule(tmp_path: Path, rule: str) -> Path:
    data = yaml.safe_load(SMALL.read_text())
    data["policies"] = {"mine": {"sequencing": rule}}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_an_unknown_rule_name_points_to_your_own_rules(tmp_path):
    path = scenario_with_rule(tmp_path, "zzz_mine")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{path}: policies.mine.sequencing must be a known sequencing rule (one of cd3, ")
    assert line.endswith(
        "wsjf; a rule of your own must be registered first: flowsim --rules FILE, or flowsim.register in Python), "
        "got 'zzz_mine'"
    )
    # The same through run, before anything is simulated.
    ran = run(path, "-n", "2", "-q", "--out", tmp_path / "out")
    assert ran.exit_code == 2 and ran.stderr.splitlines() == [line]


def test_a_misspelt_rule_name_keeps_did_you_mean_without_the_hint(tmp_path):
    path = scenario_with_rule(tmp_path, "fifoo")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "did you mean 'fifo'?" in line and line.endswith("got 'fifoo'")
    assert "--rules" not in line
    # The Python API says the same of a name that is no typo: the message is built by the checks.
    with pytest.raises(ScenarioError) as error:
        flowsim.load_scenario(scenario_with_rule(tmp_path, "zzz_mine"))
    assert "must be registered first: flowsim --rules FILE, or flowsim.register in Python" in str(error.value)


# ------------------------------------------------------------------ 8. progress of a --target-ci run


def test_progress_lines_of_a_target_run_show_no_eta_against_the_maximum(capsys, monkeypatch):
    now = [100.0]
    monkeypatch.setattr("flowsim.cli_run.time.monotonic", lambda: now[0])
    with ProgressReporter(quiet=False, at_most=True) as progress:
        progress(0, 1000)
        now[0] = 110.0
        progress(25, 1000)
        now[0] = 120.0
        progress(50, 1000)
        progress(50, 50)  # the target is met: the runner's last call
    assert capsys.readouterr().err.splitlines() == [
        "replications 25 (at most 1000), 2.5/s",
        "replications 50 (at most 1000), 2.5/s",
        "replications 50, 2.5/s",
    ]


def test_target_run_on_a_pipe_prints_counts_without_eta(tmp_path):
    done = subprocess.run([FLOWSIM, "run", str(SMALL), "--target-ci", "0.5", "--max-replications", "200", "-w", "1",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines
    for line in lines[:-1]:
        assert re.fullmatch(r"replications \d+ \(at most 200\), (\d+\.\d|-)/s", line), line
    stopped = flowsim.Results.load(tmp_path / "out").manifest["replications_completed"]
    assert re.fullmatch(rf"replications {stopped}, (\d+\.\d|-)/s", lines[-1]), lines
    assert "eta" not in done.stderr


def test_target_run_on_a_terminal_shows_no_bar_against_the_maximum(tmp_path):
    code, drawn = run_in_terminal("run", str(SMALL), "--target-ci", "0.5", "--max-replications", "200",
                                  "-w", "1", "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 0
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    stopped = flowsim.Results.load(tmp_path / "out").manifest["replications_completed"]
    assert "━" not in plain  # no bar filling towards 200
    assert "/200" not in plain
    assert re.search(rf"replications {stopped} (\d+\.\d|-)/s \d+:\d\d:\d\d", plain), plain[-400:]


# ------------------------------------------------------------------ --resume on a folder that holds no manifest


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("{not json", "must be the JSON written by flowsim run, got unreadable JSON (Expecting property name"),
        ('{"a": 1}', "must be a manifest written by flowsim run, got no scenario, policies, completed_chunks"),
        ("[1, 2]", "must be a manifest written by flowsim run, got list"),
    ],
)
def test_resume_on_a_broken_manifest_says_so_in_one_line(tmp_path, text, found):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "manifest.json").write_text(text)
    result = run(SMALL, "-n", "2", "-q", "--out", folder, "--resume")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{folder / 'manifest.json'}: {found}")
    assert (folder / "manifest.json").read_text() == text  # refused before anything was touched
