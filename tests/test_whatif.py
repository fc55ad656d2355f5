"""What-if analyses (flowsim.analysis.whatif) on cases whose answer is known by construction.

Scenarios are tiny and replications few: each analysis here takes well under
a second, so the file stays fast.  Runs use one worker except where the
point is that more workers change nothing.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

import flowsim
from flowsim.analysis import whatif
from flowsim.analysis.benefits import business_cases, estimated_ideal_delivery
from flowsim.cli_analysis import sweep as sweep_command
from flowsim.cli_analysis import whatif_app
from flowsim.errors import FlowsimError, ScenarioError
from flowsim.scenario import load_scenario

N = 8  # replications: enough for CIs, few enough to stay fast
FAST = {"replications": N, "workers": 1}


def write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def app() -> typer.Typer:
    """The sub-app and the sweep command mounted as flowsim.cli mounts them."""
    root = typer.Typer()
    root.add_typer(whatif_app, name="whatif")
    root.command()(sweep_command)
    return root


runner = CliRunner()

# Two teams share the load; "solo" is used by nobody but the initiative.
SHARED = {
    "name": "shared teams",
    "horizon": 60,
    "seed": 5,
    "estimation_error": 0.2,
    "teams": {"dev": {"capacity": 2}, "test": {"capacity": 1}, "solo": {"capacity": 1}},
    "projects": [
        {"id": f"p{i}", "value": {"rate": 1000 * (i + 1)},
         "stages": [{"team": "dev", "effort": {"dist": "triangular", "low": 2, "mode": 4, "high": 8}},
                    {"team": "test", "effort": {"dist": "uniform", "low": 0.5, "high": 2}}]}
        for i in range(6)
    ] + [
        {"id": "base", "value": {"rate": 500}, "stages": [{"team": "dev", "effort": 3}]},
        {"id": "addon", "depends_on": ["base"], "value": {"rate": 700}, "stages": [{"team": "test", "effort": 1}]},
    ],
    "templates": {"request": {"value": {"rate": 300}, "stages": [{"team": "dev", "effort": {"dist": "exponential",
                                                                                           "mean": 1}}]}},
    "arrivals": [{"name": "requests", "template": "request", "rate": 0.2}],
    "policies": {"fifo": {"intake": "admit_all", "sequencing": "fifo"}, "cd3": {"sequencing": "cd3"}},
}  # fmt: skip

LAB = {"id": "lab", "name": "Research lab", "value": {"rate": 2000},
       "stages": [{"team": "solo", "effort": {"dist": "uniform", "low": 2, "high": 6}}]}  # fmt: skip


# ------------------------------------------------------------------------------------ admit


@pytest.mark.parametrize("policy", ["fifo", "cd3"])
def test_admitting_a_project_on_an_unshared_team_delays_nobody(tmp_path, policy):
    project = write(tmp_path, "lab.yaml", LAB)
    result = whatif.admit(SHARED, project, policy=policy, **FAST)
    pairs = result.replications
    others = pairs[pairs["role"] != "initiative"]
    assert set(others["role"]) == {"other", "new demand"}
    # Exactly 0 in every replication, for listed projects and arrivals alike.
    assert (others["delivery_change"] == 0).all()
    assert (others["value_change"] == 0).all()
    assert (result.table.loc[result.table["role"] != "initiative", "delay_mean"] == 0).all()
    totals = result.totals.set_index("metric")
    assert totals.loc["cost_to_others", "mean"] == 0
    assert totals.loc["net", "mean"] == pytest.approx(totals.loc["initiative_value", "mean"], rel=1e-12)
    own = pairs[pairs["role"] == "initiative"]
    assert len(own) == N and (own["value_with"] > 0).all()
    assert "delays no other project and costs nothing" in result.answer
    assert result.settings["policy"] == policy


def test_admit_by_id_compares_without_the_project_and_its_dependants():
    result = whatif.admit(SHARED, "base", **FAST)
    roles = dict(zip(result.table["project"], result.table["role"], strict=True))
    assert roles["base"] == "initiative" and roles["addon"] == "dependant"
    assert result.settings["removed"] == ["base", "addon"]
    totals = result.totals.set_index("metric")["mean"]
    # Net = own value - cost to others, and = the change in total value delivered.
    assert totals["net"] == pytest.approx(totals["initiative_value"] - totals["cost_to_others"], rel=1e-9)
    assert totals["net"] == pytest.approx(totals["value_with"] - totals["value_without"], rel=1e-9)
    # It shares dev with the requests arriving behind it (FIFO): they are delayed, and named.
    delayed = result.table[result.table["role"].isin(["other", "new demand"])].iloc[0]
    assert delayed["project"] == "requests-*"
    assert delayed["delay_mean"] > 0
    assert result.answer.startswith(f"Accepting base (with its dependants addon) delays {delayed['project']} by ")


def test_undelivered_projects_count_as_delivered_at_the_horizon():
    # One team, capacity 1: "big" takes the whole horizon, so "late" is never delivered with it.
    data = {
        "horizon": 10,
        "teams": {"t": {"capacity": 1}},
        "projects": [{"id": "late", "arrival": 1, "value": {"rate": 10}, "stages": [{"team": "t", "effort": 2}]}],
    }
    big = {"id": "big", "value": {"rate": 1}, "stages": [{"team": "t", "effort": 20}]}  # fmt: skip
    result = whatif.admit(data, big, replications=2, workers=1)
    row = result.table.set_index("project").loc["late"]
    # Without: delivered at 3; with: never, counted as 10.
    assert row["delay_mean"] == pytest.approx(7.0)
    assert row["cost_mean"] == pytest.approx(10 * 7)


def test_admit_reports_problems_in_the_project_file(tmp_path):
    bad = write(tmp_path, "bad.yaml", {"id": "x", "stages": [{"team": "nope", "effort": 1}]})
    with pytest.raises(ScenarioError) as error:
        whatif.admit(SHARED, bad, **FAST)
    message = str(error.value)
    assert message.startswith(f"{bad}: stages[0].team must be a team defined under teams")
    assert "got 'nope'" in message
    taken = write(tmp_path, "taken.yaml", {**LAB, "id": "p1"})
    with pytest.raises(FlowsimError, match=r"id must be an id not already in .*got 'p1'"):
        whatif.admit(SHARED, taken, **FAST)
    with pytest.raises(FlowsimError, match=r"--project must be the id of a listed project .*got 'p99'"):
        whatif.admit(SHARED, "p99", **FAST)
    with pytest.raises(ScenarioError, match="no such file"):
        whatif.admit(SHARED, tmp_path / "missing.yaml", **FAST)
    listed = write(tmp_path, "two.yaml", {"projects": [LAB, {**LAB, "id": "lab2"}]})
    with pytest.raises(ScenarioError, match="a list holding exactly one project, got a list of 2 projects"):
        whatif.admit(SHARED, listed, **FAST)
    with pytest.raises(FlowsimError, match=r"policy \(--policy\) must be one of fifo, cd3, got 'nope'"):
        whatif.admit(SHARED, "base", policy="nope", **FAST)


def test_the_teaching_initiative_fits_the_default_scenario():
    scenario = load_scenario("scenarios/default.yaml")
    body = yaml.safe_load(Path("scenarios/teaching/new_initiative.yaml").read_text())
    # Validation only (the run itself is exercised above): the combined scenario is valid.
    from flowsim.analysis.paired import prepare
    from flowsim.analysis.whatif import _with_new_project

    combined = _with_new_project(prepare(scenario, policy=None, replications=1, seed=None, workers=1), body)
    assert combined.projects[-1].id == "customer-360"


# ------------------------------------------------------------------------------------ stop

# One team of 2, FIFO, strict order: every stage needs the whole team (crew 2), so the
# projects run one after another and stopping one frees exactly its remaining effort / 2.
CHAIN = {
    "horizon": 100,
    "seed": 11,
    "teams": {"build": {"capacity": 2}},
    "projects": [
        {"id": "a", "value": {"rate": 100},
         "stages": [{"team": "build", "effort": {"dist": "uniform", "low": 8, "high": 12}, "done": 4, "crew": 2}]},
        {"id": "b", "value": {"rate": 100},
         "stages": [{"team": "build", "effort": {"dist": "uniform", "low": 4, "high": 6}, "crew": 2}]},
        {"id": "c", "value": {"rate": 100}, "stages": [{"team": "build", "effort": 6, "crew": 2}]},
        {"id": "d", "arrival": 1, "value": {"rate": 100}, "stages": [{"team": "build", "effort": 2, "crew": 2}]},
    ],
    "policies": {"fifo": {"intake": "admit_all", "sequencing": "fifo"}},
}  # fmt: skip


def test_stopping_a_project_frees_exactly_its_remaining_effort():
    result = whatif.stop(CHAIN, ["a"], **FAST)
    # The remaining effort of "a" at time 0, per world, from a plain run on the same worlds.
    plain = flowsim.run(load_scenario(CHAIN), replications=N, workers=1).projects
    remaining = plain[plain["project"] == "a"].set_index("replication")["effort_actual"]
    pairs = result.replications
    for project in ("b", "c", "d"):
        change = pairs[pairs["project"] == project].set_index("replication")["delivery_change"]
        np.testing.assert_allclose(change, -remaining / 2, rtol=0, atol=1e-9)
    row = result.table.iloc[0]
    # Each of the three others gains rate x time saved; "a" loses its own stream.
    freed = 3 * 100 * (remaining / 2)
    assert row["freed_mean"] == pytest.approx(freed.mean(), rel=1e-9)
    lost = pairs[(pairs["project"] == "a")].set_index("replication")["value_today"]
    assert row["lost_mean"] == pytest.approx(lost.mean(), rel=1e-9)
    assert row["net_mean"] == pytest.approx(row["freed_mean"] - row["lost_mean"], rel=1e-9)


def test_stop_ranks_the_active_projects_and_cascades_to_dependants():
    chain = whatif.stop(CHAIN, **FAST)
    # Active at time 0: arriving at 0 (a, b, c) or in flight; d arrives later.
    assert set(chain.table["project"]) == {"a", "b", "c"}
    assert chain.table["net_mean"].is_monotonic_decreasing
    assert chain.answer.startswith(f"Stopping {chain.table['project'].iloc[0]} now would be missed least")
    shared = whatif.stop(SHARED, ["base"], **FAST)
    assert shared.table.loc[0, "also_stopped"] == "addon"
    removed = shared.replications[shared.replications["removed"]]
    assert set(removed["project"]) == {"base", "addon"}
    with pytest.raises(FlowsimError, match=r"--project must be the id of a listed project .*got 'zz'"):
        whatif.stop(CHAIN, ["zz"], **FAST)


def test_a_project_waiting_for_another_is_not_offered_as_active():
    # e arrives at 0 but depends on c: it waits for c's delivery, so it is not an active project
    # to stop today (DESIGN section 1) unless named; stopping c stops it too, in cascade.
    waiting = {"id": "e", "depends_on": ["c"], "value": {"rate": 100},
               "stages": [{"team": "build", "effort": 1, "crew": 2}]}  # fmt: skip
    data = {**CHAIN, "projects": [*CHAIN["projects"], waiting]}
    assert whatif.active_at_start(load_scenario(data)) == ["a", "b", "c"]
    assert set(whatif.stop(data, **FAST).table["project"]) == {"a", "b", "c"}
    assert whatif.stop(data, ["c"], **FAST).table.loc[0, "also_stopped"] == "e"
    assert list(whatif.stop(data, ["e"], **FAST).table["project"]) == ["e"]
    # A project whose dependency is done at time 0 starts at 0: active.  The done one is not
    # (delivered at 0: nothing to stop).  Found by a review of the change.
    done = {"id": "z", "value": {"rate": 100}, "stages": [{"team": "build", "effort": 1, "done": True}]}
    after = {"id": "y", "depends_on": ["z"], "value": {"rate": 100}, "stages": [{"team": "build", "effort": 1}]}
    scenario = load_scenario({**CHAIN, "projects": [done, after, *CHAIN["projects"]]})
    assert whatif.active_at_start(scenario) == ["y", "a", "b", "c"]


# ------------------------------------------------------------------------------------ capacity

# "busy" has all the load: ten projects queue for its single unit (about 40 weeks of
# work in 40 weeks); "idle" gets a little work spaced out by busy's completions;
# "spare" has one small project.
LOADED = {
    "name": "one constraint",
    "horizon": 40,
    "seed": 2,
    "teams": {"idle": {"capacity": 2}, "busy": {"capacity": 1}, "spare": {"capacity": 1}},
    "projects": [
        {"id": f"w{i}", "value": {"rate": 1000},
         "stages": [{"team": "busy", "effort": {"dist": "uniform", "low": 3, "high": 5}},
                    {"team": "idle", "effort": 1}]}
        for i in range(10)
    ] + [{"id": "tiny", "value": {"rate": 100}, "stages": [{"team": "spare", "effort": 1}]}],
}  # fmt: skip


def test_capacity_names_the_team_with_all_the_load():
    result = whatif.capacity(LOADED, **FAST)
    table = result.table
    assert table.loc[0, "team"] == "busy" and bool(table.loc[0, "constraint"])
    assert table.loc[0, "value_change_mean"] > table.loc[1:, "value_change_mean"].max()
    assert table.loc[0, "value_change_ci_low"] > 0
    observed = table.set_index("team")
    assert observed.loc["busy", "utilisation"] > 0.9
    assert observed.loc["busy", "mean_queue"] > observed.drop(index="busy")["mean_queue"].max()
    assert result.answer.startswith("busy is the constraint: utilisation ")
    assert "one more unit there is worth" in result.answer and "more than any other team" in result.answer
    assert set(result.replications["team"]) == {"idle", "busy", "spare"}


def test_capacity_shifts_every_change_and_rejects_impossible_ones():
    data = {
        **LOADED,
        "teams": {**LOADED["teams"], "busy": {"capacity": 3, "capacity_changes": [{"at": 10, "capacity": 1}]}},
    }
    minus = whatif.capacity(data, ["busy"], -1, **FAST)
    assert minus.table.loc[0, "value_change_mean"] < 0  # losing a unit costs
    assert "one unit fewer there costs" in minus.answer
    with pytest.raises(FlowsimError, match=r"teams\.busy\.capacity_changes\[0\]\.capacity must stay at least 0 "
                                           r"after --delta -2, got -1"):  # fmt: skip
        whatif.capacity(data, ["busy"], -2, **FAST)
    with pytest.raises(FlowsimError, match=r"teams\.spare\.capacity must stay at least 1 after --delta -1, got 0"):
        whatif.capacity(LOADED, ["spare"], -1, **FAST)
    crew = {**CHAIN, "teams": {"build": {"capacity": 3}}}
    with pytest.raises(
        FlowsimError, match=r"must keep room for its largest crew \(projects\[0\]\.stages\[0\]\.crew: 2\)"
    ):
        whatif.capacity(crew, ["build"], -2, **FAST)
    # Every team tried: the impossible ones are skipped with a note, not fatal.
    skipped = whatif.capacity(LOADED, None, -1, **FAST)
    assert set(skipped.table["team"]) == {"idle"}
    assert len(skipped.notes) == 2
    with pytest.raises(FlowsimError, match=r"team \(--team\) must be one of idle, busy, spare, got 'nope'"):
        whatif.capacity(LOADED, ["nope"], **FAST)
    with pytest.raises(FlowsimError, match=r"delta \(--delta\) must be a whole number .* other than 0, got 0"):
        whatif.capacity(LOADED, None, 0, **FAST)


def test_results_do_not_depend_on_the_number_of_workers():
    one = whatif.capacity(LOADED, ["busy"], replications=6, workers=1)
    two = whatif.capacity(LOADED, ["busy"], replications=6, workers=2)
    assert one.table.equals(two.table) and one.answer == two.answer


# ------------------------------------------------------------------------------------ benefits

SLACK = {
    "horizon": 40,
    "seed": 9,
    "teams": {"t1": {"capacity": 1}, "t2": {"capacity": 1}},
    "projects": [
        {"id": "tight", "promised": 6, "value": {"rate": 100},
         "stages": [{"team": "t1", "effort": {"dist": "uniform", "low": 4, "high": 8}}]},
        {"id": "slack", "promised": 10, "value": {"rate": 100},
         "stages": [{"team": "t2", "effort": {"dist": "uniform", "low": 4, "high": 8}}]},
    ],
}  # fmt: skip


def test_a_project_without_slack_is_less_likely_on_time():
    result = whatif.benefits(SLACK, replications=30, workers=1)
    table = result.table.set_index("project")
    assert table.loc["tight", "p_on_time"] < table.loc["slack", "p_on_time"] == 1.0
    assert 0 < table.loc["tight", "p_on_time"] < 1
    # A fixed rate and its exact estimate: the case is realised exactly when delivered on time.
    assert table.loc["tight", "p_realised"] == table.loc["tight", "p_on_time"]
    assert result.table.loc[0, "project"] == "tight"  # most at risk first
    assert table.loc["tight", "business_case"] == pytest.approx(100 * (40 - 6))
    assert "most at risk: tight (on time" in result.answer


def test_promises_beyond_the_horizon_are_not_judged():
    # H = 20, one unit, fifo.  early (effort 4, promised 10): 0-4, on time in every world.
    # sure (effort 1, promised 25): 4-5, delivered within the horizon in every world: on time
    # in all of them, known.  late (effort U(10, 30), promised 30): 5 to 15-35, within 20 in a
    # quarter of the worlds; in the others the run cannot tell whether it meets 30: unknown.
    # Delivered at a date at or after H, a case's value within H is 0, so neither late's nor
    # sure's "realised" can be judged.
    data = {
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [
            {"id": "early", "promised": 10, "value": {"rate": 100}, "stages": [{"team": "T", "effort": 4}]},
            {"id": "sure", "promised": 25, "value": {"rate": 100}, "stages": [{"team": "T", "effort": 1}]},
            {"id": "late", "promised": 30, "value": {"rate": 100},
             "stages": [{"team": "T", "effort": {"dist": "uniform", "low": 10, "high": 30}}]},
        ],
    }  # fmt: skip
    result = whatif.benefits(data, replications=20, workers=1)
    table = result.table.set_index("project")
    assert table.loc["early", ["p_on_time", "p_realised"]].tolist() == [1.0, 1.0]
    assert table.loc["sure", "p_on_time"] == 1.0 and math.isnan(table.loc["sure", "p_realised"])
    assert 0 < table.loc["late", "p_delivered"] < 1
    assert math.isnan(table.loc["late", "p_on_time"]) and math.isnan(table.loc["late", "p_realised"])
    assert "every business case it can judge is on track" in result.answer
    assert "2 projects dated at or after the horizon cannot be judged" in result.answer
    assert sorted(note.split("'")[0] for note in result.notes) == ["late", "sure"]
    # project_summary() says the same of the promise: unknown where a world does not deliver by H.
    run = flowsim.run(load_scenario(data), replications=20, workers=1)
    summary = run.project_summary().set_index("project")
    assert summary.loc["sure", "p_on_promise"] == 1.0 and summary.loc["early", "p_on_promise"] == 1.0
    assert math.isnan(summary.loc["late", "p_on_promise"])


def test_a_promise_exactly_at_the_horizon_is_not_judged_from_undelivered_worlds():
    # H = 10; x (effort 10, promised 10) is delivered at 10 = H, which is not within the
    # horizon: the run cannot tell it from a later delivery, so on time and realised are n/a,
    # and nothing is said to be on track (found by a review of the change).
    data = {"horizon": 10, "teams": {"T": {"capacity": 1}},
            "projects": [{"id": "x", "promised": 10, "value": {"rate": 100}, "stages": [{"team": "T", "effort": 10}]}]}
    result = whatif.benefits(data, replications=2, workers=1)
    row = result.table.set_index("project").loc["x"]
    assert math.isnan(row["p_on_time"]) and math.isnan(row["p_realised"])
    assert "on track" not in result.answer
    assert "1 project dated at or after the horizon cannot be judged" in result.answer
    summary = flowsim.run(load_scenario(data), replications=2, workers=1).project_summary()
    assert math.isnan(summary.set_index("project").loc["x", "p_on_promise"])


def test_business_case_dates_and_values_follow_the_stated_rule():
    data = {
        "horizon": 52,
        "teams": {"t": {"capacity": 1}, "u": {"capacity": 2}},
        "projects": [
            {"id": "plain", "value": {"rate": 100}, "stages": [{"team": "t", "effort": 4, "estimate": 3}]},
            {"id": "deadline", "value": {"rate": 100, "profile": "deadline", "due": 20, "fine": 5},
             "stages": [{"team": "t", "effort": 4}]},
            {"id": "window", "value": {"rate": 100, "profile": "window", "closes": 28},
             "stages": [{"team": "t", "effort": {"dist": "uniform", "low": 2, "high": 6}, "done": 1},
                        {"team": "u", "effort": 4, "crew": 2}]},
            {"id": "next", "depends_on": ["plain"], "promised": 12, "value": {"rate": 50, "lump": 10},
             "stages": [{"team": "u", "effort": 1}]},
        ],
    }  # fmt: skip
    scenario = load_scenario(data)
    ideal = estimated_ideal_delivery(scenario)
    # Work already done is deducted, crews shorten a stage, dependencies and arrival delay the start.
    assert ideal == {"plain": 3.0, "deadline": 4.0, "window": (4 - 1) + 4 / 2, "next": 4.0}
    cases = business_cases(scenario).set_index("project")
    assert cases.loc["plain", ["target", "target_rule"]].tolist() == [3.0, "estimated ideal delivery"]
    assert cases.loc["plain", "business_case"] == 100 * (52 - 3)
    assert cases.loc["deadline", ["target", "target_rule"]].tolist() == [20.0, "due"]
    assert cases.loc["deadline", "business_case"] == 100 * (52 - 20)
    # A window is read at the estimated ideal delivery: at `closes` it is worth nothing.
    assert cases.loc["window", ["target", "target_rule"]].tolist() == [28.0, "closes"]
    assert cases.loc["window", "business_case"] == 100 * (28 - 5)
    assert cases.loc["next", ["target", "target_rule"]].tolist() == [12.0, "promised"]
    assert cases.loc["next", "business_case"] == 50 * (52 - 12) + 10


# ------------------------------------------------------------------------------------ CLI


def test_cli_capacity_prints_the_answer_in_money(tmp_path):
    scenario = write(tmp_path, "loaded.yaml", LOADED)
    out = tmp_path / "out"
    result = runner.invoke(app(), ["whatif", "capacity", str(scenario), "-n", "4", "-w", "1", "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "busy is the constraint: utilisation" in result.output
    assert (out / "whatif_capacity.csv").exists()


def test_cli_admit_stop_and_benefits(tmp_path):
    scenario = write(tmp_path, "shared.yaml", SHARED)
    lab = write(tmp_path, "lab.yaml", LAB)
    common = ["-n", "3", "-w", "1", "-q"]
    admitted = runner.invoke(app(), ["whatif", "admit", str(scenario), "--project", str(lab), *common])
    assert admitted.exit_code == 0, admitted.output
    assert "Accepting lab delays no other project" in admitted.output
    stopped = runner.invoke(app(), ["whatif", "stop", str(scenario), "-p", "base", "-p", "p1", *common])
    assert stopped.exit_code == 0, stopped.output
    assert "now would be missed least" in stopped.output
    slack = write(tmp_path, "slack.yaml", SLACK)
    checked = runner.invoke(app(), ["whatif", "benefits", str(slack), *common, "--policy", "baseline"])
    assert checked.exit_code == 0, checked.output
    assert "against 6.4k in their business cases" in checked.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["capacity", "{s}", "--team", "nope"], "team (--team) must be one of idle, busy, spare, got 'nope'"),
        (["capacity", "{s}", "--team", "spare", "--delta", "-1"], "teams.spare.capacity must stay at least 1"),
        (["admit", "{s}", "--project", "{tmp}/none.yaml"], "none.yaml must be an existing project file, got no such"),
        (["admit", "{s}", "--project", "w99"], "--project must be the id of a listed project"),
        (["stop", "{s}", "--policy", "fast"], "policy (--policy) must be one of baseline, got 'fast'"),
        (["benefits", "{tmp}/missing.yaml"], "missing.yaml must be an existing scenario file"),
    ],
)
def test_cli_bad_input_exits_2_with_a_clear_message(tmp_path, args, message):
    scenario = write(tmp_path, "loaded.yaml", LOADED)
    args = [a.format(s=scenario, tmp=tmp_path) for a in args]
    result = runner.invoke(app(), ["whatif", *args, "-n", "2", "-w", "1", "-q"])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_math_of_the_sentence_helpers():
    from flowsim.analysis.paired import duration, with_ci

    assert duration(6.04, "week") == "6.0 weeks" and duration(1.0, "day") == "1.0 day"
    assert with_ci(1.1e6, 0.9e6, 1.3e6) == "1.1M (95% CI 900k to 1.3M)"
    assert with_ci(5.0, math.nan, math.nan) == "5"


def _fined(due: float) -> dict:
    # One unit; fifo works reg (30 weeks, late for its due date) first, then other (5 weeks).
    return {
        "name": "fine", "horizon": 52, "teams": {"dev": {"capacity": 1}},
        "projects": [
            {"id": "reg", "value": {"rate": 1000, "profile": "deadline", "due": due, "fine": 50000},
             "stages": [{"team": "dev", "effort": 30}]},
            {"id": "other", "value": {"rate": 2000}, "stages": [{"team": "dev", "effort": 5}]},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(("due", "owed"), [(10, 50000.0), (60, 0.0)])
def test_stopping_a_project_does_not_cancel_its_fine(due, owed):
    # By hand.  Today: reg delivered at 30, 22 weeks x 1000 = 22k, minus the fine when due (10) is
    # before delivery and the horizon; other delivered at 35: 17 x 2000 = 34k.  Stopped: other
    # delivered at 5: 47 x 2000 = 94k, so freed = 60k; reg is never delivered, so it still owes
    # the fine when its due date falls within the horizon (52), as when the engine cancels it.
    # The analysis used to drop the fine with the project, overstating stopping by 50k.
    result = whatif.stop(_fined(due), ["reg"], replications=2, workers=1)
    row = result.table.iloc[0]
    reg_today = 22000.0 - owed
    assert row["freed_mean"] == pytest.approx(60000.0)
    assert row["lost_mean"] == pytest.approx(reg_today - (-owed))  # = 22k whatever the fine
    assert row["net_mean"] == pytest.approx(60000.0 - 22000.0)
    reg = result.replications[result.replications["project"] == "reg"]
    assert reg["value_stopped"].tolist() == [-owed, -owed]
    assert result.replications.groupby("replication")["value_change"].sum().tolist() == pytest.approx([38000.0] * 2)


def test_dated_business_cases_are_at_risk_before_undated_ones():
    # "plain" states no date, so it is judged against its contention-free estimate (arrival + 4)
    # and, queued behind "promised" on the one unit, is late in every world: it used to head
    # the "most at risk" list.  "promised" (due at 5, effort 4 to 6) is late in some worlds only.
    data = {
        "horizon": 40, "seed": 3, "teams": {"t": {"capacity": 1}},
        "projects": [
            {"id": "promised", "promised": 5, "value": {"rate": 100},
             "stages": [{"team": "t", "effort": {"dist": "uniform", "low": 4, "high": 6}}]},
            {"id": "plain", "value": {"rate": 100}, "stages": [{"team": "t", "effort": 4}]},
        ],
    }  # fmt: skip
    result = whatif.benefits(data, replications=20, workers=1)
    table = result.table.set_index("project")
    assert table.loc["plain", "p_on_time"] == 0.0 < table.loc["promised", "p_on_time"] < 1.0
    assert result.table["project"].tolist() == ["promised", "plain"]
    assert "most at risk: promised (on time" in result.answer
    undated = "; 1 without a date in its business case is at risk against its estimated ideal delivery"
    assert undated + "; 0 of 2 on track" in result.answer


def test_stop_does_not_call_one_of_two_identical_projects_missed_least():
    # p and q are alike, each alone on its own team: stopping either loses the same value in
    # every world, so neither is clearly missed less (it used to name the first, plainly).
    twins = {
        "name": "twins", "horizon": 20, "teams": {"a": {"capacity": 1}, "b": {"capacity": 1}},
        "projects": [{"id": pid, "value": {"rate": 100}, "stages": [{"team": team, "effort": 3}]}
                     for pid, team in (("p", "a"), ("q", "b"))],
    }  # fmt: skip
    result = whatif.stop(twins, replications=8, workers=1)
    assert result.answer.startswith("Stopping p now would be missed least, though not clearly less than q: ")
    clear = {**twins, "projects": [twins["projects"][0], {**twins["projects"][1], "value": {"rate": 10}}]}
    result = whatif.stop(clear, replications=8, workers=1)
    assert result.answer.startswith("Stopping q now would be missed least: ")


# ------------------------------------------------------------------------------------ one-line refusals

DEFAULT = Path(__file__).resolve().parents[1] / "scenarios" / "default.yaml"
QUESTIONS = [["admit", "--project", "base"], ["stop"], ["capacity"], ["benefits"]]


def whatif_cli(*args: str):
    from flowsim.cli import app as flowsim_app

    return runner.invoke(flowsim_app, ["whatif", *map(str, args)])


def refused(result) -> list[str]:
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    return result.stderr.splitlines()


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q[0])
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["-n", "0"], "replications (--replications) must be a whole number of at least 1, got 0"),
        (["--replications", "-3"], "replications (--replications) must be a whole number of at least 1, got -3"),
        (["-w", "0"], "workers (--workers) must be a whole number of at least 1, got 0"),
        (["--seed", "-1"], "seed (--seed) must be a whole number of at least 0, got -1"),
    ],
)
def test_bad_run_options_read_as_flowsim_run_reads_them(tmp_path, question, option, message):
    # They were a rich box ("Invalid value for '--replications' / '-n': Input should be ...").
    scenario = write(tmp_path, "shared.yaml", SHARED)
    command, *rest = question
    assert refused(whatif_cli(command, scenario, *rest, *option, "-q")) == [message]


@pytest.mark.parametrize("option", ["-n", "-w"])
def test_the_audits_benefits_command_words_a_bad_option_as_run_does(tmp_path, option):
    from flowsim.cli import app as flowsim_app

    ran = runner.invoke(flowsim_app, ["run", str(DEFAULT), option, "0", "-q", "--out", str(tmp_path / "out")])
    asked = whatif_cli("benefits", DEFAULT, option, "0")
    assert refused(asked) == refused(ran) and len(refused(ran)) == 1


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q[0])
@pytest.mark.parametrize(
    ("policies", "message"),
    [
        (["cd3", "cd3"], "--policy must name each policy once, got 'cd3' more than once"),  # as flowsim run says
        (["fifo", "cd3"],
         "policy (--policy) must be given at most once (a what-if simulates one policy), got fifo, cd3"),
    ],
)  # fmt: skip
def test_a_repeated_policy_is_refused_not_the_last_one_kept(tmp_path, question, policies, message):
    scenario = write(tmp_path, "shared.yaml", SHARED)
    command, *rest = question
    repeated = [arg for name in policies for arg in ("--policy", name)]
    assert refused(whatif_cli(command, scenario, *rest, *repeated, "-n", "2", "-q")) == [message]


def test_a_repeated_policy_reads_as_in_flowsim_run(tmp_path):
    from flowsim.cli import app as flowsim_app

    twice = ["--policy", "push-fifo", "--policy", "push-fifo", "-n", "2", "-q"]
    ran = runner.invoke(flowsim_app, ["run", str(DEFAULT), *twice, "--out", str(tmp_path / "out")])
    asked = whatif_cli("benefits", DEFAULT, *twice)
    assert refused(asked) == refused(ran) and len(refused(ran)) == 1


def test_a_project_or_team_named_twice_is_refused(tmp_path):
    scenario = write(tmp_path, "shared.yaml", SHARED)
    stopped = whatif_cli("stop", scenario, "-p", "base", "-p", "p1", "-p", "base", "-n", "2", "-q")
    assert refused(stopped) == [f"{scenario}: --project must name each project once, got 'base' more than once"]
    widened = whatif_cli("capacity", scenario, "-t", "dev", "-t", "dev", "-n", "2", "-q")
    assert refused(widened) == [f"{scenario}: team (--team) must name each team once, got 'dev' more than once"]
    with pytest.raises(FlowsimError, match=r"--project must name each project once, got 'p1' more than once$"):
        whatif.stop(SHARED, ["p1", "p1"], **FAST)
    with pytest.raises(FlowsimError, match=r"team \(--team\) must name each team once, got 'test' more than once$"):
        whatif.capacity(SHARED, ["test", "dev", "test"], **FAST)


SCENARIO_AS_PROJECT = (
    "{file} must be one project (id, stages, value, ...); a scenario file is for flowsim whatif admit {file} "
    "--project PROJECT, got what looks like a scenario ({keys}, no stages)"
)


def test_a_scenario_passed_as_the_project_is_named_in_one_line(tmp_path):
    # It was 13 lines of "must be a known key", one per scenario key.
    result = whatif_cli("admit", DEFAULT, "--project", DEFAULT, "-n", "2", "-q")
    assert refused(result) == [SCENARIO_AS_PROJECT.format(file=DEFAULT, keys="teams, projects, horizon")]
    # Another scenario file, through the Python API: the same line, with the keys it has.
    other = write(tmp_path, "other.yaml", {"teams": LOADED["teams"], "projects": LOADED["projects"]})
    with pytest.raises(ScenarioError) as error:
        whatif.admit(SHARED, other, **FAST)
    assert [str(p) for p in error.value.problems] == [SCENARIO_AS_PROJECT.format(file=other, keys="teams, projects")]
    with pytest.raises(ScenarioError) as error:
        whatif.admit(SHARED, dict(LOADED), **FAST)
    assert str(error.value) == (
        "<project> must be one project (id, stages, value, ...); a scenario file is for flowsim whatif admit FILE "
        "--project PROJECT, got what looks like a scenario (teams, projects, horizon, no stages)"
    )
    # A project file keeps its own messages; {projects: [one]} is still one project.
    assert whatif.admit(SHARED, write(tmp_path, "lab.yaml", {"projects": [LAB]}), **FAST).settings["project"] == "lab"


def test_validate_of_a_project_file_and_admit_of_a_scenario_say_it_alike(tmp_path):
    # The two mistakes mirror each other: "X must be a scenario ...; a file holding one project is for ..."
    # and "X must be one project ...; a scenario file is for ...".
    from flowsim.cli import app as flowsim_app

    project = write(tmp_path, "lab.yaml", LAB)
    validated = runner.invoke(flowsim_app, ["validate", str(project)]).stderr.splitlines()[0]
    assert validated.startswith(f"{project} must be a scenario (horizon, teams, ...); a file holding one project is")
    admitted = refused(whatif_cli("admit", DEFAULT, "--project", DEFAULT, "-n", "2", "-q"))[0]
    assert admitted.startswith(f"{DEFAULT} must be one project (id, stages, value, ...); a scenario file is for")
