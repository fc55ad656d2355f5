"""What-if analyses: DESIGN section 1's four questions, answered with paired runs.

* :func:`admit` -- if we accept this new initiative, what will it delay, and what does that cost?
* :func:`stop` -- which active projects, if stopped today, would we miss least?
* :func:`capacity` -- where is the portfolio constrained, and what is relaxing it worth?
* :func:`benefits` -- are the benefits promised in the business cases on track?

Every analysis starts from today's portfolio as the scenario lists it
(in-flight stages with ``done`` included), runs every scenario it needs under
ONE policy (default: the scenario's first, its baseline) on the same worlds
(same seed and replications: common random numbers, see
``flowsim.analysis.paired``), and changes the scenario only where its question
says.  Each returns a :class:`~flowsim.analysis.paired.WhatIf`: tidy
DataFrames (``table``, ``totals``, ``replications``) and a one-sentence
``answer`` in money.  Money is in the scenario's currency; times and delays
in its ``time_unit``; "over the horizon" means between 0 and ``horizon``.
CIs are 95% Student-t intervals over replications.

>>> from flowsim.analysis import whatif
>>> result = whatif.capacity("scenarios/default.yaml", replications=20)   # doctest: +SKIP
>>> print(result.answer); result.table                                    # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import Described, FlowsimError, Problem, ScenarioError, listing
from ..format import count, money, signed_money, span
from ..scenario import read_yaml, scenario_from_dict
from ..scenario.load import wrong_file_hint
from ..scenario.model import Project, Scenario
from .benefits import benefits
from .capacity import capacity
from .paired import (
    Paired,
    Progress,
    WhatIf,
    clearly_above,
    duration,
    pair_projects,
    prepare,
    project_frame,
    project_names,
    stats_columns,
    stream_label,
    totals_row,
    with_ci,
)

__all__ = ["admit", "benefits", "capacity", "stop"]

ScenarioLike = Scenario | str | os.PathLike | Mapping


def _tolerance(paired: Paired) -> float:
    """Differences smaller than this (time units) are rounding, not delay."""
    return 1e-9 * max(paired.horizon, 1.0)


# ---------------------------------------------------------------------------- admit


def admit(
    scenario: ScenarioLike,
    project: str | os.PathLike | Mapping | Project,
    *,
    replications: int = 100,
    seed: int | None = None,
    policy: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> WhatIf:
    """With and without a new initiative, on the same worlds: what it delays and what that costs.

    ``project`` is one of: the id of a project already in the scenario
    (compared with the scenario without it and, in cascade, without the
    projects that depend on it); a YAML file holding one project in scenario
    syntax (a mapping with ``id``, ``stages``, ...; ``{projects: [one]}`` is
    accepted too); a mapping or a ``Project``.  A new project is appended to
    the scenario's projects and validated with it (its teams must exist), so a
    problem is reported in the project file's terms.

    The *delay* the initiative causes a project is its delivery time with the
    initiative minus without it, a project not delivered within the horizon
    counting as delivered at the horizon (so a delay is never larger than the
    horizon and a project delivered in neither run has delay 0).  Its *cost* is
    the value the project delivers without the initiative minus with it (money
    within the horizon).  Projects of an arrival stream are grouped in one row
    per stream (``<stream>-*``: mean delay over its projects, total cost).

    Returns a ``WhatIf`` whose ``table`` has one row per project: ``project``,
    ``name``, ``role`` (``initiative``, ``dependant``, ``other``, ``new
    demand``), ``delay_mean``/``_ci_low``/``_ci_high`` (time units, NaN for
    the initiative), ``p_delayed`` (share of worlds in which it is delayed),
    ``cost_mean``/``_ci_low``/``_ci_high`` (for the initiative, minus its own
    value), ``value_without_mean``, ``value_with_mean``; initiative rows first,
    then the most delayed.  ``totals`` rows: ``initiative_value`` (the value
    the initiative and its dependants deliver), ``cost_to_others`` (total over
    every other project), ``net`` (change in total value delivered, which is
    ``initiative_value - cost_to_others``), ``value_without``, ``value_with``.
    ``replications``: per replication and project, both runs side by side
    (``flowsim.analysis.paired.pair_projects``) with ``label`` and ``role``.
    """
    paired = prepare(scenario, policy=policy, replications=replications, seed=seed, workers=workers, progress=progress)
    notes: list[str] = []
    if isinstance(project, str) and project in paired.project_ids():
        with_scenario = paired.scenario
        data, group = paired.without([project])
        without_scenario = paired.build(data, f"removing project {project!r}")
        main, extra = project, []
        if len(group) > 1:
            notes.append(f"{main} is compared together with the projects that depend on it: {', '.join(group[1:])}")
    else:
        with_scenario = _with_new_project(paired, project)
        without_scenario = paired.scenario
        new = with_scenario.projects[-1]
        main, group, extra = new.id, [new.id], [new]
    names = project_names(with_scenario, extra)
    without_results = paired.run(without_scenario, f"without {main}")
    with_results = paired.run(with_scenario, f"with {main}")
    pairs = pair_projects(
        project_frame(without_results), project_frame(with_results), paired.horizon, ("without", "with")
    )
    if main not in set(pairs["project"]):
        # Projects arriving at or after the horizon are never simulated: no row, no value, no delay.
        notes.append(f"{main} arrives at or after the horizon ({paired.horizon:g}): it is never simulated, "
                     "so accepting it changes nothing within the horizon")  # fmt: skip
    listed = pairs["template"].isna().to_numpy()
    pairs["label"] = [
        p if is_listed else stream_label(p) for p, is_listed in zip(pairs["project"], listed, strict=True)
    ]
    pairs["role"] = [
        ("initiative" if p == main else "dependant") if p in group else ("other" if is_listed else "new demand")
        for p, is_listed in zip(pairs["project"], listed, strict=True)
    ]
    per_label = _per_label(pairs, paired.replications)
    tol = _tolerance(paired)
    rows = []
    for (label, role), frame in per_label.groupby(["label", "role"], sort=False):
        delay = frame["delay"].to_numpy(dtype=float)
        cost = (frame["value_without"] - frame["value_with"]).to_numpy(dtype=float)
        defined = delay[~np.isnan(delay)]
        rows.append({
            "project": label, "name": names.get(label, label), "role": role,
            **stats_columns("delay", delay),
            "p_delayed": float(np.mean(defined > tol)) if len(defined) else math.nan,
            **stats_columns("cost", cost),
            "value_without_mean": float(frame["value_without"].mean()),
            "value_with_mean": float(frame["value_with"].mean()),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    order = {"initiative": 0, "dependant": 1, "other": 2, "new demand": 2}
    table = (
        table.assign(_order=table["role"].map(order), _delay=table["delay_mean"].fillna(-math.inf))
        .sort_values(["_order", "_delay", "cost_mean"], ascending=[True, False, False], kind="stable")
        .drop(columns=["_order", "_delay"])
        .reset_index(drop=True)
    )

    in_group = pairs["role"].isin(["initiative", "dependant"])
    reps = pd.RangeIndex(paired.replications, name="replication")
    own = pairs[in_group].groupby("replication")["value_with"].sum().reindex(reps, fill_value=0.0)
    others = pairs[~in_group]
    cost_to_others = (others["value_without"] - others["value_with"]).groupby(others["replication"]).sum()
    cost_to_others = cost_to_others.reindex(reps, fill_value=0.0)
    value_without = pairs.groupby("replication")["value_without"].sum().reindex(reps, fill_value=0.0)
    value_with = pairs.groupby("replication")["value_with"].sum().reindex(reps, fill_value=0.0)
    totals = pd.DataFrame([
        totals_row("initiative_value", own), totals_row("cost_to_others", cost_to_others),
        totals_row("net", value_with - value_without),
        totals_row("value_without", value_without), totals_row("value_with", value_with),
    ])  # fmt: skip
    answer = _admit_sentence(paired, main, group, table, totals)
    return WhatIf("admit", table, totals, pairs, answer, paired.settings(project=main, removed=group), notes)


def _per_label(pairs: pd.DataFrame, replications: int) -> pd.DataFrame:
    """Per row label and replication: mean delay, summed values (0 where a stream brought nothing)."""
    grouped = pairs.groupby(["label", "role", "replication"], sort=False).agg(
        delay=("delivery_change", "mean"), value_without=("value_without", "sum"), value_with=("value_with", "sum")
    )
    labels = grouped.index.droplevel("replication").unique()
    full = pd.MultiIndex.from_tuples(
        [(label, role, r) for label, role in labels for r in range(replications)], names=grouped.index.names
    )
    grouped = grouped.reindex(full)
    grouped[["value_without", "value_with"]] = grouped[["value_without", "value_with"]].fillna(0.0)
    return grouped.reset_index()


def _admit_sentence(paired: Paired, main: str, group: list[str], table: pd.DataFrame, totals: pd.DataFrame) -> str:
    unit, tol = paired.unit, _tolerance(paired)
    others = table[table["role"].isin(["other", "new demand"])]
    delayed = others[others["delay_mean"] > tol].sort_values("delay_mean", ascending=False)
    top = delayed[delayed["delay_mean"] >= 0.5 * delayed["delay_mean"].max()].head(3) if len(delayed) else delayed
    t = totals.set_index("metric")
    cost = t.loc["cost_to_others"]
    own = t.loc["initiative_value"]
    net = t.loc["net"]
    who = main if len(group) == 1 else f"{main} (with its dependants {', '.join(group[1:])})"
    if len(top):
        parts = [f"{row.project} by {duration(row.delay_mean, unit)}" for row in top.itertuples()]
        more = len(delayed) - len(top)
        tail = f" ({more} other{'s' if more != 1 else ''} by less)" if more > 0 else ""
        text = f"Accepting {who} delays {_join(parts)} on average{tail}"
    else:
        text = f"Accepting {who} delays no other project"
    if abs(cost["mean"]) <= 1e-9 * max(1.0, abs(own["mean"])):
        text += " and costs nothing in delayed value"
    elif cost["mean"] >= 0:
        text += f" and costs {with_ci(cost['mean'], cost['ci_low'], cost['ci_high'])} in delayed value"
    else:
        text += f" and adds {with_ci(-cost['mean'], -cost['ci_high'], -cost['ci_low'])} to the others' value"
    itself = f"{main} itself brings" if len(group) == 1 else "they themselves bring"
    return (
        f"{text}; {itself} {with_ci(own['mean'], own['ci_low'], own['ci_high'])}: "
        f"net {with_ci(net['mean'], net['ci_low'], net['ci_high'], signed_money)} over "
        f"{span(paired.horizon, unit)} (policy {paired.policy}, {count(paired.replications, 'world')})."
    )


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _with_new_project(paired: Paired, project) -> Scenario:
    """The scenario with ``project`` (file, mapping or ``Project``) appended, validated."""
    body, where, prefix = _project_body(paired, project)
    new_id = body.get("id")
    new_id = str(new_id) if isinstance(new_id, int) and not isinstance(new_id, bool) else new_id
    if new_id in paired.project_ids():
        raise FlowsimError(
            f"{where}: {prefix}id must be an id not already in {paired.source} (to study the listed project "
            f"{new_id!r}, pass its id instead of a file), got {new_id!r}"
        )
    data = paired.copy_data()
    projects = list(data.get("projects") or [])
    index = len(projects)
    data["projects"] = [*projects, body]
    try:
        return scenario_from_dict(data, source=paired.source)
    except ScenarioError as error:
        # Problems inside the new project are reported in the project file's terms.
        inside = f"projects[{index}]"
        problems = []
        for p in error.problems:
            if p.path == inside or p.path.startswith(inside + ".") or p.path.startswith(inside + "["):
                rest = p.path[len(inside) :].lstrip(".")
                problems.append(Problem(where, prefix + rest if rest else prefix.rstrip("."), p.rule, p.value))
            else:
                problems.append(p)
        raise ScenarioError(problems) from None


def _project_body(paired: Paired, project) -> tuple[dict, str, str]:
    """The new project as a mapping, where it came from (for messages) and its key prefix there."""
    if isinstance(project, Project):
        return project.model_dump(mode="json", exclude_none=True), "<project>", ""
    if isinstance(project, Mapping):
        hint = wrong_file_hint(project, "<project>", "scenario")
        if hint is not None:
            raise ScenarioError([hint])
        return dict(project), "<project>", ""
    if not isinstance(project, (str, os.PathLike)):
        raise FlowsimError(f"project (--project) must be a project id, a YAML file or a mapping, got {project!r}")
    path = Path(project)
    if not path.exists() and isinstance(project, str) and path.suffix.lower() not in (".yaml", ".yml"):
        known = paired.project_ids()
        raise FlowsimError(
            f"{paired.source}: --project must be the id of a listed project (known: {listing(known)}) "
            f"or a YAML file holding one project, got {project!r}"
        )
    data, where = read_yaml(path, kind="project")
    if isinstance(data, Mapping) and set(data) == {"projects"}:
        items = data["projects"]
        if isinstance(items, list) and len(items) == 1 and isinstance(items[0], Mapping):
            return dict(items[0]), where, "projects[0]."
        found = f"a list of {len(items)} projects" if isinstance(items, list) else type(items).__name__
        raise ScenarioError([Problem(where, "projects", "a list holding exactly one project", Described(found))])
    if not isinstance(data, Mapping):
        kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__}"
        raise ScenarioError(
            [Problem(where, "", "one project in scenario syntax (a mapping with id, value, stages)", Described(kind))]
        )
    hint = wrong_file_hint(data, where, "scenario")
    if hint is not None:
        raise ScenarioError([hint])
    return dict(data), where, ""


# ---------------------------------------------------------------------------- stop


def active_at_start(scenario: Scenario) -> list[str]:
    """Listed projects active at time 0: in flight (some stage ``done``), or arriving at 0 with
    every project they depend on delivered by then (one that waits for another is not active
    yet).  A project whose every stage is done is delivered at 0: nothing to stop."""
    by_id = {p.id: p for p in scenario.projects}

    def delivered_at_start(project) -> bool:
        return all(s.done is True for s in project.stages)

    def active(project) -> bool:
        if delivered_at_start(project):
            return False
        if any(s.done is True or (s.done is not False and s.done > 0) for s in project.stages):
            return True
        return project.arrival == 0 and all(delivered_at_start(by_id[d]) for d in project.depends_on)

    return [p.id for p in scenario.projects if active(p)]


def stop(
    scenario: ScenarioLike,
    projects: Sequence[str] | str | None = None,
    *,
    replications: int = 100,
    seed: int | None = None,
    policy: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> WhatIf:
    """For each active project (or each named), the portfolio value change if it were stopped now.

    Candidates by default: every listed project active at time 0 (in flight, or
    arriving at 0 and not waiting for a project it depends on; name others with
    ``projects``).
    Stopping a project is simulated as the scenario without it and, in
    cascade, without every project that depends on it; its work already done
    is sunk and its remaining work frees its teams from time 0.
    A stopped project is never delivered, so a deadline ``fine`` due within the
    horizon is still charged (DESIGN section 5): its value when stopped is
    ``-fine``, not 0, as when the engine cancels it.

    The change in total value delivered within the horizon (stopped minus
    today's portfolio) is decomposed, per replication, into ``lost`` (the value
    the stopped project and its dependants deliver today: what stopping loses)
    and ``freed`` (what the capacity it frees brings every other project:
    their value when it is stopped minus today), so ``net = freed - lost``.

    Returns a ``WhatIf`` whose ``table`` has one row per candidate: ``project``,
    ``name``, ``also_stopped`` (dependants stopped with it), ``lost_*``,
    ``freed_*``, ``net_*`` (``_mean``, ``_ci_low``, ``_ci_high``, money),
    ``p_better`` (share of worlds where stopping it raises the total), ranked
    by ``net_mean``: the first row is the project we would miss least.
    ``totals``: today's ``value_delivered``.  ``replications``: per stopped
    project, replication and project, both runs side by side
    (``delivery_change`` = stopped minus today, undelivered at the horizon)
    with ``removed`` marking the stopped projects.
    """
    paired = prepare(scenario, policy=policy, replications=replications, seed=seed, workers=workers, progress=progress)
    if isinstance(projects, str):
        projects = [projects]
    candidates = paired.check_ids(projects) if projects else active_at_start(paired.scenario)
    if not candidates:
        raise FlowsimError(
            f"{paired.source}: projects must include one active at time 0 (arrival 0 or a stage done) to stop, "
            f"got none; name projects with --project"
        )
    names = project_names(paired.scenario)
    fines = _fines_if_never_delivered(paired.scenario)
    today = project_frame(paired.run(paired.scenario, "today's portfolio"))
    reps = pd.RangeIndex(paired.replications, name="replication")
    rows, frames, nets = [], [], {}
    tol = 1e-9
    for index, candidate in enumerate(candidates, start=1):
        data, removed = paired.without([candidate])
        variant = paired.build(data, f"stopping {candidate!r}")
        stopped = project_frame(paired.run(variant, f"without {candidate} ({index}/{len(candidates)})"))
        pairs = pair_projects(today, stopped, paired.horizon, ("today", "stopped"))
        pairs.insert(0, "stopped", candidate)
        pairs["removed"] = pairs["project"].isin(removed)
        # Stopping does not cancel a fine: a removed project's value is the fine it still owes.
        owed = pairs["project"].map(fines).fillna(0.0).where(pairs["removed"], 0.0)
        pairs["value_stopped"] -= owed
        pairs["value_change"] -= owed
        lost = -pairs[pairs["removed"]].groupby("replication")["value_change"].sum().reindex(reps, fill_value=0.0)
        kept = pairs[~pairs["removed"]]
        freed = kept.groupby("replication")["value_change"].sum().reindex(reps, fill_value=0.0)
        net = nets[candidate] = freed - lost
        scale = max(1.0, float(np.abs(lost).max()))
        rows.append({
            "project": candidate, "name": names[candidate], "also_stopped": ", ".join(removed[1:]),
            **stats_columns("lost", lost), **stats_columns("freed", freed), **stats_columns("net", net),
            "p_better": float(np.mean(net > tol * scale)),
        })  # fmt: skip
        frames.append(pairs)
    table = pd.DataFrame(rows).sort_values("net_mean", ascending=False, kind="stable").reset_index(drop=True)
    totals = pd.DataFrame([totals_row("value_delivered", today.groupby("replication")["value"].sum())])
    answer = _stop_sentence(paired, table, nets)
    replications_frame = pd.concat(frames, ignore_index=True)
    return WhatIf("stop", table, totals, replications_frame, answer, paired.settings(candidates=candidates))


def _fines_if_never_delivered(scenario: Scenario) -> dict[str, float]:
    """Per listed project, the deadline fine charged if it is never delivered: its ``fine``
    when its ``due`` falls within the horizon (money, undiscounted, as ``value_delivered``)."""
    out = {}
    for project in scenario.projects:
        value = project.value
        if value.profile != "deadline" or not value.fine:
            continue
        due = value.due
        if due is None:
            due = project.arrival + value.due_in if value.due_in is not None else math.inf
        if due < scenario.horizon:
            out[project.id] = float(value.fine)
    return out


def _stop_sentence(paired: Paired, table: pd.DataFrame, nets: dict[str, pd.Series]) -> str:
    best = table.iloc[0]
    who = best["project"] + (f" (with {best['also_stopped']})" if best["also_stopped"] else "")
    least = "would be missed least"
    if len(table) > 1 and not clearly_above(nets[best["project"]], nets[table.iloc[1]["project"]]):
        least += f", though not clearly less than {table.iloc[1]['project']}"  # a tie in these worlds
    text = (
        f"Stopping {who} now {least}: total value delivered changes by "
        f"{with_ci(best['net_mean'], best['net_ci_low'], best['net_ci_high'], signed_money)} over "
        f"{span(paired.horizon, paired.unit)}; it gives up {money(best['lost_mean'])} of its own value and its "
        f"freed capacity brings the others {signed_money(best['freed_mean'])}"
    )
    if best["net_ci_low"] > 0:
        text += " (stopping it gains value in this model)"
    if len(table) > 1:
        worst = table.iloc[-1]
        text += f". Most missed: {worst['project']} ({signed_money(worst['net_mean'])})"
    return text + f" (policy {paired.policy}, {count(paired.replications, 'world')})."
