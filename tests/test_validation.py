"""Bad scenarios fail with exact, located messages and exit code 2 (DESIGN section 10).

Each case starts from a valid scenario, makes one mistake, runs ``flowsim
validate`` and compares stderr line for line with the expected
``FILE: path must be RULE, got VALUE`` messages: the whole output, so a case
also proves the mistake is reported once, not once per pydantic union branch.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.errors import Problem, ScenarioError, readable
from flowsim.scenario import Scenario, load_scenario, scenario_from_dict
from flowsim.world import sample_world

BAD = Path(__file__).parent / "fixtures" / "bad"
ROOT = Path(flowsim.__file__).resolve().parent.parent

BASE = {
    "name": "Test portfolio",
    "horizon": 104,
    "teams": {
        "platform": {"capacity": 3},
        "data": {"capacity": 1, "capacity_changes": [{"at": 52, "capacity": 2}]},
        "ux": {"capacity": 2, "focus": "shared", "switching": "weinberg"},
    },
    "projects": [
        {
            "id": "crm",
            "value": {"rate": 20000, "life": 104},
            "stages": [
                {
                    "name": "build",
                    "team": "platform",
                    "effort": {"dist": "triangular", "low": 8, "mode": 12, "high": 24},
                },
                {"name": "reports", "team": "data", "effort": {"dist": "lognormal", "median": 3, "p90": 6}},
                {"name": "screens", "team": "ux", "effort": 2, "after": ["build"]},
            ],
        },
        {
            "id": "pricing",
            "value": {"rate": 8000, "profile": "window", "closes": 40},
            "depends_on": ["crm"],
            "stages": [{"team": "data", "effort": 4}],
        },
        {
            "id": "billing",
            "value": {"rate": 6000, "profile": "deadline", "due": 26, "penalty": 0.5},
            "stages": [{"team": "platform", "effort": 10, "done": 4}, {"team": "data", "effort": 2}],
        },
    ],
    "templates": {
        "enhancement": {
            "value": {"rate": {"dist": "uniform", "low": 500, "high": 3000}, "profile": "decay", "half_life": 26},
            "stages": [{"team": "ux", "effort": {"dist": "pert", "low": 0.5, "mode": 1, "high": 3}}],
        }
    },
    "arrivals": [{"template": "enhancement", "rate": 0.5, "end": 100, "name": "ideas"}],
    "policies": {
        "push-fifo": {"intake": "admit_all", "sequencing": "fifo"},
        "cd3-wip6": {
            "intake": {"rule": "wip_limit", "limit": 6},
            "sequencing": "cd3",
            "intervention": {"rule": "review", "every": 4, "cancel_below": 0.2},
        },
    },
}

SUMMARY = """\
Test portfolio ({file}): valid
horizon: 104 weeks
teams: 3
  platform  capacity 3
  data      capacity 1, 2 from week 52
  ux        capacity 2, shared (switching weinberg)
projects: 3 listed
templates: 1 (enhancement)
arrivals: 1 stream
  ideas  template enhancement, 0.5 per week, weeks 0-100
policies: 2 (the first is the baseline)
  push-fifo  intake admit_all, sequencing fifo
  cd3-wip6   intake wip_limit(limit=6), sequencing cd3, intervention review(every=4, cancel_below=0.2)
"""

runner = CliRunner()


def validate(path: Path | str):
    return runner.invoke(app, ["validate", str(path)])


def write(tmp_path: Path, data: object, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def stage(i: int, j: int) -> str:
    return f"projects[{i}].stages[{j}]"


def test_valid_scenario_passes_and_is_summarised(tmp_path):
    path = write(tmp_path, BASE)
    result = validate(path)
    assert result.exit_code == 0, result.output
    assert result.stdout == SUMMARY.format(file=path)
    assert result.stderr == ""


def test_design_example_is_valid():
    result = validate(Path(__file__).parent / "fixtures" / "design_example.yaml")
    assert result.exit_code == 0, result.output
    assert "policies: 3 (the first is the baseline)" in result.stdout


# Each case: a mistake made to a copy of BASE, and every line validate must print.
CASES = {
    # -- types and keys, found while parsing ----------------------------------
    "wrong type deep inside": (
        lambda d: d["projects"][0]["stages"][1]["effort"].update(p90="six"),
        [f"{stage(0, 1)}.effort.p90 must be a number, got 'six'"],
    ),
    # Strict types: a quoted number or a boolean is a mistake, not a number.
    "quoted number": (
        lambda d: d["teams"]["platform"].update(capacity="2"),
        ["teams.platform.capacity must be a whole number, got '2'"],
    ),
    "boolean for a number": (
        lambda d: d["teams"]["platform"].update(capacity=True),
        ["teams.platform.capacity must be a whole number, got true"],
    ),
    "text for a boolean": (
        lambda d: d["policies"]["push-fifo"].update(preempt="yes"),
        ["policies.push-fifo.preempt must be true or false, got 'yes'"],
    ),
    "effort neither number nor distribution": (
        lambda d: d["projects"][0]["stages"][2].update(effort="two"),
        [f"{stage(0, 2)}.effort must be a number or a distribution {{dist: NAME, ...}}, got 'two'"],
    ),
    "unknown key at top level": (
        lambda d: d.update(horizn=5),
        [
            "horizn must be a known key (allowed: name, description, time_unit, horizon, discount_rate, "
            "estimation_error, seed, timeline_step, teams, projects, templates, arrivals, policies; "
            "did you mean 'horizon'?), got 'horizn'"
        ],
    ),
    "unknown key in a team": (
        lambda d: d["teams"]["platform"].update(capcity=3),
        [
            "teams.platform.capcity must be a known key (allowed: capacity, cost_rate, capacity_changes, "
            "focus, switching, loss; did you mean 'capacity'?), got 'capcity'"
        ],
    ),
    "unknown key in a stage": (
        lambda d: d["projects"][1]["stages"][0].update(efort=3),
        [
            f"{stage(1, 0)}.efort must be a known key (allowed: name, team, effort, estimate, crew, after, done; "
            "did you mean 'effort'?), got 'efort'"
        ],
    ),
    "unknown key in a distribution": (
        lambda d: d["projects"][0]["stages"][1]["effort"].update(p95=9),
        [f"{stage(0, 1)}.effort.p95 must be a known key (allowed: dist, median, p90; did you mean 'p90'?), got 'p95'"],
    ),
    "missing required key": (
        lambda d: d["teams"]["platform"].pop("capacity"),
        ["teams.platform.capacity must be given, got nothing"],
    ),
    "negative capacity": (
        lambda d: d["teams"]["data"].update(capacity=-1),
        ["teams.data.capacity must be a whole number of at least 1, got -1"],
    ),
    "fractional capacity": (
        lambda d: d["teams"]["data"].update(capacity=1.5),
        ["teams.data.capacity must be a whole number, got 1.5"],
    ),
    "zero horizon": (lambda d: d.update(horizon=0), ["horizon must be a number above 0, got 0"]),
    "infinite horizon": (lambda d: d.update(horizon=float("inf")), ["horizon must be a finite number, got inf"]),
    "inf effort": (
        lambda d: d["projects"][1]["stages"][0].update(effort=float("inf")),
        [f"{stage(1, 0)}.effort must be a finite number, got inf"],
    ),
    "unknown time unit": (lambda d: d.update(time_unit="month"), ["time_unit must be one of week, day, got 'month'"]),
    "unknown dist name": (
        lambda d: d["projects"][1]["stages"][0].update(effort={"dist": "normal", "mean": 3}),
        [
            f"{stage(1, 0)}.effort.dist must be one of fixed, uniform, triangular, pert, lognormal, exponential, "
            "weibull, empirical (did you mean 'lognormal'?), got 'normal'"
        ],
    ),
    "distribution without dist": (
        lambda d: d["projects"][1]["stages"][0].update(effort={"low": 1, "high": 3}),
        [
            f"{stage(1, 0)}.effort.dist must be given (one of fixed, uniform, triangular, pert, lognormal, "
            "exponential, weibull, empirical), got nothing"
        ],
    ),
    "low above high": (
        lambda d: d["templates"]["enhancement"]["value"].update(rate={"dist": "uniform", "low": 3000, "high": 500}),
        ["templates.enhancement.value.rate.high must be above low (3000), got 500"],
    ),
    "p90 below median": (
        lambda d: d["projects"][0]["stages"][1]["effort"].update(p90=2),
        [f"{stage(0, 1)}.effort.p90 must be above median (3), got 2"],
    ),
    "done negative": (
        lambda d: d["projects"][2]["stages"][0].update(done=-1),
        [f"{stage(2, 0)}.done must be a number of at least 0, got -1"],
    ),
    "rule as a mapping without rule": (
        lambda d: d["policies"]["push-fifo"].update(intake={"limit": 3}),
        ["policies.push-fifo.intake must be a rule name or {rule: NAME, ...parameters}, got {limit: 3}"],
    ),
    "switching without shared focus": (
        lambda d: d["teams"]["platform"].update(switching="weinberg"),
        [
            "teams.platform.switching must be set only with focus: shared "
            "(switching is how shared work slows down), got 'weinberg'"
        ],
    ),
    # -- cross-checks, once the file parses -------------------------------------
    "missing team": (
        lambda d: d["projects"][1]["stages"][0].update(team="dta"),
        [
            f"{stage(1, 0)}.team must be a team defined under teams (known: platform, data, ux; did you mean 'data'?), "
            "got 'dta'"
        ],
    ),
    "crew too large": (
        lambda d: d["projects"][1]["stages"][0].update(crew=3),
        [f"{stage(1, 0)}.crew must be at most 2, the most capacity team 'data' ever has, got 3"],
    ),
    "duplicate project ids": (
        lambda d: d["projects"][2].update(id="crm"),
        ["projects[2].id must be unique (projects[0] has this id), got 'crm'"],
    ),
    "duplicate stage names": (
        lambda d: d["projects"][2]["stages"][1].update(team="platform"),
        [
            f"{stage(2, 1)}.name must be unique in the project "
            "(stages[0] is also 'platform'; a stage's name defaults to its team's), got 'platform'"
        ],
    ),
    "duplicate stream names": (
        lambda d: d["arrivals"].append({"template": "enhancement", "rate": 1, "name": "ideas"}),
        ["arrivals[1].name must be unique among arrival streams (arrivals[0] is also 'ideas'), got 'ideas'"],
    ),
    "unknown dependency": (
        lambda d: d["projects"][1].update(depends_on=["crn"]),
        [
            "projects[1].depends_on[0] must be the id of a listed project (known: crm, pricing, billing; "
            "did you mean 'crm'?), got 'crn'"
        ],
    ),
    "unknown template": (
        lambda d: d["arrivals"][0].update(template="enhancements"),
        [
            "arrivals[0].template must be a template defined under templates (known: enhancement; "
            "did you mean 'enhancement'?), got 'enhancements'"
        ],
    ),
    "unknown after": (
        lambda d: d["projects"][0]["stages"][2].update(after=["bild"]),
        [
            f"{stage(0, 2)}.after[0] must be a stage of this project (known: build, reports, screens; "
            "did you mean 'build'?), got 'bild'"
        ],
    ),
    "dependency cycle": (
        # billing is in flight (it may not wait), so the cycle runs through crm and pricing.
        lambda d: d["projects"][0].update(depends_on=["pricing"]),
        [
            "projects[0].depends_on must be free of cycles (a -> b: a depends on b), "
            "got the cycle crm -> pricing -> crm"
        ],
    ),
    "in-flight project waiting for another": (
        lambda d: d["projects"][2].update(depends_on=["crm"]),
        [
            "projects[2].depends_on must be empty for a project in flight (a stage has done), "
            "since it is admitted at time 0, got ['crm']"
        ],
    ),
    "in-flight project arriving later": (
        lambda d: d["projects"][2].update(arrival=5),
        ["projects[2].arrival must be 0 for a project in flight (a stage has done): it is admitted at time 0, got 5"],
    ),
    "stage cycle": (
        lambda d: d["projects"][0]["stages"][0].update(after=["screens"]),
        [
            f"{stage(0, 0)}.after must be free of cycles (a -> b: a runs after b), "
            "got the cycle build -> screens -> build"
        ],
    ),
    "unsorted capacity changes": (
        lambda d: d["teams"]["data"].update(capacity_changes=[{"at": 52, "capacity": 2}, {"at": 26, "capacity": 3}]),
        [
            "teams.data.capacity_changes[1].at must be later than the previous change (at 52): "
            "changes are listed in time order, got 26"
        ],
    ),
    "capacity change beyond horizon": (
        lambda d: d["teams"]["data"].update(capacity_changes=[{"at": 104, "capacity": 2}]),
        ["teams.data.capacity_changes[0].at must be before the horizon (104), got 104"],
    ),
    "effort zero": (
        lambda d: d["projects"][1]["stages"][0].update(effort=0),
        [f"{stage(1, 0)}.effort must be a number above 0, got 0"],
    ),
    "effort distribution below zero": (
        lambda d: d["projects"][1]["stages"][0].update(effort={"dist": "uniform", "low": -1, "high": 3}),
        [
            f"{stage(1, 0)}.effort must be a distribution that cannot go below 0 "
            "(an effort is never negative; lowest here: -1), got {dist: 'uniform', low: -1, high: 3}"
        ],
    ),
    "negative value rate": (
        lambda d: d["projects"][0]["value"].update(rate=-5),
        ["projects[0].value.rate must be a number of at least 0, got -5"],
    ),
    "arrival start after end": (
        lambda d: d["arrivals"][0].update(start=60, end=50),
        ["arrivals[0].end must be above start (60), got 50"],
    ),
    "arrival end beyond horizon": (
        lambda d: d["arrivals"][0].update(end=200),
        ["arrivals[0].end must be at most the horizon (104), got 200"],
    ),
    "window without closes": (
        lambda d: d["projects"][1]["value"].pop("closes"),
        ["projects[1].value.closes must be given for profile window, got nothing"],
    ),
    "decay without half_life": (
        lambda d: d["templates"]["enhancement"]["value"].pop("half_life"),
        ["templates.enhancement.value.half_life must be given for profile decay, got nothing"],
    ),
    "deadline without penalty or fine": (
        lambda d: d["projects"][2]["value"].pop("penalty"),
        ["projects[2].value.penalty must be given (or a fine, or both) for profile deadline, got nothing"],
    ),
    "parameter of another profile": (
        lambda d: d["projects"][0]["value"].update(half_life=10),
        ["projects[0].value.half_life must be used only with profile: decay (the profile here is standard), got 10"],
    ),
    "template form in a project": (
        lambda d: d["projects"][1]["value"].update(closes_in=d["projects"][1]["value"].pop("closes")),
        [
            "projects[1].value.closes_in must be written as closes in a listed project (closes_in is for templates), "
            "got 40"
        ],
    ),
    "project form in a template": (
        lambda d: d["templates"]["enhancement"].update(value={"rate": 100, "profile": "window", "closes": 10}),
        [
            "templates.enhancement.value.closes must be written as closes_in in a template "
            "(relative to the project's arrival), got 10"
        ],
    ),
    "done beyond effort": (
        lambda d: d["projects"][2]["stages"][0].update(done=10),
        [f"{stage(2, 0)}.done must be below the stage's effort (10); write done: true for a finished stage, got 10"],
    ),
    "done in a template": (
        lambda d: d["templates"]["enhancement"]["stages"][0].update(done=True),
        [
            "templates.enhancement.stages[0].done must be left out in a template "
            "(only listed projects are in flight), got true"
        ],
    ),
    "promised in a template": (
        lambda d: d["templates"]["enhancement"].update(promised=20),
        ["templates.enhancement.promised must be left out in a template (only listed projects promise dates), got 20"],
    ),
    # -- policies ---------------------------------------------------------------
    "unknown rule name": (
        lambda d: d["policies"]["cd3-wip6"].update(sequencing="cd4"),
        [
            "policies.cd3-wip6.sequencing must be a known sequencing rule (one of cd3, cd3_bottleneck, edd, fifo, "
            "least_slack, random, sjf, value, wsjf; did you mean 'cd3'?), got 'cd4'"
        ],
    ),
    "unknown rule parameter": (
        lambda d: d["policies"]["cd3-wip6"]["intake"].update(limt=4),
        [
            "policies.cd3-wip6.intake.limt must be a known parameter of wip_limit "
            "(allowed: limit; did you mean 'limit'?), got 'limt'"
        ],
    ),
    "rule parameter of the wrong type": (
        lambda d: d["policies"]["cd3-wip6"]["intervention"].update(every="monthly"),
        ["policies.cd3-wip6.intervention.every must be a number, got 'monthly'"],
    ),
    "parameter for a rule that takes none": (
        lambda d: d["policies"]["push-fifo"].update(sequencing={"rule": "fifo", "limit": 2}),
        ["policies.push-fifo.sequencing.limit must be a known parameter of fifo (allowed: none), got 'limit'"],
    ),
    "drum on an unknown team": (
        lambda d: d["policies"].update(drum={"intake": {"rule": "drum", "buffer": 8, "team": "qa"}}),
        ["policies.drum.intake.team must be a team defined under teams (known: platform, data, ux), got 'qa'"],
    ),
    "team_wip limit on an unknown team": (
        lambda d: d["policies"].update(tw={"intake": {"rule": "team_wip", "limits": {"data": 2, "qa": 3}}}),
        ["policies.tw.intake.limits.qa must be a team defined under teams (known: platform, data, ux), got 'qa'"],
    ),
    "empty policy name": (
        lambda d: d["policies"].update({"": {"sequencing": "fifo"}}),
        ["policies must be keyed by non-empty names, got ''"],
    ),
    "wsjf without fields": (
        lambda d: (
            d["policies"].update(safe={"sequencing": "wsjf"}),
            [p.update(business_value=3, time_criticality=2, risk_reduction=1, job_size=5) for p in d["projects"][:2]],
            d["projects"][1].pop("job_size"),
        ),
        [
            "projects[1].job_size must be given (policy 'safe' sequences by wsjf), got nothing",
            "projects[2] must be given business_value, time_criticality, risk_reduction and job_size "
            "(policy 'safe' sequences by wsjf), got none of them",
            "templates.enhancement must be given business_value, time_criticality, risk_reduction and job_size "
            "(policy 'safe' sequences by wsjf), got none of them",
        ],
    ),
    # -- found by the scenario reference's audit ---------------------------------
    "a team loss beside switching's own loss": (
        lambda d: d["teams"]["ux"].update(switching={"rule": "flat", "loss": 0.2}, loss=0.5),
        ["teams.ux.loss must be left out when switching gives its own loss (0.2), got 0.5"],
    ),
    "a whole float where a whole number is needed is shown as written": (
        lambda d: (d.update(seed=3.0), d["teams"]["platform"].update(capacity=2.0)),
        ["seed must be a whole number, got 3.0", "teams.platform.capacity must be a whole number, got 2.0"],
    ),
    "a rule given both flat parameters and a params mapping": (
        lambda d: d["policies"]["cd3-wip6"].update(intake={"rule": "wip_limit", "limit": 6, "params": {"limit": 2}}),
        ["policies.cd3-wip6.intake.params must be a known parameter of wip_limit (allowed: limit), got 'params'"],
    ),
    "a switching table point below one task, which would be ignored": (
        lambda d: d["teams"]["ux"].update(switching=[[0.5, 0.5], [2, 0.5]]),
        ["teams.ux.switching must be a table whose tasks start at 1 or above, with fraction 1 at 1 task (f(1) = 1), "
         "got [[0.5, 0.5], [2, 0.5]]"],
    ),
    # -- sizes that would never finish or fit in memory ---------------------------
    "an arrival rate of more than ten million projects": (
        lambda d: d["arrivals"][0].update(rate=1e6),
        ["arrivals[0].rate must be at most 100,000 per time unit (at most 10,000,000 expected arrivals over the "
         "stream's window), got 1000000"],
    ),
    "an arrival rate limit that is not a whole number is shown readably, rounded down": (
        # Before: "at most 192307.6923076923 per time unit".
        lambda d: d["arrivals"][0].update(rate=1e6, end=52),
        ["arrivals[0].rate must be at most 192,307 per time unit (at most 10,000,000 expected arrivals over the "
         "stream's window), got 1000000"],
    ),
    # -- names from a fixed list: a near miss gets a suggestion -----------------------
    "a misspelt switching curve is reported at the key written": (
        # Before: "teams.ux.switching.rule must be one of ..., got 'weinburg'" (no rule key in the file).
        lambda d: d["teams"]["ux"].update(switching="weinburg"),
        ["teams.ux.switching must be one of none, weinberg, wheelwright_clark, flat, table "
         "(did you mean 'weinberg'?), got 'weinburg'"],
    ),
    "a misspelt switching rule in the mapping form": (
        lambda d: d["teams"]["ux"].update(switching={"rule": "weinburg"}),
        ["teams.ux.switching.rule must be one of none, weinberg, wheelwright_clark, flat, table "
         "(did you mean 'weinberg'?), got 'weinburg'"],
    ),
    "a bad point of a switching table written as the table itself": (
        # Before: "teams.ux.switching.table[1][1]" (the file has no table key).
        lambda d: d["teams"]["ux"].update(switching=[[1, 1], [2, "half"]]),
        ["teams.ux.switching[1][1] must be a number, got 'half'"],
    ),
    "a misspelt time unit": (
        lambda d: d.update(time_unit="weeks"),
        ["time_unit must be one of week, day (did you mean 'week'?), got 'weeks'"],
    ),
    "a misspelt focus": (
        lambda d: d["teams"]["platform"].update(focus="shred"),
        ["teams.platform.focus must be one of single, shared (did you mean 'shared'?), got 'shred'"],
    ),
    "a misspelt value profile": (
        lambda d: d["projects"][0]["value"].update(profile="decy"),
        ["projects[0].value.profile must be one of standard, window, decay, deadline (did you mean 'decay'?), "
         "got 'decy'"],
    ),
    "a misspelt distribution name": (
        lambda d: d["projects"][1]["stages"][0].update(effort={"dist": "triangulr", "low": 1, "mode": 2, "high": 3}),
        [f"{stage(1, 0)}.effort.dist must be one of fixed, uniform, triangular, pert, lognormal, exponential, "
         "weibull, empirical (did you mean 'triangular'?), got 'triangulr'"],
    ),
    # -- a misspelt required key is one mistake, not also a missing key -------------
    "a misspelt horizon": (
        # Before: also "horizon must be given, got nothing".
        lambda d: d.update(horizn=d.pop("horizon")),
        ["horizn must be a known key (allowed: name, description, time_unit, horizon, discount_rate, "
         "estimation_error, seed, timeline_step, teams, projects, templates, arrivals, policies; "
         "did you mean 'horizon'?), got 'horizn'"],
    ),
    "a misspelt required rule parameter": (
        lambda d: d["policies"]["cd3-wip6"].update(intake={"rule": "wip_limit", "limt": 6}),
        ["policies.cd3-wip6.intake.limt must be a known parameter of wip_limit "
         "(allowed: limit; did you mean 'limit'?), got 'limt'"],
    ),
    "an unknown key that is not the missing one: both reported": (
        lambda d: (d["teams"]["platform"].pop("capacity"), d["teams"]["platform"].update(cost_rte=5)),
        ["teams.platform.capacity must be given, got nothing",
         "teams.platform.cost_rte must be a known key (allowed: capacity, cost_rate, capacity_changes, "
         "focus, switching, loss; did you mean 'cost_rate'?), got 'cost_rte'"],
    ),
    # -- several mistakes: all reported ----------------------------------------
    "several parse problems at once": (
        lambda d: (d.update(horizon=-1), d["teams"]["ux"].update(capacity=0)),
        ["horizon must be a number above 0, got -1", "teams.ux.capacity must be a whole number of at least 1, got 0"],
    ),
}


@pytest.mark.parametrize("mistake", CASES.keys())
def test_mistake_is_reported_exactly(tmp_path, mistake):
    mutate, expected = CASES[mistake]
    data = copy.deepcopy(BASE)
    mutate(data)
    path = write(tmp_path, data)
    result = validate(path)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"{path}: {line}" for line in expected]


# -- the file itself ------------------------------------------------------------

FILE_CASES = {
    "invalid_yaml.yaml": "{file}: line 4, column 6 must be valid YAML (while parsing a flow sequence started at "
    "line 3: expected ',' or ']', but got ':'), got 'teams: {{dev: {{capacity: 1}}}}'",
    "python_tag.yaml": "{file}: line 3, column 10 must be plain YAML data (tags such as !!python/object are not "
    "allowed), got 'horizon: !!python/object/apply:os.system [\"echo flowsim-should-never-run-this\"]'",
    "empty.yaml": "{file} must be a mapping of scenario keys (horizon, teams, ...), got an empty file",
    "top_level_list.yaml": "{file} must be a mapping of scenario keys (horizon, teams, ...), got a list",
    "duplicate_key.yaml": "{file}: line 4 must be a key used once in its mapping (first used at line 3), got 'dev'\n"
    "{file}: line 5 must be a key used once in its mapping (first used at line 1), got 'horizon'",
}


@pytest.mark.parametrize("name", FILE_CASES.keys())
def test_bad_file_is_reported(name):
    path = BAD / name
    result = validate(path)
    assert result.exit_code == 2, result.output
    assert result.stderr == FILE_CASES[name].format(file=path) + "\n"
    assert "Traceback" not in result.output


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    result = validate(path)
    assert result.exit_code == 2
    assert result.stderr == f"{path} must be an existing scenario file, got no such file\n"


def test_directory(tmp_path):
    result = validate(tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path} must be a scenario file, got a directory\n"


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("horizon: 10\nname: Caf\xe9\n".encode("latin-1"))
    result = validate(path)
    assert result.exit_code == 2
    assert result.stderr == f"{path}: line 2 must be UTF-8 text, got the byte 0xe9 (save the file as UTF-8)\n"


def test_python_tag_is_never_executed(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.yaml"
    path.write_text(f'horizon: !!python/object/apply:os.system ["touch {marker}"]\nteams: {{dev: {{capacity: 1}}}}\n')
    assert validate(path).exit_code == 2
    assert not marker.exists()


def test_subprocess_exit_code_and_stderr():
    # The real entry point, in a fresh interpreter: exit code 2, every problem, no traceback.
    path = BAD / "many_problems.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "from flowsim.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "validate", str(path)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}: projects[0].stages[0].crew must be at most 2, the most capacity team 'dev' ever has, got 3",
        f"{path}: projects[0].stages[1].team must be a team defined under teams (known: dev), got 'qa'",
        f"{path}: projects[1].stages[0].effort must be a number above 0, got 0",
        f"{path}: projects[1].depends_on[0] must be the id of a listed project (known: a, b), got 'c'",
        f"{path}: policies.base.intake must be a known intake rule (one of admit_all, cadence, drum, team_wip, "
        "threshold, wip_limit; did you mean 'wip_limit'?), got 'wip_limt'",
    ]


def test_subprocess_valid_scenario(tmp_path):
    path = write(tmp_path, BASE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", "from flowsim.cli import main; main()", "validate", str(path)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == SUMMARY.format(file=path)


def test_missing_argument_is_a_usage_error():
    assert runner.invoke(app, ["validate"]).exit_code == 2


# -- the Python API ---------------------------------------------------------------


def test_load_scenario_from_path_text_and_dict(tmp_path):
    path = write(tmp_path, BASE)
    from_path = load_scenario(path)
    assert isinstance(from_path, Scenario)
    assert from_path.source == str(path)
    from_text = load_scenario(path.read_text())
    assert from_text.source == "<text>"
    assert from_text.model_dump() == from_path.model_dump()
    from_dict = scenario_from_dict(copy.deepcopy(BASE))
    assert from_dict.source == "<dict>"
    assert load_scenario(path, source="named.yaml").source == "named.yaml"
    assert load_scenario(from_path) is from_path


def test_scenario_error_lists_problem_objects():
    data = copy.deepcopy(BASE)
    data["horizon"] = 0
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(data, source="x.yaml")
    assert caught.value.problems == [Problem("x.yaml", "horizon", "a number above 0", 0)]
    assert str(caught.value) == "x.yaml: horizon must be a number above 0, got 0"


def test_ids_written_as_numbers_are_text():
    data = copy.deepcopy(BASE)
    data["projects"][0]["id"] = 42
    data["projects"][1]["depends_on"] = [42]
    scenario = scenario_from_dict(data)
    assert scenario.projects[0].id == "42"
    assert scenario.projects[1].depends_on == ["42"]


def test_numpy_scalars_from_a_notebook_are_plain_numbers():
    # Validation is strict ("2" and true are not numbers), but numpy's numbers are numbers.
    data = copy.deepcopy(BASE)
    data["teams"]["platform"]["capacity"] = np.int64(4)
    data["horizon"] = np.float64(data["horizon"])
    scenario = scenario_from_dict(data)
    assert scenario.teams["platform"].capacity == 4 and type(scenario.teams["platform"].capacity) is int
    assert scenario.horizon == float(BASE["horizon"])
    data["teams"]["platform"]["capacity"] = np.float64(2.5)
    with pytest.raises(ScenarioError, match=r"teams\.platform\.capacity must be a whole number, got 2\.5"):
        scenario_from_dict(data)


def test_defaults_when_no_policies_given():
    data = copy.deepcopy(BASE)
    del data["policies"]
    scenario = scenario_from_dict(data)
    assert list(scenario.policies) == ["baseline"]
    assert scenario.policies["baseline"].intake.rule == "admit_all"
    assert scenario.policies["baseline"].sequencing.rule == "fifo"


def test_done_zero_is_no_work_done_so_not_in_flight():
    """``done: 0`` is no work done: the project is not in flight, may arrive later and
    depend on others (validation agrees with the engine, which admits it as usual)."""
    data = copy.deepcopy(BASE)
    data["projects"][1]["stages"][0]["done"] = 0
    data["projects"][1]["arrival"] = 10
    scenario = scenario_from_dict(data)
    world = sample_world(scenario, 1, 0)
    assert not world.projects[1].in_flight and world.projects[2].in_flight
    data["projects"][1]["stages"][0]["done"] = 0.5  # some work done: in flight, so it cannot wait
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(data, source="x.yaml")
    assert [p.path for p in caught.value.problems] == ["projects[1].depends_on", "projects[1].arrival"]


def test_numbers_in_scientific_notation_are_numbers(tmp_path):
    """YAML 1.1 reads ``2e4`` (no dot) as text; a scenario reads it as the number it is."""
    path = tmp_path / "sci.yaml"
    path.write_text("horizon: 1.04e2\nteams: {dev: {capacity: 1, cost_rate: 2e3}}\n"
                    "projects: [{id: a, value: {rate: 5E+4}, stages: [{team: dev, effort: 1e0}]}]\n")  # fmt: skip
    scenario = load_scenario(path)
    assert scenario.horizon == 104.0 and scenario.teams["dev"].cost_rate == 2000.0
    assert scenario.projects[0].value.rate == 50000.0 and scenario.projects[0].stages[0].effort == 1.0
    path.write_text("horizon: 104\nteams: {dev: {capacity: 1}}\n"
                    "projects: [{id: 1e3x, stages: [{team: dev, effort: 1}]}]\n")  # fmt: skip
    assert load_scenario(path).projects[0].id == "1e3x"  # not a number: still text


def test_a_timeline_step_override_with_too_many_points_is_refused():
    result = runner.invoke(app, ["run", str(Path(__file__).parent / "fixtures" / "design_example.yaml"), "-n", "1",
                                 "-w", "1", "-q", "--timeline-step", "0.00001"])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("timeline_step (--timeline-step) must be at least ")
    assert "got 1e-05" in result.stderr and "Traceback" not in result.output


def test_a_files_own_timeline_step_with_too_many_points_stops_the_run(tmp_path):
    path = tmp_path / "fine.yaml"
    path.write_text("horizon: 52\ntimeline_step: 0.00001\nteams: {dev: {capacity: 1}}\n")
    assert validate(path).exit_code == 0  # a run may still override it
    result = runner.invoke(app, ["run", str(path), "-n", "1", "-w", "1", "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == (
        f"{path}: timeline_step must be at least 5.2e-05 (horizon / 1,000,000: a replication's timeline has at "
        "most 1,000,000 steps), got 1e-05"
    )
    with pytest.raises(flowsim.FlowsimError, match=r"timeline_step \(--timeline-step\) must be a finite number"):
        flowsim.run(load_scenario(path), replications=1, workers=1, timeline_step=0)


# -- a project file validated as a scenario ----------------------------------------


def test_a_project_file_gets_a_hint_about_whatif_admit(tmp_path):
    # Before: only the unknown keys (stages, value, ...) and the missing horizon and teams.
    path = tmp_path / "initiative.yaml"
    path.write_text("id: new\nvalue: {rate: 100}\nstages: [{team: dev, effort: 2}]\n")
    result = validate(path)
    assert result.exit_code == 2
    allowed = ("allowed: name, description, time_unit, horizon, discount_rate, estimation_error, seed, "
               "timeline_step, teams, projects, templates, arrivals, policies")  # fmt: skip
    assert result.stderr.splitlines() == [
        f"{path} must be a scenario (horizon, teams, ...); a file holding one project is for "
        f"flowsim whatif admit SCENARIO --project {path}, got what looks like one project (stages, value, no teams)",
        f"{path}: horizon must be given, got nothing",
        f"{path}: teams must be given, got nothing",
        f"{path}: id must be a known key ({allowed}), got 'id'",
        f"{path}: value must be a known key ({allowed}), got 'value'",
        f"{path}: stages must be a known key ({allowed}), got 'stages'",
    ]


def test_the_teaching_project_file_gets_the_hint():
    path = ROOT / "scenarios" / "teaching" / "new_initiative.yaml"
    result = validate(path)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"{path} must be a scenario (horizon, teams, ...); a file holding one project is for "
        f"flowsim whatif admit SCENARIO --project {path}, got what looks like one project (stages, value, no teams)"
    )


def test_a_scenario_with_teams_gets_no_project_hint():
    data = {"horizon": 10, "teams": {"dev": {"capacity": 1}}, "stages": []}
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(data, source="x.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "x.yaml: stages must be a known key (allowed: name, description, time_unit, horizon, discount_rate, "
        "estimation_error, seed, timeline_step, teams, projects, templates, arrivals, policies), got 'stages'"
    ]


# -- computed bounds are readable, and true as stated --------------------------------


def test_readable_numbers():
    assert readable(192307.6923076923) == "192,308"
    assert readable(192307.6923076923, rounding="down") == "192,307"
    assert readable(142.85714285714286, rounding="up") == "142.858"
    assert readable(1234567.891, rounding="down") == "1,234,567"
    assert readable(5.2e-05, rounding="up") == "5.2e-05"
    assert readable(1e-12 / 3, rounding="up") == "3.33334e-13"
    assert readable(100000.0) == "100,000"
    assert readable(2.0) == "2"
    assert readable(0.0) == "0"


def test_the_stated_arrival_rate_limit_is_accepted():
    data = copy.deepcopy(BASE)
    data["arrivals"][0].update(rate=192307, end=52)  # "at most 192,307 per time unit"
    scenario_from_dict(data)
    data["arrivals"][0].update(rate=192308)
    with pytest.raises(ScenarioError, match="at most 192,307 per time unit"):
        scenario_from_dict(data)
