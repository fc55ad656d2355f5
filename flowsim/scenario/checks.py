"""Checks that span a parsed scenario: references, cycles, bounds, policies.

``model.py`` checks one value at a time; what needs more of the scenario than
one value (a stage naming a missing team, a crew no team can supply, a
dependency cycle, a rule parameter naming a team) is checked here.  Every
check adds to one list, so a user sees every problem at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from ..errors import NOTHING, Described, Problem, closest, format_path, listing, readable, show, validation_problems
from ..policies.registry import KINDS, UnknownRule, lookup
from .distributions import Quantity
from .model import Project, Scenario, Stage, Template, Value, _ProjectBody

__all__ = ["check_scenario"]

# Which value profile each optional value parameter belongs to (DESIGN section 5).
_PROFILE_OF = {
    "closes": "window",
    "closes_in": "window",
    "half_life": "decay",
    "due": "deadline",
    "due_in": "deadline",
    "penalty": "deadline",
    "fine": "deadline",
}
# Project fields wsjf scores by (DESIGN section 7).
_WSJF_FIELDS = ("business_value", "time_criticality", "risk_reduction", "job_size")


# Sizes beyond which a replication could not finish or fit in memory: a
# horizon or a rate off by orders of magnitude is a mistake, and is refused
# before a run starts rather than hanging it.
MAX_TIMELINE_POINTS = 1_000_000  # steps of a replication's timeline (checked when a run starts)
MAX_EXPECTED_ARRIVALS = 10_000_000  # per arrival stream and replication


def timeline_step_rule(horizon: float, step: float) -> str | None:
    """Why ``step`` cannot be the timeline step over ``horizon`` (None when it can).

    A run checks the step it uses (the scenario's, or ``--timeline-step``), so a
    file whose own step is too fine still runs with a coarser override."""
    if not (isinstance(step, (int, float)) and not isinstance(step, bool) and math.isfinite(step) and step > 0):
        return "a finite number above 0"
    # Steps, not points: the grid has one point more (time 0).  The tolerance keeps
    # horizon / MAX_TIMELINE_POINTS itself acceptable despite rounding.
    if horizon / step > MAX_TIMELINE_POINTS * (1 + 1e-9):
        least = readable(horizon / MAX_TIMELINE_POINTS, rounding="up")  # the stated minimum must pass
        return (f"at least {least} (horizon / {MAX_TIMELINE_POINTS:,}: a "
                f"replication's timeline has at most {MAX_TIMELINE_POINTS:,} steps)")  # fmt: skip
    return None


def check_scenario(scenario: Scenario) -> list[Problem]:
    """Every cross-check problem of a parsed scenario (empty when it is usable)."""
    checker = _Checker(scenario)
    checker.teams()
    checker.projects()
    checker.templates()
    checker.arrivals()
    checker.policies()
    return checker.problems


def _did_you_mean(name: object, known: Iterable[str]) -> str:
    close = closest(name, known)
    return f"; did you mean {close!r}?" if close else ""


# Said when a rule name is no typo of a known one: it may be the user's own, not yet registered.
_OWN_RULES = "; a rule of your own must be registered first: flowsim --rules FILE, or flowsim.register in Python"


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Cycles of a directed graph, each as ``[a, b, ..., a]``, one per distinct node set.

    Iterative depth-first search (a long dependency chain must not hit
    Python's recursion limit); edges to unknown nodes are ignored, since they
    are reported on their own.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    found: dict[frozenset, list[str]] = {}
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        path, stack = [root], [iter(graph[root])]
        while stack:
            successor = next(stack[-1], None)
            if successor is None:
                state[path.pop()] = 2
                stack.pop()
            elif successor in graph and state.get(successor) == 1:
                cycle = path[path.index(successor) :]
                found.setdefault(frozenset(cycle), [*cycle, successor])
            elif successor in graph and successor not in state:
                state[successor] = 1
                path.append(successor)
                stack.append(iter(graph[successor]))
    return list(found.values())


def _rotate(cycle: list[str], first: str) -> list[str]:
    nodes = cycle[:-1]
    start = nodes.index(first)
    nodes = nodes[start:] + nodes[:start]
    return [*nodes, nodes[0]]


class _Checker:
    def __init__(self, scenario: Scenario):
        self.s = scenario
        self.problems: list[Problem] = []
        self.team_names = list(scenario.teams)

    def add(self, path: tuple, rule: str, value: object) -> None:
        self.problems.append(Problem(self.s.source, format_path(path), rule, value))

    # -- teams -------------------------------------------------------------

    def teams(self) -> None:
        horizon = self.s.horizon
        for name, team in self.s.teams.items():
            previous = None
            for j, change in enumerate(team.capacity_changes):
                path = ("teams", name, "capacity_changes", j, "at")
                if previous is not None and change.at <= previous:
                    rule = f"later than the previous change (at {show(previous)}): changes are listed in time order"
                    self.add(path, rule, change.at)
                elif change.at >= horizon:
                    self.add(path, f"before the horizon ({show(horizon)})", change.at)
                previous = change.at

    def _max_capacity(self, team: str) -> int:
        t = self.s.teams[team]
        return max([t.capacity, *(c.capacity for c in t.capacity_changes)])

    def _known_team(self, path: tuple, name: str) -> bool:
        if name in self.s.teams:
            return True
        rule = f"a team defined under teams (known: {listing(self.team_names)}{_did_you_mean(name, self.team_names)})"
        self.add(path, rule, name)
        return False

    # -- projects and templates -------------------------------------------

    def projects(self) -> None:
        first_with_id: dict[str, int] = {}
        for i, project in enumerate(self.s.projects):
            path = ("projects", i)
            if not project.id.strip():
                self.add((*path, "id"), "a non-empty text", project.id)
            elif project.id in first_with_id:
                self.add((*path, "id"), f"unique (projects[{first_with_id[project.id]}] has this id)", project.id)
            else:
                first_with_id[project.id] = i
            self._body(path, project, template=False)
        ids = list(first_with_id)
        for i, project in enumerate(self.s.projects):
            if any(stage.done is True or (stage.done is not False and stage.done > 0) for stage in project.stages):
                # Work under way counts as admitted at time 0 (DESIGN section 4), which
                # contradicts waiting for other projects or arriving later.  ``done: 0``
                # is no work done: not in flight, as the engine treats it.
                if project.depends_on:
                    rule = "empty for a project in flight (a stage has done), since it is admitted at time 0"
                    self.add(("projects", i, "depends_on"), rule, list(project.depends_on))
                if project.arrival != 0:
                    rule = "0 for a project in flight (a stage has done): it is admitted at time 0"
                    self.add(("projects", i, "arrival"), rule, project.arrival)
            for k, other in enumerate(project.depends_on):
                if other not in first_with_id:
                    rule = f"the id of a listed project (known: {listing(ids)}{_did_you_mean(other, ids)})"
                    self.add(("projects", i, "depends_on", k), rule, other)
        graph = {id_: list(self.s.projects[i].depends_on) for id_, i in first_with_id.items()}
        for cycle in _cycles(graph):
            first = min(cycle[:-1], key=first_with_id.__getitem__)
            cycle = _rotate(cycle, first)
            self.add(
                ("projects", first_with_id[first], "depends_on"),
                "free of cycles (a -> b: a depends on b)",
                Described("the cycle " + " -> ".join(cycle)),
            )

    def templates(self) -> None:
        for name, template in self.s.templates.items():
            path = ("templates", name)
            if template.promised is not None:
                rule = "left out in a template (only listed projects promise dates)"
                self.add((*path, "promised"), rule, template.promised)
            self._body(path, template, template=True)

    def _body(self, path: tuple, body: _ProjectBody, *, template: bool) -> None:
        self._stages(path, body.stages, template=template)
        self._value((*path, "value"), body.value, template=template)

    def _stages(self, path: tuple, stages: list[Stage], *, template: bool) -> None:
        where = "template" if template else "project"
        names = [stage.name if stage.name is not None else stage.team for stage in stages]
        first_named: dict[str, int] = {}
        for j, stage in enumerate(stages):
            here = (*path, "stages", j)
            name = names[j]
            if name in first_named:
                other = first_named[name]
                defaulted = stage.name is None or stages[other].name is None
                hint = "; a stage's name defaults to its team's" if defaulted else ""
                self.add((*here, "name"), f"unique in the {where} (stages[{other}] is also {name!r}{hint})", name)
            else:
                first_named[name] = j
            if self._known_team((*here, "team"), stage.team):
                most = self._max_capacity(stage.team)
                if stage.crew > most:
                    rule = f"at most {most}, the most capacity team {stage.team!r} ever has"
                    self.add((*here, "crew"), rule, stage.crew)
            self._quantity((*here, "effort"), stage.effort, strictly_positive=True)
            for k, other in enumerate(stage.after or []):
                if other not in names:
                    rule = f"a stage of this {where} (known: {listing(names)}{_did_you_mean(other, names)})"
                    self.add((*here, "after", k), rule, other)
            self._done(here, stage, template=template)
        if len(first_named) == len(names):  # with duplicate names, ``after`` is ambiguous
            self._stage_cycles(path, stages, names)

    def _done(self, here: tuple, stage: Stage, *, template: bool) -> None:
        if template:
            if stage.done is not False:
                self.add((*here, "done"), "left out in a template (only listed projects are in flight)", stage.done)
            return
        if isinstance(stage.done, bool):
            return
        top = _upper_bound(stage.effort)
        if math.isfinite(top) and stage.done >= top:
            rule = f"below the stage's effort ({show(top)}); write done: true for a finished stage"
            self.add((*here, "done"), rule, stage.done)

    def _stage_cycles(self, path: tuple, stages: list[Stage], names: list[str]) -> None:
        graph: dict[str, list[str]] = {}
        for j, stage in enumerate(stages):
            # A stage without ``after`` follows the stage listed before it.
            graph[names[j]] = list(stage.after) if stage.after is not None else names[j - 1 : j]
        index = {name: j for j, name in enumerate(names)}
        for cycle in _cycles(graph):
            # Implicit edges point backwards, so some stage in a cycle names ``after``.
            explicit = [n for n in cycle[:-1] if stages[index[n]].after is not None]
            first = min(explicit or cycle[:-1], key=index.__getitem__)
            self.add(
                (*path, "stages", index[first], "after"),
                "free of cycles (a -> b: a runs after b)",
                Described("the cycle " + " -> ".join(_rotate(cycle, first))),
            )

    def _quantity(self, path: tuple, quantity: Quantity, *, strictly_positive: bool) -> None:
        """An effort (> 0) or a value rate or lump (>= 0): a number or a distribution."""
        if isinstance(quantity, (int, float)):
            if strictly_positive and not quantity > 0:
                self.add(path, "a number above 0", quantity)
            elif quantity < 0:
                self.add(path, "a number of at least 0", quantity)
            return
        what = "an effort" if strictly_positive else "a value"
        if quantity.lower_bound() < 0:
            rule = f"a distribution that cannot go below 0 ({what} is never negative; lowest here: "
            self.add(path, rule + f"{show(quantity.lower_bound())})", quantity)
        elif strictly_positive and not quantity.mean() > 0:
            self.add(path, "a distribution with a mean above 0", quantity)

    def _value(self, path: tuple, value: Value, *, template: bool) -> None:
        self._quantity((*path, "rate"), value.rate, strictly_positive=False)
        self._quantity((*path, "lump"), value.lump, strictly_positive=False)
        profile = value.profile
        given = {key for key in _PROFILE_OF if getattr(value, key) is not None}
        for key in sorted(given, key=list(_PROFILE_OF).index):
            if _PROFILE_OF[key] != profile:
                rule = f"used only with profile: {_PROFILE_OF[key]} (the profile here is {profile})"
                self.add((*path, key), rule, getattr(value, key))
        # A listed project gives absolute dates; a template, dates relative to arrival.
        for absolute in ("closes", "due"):
            relative = absolute + "_in"
            if template and absolute in given and _PROFILE_OF[absolute] == profile:
                rule = f"written as {relative} in a template (relative to the project's arrival)"
                self.add((*path, absolute), rule, getattr(value, absolute))
            if not template and relative in given and _PROFILE_OF[relative] == profile:
                rule = f"written as {absolute} in a listed project ({relative} is for templates)"
                self.add((*path, relative), rule, getattr(value, relative))
        date = {"window": "closes", "deadline": "due"}.get(profile)
        if date is not None and not given & {date, date + "_in"}:
            key = date + "_in" if template else date
            self.add((*path, key), f"given for profile {profile}", NOTHING)
        if profile == "decay" and value.half_life is None:
            self.add((*path, "half_life"), "given for profile decay", NOTHING)
        if profile == "deadline" and value.penalty is None and value.fine is None:
            self.add((*path, "penalty"), "given (or a fine, or both) for profile deadline", NOTHING)

    # -- arrivals ----------------------------------------------------------

    def arrivals(self) -> None:
        horizon = self.s.horizon
        known = list(self.s.templates)
        first_named: dict[str, int] = {}
        for i, stream in enumerate(self.s.arrivals):
            path = ("arrivals", i)
            if stream.template not in self.s.templates:
                rule = f"a template defined under templates (known: {listing(known)}"
                self.add((*path, "template"), rule + f"{_did_you_mean(stream.template, known)})", stream.template)
            name = stream.stream_name
            if name in first_named:
                hint = "; a stream's name defaults to its template's" if stream.name is None else ""
                rule = f"unique among arrival streams (arrivals[{first_named[name]}] is also {name!r}{hint})"
                self.add((*path, "name"), rule, name)
            else:
                first_named[name] = i
            if stream.end is not None and stream.end <= stream.start:
                self.add((*path, "end"), f"above start ({show(stream.start)})", stream.end)
            elif stream.end is not None and stream.end > horizon:
                self.add((*path, "end"), f"at most the horizon ({show(horizon)})", stream.end)
            elif stream.start >= horizon:
                self.add((*path, "start"), f"below the horizon ({show(horizon)})", stream.start)
            else:
                window = min(stream.end if stream.end is not None else horizon, horizon) - stream.start
                if stream.rate * window > MAX_EXPECTED_ARRIVALS:
                    most = readable(MAX_EXPECTED_ARRIVALS / window, rounding="down")
                    rule = (f"at most {most} per time unit (at most "
                            f"{MAX_EXPECTED_ARRIVALS:,} expected arrivals over the stream's window)")  # fmt: skip
                    self.add((*path, "rate"), rule, stream.rate)
        # Arriving projects are named ``<stream>-<n>``: a listed id of that form
        # would make two projects indistinguishable in the results.
        for i, project in enumerate(self.s.projects):
            match = re.fullmatch(r"(.*)-\d+", project.id)
            if match and match.group(1) in first_named:
                rule = f"different from the names of arriving projects (stream {match.group(1)!r} names its own)"
                self.add(("projects", i, "id"), rule, project.id)

    # -- policies ----------------------------------------------------------

    def policies(self) -> None:
        for name, policy in self.s.policies.items():
            if not name.strip():
                self.add(("policies",), "keyed by non-empty names", name)
            for kind in KINDS:
                ref = getattr(policy, kind)
                if ref is not None:
                    self._rule(("policies", name, kind), kind, ref.rule, ref.params)
        users = [n for n, p in self.s.policies.items() if p.sequencing.rule == "wsjf"]
        if users:
            why = f"policy {users[0]!r} sequences by wsjf"
            bodies: list[tuple[tuple, Project | Template]] = [
                (("projects", i), p) for i, p in enumerate(self.s.projects)
            ]
            bodies += [(("templates", n), t) for n, t in self.s.templates.items()]
            for path, body in bodies:
                missing = [key for key in _WSJF_FIELDS if getattr(body, key) is None]
                if len(missing) == 1:
                    self.add((*path, missing[0]), f"given ({why})", NOTHING)
                elif missing:
                    # Forgetting the wsjf fields is one mistake: one problem per project.
                    fields = ", ".join(_WSJF_FIELDS[:-1]) + " and " + _WSJF_FIELDS[-1]
                    found = "none of them" if len(missing) == len(_WSJF_FIELDS) else "no " + ", ".join(missing)
                    self.add(path, f"given {fields} ({why})", Described(found))

    def _rule(self, path: tuple, kind: str, rule_name: str, params: dict[str, Any]) -> None:
        try:
            info = lookup(kind, rule_name)
        except UnknownRule as error:
            hint = _did_you_mean(rule_name, error.known) or _OWN_RULES
            rule = f"a known {kind} rule (one of {listing(error.known)}{hint})"
            self.add(path, rule, rule_name)
            return
        try:
            parsed = info.params.model_validate(params)
        except ValidationError as error:
            self.problems += validation_problems(
                error, params, source=self.s.source, model=info.params, prefix=path, noun=f"parameter of {rule_name}"
            )
            return
        # Parameters that name teams (drum's bottleneck, team_wip's limits).
        team = getattr(parsed, "team", None)
        if isinstance(team, str):
            self._known_team((*path, "team"), team)
        if rule_name == "team_wip":
            for key in getattr(parsed, "limits", {}) or {}:
                if key not in self.s.teams:
                    rule = f"a team defined under teams (known: {listing(self.team_names)})"
                    self.add((*path, "limits", key), rule, key)


def _upper_bound(quantity: Quantity) -> float:
    """Largest value a quantity can take (inf for unbounded distributions)."""
    if isinstance(quantity, (int, float)):
        return float(quantity)
    return quantity.support()[1]
