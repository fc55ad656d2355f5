"""Parameter sweeps (flowsim.analysis.sweep): key paths, values, and a grid whose answer is known."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from flowsim.analysis.sweep import parse_setting, set_path, sweep
from flowsim.cli_analysis import sweep as sweep_command
from flowsim.cli_analysis import whatif_app
from flowsim.errors import FlowsimError

# One developer multitasking with Weinberg's losses, four identical fixed projects worth
# 1,000 a week each. By hand, over 60 weeks:
#   wip 1: sequential, delivered at 4, 8, 12, 16         -> 1000 x (56 + 52 + 48 + 44) = 200,000
#   wip 2: two at a time at 0.8 / 2 each: 10, 10, 20, 20 -> 1000 x (50 + 50 + 40 + 40) = 180,000
#   wip 4: four at a time at 0.4 / 4 each: all at 40     -> 1000 x 20 x 4               =  80,000
WIP = {
    "name": "wip by hand",
    "horizon": 60,
    "teams": {"dev": {"capacity": 1, "focus": "shared", "switching": "weinberg"}},
    "projects": [{"id": f"p{i}", "value": {"rate": 1000}, "stages": [{"team": "dev", "effort": 4}]} for i in range(4)],
    "policies": {"push": {"intake": "admit_all", "sequencing": "fifo"}, "limited": {"intake": "admit_all"}},
}
EXPECTED = {1: 200_000.0, 2: 180_000.0, 4: 80_000.0}
FAST = {"replications": 3, "workers": 1}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "wip.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_wip_limit_sweep_has_one_row_per_value_and_the_right_best(tmp_path):
    # ``intake: admit_all`` is a short-form rule: setting keys under it expands it.
    settings = ["policies.limited.intake.rule=wip_limit", "policies.limited.intake.limit=2,1,4"]
    result = sweep(write(tmp_path, WIP), settings, **FAST)
    table = result.table
    assert len(table) == 3
    assert table["policies.limited.intake.limit"].tolist() == [2, 1, 4]
    assert table["mean"].tolist() == pytest.approx([EXPECTED[v] for v in (2, 1, 4)], rel=1e-9)
    # Paired differences from the first value (2); every world is the same here.
    assert table["diff"].tolist() == pytest.approx([0.0, 20_000.0, -100_000.0], rel=1e-9, abs=1e-6)
    assert table["best"].tolist() == [False, True, False]
    assert result.best == {"policies.limited.intake.rule": "wip_limit", "policies.limited.intake.limit": 1}
    # The keys edit policy "limited": it is the one simulated, not the baseline "push".
    assert result.settings["policy"] == "limited"
    assert result.answer.startswith("Best policies.limited.intake.limit=1: value_delivered 200k")
    assert result.parameter == "policies.limited.intake.limit"
    assert math.isnan(table.loc[0, "better_share"]) and table.loc[1, "better_share"] == 1.0
    assert len(result.replications) == 3 * 3


def test_a_metric_where_less_is_better_picks_the_lowest():
    data = copy.deepcopy(WIP)
    data["policies"]["limited"]["intake"] = {"rule": "wip_limit", "limit": 1}
    result = sweep(data, {"policies.limited.intake.limit": [4, 2, 1]}, metric="cycle_time_mean", **FAST)
    assert result.best == {"policies.limited.intake.limit": 1}
    assert result.table["mean"].tolist() == pytest.approx([40.0, 15.0, 10.0])
    no_direction = sweep(data, {"policies.limited.intake.limit": [4, 1]}, metric="utilisation.dev", **FAST)
    assert no_direction.best is None and not no_direction.table["best"].any()
    assert no_direction.answer.startswith("utilisation.dev has no better direction")


def test_parse_setting_reads_yaml_scalars():
    assert parse_setting("teams.dev.capacity=1,2, 3") == ("teams.dev.capacity", [1, 2, 3])
    assert parse_setting("a.b=0.5,cd3,true,[1, 2]") == ("a.b", [0.5, "cd3", True, [1, 2]])
    for bad in ("teams.dev.capacity", "=1,2", "a.b=", "a.b=1,,2"):
        with pytest.raises(FlowsimError, match="--set"):
            parse_setting(bad)


def test_set_path_walks_mappings_lists_by_id_and_short_forms():
    data = copy.deepcopy(WIP)
    data["projects"][0]["stages"][0]["name"] = "build"
    set_path(data, "projects.p2.value.rate", 5)
    set_path(data, "projects.p0.stages.build.effort", 7)
    set_path(data, "projects.1.stages.0.crew", 1)
    set_path(data, "policies.push.sequencing.rule", "cd3")
    assert data["projects"][2]["value"]["rate"] == 5
    assert data["projects"][0]["stages"][0]["effort"] == 7
    assert data["projects"][1]["stages"][0]["crew"] == 1
    assert data["policies"]["push"]["sequencing"] == {"rule": "cd3"}
    with pytest.raises(
        FlowsimError, match=r"projects has no item 'nope'; known: p0, p1, p2, p3\), got 'projects\.nope"
    ):
        set_path(data, "projects.nope.value.rate", 1)
    with pytest.raises(FlowsimError, match=r"horizon is the value 60, which has no keys"):
        set_path(data, "horizon.value", 1)
    with pytest.raises(FlowsimError, match=r"policies has no key 'fast'"):
        set_path(data, "policies.fast.intake.limit", 1)


def test_bad_values_and_keys_name_the_key():
    with pytest.raises(
        FlowsimError,
        match=r"^<dict>: teams\.dev\.capacity must be a whole number of at least 1, got 0 "
        r"\(with --set teams\.dev\.capacity=0\)$",
    ):
        sweep(WIP, ["teams.dev.capacity=1,0"], **FAST)
    with pytest.raises(FlowsimError, match=r"policies\.limited\.intake\.limt must be a known parameter"):
        sweep(WIP, ["policies.limited.intake.limt=1"], **FAST)
    with pytest.raises(FlowsimError, match=r"metric \(--metric\) must be one of .*got 'speed'"):
        sweep(WIP, ["teams.dev.capacity=1,2"], metric="speed", **FAST)


def test_cli_sweep_prints_the_table_and_writes_its_files(tmp_path):
    app = typer.Typer()
    app.add_typer(whatif_app, name="whatif")
    app.command()(sweep_command)
    scenario = write(tmp_path, WIP)
    out = tmp_path / "out"
    args = ["sweep", str(scenario), "--set", "teams.dev.capacity=1,2", "-n", "2", "-w", "1", "-q", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Best teams.dev.capacity=2: value_delivered" in result.output
    assert (out / "sweep.csv").exists()
    # The plot is written when flowsim.plots.metric_vs_parameter exists, else skipped with a note.
    assert (out / "sweep.png").exists() or "plot skipped" in result.output
    bad = CliRunner().invoke(app, ["sweep", str(scenario), "--set", "teams.ops.capacity=1,2", "-n", "2", "-q"])
    assert bad.exit_code == 2
    assert "teams has no key 'ops'" in bad.output and "got 'teams.ops.capacity'" in bad.output
    assert "Traceback" not in bad.output


def test_the_ideal_value_can_be_swept_and_has_no_best():
    """``value_ideal`` moves with a value setting, not with the schedule: no best is marked."""
    data = copy.deepcopy(WIP)
    rates = [p["value"]["rate"] for p in data["projects"]]
    result = sweep(data, {"projects.0.value.rate": [rates[0], 2 * rates[0]]}, metric="value_ideal", **FAST)
    assert result.best is None and not result.table["best"].any()
    assert result.answer.startswith("value_ideal has no better direction")
    low, high = result.table["mean"].tolist()
    assert high > low


# ------------------------------------------------------------------ keys that cannot change the result

# WIP with both policies limiting WIP: a key under policies.NAME changes only policy NAME.
TWO_LIMITS = {
    **WIP,
    "policies": {
        "push": {"intake": {"rule": "wip_limit", "limit": 4}, "sequencing": "fifo"},
        "limited": {"intake": {"rule": "wip_limit", "limit": 1}},
    },
}
DEFAULT = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"


def cli(*args: str):
    from flowsim.cli import app

    return CliRunner().invoke(app, ["sweep", *map(str, args)])


@pytest.mark.parametrize(
    ("settings", "policy", "message"),
    [
        # Only push is simulated: limited's limit changes nothing.
        (["policies.limited.intake.limit=1,2"], "push",
         "<dict>: --set keys must be able to change the simulated policy push, got keys that edit only policy "
         "limited (to sweep it, simulate it: --policy limited)"),
        # Keys on two policies, chosen or not: whichever is simulated ignores the other's keys.
        (["policies.limited.intake.limit=1,2", "policies.push.intake.limit=2,4"], None,
         "<dict>: --set keys must edit one policy, the one simulated, got keys of policies limited, push "
         "(sweep each on its own, with --policy)"),
        (["policies.limited.intake.limit=1,2", "policies.push.intake.limit=2,4"], "limited",
         "<dict>: --set keys must edit one policy, the one simulated, got keys of policies limited, push "
         "(sweep each on its own, with --policy)"),
        # A key every policy uses beside one of another policy: that one changes nothing.
        (["teams.dev.capacity=1,2", "policies.push.intake.limit=2,4"], "limited",
         "<dict>: --set policies.push.intake.limit must edit the simulated policy limited or a part of the "
         "scenario every policy uses, got a key of policy push, which would change nothing (drop it, or sweep "
         "that policy on its own with --policy)"),
        # A policy --set adds is never simulated either.
        ({"policies.new": [{"intake": "admit_all"}, {"sequencing": "cd3"}]}, None,
         "<dict>: --set keys must be able to change the simulated policy push, got keys that edit only policy new "
         "(a policy the scenario does not define is never simulated)"),
        (["teams.dev.capacity=1,2", "policies.push.intake.limit=2,4", "policies.push.sequencing=fifo"], "limited",
         "<dict>: --set policies.push.intake.limit, policies.push.sequencing must edit the simulated policy "
         "limited or a part of the scenario every policy uses, got keys of policy push, which would change "
         "nothing (drop them, or sweep that policy on its own with --policy)"),
    ],
)  # fmt: skip
def test_keys_that_cannot_change_the_simulated_policy_are_refused_before_any_run(settings, policy, message):
    simulated: list[str] = []
    with pytest.raises(FlowsimError) as error:
        sweep(TWO_LIMITS, settings, policy=policy, progress=simulated.append, **FAST)
    assert str(error.value) == message
    assert simulated == []


def test_keys_of_the_simulated_policy_and_of_the_scenario_still_run():
    # teams.* changes every policy's run; limited's own key changes limited's.
    settings = ["teams.dev.capacity=1,2", "policies.limited.intake.limit=1,2"]
    result = sweep(TWO_LIMITS, settings, policy="limited", **FAST)
    assert result.settings["policy"] == "limited" and len(result.table) == 4 and result.notes == []
    # Without --policy the one policy the keys edit is simulated.
    assert sweep(TWO_LIMITS, settings, **FAST).settings["policy"] == "limited"
    assert sweep(TWO_LIMITS, ["teams.dev.capacity=1,2"], policy="push", **FAST).settings["policy"] == "push"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "policies.wip5-cd3.intake.limit=2,4", "--policy", "push-fifo"],
         f"{DEFAULT}: --set keys must be able to change the simulated policy push-fifo, got keys that edit only "
         "policy wip5-cd3 (to sweep it, simulate it: --policy wip5-cd3)"),
        (["--set", "policies.wip5-cd3.intake.limit=2,4", "--set", "policies.drum-cd3b-review.intake.buffer=8,12"],
         f"{DEFAULT}: --set keys must edit one policy, the one simulated, got keys of policies wip5-cd3, "
         "drum-cd3b-review (sweep each on its own, with --policy)"),
        (["--set", "policies.wip5-cd3.intake.limit=2,4", "--set", "policies.drum-cd3b-review.intake.buffer=8,12",
          "--policy", "push-fifo"],
         f"{DEFAULT}: --set keys must edit one policy, the one simulated, got keys of policies wip5-cd3, "
         "drum-cd3b-review (sweep each on its own, with --policy)"),
        (["--set", "policies.wip5-cd3.intake.limit=4,4"],
         "--set policies.wip5-cd3.intake.limit values must differ, got 4 more than once"),
        (["--set", "policies.wip5-cd3.intake.limit=2,4", "--policy", "wip5-cd3", "--policy", "wip5-cd3"],
         "--policy must name each policy once, got 'wip5-cd3' more than once"),  # as flowsim run words it
        (["--set", "policies.wip5-cd3.intake.limit=2,4", "--policy", "wip5-cd3", "--policy", "push-fifo"],
         "policy (--policy) must be given at most once (a sweep simulates one policy), got wip5-cd3, push-fifo"),
        (["--set", "policies.wip5-cd3.intake.limit=2,4", "-n", "0"],
         "replications (--replications) must be a whole number of at least 1, got 0"),
        (["--set", "policies.wip5-cd3.intake.limit=2,4", "-w", "0"],
         "workers (--workers) must be a whole number of at least 1, got 0"),
    ],
)  # fmt: skip
def test_cli_sweep_refuses_in_one_line_before_simulating(args, message):
    # The audit's commands: they ran the whole grid, exit 0, and announced a "Best" (or a rich box).
    result = cli(DEFAULT, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [message]
    assert result.stdout == "" and "Traceback" not in result.output


@pytest.mark.parametrize("option", ["-n", "-w"])
def test_cli_sweep_words_a_bad_run_option_as_flowsim_run_does(tmp_path, option):
    from flowsim.cli import app

    ran = CliRunner().invoke(app, ["run", str(DEFAULT), option, "0", "-q", "--out", str(tmp_path / "out")])
    swept = cli(DEFAULT, "--set", "teams.data.capacity=1,2", option, "0", "-q")
    assert ran.exit_code == swept.exit_code == 2
    assert swept.stderr == ran.stderr and len(ran.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("values", "repeated"), [([4, 2, 4], "4"), ([4, 4.0], "4"), ([[1, 2], [1, 2], 3, 3], "[1, 2], 3")]
)
def test_repeated_sweep_values_are_refused(values, repeated):
    with pytest.raises(FlowsimError) as error:
        sweep(TWO_LIMITS, {"policies.limited.intake.limit": values}, **FAST)
    assert str(error.value) == f"--set policies.limited.intake.limit values must differ, got {repeated} more than once"


def test_true_and_1_are_different_sweep_values():
    # YAML's true is not the number 1 (validation refuses it for a limit): not a repeat.
    with pytest.raises(FlowsimError, match=r"limit must be a whole number, got true"):
        sweep(TWO_LIMITS, ["policies.limited.intake.limit=1,true"], **FAST)


def test_sweep_help_says_which_policy_is_simulated():
    from flowsim.cli import app

    text = CliRunner().invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"}).output
    text = " ".join(text.replace("│", " ").split())
    assert (
        "--policy <str> The one policy simulated (default: the policy the --set keys edit; the scenario's first "
        "when they edit none)." in text
    ), text
