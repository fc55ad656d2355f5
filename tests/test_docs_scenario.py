"""docs/scenario.md is real: its YAML examples load, and it documents every key the models accept.

Each ```yaml block of the page is checked according to the HTML comment on the line
just before it (invisible when the page is rendered):

- ``<!-- complete scenario -->``: a whole scenario file; it must load with
  ``flowsim.load_scenario``. ``<!-- complete scenario, run -->`` marks the main
  example (exactly one), which must also run two replications.
- ``<!-- in the main example -->``: a fragment of top-level keys. Merged into the
  main example, it must load: a top-level mapping (``teams``, ``templates``,
  ``policies``) is merged entry by entry, anything else (``projects``, ``arrivals``,
  scalars) replaces the main example's.
- ``<!-- invalid scenario: NAME -->``: saved as NAME, ``flowsim validate NAME`` must exit
  with code 2 and print exactly the lines of the ```text block that follows it.
- no marker: a fragment that must parse as YAML, to a mapping.

The page must also name, in backquotes and in the section that documents it, every
field of the scenario models (introspected from ``model_fields``, so a key added to
a model without documentation fails here), every value of their ``Literal`` fields
(``time_unit``, ``focus``, ``switching`` curves, value profiles, distribution names)
and every built-in rule.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

import pytest
import yaml
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.policies import known_rules, lookup
from flowsim.policies.registry import KINDS
from flowsim.scenario import distributions as dists
from flowsim.scenario import model

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenario.md"
TEXT = DOC.read_text(encoding="utf-8")
MARKER = re.compile(r"<!--\s*(.*?)\s*-->")


def _blocks() -> list[tuple[str, str, int, str | None]]:
    """Every fenced ```yaml block as (marker, text, line number, text of the next ```text block)."""
    lines = TEXT.splitlines()
    found = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```yaml":
            start = i + 1
            end = lines.index("```", start)
            previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
            marker = MARKER.fullmatch(previous.strip())
            # The expected output of an invalid example: the next ```text block, before any other ```yaml.
            follow, rest = None, lines[end + 1 :]
            fences = [j for j, line in enumerate(rest) if line.strip() in ("```text", "```yaml")]
            if fences and rest[fences[0]].strip() == "```text":
                body = rest[fences[0] + 1 :]
                follow = "\n".join(body[: body.index("```")])
            found.append((marker.group(1) if marker else "", "\n".join(lines[start:end]) + "\n", start + 1, follow))
            i = end
        i += 1
    return found


BLOCKS = _blocks()
MAIN = [text for marker, text, _, _ in BLOCKS if marker == "complete scenario, run"]
KNOWN_MARKERS = re.compile(r"(complete scenario(, run)?|in the main example|invalid scenario: [\w.-]+\.yaml)?")


def _ids(kind: str) -> list:
    return [pytest.param(text, line, follow, id=f"line{line}") for marker, text, line, follow in BLOCKS
            if marker == kind or (kind == "invalid" and marker.startswith("invalid scenario:"))]  # fmt: skip


def test_blocks_are_found_and_every_marker_is_known():
    assert len(BLOCKS) >= 10
    assert len(MAIN) == 1, "exactly one block is marked <!-- complete scenario, run -->"
    for marker, _, line, _ in BLOCKS:
        assert KNOWN_MARKERS.fullmatch(marker), f"line {line}: unknown marker {marker!r}"


@pytest.mark.parametrize(("text", "line", "follow"), _ids("") + _ids("in the main example"))
def test_every_yaml_block_parses(text, line, follow):
    assert isinstance(yaml.safe_load(text), dict), f"docs/scenario.md line {line}: not a YAML mapping"


@pytest.mark.parametrize(("text", "line", "follow"), _ids("complete scenario") + _ids("complete scenario, run"))
def test_complete_scenarios_load(tmp_path, text, line, follow):
    path = tmp_path / f"line{line}.yaml"
    path.write_text(text, encoding="utf-8")
    flowsim.load_scenario(path)


def test_main_example_runs(tmp_path):
    path = tmp_path / "main.yaml"
    path.write_text(MAIN[0], encoding="utf-8")
    scenario = flowsim.load_scenario(path)
    results = flowsim.run(scenario, replications=2, workers=1)
    projects = results.projects
    assert set(projects.policy.unique()) == set(scenario.policies)
    assert set(projects.replication.unique()) == {0, 1}
    assert {p.id for p in scenario.projects} <= set(projects.project.unique())
    assert projects.project.str.startswith("requests-").any()  # the arrival stream produced projects


@pytest.mark.parametrize(("text", "line", "follow"), _ids("in the main example"))
def test_fragments_load_in_the_main_example(text, line, follow):
    data = yaml.safe_load(MAIN[0])
    for key, value in yaml.safe_load(text).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    flowsim.load_scenario(data, source=f"docs/scenario.md line {line}")


@pytest.mark.parametrize(("text", "line", "follow"), _ids("invalid"))
def test_invalid_examples_print_the_documented_messages(tmp_path, monkeypatch, text, line, follow):
    (marker,) = [m for m, _, at, _ in BLOCKS if at == line]
    name = marker.split(":", 1)[1].strip()
    assert follow is not None, f"line {line}: no ```text block with the expected output follows"
    (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", name])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == follow.splitlines()


# ----------------------------------------------------------------------------- every key is documented

# Each model and the section of the page that documents its keys.
SECTIONS = {
    model.Scenario: "Top level",
    model.Team: "Teams",
    model.CapacityChange: "Teams",
    model.Switching: "Focus and switching",
    model.Project: "Projects",
    model.Stage: "Stages",
    model.Value: "Value",
    model.Template: "Templates and arrivals",
    model.ArrivalStream: "Templates and arrivals",
    model.Policy: "Policies",
    **{cls: "Distributions" for cls in get_args(get_args(dists.Distribution)[0])},
}


def section(title: str) -> str:
    """The text under the heading ``title``, up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", TEXT, flags=re.M)
    assert match, f"docs/scenario.md has no heading {title!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", flags=re.M).search(TEXT, match.end())
    return TEXT[match.end() : end.start() if end else len(TEXT)]


def literal_values(annotation) -> list:
    """Values of every ``Literal`` inside a field's annotation (through unions and ``Annotated``)."""
    origin = get_origin(annotation)
    if origin is Literal:
        return list(get_args(annotation))
    if origin in (Union, types.UnionType, Annotated, list, dict, tuple):
        return [v for arg in get_args(annotation) for v in literal_values(arg)]
    return []


KEYS = [
    pytest.param(cls, name, field.alias or name, id=f"{cls.__name__}.{field.alias or name}")
    for cls in SECTIONS
    for name, field in cls.model_fields.items()
]


@pytest.mark.parametrize(("cls", "name", "key"), KEYS)
def test_every_key_is_documented_in_its_section(cls, name, key):
    where = SECTIONS[cls]
    assert f"`{key}`" in section(where), f"`{key}` ({cls.__name__}) is not documented under '{where}'"
    for value in literal_values(cls.model_fields[name].annotation):
        if key != "dist":  # a distribution's tag is its name, checked below
            assert f"`{value}`" in section(where), f"`{key}: {value}` is not documented under '{where}'"


def test_every_distribution_is_documented():
    text = section("Distributions")
    for name in dists.DIST_NAMES:
        assert f"| `{name}` |" in text, f"distribution {name!r} has no row in the table"


@pytest.mark.parametrize("kind", KINDS)
def test_every_builtin_rule_is_listed(kind):
    text = section("Policies")
    builtin = [name for name in known_rules(kind) if lookup(kind, name).factory.__module__.startswith("flowsim.")]
    assert builtin
    for name in builtin:
        assert f"`{name}`" in text, f"built-in {kind} rule {name!r} is not listed under 'Policies'"


def test_documented_defaults_match_the_models():
    """The defaults the tables state, for keys whose default is a plain value."""
    stated = {
        (model.Scenario, "name"): "unnamed scenario", (model.Scenario, "time_unit"): "week",
        (model.Scenario, "discount_rate"): 0, (model.Scenario, "estimation_error"): 0,
        (model.Scenario, "seed"): 0, (model.Scenario, "timeline_step"): 1,
        (model.Team, "cost_rate"): 0, (model.Team, "focus"): "single",
        (model.Stage, "crew"): 1, (model.Stage, "done"): False,
        (model.Project, "arrival"): 0, (model.Value, "rate"): 0, (model.Value, "lump"): 0,
        (model.Value, "profile"): "standard", (model.ArrivalStream, "start"): 0,
        (model.Policy, "preempt"): False, (model.Policy, "perfect_information"): False,
    }  # fmt: skip
    for (cls, key), value in stated.items():
        assert cls.model_fields[key].default == value, (cls.__name__, key)
        shown = str(value).lower() if isinstance(value, bool) else value
        row = re.search(rf"^\| `{key}` \|[^|]*\| `?([^|`]*)`? \|", section(SECTIONS[cls]), flags=re.M)
        assert row and row.group(1) == str(shown), f"{cls.__name__}.{key}: the table's default is not {shown}"
    policy = model.Policy()
    assert (policy.intake.rule, policy.sequencing.rule, policy.intervention) == ("admit_all", "fifo", None)
    minimal = model.Scenario.model_validate({"horizon": 1, "teams": {"t": {"capacity": 1}}})
    assert {name: p.model_dump() for name, p in minimal.policies.items()} == {"baseline": policy.model_dump()}
