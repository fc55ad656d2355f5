"""Fuzzing scenario input: a mutated scenario is used or refused cleanly (DESIGN sections 10 and 11).

Each example starts from a valid scenario (every bundled scenario under
``scenarios/`` and the fixtures under ``tests/fixtures/``, read with flowsim's
own YAML reader) and applies 1 to 3 random mutations (one, half the time):

- replace a leaf or a whole subtree by a value of another kind (text, a zero,
  negative, huge, NaN or infinite number, a bool, null, a date, a list, a mapping);
- delete a key (or a list entry);
- add an unknown key at any level (text, or a key YAML reads as a number, a
  bool, null or a date);
- break a reference: a stage's team, an ``after`` entry, a ``depends_on`` id,
  an arrival stream's template or a drum's team renamed to a missing name, or
  a team, template, project id or stage name renamed so references dangle;
- duplicate a list entry.

The mutated scenario is written as a YAML file, then:

1. ``load_scenario`` either returns a scenario or raises ``ScenarioError``,
   never any other exception, and every line of the error has the documented
   form ``FILE: path.to.key must be RULE, got VALUE``, with a path that names
   keys of the file and a value shown as YAML; a lone unknown key is named;
2. ``flowsim validate FILE`` (in-process, as tests/test_validation.py does)
   exits 0 or 2, never with a traceback, and agrees line for line with the API;
3. a scenario that validates runs (one replication of its baseline policy) or
   stops with a one-line ``FlowsimError`` (what ``flowsim run`` turns into exit 2).

Besides, some mutations must be refused whatever else happened (DESIGN
section 10: "never a silently ignored key"): ``must_refuse`` lists what the
mutated file shows of them (an unknown key, a NaN or infinity, a dangling
reference, a missing required key, a duplicated project, stage, stream or
capacity change), and a file showing any is checked to fail.

The default test draws a fixed, derandomised set of 250 examples in about 15 s;
the slow variant draws 1,500 and runs valid mutants through ``flowsim run``.
Two exhaustive sweeps of the DESIGN example (every unknown key at every level,
every single deletion) complete it.  The bugs it found (messages not in the
documented form) are fixed and pinned, message for message, at the end.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import math
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import flowsim
from flowsim.cli import app
from flowsim.errors import FlowsimError, ScenarioError
from flowsim.scenario import Scenario, load_scenario, read_yaml, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent

# Files under scenarios/ that hold one project for ``whatif admit``, not a scenario.
PROJECT_FILES = {"new_initiative.yaml"}
SOURCES = sorted(p for p in (ROOT / "scenarios").rglob("*.yaml") if p.name not in PROJECT_FILES)
SOURCES += sorted((ROOT / "tests" / "fixtures").glob("*.yaml"))  # the DESIGN example and a small portfolio
# Smallest first: hypothesis shrinks a failing example towards the first base.
BASES = {str(p.relative_to(ROOT)): read_yaml(p)[0] for p in sorted(SOURCES, key=lambda p: len(p.read_text()))}

runner = CliRunner()

# -- what the mutations insert -------------------------------------------------

# Unknown keys: no scenario uses them, so finding one in a mutated file means the
# mutation put it there.  Text with a space or a dot, and keys YAML reads as a
# number, a bool (``true``, also ``yes`` and ``on``), null or a date test how paths are written.
UNKNOWN_KEYS = ("zz_unknown", "colour", "horizonn", "Capacity", "zz key", "zz.dotted")
UNKNOWN_KEYS += (4242, True, None, dt.date(2024, 1, 1))

SCALARS = st.one_of(
    st.sampled_from(["", "text", "  ", "3", "nan", "-1", "yes", "null", "\u00e9t\u00e9"]),
    st.sampled_from([0, -1, -0.5, 0.0, 0.5, 7]),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.sampled_from([10**30, 2**63, 1e308, -(10**30)]),
    st.booleans(),
    st.none(),
    st.sampled_from([dt.date(2024, 6, 30), dt.datetime(2024, 6, 30, 12, 0)]),  # YAML reads 2024-06-30 as a date
)
CONTAINERS = st.sampled_from(
    [[], [1], ["a", "b"], [[1, 2]], [{}], {}, {"x": 1}, {"dist": "uniform"}, {"rule": "nope"},
     {"dist": "fixed", "value": -1}, {"dist": "empirical", "samples": []}, {"rule": "wip_limit", "limit": 0}]
)  # fmt: skip
OTHER_VALUES = st.one_of(SCALARS, CONTAINERS, st.text(max_size=6), st.integers(-3, 3))

# A number this big may make a valid scenario simulate for ever (a horizon of
# 1e308 weeks, a team of 10**30 people, arrivals at 1e308 per week): a mutant
# that received one is validated but not run.
HUGE = 1e6


def _has_huge(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value) and abs(value) >= HUGE
    if isinstance(value, dict):
        return any(_has_huge(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_huge(v) for v in value)
    return False


# -- walking a scenario tree -----------------------------------------------------


def nodes(tree: object, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    """Every ``(path, value)`` of a tree of mappings and lists, the root first."""
    yield path, tree
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from nodes(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from nodes(value, (*path, i))


def at(tree: object, path: tuple) -> object:
    for part in path:
        tree = tree[part]
    return tree


def _rename_key(mapping: dict, old: object, new: object) -> None:
    """Rename a key in place, keeping the order (the first policy is the baseline)."""
    items = [(new if k == old else k, v) for k, v in mapping.items()]
    mapping.clear()
    mapping.update(items)


def _bodies(tree: dict) -> Iterator[tuple[tuple, dict]]:
    """``(path, body)`` of every listed project and template written as a mapping."""
    projects = tree.get("projects")
    if isinstance(projects, list):
        for i, project in enumerate(projects):
            if isinstance(project, dict):
                yield ("projects", i), project
    templates = tree.get("templates")
    if isinstance(templates, dict):
        for name, template in templates.items():
            if isinstance(template, dict):
                yield ("templates", name), template


def _stages(body: dict) -> list[tuple[int, dict]]:
    stages = body.get("stages")
    return [(j, s) for j, s in enumerate(stages) if isinstance(s, dict)] if isinstance(stages, list) else []


def _policy_rules(tree: dict) -> Iterator[tuple[tuple, dict]]:
    """``(path, mapping)`` of every rule written as ``{rule: NAME, ...}``."""
    policies = tree.get("policies")
    if isinstance(policies, dict):
        for name, policy in policies.items():
            if isinstance(policy, dict):
                for kind in ("intake", "sequencing", "intervention"):
                    if isinstance(policy.get(kind), dict):
                        yield ("policies", name, kind), policy[kind]


def _is_name(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def references(tree: dict) -> list[tuple[str, tuple]]:
    """Places holding a name defined elsewhere, and places defining one: ``(kind, path)``.

    ``ref``: a value naming a team, stage, project or template; ``key``: a team or
    template name (a mapping key); ``def``: a project id or a stage name.
    """
    sites: list[tuple[str, tuple]] = []
    for key in ("teams", "templates"):
        if isinstance(tree.get(key), dict):
            sites += [("key", (key, name)) for name in tree[key]]
    for path, body in _bodies(tree):
        if _is_name(body.get("id")):
            sites.append(("def", (*path, "id")))
        for k, other in enumerate(body.get("depends_on") or []):
            if _is_name(other):
                sites.append(("ref", (*path, "depends_on", k)))
        for j, stage in _stages(body):
            here = (*path, "stages", j)
            if _is_name(stage.get("team")):
                sites.append(("ref", (*here, "team")))
            if _is_name(stage.get("name")):
                sites.append(("def", (*here, "name")))
            if isinstance(stage.get("after"), list):
                sites += [("ref", (*here, "after", k)) for k, v in enumerate(stage["after"]) if _is_name(v)]
    if isinstance(tree.get("arrivals"), list):
        for i, stream in enumerate(tree["arrivals"]):
            if isinstance(stream, dict) and _is_name(stream.get("template")):
                sites.append(("ref", ("arrivals", i, "template")))
    for path, rule in _policy_rules(tree):
        if _is_name(rule.get("team")):
            sites.append(("ref", (*path, "team")))
        if isinstance(rule.get("limits"), dict):
            sites += [("key", (*path, "limits", team)) for team in rule["limits"]]
    return sites


# -- mutations -------------------------------------------------------------------


class Mutant:
    """A base scenario being mutated, with a log of what was done."""

    def __init__(self, base: str):
        self.base = base
        self.tree = copy.deepcopy(BASES[base])
        self.log: list[str] = []
        self.huge = False
        self.added: tuple | None = None  # path of the last unknown key added

    def put(self, path: tuple, value: object) -> None:
        self.huge = self.huge or _has_huge(value)
        at(self.tree, path[:-1])[path[-1]] = copy.deepcopy(value)  # never share the pool's objects

    def replace(self, draw) -> None:
        path = draw(st.sampled_from([p for p, _ in nodes(self.tree) if p]))
        value = draw(OTHER_VALUES)
        self.put(path, value)
        self.log.append(f"replace {path} by {value!r}")

    def delete(self, draw) -> None:
        path = draw(st.sampled_from([p for p, _ in nodes(self.tree) if p]))
        del at(self.tree, path[:-1])[path[-1]]
        self.log.append(f"delete {path}")

    def add_key(self, draw) -> None:
        path = draw(st.sampled_from([p for p, v in nodes(self.tree) if isinstance(v, dict)]))
        key, value = draw(st.sampled_from(UNKNOWN_KEYS)), draw(SCALARS)
        mapping = at(self.tree, path)
        if key not in mapping:
            self.put((*path, key), value)
            self.added = (*path, key)
            self.log.append(f"add {key!r}: {value!r} under {path}")

    def break_reference(self, draw) -> None:
        sites = references(self.tree)
        if not sites:
            self.replace(draw)
            return
        kind, path = draw(st.sampled_from(sites))
        old = path[-1] if kind == "key" else at(self.tree, path)
        new = draw(st.sampled_from([f"missing_{old}", f"{old}x", f"{old}".upper(), "zz"]))
        if kind == "key":
            if new in at(self.tree, path[:-1]):
                return
            _rename_key(at(self.tree, path[:-1]), old, new)
        else:
            self.put(path, new)
        self.log.append(f"rename {path} ({kind}) from {old!r} to {new!r}")

    def duplicate(self, draw) -> None:
        lists = [p for p, v in nodes(self.tree) if isinstance(v, list) and v]
        if not lists:
            self.replace(draw)
            return
        path = draw(st.sampled_from(lists))
        items = at(self.tree, path)
        i = draw(st.integers(0, len(items) - 1))
        j = draw(st.integers(0, len(items)))
        items.insert(j, copy.deepcopy(items[i]))
        self.log.append(f"duplicate {path}[{i}] at [{j}]")


MUTATIONS = ("replace", "delete", "add_key", "break_reference", "duplicate")


# -- what must be refused ---------------------------------------------------------


def _non_finite(tree: object) -> list[str]:
    return [
        f"{path} is {value!r}: no scenario number may be NaN or infinite"
        for path, value in nodes(tree)
        if isinstance(value, float) and not math.isfinite(value)
    ]


def _unknown_keys(tree: dict) -> list[str]:
    found = []
    for path, value in nodes(tree):
        if not isinstance(value, dict):
            continue
        for key, item in value.items():
            if key in UNKNOWN_KEYS:
                if path == ("policies",) and isinstance(item, dict):
                    continue  # a policy may have any name, and {} is a valid policy
                found.append(f"{(*path, key)} is an unknown key")
    return found


def _required(tree: dict) -> list[str]:
    missing = [f"{key} is missing" for key in ("horizon", "teams") if key not in tree]
    needs: list[tuple[tuple, object, tuple]] = []
    if isinstance(tree.get("teams"), dict):
        for name, team in tree["teams"].items():
            needs.append((("teams", name), team, ("capacity",)))
            if isinstance(team, dict) and isinstance(team.get("capacity_changes"), list):
                for j, change in enumerate(team["capacity_changes"]):
                    needs.append((("teams", name, "capacity_changes", j), change, ("at", "capacity")))
    for path, body in _bodies(tree):
        needs.append((path, body, ("id", "stages") if path[0] == "projects" else ("stages",)))
        for j, stage in _stages(body):
            needs.append(((*path, "stages", j), stage, ("team", "effort")))
    if isinstance(tree.get("arrivals"), list):
        for i, stream in enumerate(tree["arrivals"]):
            needs.append((("arrivals", i), stream, ("template", "rate")))
    for path, rule in _policy_rules(tree):
        needs.append((path, rule, ("rule",)))
    for path, mapping, keys in needs:
        if isinstance(mapping, dict):
            missing += [f"{(*path, key)} is missing" for key in keys if key not in mapping]
    return missing


def _dangling(tree: dict) -> list[str]:
    """Names referring to nothing defined.  Only well-formed names are looked at:
    anything malformed is refused anyway, so over-reporting there costs nothing."""
    found = []
    teams = tree.get("teams")
    team_names = {str(k) for k in teams} if isinstance(teams, dict) else set()
    templates = tree.get("templates", {})
    template_names = {str(k) for k in templates} if isinstance(templates, dict) else set()
    projects = tree.get("projects")
    ids = set()
    if isinstance(projects, list):
        ids = {str(p["id"]) for p in projects if isinstance(p, dict) and _is_name(p.get("id"))}
    for path, body in _bodies(tree):
        if path[0] == "projects" and isinstance(body.get("depends_on"), list):
            for k, other in enumerate(body["depends_on"]):
                if _is_name(other) and str(other) not in ids:
                    found.append(f"{(*path, 'depends_on', k)} names no project: {other!r}")
        stages = _stages(body)
        names = [stage.get("name") if stage.get("name") is not None else stage.get("team") for _, stage in stages]
        for j, stage in stages:
            if isinstance(stage.get("team"), str) and stage["team"] not in team_names:
                found.append(f"{(*path, 'stages', j, 'team')} names no team: {stage['team']!r}")
            for k, other in enumerate(stage.get("after") if isinstance(stage.get("after"), list) else []):
                if isinstance(other, str) and other not in names:
                    found.append(f"{(*path, 'stages', j, 'after', k)} names no stage: {other!r}")
    if isinstance(tree.get("arrivals"), list):
        for i, stream in enumerate(tree["arrivals"]):
            template = stream.get("template") if isinstance(stream, dict) else None
            if isinstance(template, str) and template not in template_names:
                found.append(f"{('arrivals', i, 'template')} names no template: {template!r}")
    for path, rule in _policy_rules(tree):
        if isinstance(rule.get("team"), str) and rule["team"] not in team_names:
            found.append(f"{(*path, 'team')} names no team: {rule['team']!r}")
        if isinstance(rule.get("limits"), dict):
            found += [f"{(*path, 'limits', t)} names no team" for t in rule["limits"] if str(t) not in team_names]
    return found


def _duplicates(tree: dict) -> list[str]:
    """Two equal entries where an entry is identified by its content (an id, a name,
    a stream name, a time): a duplicated project, stage, stream or capacity change."""
    lists: list[tuple[tuple, object]] = [(("projects",), tree.get("projects")), (("arrivals",), tree.get("arrivals"))]
    lists += [((*path, "stages"), body.get("stages")) for path, body in _bodies(tree)]
    if isinstance(tree.get("teams"), dict):
        lists += [
            (("teams", name, "capacity_changes"), team.get("capacity_changes"))
            for name, team in tree["teams"].items()
            if isinstance(team, dict)
        ]
    found = []
    for path, items in lists:
        if isinstance(items, list):
            entries = [item for item in items if isinstance(item, dict)]
            if any(a == b for i, a in enumerate(entries) for b in entries[i + 1 :]):
                found.append(f"{path} holds the same entry twice")
    return found


REFUSALS = {
    "a NaN or infinity": _non_finite,
    "an unknown key": _unknown_keys,
    "a missing required key": _required,
    "a dangling reference": _dangling,
    "a duplicated entry": _duplicates,
}


def must_refuse(tree: object) -> dict[str, list[str]]:
    """Why the mutated file must be refused, by kind, from what it holds (empty: it may be valid)."""
    if not isinstance(tree, dict):
        return {"not a mapping": ["the file is not a mapping"]}
    found = {kind: check(tree) for kind, check in REFUSALS.items()}
    return {kind: reasons for kind, reasons in found.items() if reasons}


# -- the documented message form ----------------------------------------------------

# A path part: a plain key, a list position, a quoted key, or anything else in brackets.
_PATH_PART = re.compile(
    r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]|\[([^\]'\"]+)\]"
)
# A value shown the Python way rather than as written in YAML.
_PYTHON_REPR = re.compile(r"\b(?:datetime|date|time)\(|object at 0x|<class ")

def path_parts(path: str) -> list[str | int] | None:
    """``projects[0].stages[1]`` -> ``["projects", 0, "stages", 1]``; None if not a path."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _PATH_PART.match(path, pos)
        if match is None or (pos == 0 and path.startswith(".")):
            return None
        name, index, quoted, other = match.groups()
        if name is not None or other is not None:
            parts.append(name if name is not None else other)
        else:
            parts.append(int(index) if index is not None else ast.literal_eval(quoted))
        pos = match.end()
    return parts


def _same(part: str | int, key: object) -> bool:
    """A path part as printed names this key (or list position) of the file."""
    if isinstance(key, bool) or key is None or isinstance(key, dt.date):
        # Keys YAML reads as bools, null or dates: written back as YAML writes them.
        return part == yaml.safe_dump(key).removesuffix("\n...\n").strip()
    return part == key or str(part) == str(key)


def resolved_depth(tree: object, parts: list[str | int]) -> int:
    """How many leading parts of a message's path lead through the file's data."""
    for depth, part in enumerate(parts):
        if isinstance(tree, dict):
            keys = [k for k in tree if _same(part, k)]
            if not keys:
                return depth
            tree = tree[keys[0]]
        elif isinstance(tree, list) and isinstance(part, int) and part < len(tree):
            tree = tree[part]
        else:
            return depth
    return len(parts)


def _split(line: str, source: str) -> tuple[str, str] | None:
    """``(path, rest after "must be")`` of a line in the documented form, else None."""
    if not line.startswith(f"{source}: "):
        return None
    where, sep, rest = line[len(source) + 2 :].partition(" must be ")
    if not sep or ", got " not in rest or not rest.split(", got ")[-1].strip():
        return None
    return where, rest


def form_problems(lines: list[str], source: str, tree: object) -> list[str]:
    """What is wrong with the form of error lines (empty: every line is as documented)."""
    wrong = []
    if not lines:
        wrong.append("the error has no message")
    if len(set(lines)) != len(lines):
        wrong.append("a problem is reported twice")
    top = set(Scenario.model_fields)
    for line in lines:
        split = _split(line, source)
        if split is None:
            wrong.append(f"not 'FILE: PATH must be RULE, got VALUE': {line!r}")
            continue
        where, rest = split
        parts = path_parts(where)
        if not parts:
            wrong.append(f"names no key path ({where!r}): {line!r}")
        elif str(parts[0]) not in top and resolved_depth(tree, parts) == 0:
            wrong.append(f"path {where!r} starts with a key neither in the file nor in the schema: {line!r}")
        elif resolved_depth(tree, parts) < len(parts) - 1:
            # The last part may be missing (a required key left out); the rest is in the file.
            wrong.append(f"path {where!r} leads nowhere in the file: {line!r}")
        if _PYTHON_REPR.search(rest):
            wrong.append(f"a value shown the Python way, not as written in YAML: {line!r}")
    return wrong


def names_key(lines: list[str], source: str, key_path: tuple) -> bool:
    """Some line's path leads to this key of the file (an unknown key must be named)."""
    for line in lines:
        split = _split(line, source)
        parts = path_parts(split[0]) if split else None
        if parts and len(parts) >= len(key_path) and all(map(_same, parts, key_path)):
            return True
    return False


# -- running a valid mutant -----------------------------------------------------------

RUN_SECONDS = 20


class RunTooLong(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` swallows it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum, frame):
        raise RunTooLong(f"the run took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the property ------------------------------------------------------------------------


def check_mutant(data, folder: Path, *, cli_run: bool = False) -> None:
    mutant = Mutant(data.draw(st.sampled_from(list(BASES)), label="base"))
    # One mutation half the time: a lone mistake must be named (see names_key).
    for _ in range(data.draw(st.sampled_from([1, 1, 2, 3]), label="mutations")):
        getattr(mutant, data.draw(st.sampled_from(MUTATIONS), label="mutation"))(data.draw)
    path = folder / "scenario.yaml"
    text = yaml.safe_dump(mutant.tree, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    note(f"base: {mutant.base}\nmutations: {mutant.log}\n--- {path}\n{text}")
    tree = read_yaml(path)[0]  # the checks below look at what the file holds
    source = str(path)

    # 1. The API: a scenario or a ScenarioError in the documented form, nothing else.
    scenario = error = None
    try:
        scenario = load_scenario(path)
    except ScenarioError as caught:
        error = caught
    lines = str(error).splitlines() if error is not None else []
    note(f"load_scenario: {'valid' if error is None else chr(10).join(lines)}")
    event("refused" if error is not None else "valid")
    reasons = must_refuse(tree)
    for kind in reasons:
        event(f"must be refused: {kind}")
    if error is not None:
        assert [str(p) for p in error.problems] == lines, "a problem's message spans several lines"
        wrong = form_problems(lines, source, tree)
        assert not wrong, "messages not in the documented form:\n" + "\n".join(wrong)
        if mutant.added is not None and len(mutant.log) == 1:
            # The only mistake is an unknown key: a message names it.  (With other
            # mistakes it may go unreported until they are fixed: cross-checks, such
            # as a rule's parameters, run only once the file parses.)
            assert names_key(lines, source, mutant.added), f"no message names the unknown key {mutant.added}"
    else:
        assert not reasons, "accepted, but must be refused:\n" + "\n".join(r for rs in reasons.values() for r in rs)

    # 2. The command line agrees: exit 0 or 2, every problem on stderr, no traceback.
    result = runner.invoke(app, ["validate", source])
    note(f"flowsim validate: exit {result.exit_code}\n{result.output}")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2)
    assert "Traceback" not in result.output
    if error is None:
        assert result.exit_code == 0 and result.stderr == ""
        assert result.stdout.splitlines()[0].endswith(f"({source}): valid")
    else:
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.splitlines() == lines

    # 3. A valid mutant runs, or stops with one line (exit 2 from ``flowsim run``).
    if scenario is None or mutant.huge:
        if scenario is not None:
            event("valid, not run: a huge number")
        return  # nothing to run, or a run that might take for ever (see HUGE)
    try:
        with time_limit(RUN_SECONDS):
            if cli_run:
                out = folder / "run"
                argv = ["run", source, "-n", "1", "--policy", scenario.baseline, "-w", "1", "-q", "--out", str(out)]
                result = runner.invoke(app, argv)
                note(f"flowsim run: exit {result.exit_code}\n{result.output}")
                assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
                assert result.exit_code in (0, 2) and "Traceback" not in result.output
                if result.exit_code == 2:
                    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            else:
                flowsim.run(scenario, replications=1, policies=[scenario.baseline], workers=1)
    except RunTooLong as slow:
        pytest.fail(f"{slow}: a valid mutant must not hang")
    except FlowsimError as stopped:
        event("run stopped with a FlowsimError")
        message = str(stopped)
        assert message.strip() and "\n" not in message, f"not a one-line message: {message!r}"
    else:
        event("run completed")


COMMON = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": False,
    # No explain phase: it traces every line and takes minutes on a scenario this size.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_bases_are_valid_scenarios():
    # The fuzz starts from valid scenarios; a base that stops being one would
    # make every example a refusal and prove nothing.
    assert len(BASES) >= 5
    for name in BASES:
        assert isinstance(load_scenario(ROOT / name), Scenario), name
        assert not must_refuse(BASES[name]), name


# Every single unknown key and every single deletion, on the DESIGN example: the
# mistakes a fuzz draws only now and then, tried exhaustively where it is cheap.

DESIGN_EXAMPLE = "tests/fixtures/design_example.yaml"


def test_every_unknown_key_at_every_level_is_refused_and_named():
    base, source = BASES[DESIGN_EXAMPLE], "design_example.yaml"
    wrong, tried = [], 0
    for path, mapping in nodes(base):
        if not isinstance(mapping, dict):
            continue
        for key in UNKNOWN_KEYS:
            tree = copy.deepcopy(base)
            at(tree, path)[key] = 1
            tried += 1
            try:
                scenario_from_dict(tree, source=source)
            except ScenarioError as error:
                lines = str(error).splitlines()
                wrong += [f"{(*path, key)}: {w}" for w in form_problems(lines, source, tree)]
                if not names_key(lines, source, (*path, key)):
                    wrong.append(f"{(*path, key)}: no message names it: {lines}")
            else:
                wrong.append(f"{(*path, key)}: accepted")
    assert tried > 300
    assert not wrong, "\n".join(wrong)


def test_deleting_any_key_or_entry_is_used_or_refused_cleanly():
    base, source = BASES[DESIGN_EXAMPLE], "design_example.yaml"
    wrong = []
    for path, _ in nodes(base):
        if not path:
            continue
        tree = copy.deepcopy(base)
        del at(tree, path[:-1])[path[-1]]
        try:
            scenario_from_dict(tree, source=source)
        except ScenarioError as error:
            wrong += [f"{path}: {w}" for w in form_problems(str(error).splitlines(), source, tree)]
        else:
            wrong += [f"{path}: accepted, but {r}" for rs in must_refuse(tree).values() for r in rs]
    assert not wrong, "\n".join(wrong)


@settings(max_examples=250, **COMMON)
@given(data=st.data())
def test_mutated_scenario_is_used_or_refused_cleanly(data, folder):
    check_mutant(data, folder)


@pytest.mark.slow
@settings(max_examples=1500, **COMMON)
@given(data=st.data())
def test_mutated_scenario_is_used_or_refused_cleanly_many(data, folder):
    check_mutant(data, folder, cli_run=True)


# -- bugs the fuzz found, fixed, pinned with minimal files ------------------------------
#
# Each was refused with exit code 2 and no traceback, but its message did not have
# the documented form: keys YAML reads as true or null were shown as '1' or 'None'
# (or not named), a rule's flat parameter was placed under ``params``, a date was
# shown as Python's ``datetime.date(...)``.

FOUND_CASES = {
    # ``on``, ``yes`` and ``true`` are all YAML 1.1 bools: a team named ``on``.
    "bool key": (
        "horizon: 10\nteams: {a: {capacity: 1}, on: {capacity: 1}}\n",
        ("teams", True),
        "teams[true] must be a name written as text (quote it: YAML reads unquoted yes, no, on, off, true and "
        "false as true or false), got true",
    ),
    "number as a rule parameter's key": (
        "horizon: 10\nteams: {a: {capacity: 1}}\npolicies:\n  w: {intake: {rule: wip_limit, limit: 6, 4242: 1}}\n",
        ("policies", "w", "intake", 4242),
        "policies.w.intake['4242'] must be a name written as text (quote it: '4242'), got 4242",
    ),
    "date as a value": (
        "horizon: 100\nteams: {a: {capacity: 1}}\nprojects:\n  - id: p\n"
        "    value: {rate: 5, profile: deadline, due: 2024-06-30, penalty: 0.5}\n    stages: [{team: a, effort: 2}]\n",
        ("projects", 0, "value", "due"),
        "projects[0].value.due must be a number, got 2024-06-30",
    ),
    "null key": (
        "horizon: 10\nteams: {a: {capacity: 1}, null: {capacity: 1}}\n",
        ("teams", None),
        "teams[null] must be a name written as text (quote it: YAML reads an unquoted null or ~ as nothing), "
        "got null",
    ),
    "null key among a team's keys": (
        "horizon: 10\nteams: {a: {capacity: 1, null: 1}}\n",
        ("teams", "a", None),
        "teams.a[null] must be a key written as text (quote it: YAML reads an unquoted null or ~ as nothing), "
        "got null",
    ),
}


@pytest.mark.parametrize("case", FOUND_CASES)
def test_found_cases_are_refused_in_the_documented_form(tmp_path, case):
    text, key_path, expected = FOUND_CASES[case]
    path = tmp_path / "found.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["validate", str(path)])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [f"{path}: {expected}"]
    assert not form_problems(lines, str(path), read_yaml(path)[0])
    assert names_key(lines, str(path), key_path)
