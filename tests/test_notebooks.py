"""The notebooks run top to bottom against the installed flowsim, are stored without outputs, print no
warnings and write no files; and what their text says holds in what they compute.

Each notebook is executed once per session (about 25 s for the four on two cores).  After its last
cell, a probe cell (``PROBES``) runs in the same kernel and prints, as JSON, the figures the
notebook's markdown quotes or relies on; the ``test_*_text`` tests check each claim against them, so a
change in flowsim that makes a sentence false fails here, naming the sentence.  The quoted figures
are for the notebook's own seed; where the text says "about", the tolerance is its rounding.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BY_STEM = {p.stem: p for p in NOTEBOOKS}

# Code run after the notebook, in its kernel: print one JSON object of facts (NaN allowed).
_PRINT = "\nimport json as _json\nprint('FACTS' + _json.dumps(_facts, default=float))\n"
PROBES = {
    "01-quickstart": """
_c = results.compare().set_index(["policy", "metric"])
_s = results.summary().set_index(["policy", "metric"])
_facts = {
    "time_unit": scenario.time_unit,
    "horizon": scenario.horizon,
    "baseline": results.baseline,
    "columns": list(results.projects.columns),
    "cd3": _c.loc[("push-cd3", "value_delivered")].to_dict(),
    "wip5": _c.loc[("wip5-cd3", "value_delivered")].to_dict(),
    "delivered": _s.xs("delivered", level="metric")["mean"].to_dict(),
}
""",
    "02-compare-policies": """
_facts = {
    "rules": {
        name: [p.intake.rule, p.sequencing.rule, p.intervention.rule if p.intervention else None]
        for name, p in scenario.policies.items()
    },
    "baseline": results.baseline,
    "vs_fifo": results.compare().query("metric == 'value_delivered'").set_index("policy").to_dict("index"),
    "intake_baseline": intake.baseline,
    "intake": intake.compare().set_index("metric").to_dict("index"),
    "same_worlds": (
        results.replications.query("policy == 'push-cd3'").sort_values("replication")["value_delivered"].tolist()
        == intake.replications.query("policy == 'push-cd3'").sort_values("replication")["value_delivered"].tolist()
    ),
    "constraint": evidence[evidence.constraint].set_index("policy").to_dict("index"),
}
""",
    "03-custom-policy": """
from flowsim.policies.protocol import SequencingRule as _Base

# The rule by hand: one unit of work, "old" (CoD 100, arrived at 1) and "new" (CoD 500, arrived at 4) wait
# behind a blocker until 5.  Ageing 200 per week: old scores 100 + 200 x 4 = 900, new 500 + 200 x 1 = 700.
_small = {
    "name": "ageing by hand", "horizon": 20,
    "teams": {"dev": {"capacity": 1}},
    "projects": [
        {"id": "blocker", "value": {"rate": 1000}, "stages": [{"team": "dev", "effort": 5}]},
        {"id": "old", "arrival": 1, "value": {"rate": 100}, "stages": [{"team": "dev", "effort": 1}]},
        {"id": "new", "arrival": 4, "value": {"rate": 500}, "stages": [{"team": "dev", "effort": 1}]},
    ],
    "policies": {
        "value": {"sequencing": "value"},
        "ageing": {"sequencing": {"rule": "cod_ageing", "ageing": 200}},
    },
}
_hand = flowsim.run(scenario_from_dict(_small, source="hand"), replications=1, seed=0, workers=1).projects
_facts = {
    "registered": "cod_ageing" in flowsim.known_rules("sequencing"),
    "pure": CodWithAgeing.pure,
    "live": all(
        getattr(CodWithAgeing, name, None) is getattr(_Base, name, None)
        for name in ("is_stable", "rank_trend", "constant")
    ),
    "baseline": results.baseline,
    "compare": {
        f"{p}|{m}": row
        for (p, m), row in results.compare().set_index(["policy", "metric"]).to_dict("index").items()
    },
    "hand": {f"{r.policy}|{r.project}": r.delivered for r in _hand.itertuples()},
}
""",
    "04-vmo-questions": """
_facts = {
    "answers": [admit.answer, stop.answer, stop_cd3.answer, capacity.answer, benefits.answer],
    "admit": admit.totals.set_index("metric").to_dict("index"),
    "stop": stop.table.to_dict("records"),
    "stop_cd3": stop_cd3.table.to_dict("records"),
    "capacity": capacity.table.to_dict("records"),
    "data_cost": data_cost,
    "benefits_totals": benefits.totals.set_index("metric").to_dict("index"),
    "benefits": benefits.table.to_dict("records"),
    "dated": dated["project"].tolist(),
}
""",
}


PROJECT_COLUMNS = [
    "policy", "replication", "project", "template", "arrival", "admitted", "started", "delivered", "status",
    "cycle_time", "ideal_delivery", "effort_estimate", "effort_actual", "value_delivered", "value_ideal",
    "value_delayed", "npv", "npv_ideal",
]  # fmt: skip


def _files() -> set[str]:
    """Every file under notebooks/ and scenarios/: where a notebook run could leave one."""
    return {str(p.relative_to(ROOT)) for folder in ("notebooks", "scenarios") for p in (ROOT / folder).rglob("*")}


def _execute(path: Path) -> dict:
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    before = _files()
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": path.parent}})
    probe = nbformat.v4.new_code_cell(PROBES[path.stem] + _PRINT)
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError, with the traceback, on an error
        notebook.cells.append(probe)  # the client writes each executed cell back into the notebook
        client.execute_cell(probe, len(notebook.cells) - 1)
        notebook.cells.pop()
    printed = "".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream")
    facts = json.loads(printed.split("FACTS", 1)[1])
    return {"notebook": notebook, "facts": facts, "new_files": _files() - before}


@pytest.fixture(scope="module")
def executed():
    cache: dict[str, dict] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLBACKEND", "Agg")

        def run(stem: str) -> dict:
            if stem not in cache:
                cache[stem] = _execute(BY_STEM[stem])
            return cache[stem]

        yield run


def _outputs(notebook):
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]


def _approx(value: float, target: float, tolerance: float) -> bool:
    return abs(value - target) <= tolerance


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == [
        "01-quickstart",
        "02-compare-policies",
        "03-custom-policy",
        "04-vmo-questions",
    ]
    assert set(PROBES) == set(BY_STEM)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_quietly_and_leaves_no_files(path, executed):
    run = executed(path.stem)
    outputs = _outputs(run["notebook"])
    assert not [o for o in outputs if o.output_type == "error"]
    # Every notebook shows something computed: text, tables or figures.
    assert any(o.output_type in ("execute_result", "display_data", "stream") for o in outputs)
    # Warnings (pandas FutureWarning, matplotlib, ...) go to stderr: an analyst should see none.
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{path.name} printed to stderr: {stderr}"
    assert not run["new_files"], f"{path.name} left files: {sorted(run['new_files'])}"


# ----------------------------------------------------------------------------------- 01-quickstart


def test_quickstart_text(executed):
    facts = executed("01-quickstart")["facts"]
    # "times are in its time_unit (weeks here), so 'over 3 years' means within the 156-week horizon"
    assert facts["time_unit"] == "week" and facts["horizon"] == 156
    assert facts["baseline"] == "push-fifo"
    # "`results.projects` has ... the columns listed in the README's Outputs" (DESIGN section 9)
    assert facts["columns"] == PROJECT_COLUMNS
    # "push-cd3 delivers about 9M more than push-fifo over the 3 years, and more in every world"
    cd3 = facts["cd3"]
    assert _approx(cd3["diff"], 9e6, 0.5e6) and cd3["diff_ci_low"] > 0 and cd3["better_share"] == 1.0
    # "wip5-cd3's CI lies below 0, but only just (it ends about 0.2M below 0)"
    wip5 = facts["wip5"]
    assert wip5["diff_ci_high"] < 0 and _approx(wip5["diff_ci_high"], -0.2e6, 0.1e6)
    # "wip5-cd3 delivers about 66 projects per world against 83 to 87 for the others"
    delivered = facts["delivered"]
    assert _approx(delivered.pop("wip5-cd3"), 66, 1)
    assert all(82.5 <= n < 87.5 for n in delivered.values()), delivered


# ----------------------------------------------------------------------------- 02-compare-policies


def test_compare_policies_text(executed):
    facts = executed("02-compare-policies")["facts"]
    rules = facts["rules"]
    # The four policies span the three decisions as the first cell lists them.
    assert {r[0] for r in rules.values()} == {"admit_all", "wip_limit", "drum"}
    assert {r[1] for r in rules.values()} == {"fifo", "cd3", "cd3_bottleneck"}
    assert {r[2] for r in rules.values()} == {None, "review"}
    # "Only push-cd3 differs from the baseline push-fifo in one decision (sequencing)"
    assert facts["baseline"] == "push-fifo"
    one_decision = [
        name
        for name, r in rules.items()
        if name != "push-fifo" and sum(a != b for a, b in zip(r, rules["push-fifo"], strict=True)) == 1
    ]
    assert one_decision == ["push-cd3"] and rules["push-cd3"][1] == "cd3"
    # "the two CD3 policies deliver 8M to 10M more, in every world"
    for policy in ("push-cd3", "drum-cd3b-review"):
        row = facts["vs_fifo"][policy]
        assert 8e6 <= row["diff"] <= 10e6 and row["diff_ci_low"] > 0 and row["better_share"] == 1.0, policy
    # "wip5-cd3's CI includes 0 at this seed"
    wip5 = facts["vs_fifo"]["wip5-cd3"]
    assert wip5["diff_ci_low"] < 0 < wip5["diff_ci_high"]
    # The subset run: push-cd3 is its baseline and meets the same worlds.
    assert facts["intake_baseline"] == "push-cd3" and facts["same_worlds"]
    # "The limit ... costs about 10M (CI well below 0, worse in every world) and delivers about 20 fewer
    # projects per world; ... the data team's utilisation falls by about 16 points."
    intake = facts["intake"]
    value = intake["value_delivered"]
    assert _approx(value["diff"], -10e6, 0.5e6) and value["diff_ci_high"] < -5e6 and value["better_share"] == 0.0
    assert _approx(intake["delivered"]["diff"], -20, 2) and intake["delivered"]["diff_ci_high"] < 0
    utilisation = intake["utilisation.data"]
    assert _approx(utilisation["diff"], -0.16, 0.015) and utilisation["diff_ci_high"] < 0
    # "The data team is the constraint under every policy."
    constraint = facts["constraint"]
    assert set(constraint) == set(rules) and {row["team"] for row in constraint.values()} == {"data"}
    fifo, cd3, wip5, drum = (constraint[p] for p in ("push-fifo", "push-cd3", "wip5-cd3", "drum-cd3b-review"))
    # "Under push-fifo it is about 90% busy with a mean queue of about 17 stages"
    assert _approx(fifo["utilisation"], 0.9, 0.025) and _approx(fifo["mean_queue"], 17, 1)
    # "the drum keeps it about as busy as push-cd3 does with a much shorter queue"
    assert _approx(drum["utilisation"], cd3["utilisation"], 0.05) and drum["mean_queue"] < cd3["mean_queue"] / 2
    # "the WIP limit empties its queue but leaves it idle about a quarter of the time"
    assert wip5["mean_queue"] < fifo["mean_queue"] / 10 and _approx(1 - wip5["utilisation"], 0.25, 0.03)


# -------------------------------------------------------------------------------- 03-custom-policy


def test_custom_policy_text(executed):
    run = executed("03-custom-policy")
    facts = run["facts"]
    # The rule is registered, pure (no draws, no state) and makes no rank promise (its score rises with time).
    assert facts["registered"] and facts["pure"] is True and facts["live"]
    # It does what it says, by hand: the old cheap project overtakes the new dearer one; `value` does not.
    hand = facts["hand"]
    assert (hand["ageing|old"], hand["ageing|new"]) == (6.0, 7.0)
    assert (hand["value|new"], hand["value|old"]) == (6.0, 7.0)
    # The comparison is with `value`, the rule it extends.
    assert facts["baseline"] == "push-value"
    compare = facts["compare"]
    # "the P90 cycle time ... falls by about 45 weeks, in every world"
    p90 = compare["push-ageing|cycle_time_p90"]
    assert _approx(p90["diff"], -45, 2.5) and p90["diff_ci_high"] < 0 and p90["better_share"] == 1.0
    # "but value delivered falls by about 2.7M over the 3 years (CI below 0)"
    value = compare["push-ageing|value_delivered"]
    assert _approx(value["diff"], -2.7e6, 0.1e6) and value["diff_ci_high"] < 0
    # "push-cd3 delivers more than `value` (CI above 0) ... cuts the P90 cycle time, by about 33 weeks"
    assert compare["push-cd3|value_delivered"]["diff_ci_low"] > 0
    cd3_p90 = compare["push-cd3|cycle_time_p90"]
    assert _approx(cd3_p90["diff"], -33, 1.5) and cd3_p90["diff_ci_high"] < 0
    # "A misspelt parameter is an error that names the key"
    printed = "".join(o.get("text", "") for o in run["notebook"].cells[-1].outputs)
    assert "policies.push-ageing.sequencing.ageng" in printed and "did you mean 'ageing'" in printed


# -------------------------------------------------------------------------------- 04-vmo-questions


def test_vmo_questions_text(executed):
    facts = executed("04-vmo-questions")["facts"]
    # Every answer says how sure it is, and under which policy and how many worlds.
    for answer in facts["answers"]:
        assert "95% CI" in answer and "10 worlds" in answer, answer
    assert "policy push-cd3" in facts["answers"][2]
    assert all("policy push-fifo" in a for i, a in enumerate(facts["answers"]) if i != 2)

    # 1. "customer-360 brings about 1.4M and costs the projects it delays about as much: both CIs are
    # clearly above 0, but the net change's CI includes 0"
    admit = facts["admit"]
    own, cost, net = admit["initiative_value"], admit["cost_to_others"], admit["net"]
    assert _approx(own["mean"], 1.4e6, 0.1e6) and own["ci_low"] > 0
    assert _approx(cost["mean"], own["mean"], 0.2e6) and cost["ci_low"] > 0
    assert net["ci_low"] < 0 < net["ci_high"]

    # 2. "Of the 20 projects active today, dwh (stopped with the three projects that depend on it) is missed
    # least: its freed capacity brings the others more than it and its dependants deliver ... (CI above 0).
    # Below the first the ranking is not settled at 10 worlds: the next CIs include 0."
    stop = facts["stop"]
    assert len(stop) == 20
    first = stop[0]
    assert first["project"] == "dwh" and len(first["also_stopped"].split(", ")) == 3
    assert first["freed_mean"] > first["lost_mean"] and first["net_ci_low"] > 0
    assert all(row["net_ci_low"] < 0 < row["net_ci_high"] for row in stop[1:5])
    # "under push-cd3 ... dwh still comes first but the gain from stopping it is smaller and its CI includes 0"
    cd3 = facts["stop_cd3"][0]
    assert cd3["project"] == "dwh" and cd3["net_mean"] < first["net_mean"]
    assert cd3["net_ci_low"] < 0 < cd3["net_ci_high"]

    # 3. "The data team is the constraint: one more unit there is worth about 9.8M over the 3 years (CI 7.8M
    # to 11.8M), about twenty times what it costs (its cost_rate of 3,200 a week for 156 weeks), and several
    # times more than a unit anywhere else (platform comes next). For four teams the CI includes 0"
    capacity = facts["capacity"]
    data, second = capacity[0], capacity[1]
    assert data["team"] == "data" and data["constraint"]
    assert _approx(data["value_per_unit_mean"], 9.8e6, 0.05e6)
    assert _approx(data["value_per_unit_ci_low"], 7.8e6, 0.05e6)
    assert _approx(data["value_per_unit_ci_high"], 11.8e6, 0.05e6)
    assert facts["data_cost"] == 3200 * 156
    assert _approx(data["value_per_unit_mean"] / facts["data_cost"], 20, 1)
    assert second["team"] == "platform" and data["value_per_unit_mean"] > 3 * second["value_per_unit_mean"]
    assert sum(row["value_per_unit_ci_low"] < 0 < row["value_per_unit_ci_high"] for row in capacity) == 4

    # 4. "The listed projects deliver about 84% of the value in their business cases. ... 15 projects have
    # [a date], and 4 of them are on track (... here all 10). spring-campaign is delivered after its window
    # closes in every world, so it brings nothing. The 19 others are judged against their estimated ideal
    # delivery"
    totals = facts["benefits_totals"]
    assert _approx(totals["value_delivered"]["mean"] / totals["business_case"]["mean"], 0.84, 0.005)
    rows = {row["project"]: row for row in facts["benefits"]}
    dated = [rows[p] for p in facts["dated"]]
    assert len(dated) == 15 and len(rows) - len(dated) == 19
    assert {row["target_rule"] for row in dated} == {"promised", "due", "closes"}
    on_track = [row["project"] for row in rows.values() if row["p_on_time"] >= 0.95 and row["p_realised"] >= 0.95]
    assert len(on_track) == 4 and set(on_track) <= set(facts["dated"])
    spring = rows["spring-campaign"]
    assert spring["target_rule"] == "closes" and spring["p_delivered"] == 1.0
    assert spring["p_on_time"] == 0.0 and spring["value_mean"] == 0.0
