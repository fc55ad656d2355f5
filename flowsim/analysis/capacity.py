"""Where is the portfolio constrained, and what is relaxing it worth? (DESIGN section 1, question 3)

Exposed as ``flowsim.analysis.whatif.capacity``; kept in its own module for size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import FlowsimError, each_once, listing
from ..format import count, money, span
from ..scenario.model import Scenario
from .paired import Paired, Progress, WhatIf, clearly_above, prepare, stats_columns, totals_row, with_ci

__all__ = ["capacity"]

ScenarioLike = Scenario | str | os.PathLike | Mapping


def capacity(
    scenario: ScenarioLike,
    teams: Sequence[str] | str | None = None,
    delta: int = 1,
    *,
    replications: int = 100,
    seed: int | None = None,
    policy: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> WhatIf:
    """For each team (or each named), the value of ``delta`` more capacity units, on the same worlds.

    A team's variant shifts its initial capacity and every capacity change by
    ``delta`` (a whole number, not 0; negative to price a loss).  A shift that
    leaves the team below 1 unit at time 0, below 0 after a change, or with
    less than the largest crew its stages need is rejected (``FlowsimError``)
    for a named team and skipped, with a note, when every team is tried.

    Returns a ``WhatIf`` whose ``table`` has one row per team: ``team``,
    ``capacity`` (at time 0, before the change), ``delta``,
    ``value_change_*`` (paired change in value delivered within the horizon,
    money; ``_mean``, ``_ci_low``, ``_ci_high``), ``value_per_unit_*``
    (the change divided by ``delta``: what one unit there is worth),
    ``p_better`` (share of worlds where the change delivers more),
    ``utilisation`` and ``mean_queue`` (the team's mean over replications in
    the unchanged scenario: the observed-constraint evidence), ``constraint``
    (True on the first row when its per-unit value is clearly positive),
    ranked by ``value_per_unit_mean``.  ``totals``: the unchanged scenario's
    ``value_delivered``.  ``replications``: per team and replication,
    ``value_base``, ``value_changed``, ``value_change``.
    """
    paired = prepare(scenario, policy=policy, replications=replications, seed=seed, workers=workers, progress=progress)
    if isinstance(delta, bool) or not isinstance(delta, (int, np.integer)) or delta == 0:
        raise FlowsimError(f"delta (--delta) must be a whole number of capacity units other than 0, got {delta!r}")
    delta = int(delta)
    known = list(paired.scenario.teams)
    if isinstance(teams, str):
        teams = [teams]
    named = bool(teams)
    chosen = []
    for team in teams or known:
        if team not in known:
            raise FlowsimError(f"{paired.source}: team (--team) must be one of {listing(known)}, got {team!r}")
        chosen.append(team)
    each_once(chosen, "team (--team)", "team", f"{paired.source}: ")
    problems: list[str] = []
    variants: list[tuple[str, Scenario]] = []
    for team in chosen:
        problem = _shift_problem(paired, team, delta)
        if problem is not None:
            if named:
                raise FlowsimError(problem)
            problems.append(problem)
            continue
        data = paired.copy_data()
        spec = data["teams"][team]
        spec["capacity"] = spec["capacity"] + delta
        for change in spec.get("capacity_changes") or []:
            change["capacity"] = change["capacity"] + delta
        variants.append((team, paired.build(data, f"--delta {delta:+d} on team {team!r}")))
    if not variants:
        raise FlowsimError("\n".join(problems))  # one line per team, each naming its problem
    notes = [f"{problem}: that team is skipped" for problem in problems]
    base = paired.run(paired.scenario, "today's capacity")
    base_value = base.replications.sort_values("replication")["value_delivered"].to_numpy(dtype=float)
    observed = base.teams.groupby("team", observed=True)[["utilisation", "mean_queue"]].mean()
    rows, frames = [], []
    for index, (team, variant) in enumerate(variants, start=1):
        results = paired.run(variant, f"{delta:+d} on {team} ({index}/{len(variants)})")
        changed = results.replications.sort_values("replication")["value_delivered"].to_numpy(dtype=float)
        change = changed - base_value
        frames.append(pd.DataFrame({
            "team": team, "replication": np.arange(paired.replications), "value_base": base_value,
            "value_changed": changed, "value_change": change,
        }))  # fmt: skip
        rows.append({
            "team": team, "capacity": paired.scenario.teams[team].capacity, "delta": delta,
            **stats_columns("value_change", change), **stats_columns("value_per_unit", change / delta),
            "p_better": float(np.mean(change > 1e-9 * max(1.0, float(np.abs(base_value).max())))),
            "utilisation": float(observed.loc[team, "utilisation"]),
            "mean_queue": float(observed.loc[team, "mean_queue"]),
        })  # fmt: skip
    table = pd.DataFrame(rows).sort_values("value_per_unit_mean", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    top = table.iloc[0]
    table["constraint"] = False
    if top["value_per_unit_mean"] > 0 and top["value_per_unit_ci_low"] > 0:
        table.loc[0, "constraint"] = True
    totals = pd.DataFrame([totals_row("value_delivered", base_value)])
    replications_frame = pd.concat(frames, ignore_index=True)
    answer = _capacity_sentence(paired, table, observed, delta, replications_frame)
    return WhatIf("capacity", table, totals, replications_frame, answer, paired.settings(delta=delta), notes)


def _shift_problem(paired: Paired, team: str, delta: int) -> str | None:
    """Why shifting ``team`` by ``delta`` is not a valid scenario, or None."""
    spec = paired.scenario.teams[team]
    where = f"{paired.source}: teams.{team}"
    if spec.capacity + delta < 1:
        return f"{where}.capacity must stay at least 1 after --delta {delta:+d}, got {spec.capacity + delta}"
    for j, change in enumerate(spec.capacity_changes):
        if change.capacity + delta < 0:
            return (
                f"{where}.capacity_changes[{j}].capacity must stay at least 0 after --delta {delta:+d}, "
                f"got {change.capacity + delta}"
            )
    most = max([spec.capacity, *(c.capacity for c in spec.capacity_changes)]) + delta
    crews = [
        (f"projects[{i}].stages[{k}].crew", stage.crew)
        for i, project in enumerate(paired.scenario.projects)
        for k, stage in enumerate(project.stages)
        if stage.team == team
    ] + [
        (f"templates.{name}.stages[{k}].crew", stage.crew)
        for name, template in paired.scenario.templates.items()
        for k, stage in enumerate(template.stages)
        if stage.team == team
    ]
    if crews:
        path, crew = max(crews, key=lambda item: item[1])
        if crew > most:
            return (
                f"{where} must keep room for its largest crew ({path}: {crew}) after --delta {delta:+d}, "
                f"got at most {most} unit{'s' if most != 1 else ''}"
            )
    return None


def _clearly_above(changes: pd.DataFrame, top: str, other: str, delta: int) -> bool:
    """Whether ``top``'s value per unit beats ``other``'s on the same worlds (paired 95% CI above 0)."""
    by_team = {team: frame.sort_values("replication")["value_change"].to_numpy(dtype=float)
               for team, frame in changes.groupby("team", sort=False)}  # fmt: skip
    return clearly_above(by_team[top] / delta, by_team[other] / delta)


def _capacity_sentence(
    paired: Paired, table: pd.DataFrame, observed: pd.DataFrame, delta: int, changes: pd.DataFrame
) -> str:
    top = table.iloc[0]
    over = f"over {span(paired.horizon, paired.unit)}"
    evidence = f"utilisation {top['utilisation']:.0%}, mean queue {top['mean_queue']:.1f}"
    # Amounts are said in the sentence's own sense: a gain for added units, a cost for removed ones.
    sense = 1 if delta > 0 else -1
    if delta > 0:
        what = "one more unit there is worth" if delta == 1 else f"{delta} more units there are worth"
        amount = with_ci(top["value_change_mean"], top["value_change_ci_low"], top["value_change_ci_high"])
    else:
        what = "one unit fewer there costs" if delta == -1 else f"{-delta} units fewer there cost"
        amount = with_ci(-top["value_change_mean"], -top["value_change_ci_high"], -top["value_change_ci_low"])
    busiest = observed["utilisation"].idxmax()
    longest = observed["mean_queue"].idxmax()
    if bool(top["constraint"]):
        runner_up = table.iloc[1] if len(table) > 1 else None
        alone = runner_up is None or _clearly_above(changes, top["team"], runner_up["team"], delta)
        text = f"{top['team']} is {'the' if alone else 'a'} constraint: {evidence}; {what} {amount} {over}"
        if runner_up is not None:
            next_amount = money(sense * runner_up["value_change_mean"])
            if alone:
                text += f", more than any other team (next: {runner_up['team']}, {next_amount})"
            else:
                text += f", not clearly more than at {runner_up['team']} ({next_amount})"
    else:
        where = "the most valuable change" if delta > 0 else "the costliest loss"
        text = f"No team is a clear constraint: {where} is at {top['team']} ({evidence}), where {what} {amount} {over}"
    if busiest != top["team"] or longest != top["team"]:
        text += (
            f"; observed: highest utilisation {busiest} ({observed.loc[busiest, 'utilisation']:.0%}), "
            f"longest mean queue {longest} ({observed.loc[longest, 'mean_queue']:.1f})"
        )
    return text + f" (policy {paired.policy}, {count(paired.replications, 'world')})."
