"""Edge cases of scenario input found by a review: each failed once.

Union parameters of a user rule give one problem; the timeline step is checked
on the step a run uses (an override can rescue a file's own step) and at its
stated minimum; sweep values read numbers as scenario files do; a float key's
hint does not suggest a respelling.
"""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

import flowsim
from flowsim.analysis.sweep import parse_setting
from flowsim.cli import app
from flowsim.errors import ScenarioError
from flowsim.policies import unregister
from flowsim.policies.protocol import SequencingRule
from flowsim.scenario import load_scenario, scenario_from_dict

runner = CliRunner()


# -- errors._locate: "a level a before-validator added" also skips union labels --


class ReviewWeekly(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    day: Annotated[int, Field(ge=1, le=7)]


class ReviewMonthly(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    date: Annotated[int, Field(ge=1, le=28)]


class _UnionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    weights: dict[str, Annotated[float, Field(ge=0)]] | float = 1.0
    schedule: ReviewWeekly | ReviewMonthly | None = None


@pytest.fixture
def union_rule():
    @flowsim.register("sequencing", "review_union", params=_UnionParams)
    class _Rule(SequencingRule):
        def priority(self, project, portfolio):
            return 0.0

    yield "review_union"
    unregister("sequencing", "review_union")


def _problems(data: dict) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(data, source="F")
    return [str(p) for p in caught.value.problems]


BASE = {"horizon": 10, "teams": {"dev": {"capacity": 1}}}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"weights": {"dev": -1}}, "F: policies.p.sequencing.weights.dev must be a number of at least 0, got -1"),
        ({"schedule": {"day": 9}}, "F: policies.p.sequencing.schedule.day must be a whole number of at most 7, got 9"),
    ],
)
def test_a_union_parameter_of_a_user_rule_gives_one_problem(union_rule, params, expected):
    # Before: exactly this one line.  After: the union's other branches are
    # reported too ("weights must be a number, got {dev: -1}", "schedule.day must
    # be a known parameter ... (allowed: date)", "schedule.date must be given"),
    # because the union label is skipped when the next location part is a key.
    problems = _problems({**BASE, "policies": {"p": {"sequencing": {"rule": union_rule, **params}}}})
    assert problems == [expected]


def test_a_distribution_key_named_like_its_tag_is_one_problem():
    data = {
        **BASE,
        "projects": [{"id": "a", "stages": [{"team": "dev", "effort": {"dist": "uniform", "low": 1, "high": 2,
                                                                       "uniform": 3}}]}],
    }  # fmt: skip
    # Before: "...effort.uniform must be a known key (allowed: dist, low, high), got 'uniform'" alone.
    assert _problems(data) == [
        "F: projects[0].stages[0].effort.uniform must be a known key (allowed: dist, low, high), got 'uniform'"
    ]


# -- checks.timeline_step_rule -------------------------------------------------


def test_a_timeline_step_at_the_stated_minimum_is_accepted(tmp_path):
    # The message says "at least 5.2e-05 ..., got 5.2e-05": 52 / 5.2e-05 is
    # 1000000.0000000001 in floating point.
    path = tmp_path / "s.yaml"
    path.write_text("horizon: 52\ntimeline_step: 5.2e-05\nteams: {dev: {capacity: 1}}\n")
    load_scenario(path)


def test_timeline_step_override_is_not_refused_for_the_files_own_step(tmp_path):
    # docs/scenario.md: "--timeline-step overrides it".  A long horizon whose
    # file step is too fine but whose override is fine ran before (exit 0);
    # the load-time check now refuses the file's default step of 1.
    path = tmp_path / "long.yaml"
    path.write_text(
        "horizon: 2000000\nteams: {dev: {capacity: 1}}\nprojects:\n  - {id: a, stages: [{team: dev, effort: 1}]}\n"
    )
    result = runner.invoke(
        app, ["run", str(path), "-n", "1", "-w", "1", "-o", str(tmp_path / "out"), "-q", "--timeline-step", "10"]
    )
    assert result.exit_code == 0, result.output


# -- YAML 1.2 numbers: the scenario reads 2e6 as a number, sweep --set does not --


def test_sweep_values_read_scientific_notation_as_the_scenario_does():
    # docs/scenario.md: "Numbers may be written in scientific notation ... 2e6".
    # `flowsim sweep --set teams.server.cost_rate=1e3,2e3` fails with
    # "cost_rate must be a number, got '1e3'".
    assert parse_setting("teams.dev.cost_rate=1e3,2e3") == ("teams.dev.cost_rate", [1000.0, 2000.0])


# -- errors._quote_hint: the hint must quote what the file has --------------------


def test_quote_hint_for_a_float_key_does_not_suggest_a_respelling(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("horizon: 52\nteams: {dev: {capacity: 1}, 2.0: {capacity: 1}, 1e3: {capacity: 1}}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    # YAML has already turned 2.0 or 1e3 into a float: suggesting '2' or '1000.0' would
    # rename the team, so the hint asks to quote the name as written.
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "teams['2.0'] must be a name written as text (quote it as you wrote it), got 2.0",
        "teams['1000.0'] must be a name written as text (quote it as you wrote it), got 1000.0",
    ]


def test_text_values_that_yaml_read_as_something_else_say_to_quote_them(tmp_path):
    # docs/scenario.md tells users to quote such values; the message says so too, since the
    # value shown (false, 1000.0) is YAML's reading, not what the file says.
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: no\nhorizon: 10\nteams: {T: {capacity: 1}}\n"
        "projects:\n  - {id: 1e3, value: {rate: 1}, stages: [{team: T, effort: 1}]}\n"
        "  - {id: ok, name: null, value: {rate: 1}, stages: [{team: T, effort: 1}]}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert [line.split(": ", 1)[1] for line in str(caught.value).splitlines()] == [
        "name must be text (quote it: YAML reads unquoted yes, no, on, off, true and false as true or false), "
        "got false",
        "projects[0].id must be text (quote it as you wrote it), got 1000.0",
    ]
