"""Audit of the what-if and sweep analyses: each test pins a defect found by hand computation.

Scenarios are deterministic (fixed efforts, one unit per team) so every number
is derived by hand in the comments; the one stochastic test uses a tolerance
of 4 standard errors.  Runs use one worker and few replications.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

from flowsim.analysis import sweep, whatif
from flowsim.cli_analysis import sweep as sweep_command
from flowsim.cli_analysis import whatif_app
from flowsim.errors import FlowsimError

FAST = {"replications": 2, "workers": 1}
runner = CliRunner()


def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(whatif_app, name="whatif")
    root.command()(sweep_command)
    return root


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# One project, one team of one unit, horizon 20: delivered at its effort.
ONE = {
    "name": "one",
    "horizon": 20,
    "teams": {"dev": {"capacity": 1}},
    "projects": [{"id": "a", "value": {"rate": 100}, "stages": [{"team": "dev", "effort": 4}]}],
}


# --------------------------------------------------------------------------- seed


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_a_bad_seed_is_a_clear_error_not_a_numpy_traceback(seed):
    # numpy's SeedSequence refuses negative seeds with a bare ValueError.
    with pytest.raises(FlowsimError, match=r"seed \(--seed\) must be a whole number of at least 0, got"):
        whatif.stop(ONE, seed=seed, **FAST)


def test_cli_negative_seed_exits_2_with_one_line(tmp_path):
    scenario = write(tmp_path, ONE)
    result = runner.invoke(app(), ["whatif", "stop", str(scenario), "--seed", "-1", "-n", "2", "-w", "1", "-q"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "seed (--seed) must be a whole number of at least 0, got -1"


# --------------------------------------------------------------------------- --out


@pytest.mark.parametrize(
    "args",
    [
        ["whatif", "capacity", "{s}", "--out", "{f}"],
        ["whatif", "stop", "{s}", "--out", "{f}/sub"],
        ["sweep", "{s}", "--set", "teams.dev.capacity=1,2", "--out", "{f}"],
    ],
)
def test_an_out_that_is_a_file_exits_2_before_simulating(tmp_path, args):
    scenario = write(tmp_path, ONE)
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    argv = [a.format(s=scenario, f=afile) for a in args] + ["-n", "2", "-w", "1", "-q"]
    result = runner.invoke(app(), argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("--out must be a folder"), result.output
    assert afile.read_text() == "keep me"


# ----------------------------------------------------------------------- capacity

# Two teams of 2 units; a: dev 4 then qa 1 (rate 100); b: dev 4 then qa 2 (rate 50); horizon 20.
# Today: a, b on dev 0-4 in parallel; qa a 4-5, b 4-6: a 100*15 = 1500, b 50*14 = 700.
# dev -1 (1 unit): a dev 0-4, qa 4-5 (1500); b dev 4-8, qa 8-10 (50*10 = 500): change -200.
# qa -1 (1 unit): a qa 4-5 (1500); b qa 5-7 (50*13 = 650): change -50.
TWO_TEAMS = {
    "name": "two teams",
    "horizon": 20,
    "teams": {"dev": {"capacity": 2}, "qa": {"capacity": 2}},
    "projects": [
        {"id": "a", "value": {"rate": 100}, "stages": [{"team": "dev", "effort": 4}, {"team": "qa", "effort": 1}]},
        {"id": "b", "value": {"rate": 50}, "stages": [{"team": "dev", "effort": 4}, {"team": "qa", "effort": 2}]},
    ],
}


def test_removing_capacity_states_every_cost_with_the_same_sign():
    result = whatif.capacity(TWO_TEAMS, delta=-1, **FAST)
    changes = result.table.set_index("team")["value_change_mean"]
    assert changes["dev"] == pytest.approx(-200) and changes["qa"] == pytest.approx(-50)
    # "one unit fewer there costs 200 ..., next: qa, 50": a cost of 50, not "-50" (a gain).
    assert "costs 200" in result.answer
    assert "(next: qa, 50)" in result.answer, result.answer


# Two symmetric teams of one unit, each with two projects of effort 4 and rate 100, horizon 20.
# Today each team delivers at 4 and 8 (1600 + 1200); +1 on either lets its second project finish
# at 4 too: +400 for dev and +400 for qa, in every world.
SYMMETRIC = {
    "name": "symmetric",
    "horizon": 20,
    "teams": {"dev": {"capacity": 1}, "qa": {"capacity": 1}},
    "projects": [
        {"id": f"{team}{i}", "value": {"rate": 100}, "stages": [{"team": team, "effort": 4}]}
        for team in ("dev", "qa")
        for i in (1, 2)
    ],
}


def test_a_tie_is_not_called_more_than_any_other_team():
    result = whatif.capacity(SYMMETRIC, **FAST)
    changes = result.table.set_index("team")["value_change_mean"]
    assert changes["dev"] == pytest.approx(400) and changes["qa"] == pytest.approx(400)
    assert "more than any other team" not in result.answer, result.answer
    assert "is the constraint" not in result.answer, result.answer


def test_a_clear_constraint_is_still_named_as_such():
    # Only dev is loaded: +1 on dev is worth 400 (as above), +1 on qa nothing.
    scenario = {**SYMMETRIC, "projects": SYMMETRIC["projects"][:2]}
    result = whatif.capacity(scenario, **FAST)
    assert result.table["value_change_mean"].tolist() == pytest.approx([400, 0])
    assert result.answer.startswith("dev is the constraint"), result.answer
    assert "more than any other team (next: qa, 0)" in result.answer, result.answer


# -------------------------------------------------------------------------- sweep


def test_the_next_best_setting_is_one_where_the_metric_is_defined():
    # Effort 2 and 4 are delivered at 2 and 4 (cycle times 2 and 4); effort 40 never within 20: NaN.
    result = sweep.sweep(ONE, ["projects.a.stages.dev.effort=2,40,4"], metric="cycle_time_mean", **FAST)
    assert result.table["mean"].tolist()[0] == pytest.approx(2)
    assert math.isnan(result.table["mean"].tolist()[1])
    assert result.table["mean"].tolist()[2] == pytest.approx(4)
    assert result.best == {"projects.a.stages.dev.effort": 2}
    assert "the next best, projects.a.stages.dev.effort=4, differs by 2" in result.answer, result.answer


def test_a_best_setting_against_an_undefined_first_one_gives_no_nan_share():
    result = sweep.sweep(ONE, ["projects.a.stages.dev.effort=40,2"], metric="cycle_time_mean", **FAST)
    assert result.best == {"projects.a.stages.dev.effort": 2}
    assert "nan" not in result.answer.lower(), result.answer


def test_edits_to_a_policy_that_is_not_simulated_are_refused():
    # Two identical wip_limit policies; only the simulated one's limit could change anything: a
    # grid over p2's limit under p1 would be rows of the same 1600 and a "best" among them.
    scenario = {
        **ONE,
        "policies": {
            "p1": {"intake": {"rule": "wip_limit", "limit": 1}},
            "p2": {"intake": {"rule": "wip_limit", "limit": 1}},
        },
    }
    keys = ["policies.p1.intake.limit=1,2", "policies.p2.intake.limit=1,2"]
    for chosen in (None, "p1"):
        with pytest.raises(FlowsimError, match=r"--set keys must edit one policy, the one simulated, got keys of "
                           r"policies p1, p2 \(sweep each on its own, with --policy\)"):  # fmt: skip
            sweep.sweep(scenario, keys, policy=chosen, **FAST)
    # The simulated policy's own key runs: with one project, every limit delivers a at 4 (100 * 16).
    result = sweep.sweep(scenario, keys[:1], **FAST)
    assert result.settings["policy"] == "p1"
    assert result.table["mean"].tolist() == pytest.approx([1600] * 2)


# -------------------------------------------------------------------------- admit


def test_admit_delay_equals_the_initiatives_realised_effort_in_every_world():
    # One unit, FIFO: the initiative n arrives at 0 with effort U(2, 6); a arrives at 1 (effort 2).
    # Without n, a runs 1-3; with n, a waits for n: delivered at E_n + 2, so its delay is E_n - 1
    # in each world (common random numbers), mean 3, and its cost is 100 per time unit of delay.
    scenario = {
        "name": "admit by hand",
        "horizon": 40,
        "teams": {"dev": {"capacity": 1}},
        "projects": [{"id": "a", "arrival": 1, "value": {"rate": 100}, "stages": [{"team": "dev", "effort": 2}]}],
    }
    initiative = {"id": "n", "value": {"rate": 10},
                  "stages": [{"team": "dev", "effort": {"dist": "uniform", "low": 2, "high": 6}}]}  # fmt: skip
    n = 40
    result = whatif.admit(scenario, initiative, replications=n, seed=3, workers=1)
    pairs = result.replications
    effort = pairs[pairs["project"] == "n"].set_index("replication")["delivered_with"]  # n runs 0 to E_n
    a = pairs[pairs["project"] == "a"].set_index("replication")
    np.testing.assert_allclose(a["delivery_change"], effort - 1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a["value_without"] - a["value_with"], 100 * (effort - 1), rtol=0, atol=1e-6)
    row = result.table.set_index("project").loc["a"]
    se = (4 / math.sqrt(12)) / math.sqrt(n)  # sd of U(2, 6) over sqrt(n)
    assert abs(row["delay_mean"] - 3) < 4 * se
    assert row["p_delayed"] == 1.0


def test_an_initiative_arriving_after_the_horizon_is_explained():
    # z arrives at 30 > horizon 20: it never enters the simulation; a is delivered at 4 either way (1600).
    late = {"id": "z", "arrival": 30, "value": {"rate": 100}, "stages": [{"team": "dev", "effort": 4}]}
    result = whatif.admit(ONE, late, **FAST)
    totals = result.totals.set_index("metric")["mean"]
    assert totals["initiative_value"] == 0 and totals["net"] == 0 and totals["value_with"] == pytest.approx(1600)
    assert any("z arrives at or after the horizon" in note for note in result.notes), result.notes
