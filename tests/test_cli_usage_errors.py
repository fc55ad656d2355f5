"""A usage error click finds while parsing is one line on stderr and exit code 2.

They were a rich box under the usage ("Invalid value for '--replications' / '-n': Input
should be a valid integer, ..."), without the value refused.  Now they read as flowsim's
own checks do: the option (both forms), the rule, the value found; an unknown option or
command with click's suggestion and the command's --help.  Each test failed before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flowsim import __version__
from flowsim.cli import app
from flowsim.cli_errors import RULES_WITHOUT_A_FILE, python_type
from flowsim.cli_help import rules_first, rules_without_a_file

ROOT = Path(__file__).resolve().parents[1]
SMALL = str(ROOT / "tests" / "fixtures" / "small_portfolio.yaml")
FLOWSIM = str(Path(sys.executable).with_name("flowsim"))
runner = CliRunner()

REPLICATIONS_ABC = "replications (-n/--replications) must be a whole number, got 'abc'"
SEED_X = "seed (--seed) must be a whole number, got 'x'"
SCENARIO = "the scenario file (YAML)"

CASES = [
    # a value of the wrong type, however it is written
    (["run", SMALL, "-n", "abc"], REPLICATIONS_ABC),
    (["run", SMALL, "-nabc"], REPLICATIONS_ABC),
    (["run", SMALL, "--replications=abc"], REPLICATIONS_ABC),
    (["run", SMALL, "-n", "3", "--replications", "abc"], REPLICATIONS_ABC),  # the last one given is the one read
    (["run", SMALL, "--seed", "x"], SEED_X),
    (["run", SMALL, "--timeline-step", "abc"], "timeline_step (--timeline-step) must be a number, got 'abc'"),
    (["run", SMALL, "--workers", "1.5"], "workers (-w/--workers) must be a whole number, got '1.5'"),
    (["run", SMALL, "--target-ci=x"], "target_ci (--target-ci) must be a number, got 'x'"),
    (["run", SMALL, "--max-replications", "many"],
     "max_replications (--max-replications) must be a whole number, got 'many'"),
    # an option without its value, a flag with one
    (["run", SMALL, "-n"],
     "replications (-n/--replications) must be followed by a whole number, got nothing after it"),
    (["run", SMALL, "--timeline-step"],
     "timeline_step (--timeline-step) must be followed by a number, got nothing after it"),
    (["run", SMALL, "--policy"], "policy (--policy) must be followed by a value, got nothing after it"),
    (["run", SMALL, "--out"], "out (-o/--out) must be followed by a path, got nothing after it"),
    (["run", SMALL, "--quiet=yes"], "quiet (-q/--quiet) takes no value (it is a flag), got 'yes'"),
    # an unknown option, with click's suggestion when it has one
    (["run", SMALL, "--bogus"], "flowsim run has no option --bogus (did you mean --out?); see flowsim run --help"),
    (["run", SMALL, "--polcy", "fifo"],
     "flowsim run has no option --polcy (did you mean --policy?); see flowsim run --help"),
    (["run", SMALL, "-x"], "flowsim run has no option -x; see flowsim run --help"),
    (["--bogus", "run", SMALL], "flowsim has no option --bogus; see flowsim --help"),
    # a missing or extra argument
    (["run"], f"missing SCENARIO: flowsim run needs {SCENARIO}; see flowsim run --help"),
    (["run", SMALL, "extra.yaml"], "Got unexpected extra argument(s) (extra.yaml); see flowsim run --help"),
    # an unknown command
    (["frob"],
     "flowsim has no command 'frob' (its commands: validate, run, report, sweep, whatif); see flowsim --help"),
    (["rn", SMALL], "flowsim has no command 'rn' (did you mean 'run'?); see flowsim --help"),
    (["--rules", "mine.py"], "Missing command; see flowsim --help"),
    # --rules without a file, wherever it is
    (["run", SMALL, "--rules"], RULES_WITHOUT_A_FILE),
    (["run", SMALL, "--rules", "-n", "2"], RULES_WITHOUT_A_FILE),
    (["--rules"], RULES_WITHOUT_A_FILE),
    (["whatif", "stop", SMALL, "--rules"], RULES_WITHOUT_A_FILE),
    # before the command too: click would take the option after it as the file
    (["--rules", "--help"], RULES_WITHOUT_A_FILE),  # was "Missing command"
    (["--rules", "-n", "2", "run", SMALL], RULES_WITHOUT_A_FILE),  # was "flowsim has no command '2'"
    (["--rules", "--quiet", "run", SMALL], RULES_WITHOUT_A_FILE),  # was "--rules must be a .py file ..., got '--quiet'"
    (["whatif", "--rules", "--quiet", "stop", SMALL], RULES_WITHOUT_A_FILE),
    # validate and report
    (["validate"], f"missing SCENARIO: flowsim validate needs {SCENARIO}; see flowsim validate --help"),
    (["validate", SMALL, "--bogus"], "flowsim validate has no option --bogus; see flowsim validate --help"),
    (["report"], "missing DIR: flowsim report needs a run folder written by flowsim run; see flowsim report --help"),
    (["report", "out", "-n", "2"], "flowsim report has no option -n; see flowsim report --help"),
    # the what-ifs
    (["whatif", "add", SMALL],
     "flowsim whatif has no command 'add' (its commands: admit, stop, capacity, benefits); see flowsim whatif --help"),
    (["whatif", "admit", SMALL],
     "missing -p/--project: flowsim whatif admit needs a YAML file holding one new project, or the id of a listed "
     "project; see flowsim whatif admit --help"),
    (["whatif", "admit", SMALL, "-p"], "project (-p/--project) must be followed by a value, got nothing after it"),
    (["whatif", "stop", SMALL, "-n", "abc"], REPLICATIONS_ABC),
    (["whatif", "capacity", SMALL, "--delta", "x"], "delta (-d/--delta) must be a whole number, got 'x'"),
    (["whatif", "capacity", SMALL, "--detla", "1"],
     "flowsim whatif capacity has no option --detla (did you mean --delta, --team or --help?); "
     "see flowsim whatif capacity --help"),
    (["whatif", "benefits", SMALL, "--seed=x"], SEED_X),
    (["whatif", "benefits", SMALL, "-w", "two"], "workers (-w/--workers) must be a whole number, got 'two'"),
    (["whatif", "benefits"],
     f"missing SCENARIO: flowsim whatif benefits needs {SCENARIO}; see flowsim whatif benefits --help"),
    # sweep
    (["sweep", SMALL],
     "missing -s/--set: flowsim sweep needs KEY=v1,v2,...: a dotted path into the scenario and its values (repeat "
     "for a grid), e.g. policies.wip5-cd3.intake.limit=2,4,6,8; see flowsim sweep --help"),
    (["sweep", SMALL, "-s", "seed=1,2", "-n", "abc"], REPLICATIONS_ABC),
    (["sweep", SMALL, "-s", "seed=1,2", "--metric"],
     "metric (-m/--metric) must be followed by a value, got nothing after it"),
    (["swep", SMALL], "flowsim has no command 'swep' (did you mean 'sweep'?); see flowsim --help"),
]  # fmt: skip


def _case_id(value) -> str:
    return " ".join(value).replace(SMALL, "S") if isinstance(value, list) else ""


@pytest.mark.parametrize(("args", "line"), CASES, ids=_case_id)
def test_a_usage_error_is_one_line_and_exit_code_2(args, line):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""


def test_the_console_script_prints_the_same_line():
    done = subprocess.run([FLOWSIM, "run", SMALL, "-n", "abc"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == REPLICATIONS_ABC + "\n"
    assert done.stdout == ""


def test_the_typer_internals_used_are_still_there():
    # flowsim.cli_errors imports click's usage errors from typer's private ``typer._click``
    # and reads a parameter's Python type from typer's ``type_descriptor``: if typer moves
    # either, this fails rather than the messages quietly losing their rule.
    from typer._click import exceptions

    assert typer.BadParameter is exceptions.BadParameter
    assert issubclass(exceptions.NoSuchOption, exceptions.UsageError)
    params = {p.name: p for p in typer.main.get_command(app).commands["run"].params}
    assert python_type(params["replications"]) is int
    assert python_type(params["timeline_step"]) is float
    assert python_type(params["out"]) is Path


# ------------------------------------------------------------------ what is unchanged


@pytest.mark.parametrize("command", [[], ["run"], ["validate"], ["report"], ["whatif"], ["whatif", "admit"], ["sweep"]])
def test_help_is_still_the_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert f"Usage: {' '.join(['flowsim', *command])} [OPTIONS]" in result.stdout


@pytest.mark.parametrize("command", [[], ["whatif"]])
def test_a_group_alone_still_shows_its_help(command):
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    lines = [line.strip() for line in result.output.splitlines()]
    assert f"Usage: {' '.join(['flowsim', *command])} [OPTIONS] COMMAND [ARGS]..." in lines
    assert len(lines) > 10  # the whole help, not a line of it
    assert result.stderr == ""


def test_version_is_unchanged():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"flowsim {__version__}\n"


def test_ctrl_c_in_a_run_still_exits_130_keeping_partial_results(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("flowsim.runner.execute", interrupted)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", SMALL, "-n", "2", "-q", "--out", str(out)])
    assert result.exit_code == 130
    assert result.stderr.splitlines() == [f"interrupted: partial results kept in {out}/; complete them with --resume"]


def test_ctrl_c_elsewhere_still_exits_130(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("flowsim.cli.load_scenario", interrupted)
    assert runner.invoke(app, ["validate", SMALL]).exit_code == 130


def test_a_rules_without_a_file_is_found_wherever_it_stands():
    # The group says "--rules needs a file of rules" before click would take an option as it.
    assert rules_without_a_file(rules_first(["run", "s.yaml", "--rules", "-n", "2"]))
    assert rules_without_a_file(["--rules", "--help"]) and rules_without_a_file(["run", "s.yaml", "--rules"])
    assert not rules_without_a_file(["run", "s.yaml", "--", "--rules"])  # after --, an argument
    moved = rules_first(["run", "s.yaml", "--rules", "r.py", "-n", "2"])
    assert moved == ["--rules", "r.py", "run", "s.yaml", "-n", "2"] and not rules_without_a_file(moved)
