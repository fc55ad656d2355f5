"""Are the benefits promised in the business cases on track? (DESIGN section 1, question 4)

Exposed as ``flowsim.analysis.whatif.benefits``; kept in its own module for size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import FlowsimError
from ..format import count, money, span
from ..scenario.distributions import mean_of
from ..scenario.model import Project, Scenario
from ..stats import mean_ci
from ..value import ValueTerms, value_delivered
from .paired import Paired, Progress, WhatIf, prepare, project_frame, stats_columns, totals_row, with_ci

__all__ = ["benefits", "business_cases", "estimated_ideal_delivery"]

ScenarioLike = Scenario | str | os.PathLike | Mapping

# The target rule of a business case that states no date: its estimated ideal delivery.
UNDATED = "estimated ideal delivery"


def estimated_ideal_delivery(scenario: Scenario) -> dict[str, float]:
    """Per listed project, when it would be delivered with no contention, from estimates.

    The later of its arrival and its dependencies' estimated ideal deliveries,
    plus its critical path with each unfinished stage taking
    ``max(estimate - done, 0) / crew`` (``estimate``: the stage's explicit
    estimate, else its effort's mean; no estimation noise): the date a
    business case would be drawn up with.
    """
    projects = {p.id: p for p in scenario.projects}
    memo: dict[str, float] = {}

    def ideal(project_id: str) -> float:
        if project_id not in memo:
            project = projects[project_id]
            start = max([float(project.arrival), *(ideal(d) for d in project.depends_on)])
            memo[project_id] = start + _critical_path(project)
        return memo[project_id]

    return {p.id: ideal(p.id) for p in scenario.projects}


def _critical_path(project: Project) -> float:
    names = [s.name if s.name is not None else s.team for s in project.stages]
    finish: dict[int, float] = {}

    def end(i: int) -> float:
        if i not in finish:
            stage = project.stages[i]
            preds = ([i - 1] if i > 0 else []) if stage.after is None else [names.index(n) for n in stage.after]
            estimate = float(stage.estimate) if stage.estimate is not None else mean_of(stage.effort)
            work = 0.0 if stage.done is True else max(estimate - float(stage.done), 0.0)
            finish[i] = max((end(p) for p in preds), default=0.0) + work / stage.crew
        return finish[i]

    return max((end(i) for i in range(len(project.stages))), default=0.0)


def business_cases(scenario: Scenario) -> pd.DataFrame:
    """Per listed project, the date and value its business case promises.

    Columns: ``project``, ``name``, ``target`` (time units), ``target_rule``,
    ``ideal_estimate`` (:func:`estimated_ideal_delivery`), ``business_case``
    (money). The target date is, in order: ``promised`` if given; else ``due``
    for a ``deadline`` profile; else ``closes`` for a ``window``; else the
    estimated ideal delivery (``due_in``/``closes_in`` count from arrival).
    The business case is the value within the horizon of delivery at the
    target date with the estimated terms (rate: the value's ``estimate``, else
    the rate's mean; lump: its mean; decay measured from the estimated ideal
    delivery), except for a window whose target is ``closes``: delivered at
    ``closes`` a window is worth nothing, so its case is read at the
    estimated ideal delivery.
    """
    ideal = estimated_ideal_delivery(scenario)
    horizon = float(scenario.horizon)
    rows = []
    for project in scenario.projects:
        value = project.value
        arrival = float(project.arrival)
        closes = _absolute(value.closes, value.closes_in, arrival) if value.profile == "window" else math.inf
        due = _absolute(value.due, value.due_in, arrival) if value.profile == "deadline" else math.inf
        if project.promised is not None:
            rule, target, read_at = "promised", float(project.promised), float(project.promised)
        elif math.isfinite(due):
            rule, target, read_at = "due", due, due
        elif math.isfinite(closes):
            rule, target, read_at = "closes", closes, ideal[project.id]
        else:
            rule, target, read_at = UNDATED, ideal[project.id], ideal[project.id]
        terms = ValueTerms.make(
            float(value.estimate) if value.estimate is not None else mean_of(value.rate),
            lump=mean_of(value.lump),
            life=float(value.life) if value.life is not None else math.inf,
            profile=value.profile,
            closes=closes,
            half_life=float(value.half_life) if value.half_life is not None else math.inf,
            due=due,
            penalty=float(value.penalty or 0.0),
            fine=float(value.fine or 0.0),
        )
        case = float(value_delivered(terms, read_at, ideal[project.id], horizon)[0])
        rows.append({
            "project": project.id, "name": project.name or project.id, "target": target, "target_rule": rule,
            "ideal_estimate": ideal[project.id], "business_case": case,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _absolute(at, relative, arrival: float) -> float:
    if at is not None:
        return float(at)
    return arrival + float(relative) if relative is not None else math.inf


def benefits(
    scenario: ScenarioLike,
    *,
    replications: int = 100,
    seed: int | None = None,
    policy: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> WhatIf:
    """Per listed project, the chance of delivering on its business-case date and of realising its value.

    The business-case date and value are those of :func:`business_cases`:
    the target date is ``promised`` if the project gives one, else ``due``
    (deadline profile), else ``closes`` (window profile), else its estimated
    ideal delivery (arrival or dependencies, plus the estimated critical
    path). *On time* means delivered by the target (before it for
    ``closes``: delivered at ``closes`` a window is lost). The case is
    *realised* in a world when the project's ``value_delivered`` is at least
    its business-case value (within the horizon, so late delivery, a smaller
    realised rate, a penalty or a fine can each miss it).

    Returns a ``WhatIf`` whose ``table`` has one row per listed project that
    arrives within the horizon: ``project``, ``name``, ``target``,
    ``target_rule``, ``p_on_time``, ``p_delivered`` (by the horizon),
    ``p50_delivery`` (NaN when not delivered in half the worlds),
    ``business_case``, ``value_mean``/``_ci_low``/``_ci_high``,
    ``p_realised``, ``shortfall_mean`` (business case minus value).  Projects
    whose case states a date (``promised``, ``due``, ``closes``) come first,
    then those measured against their estimated ideal delivery: with any
    contention those are late by construction, so they would otherwise crowd
    the promises out of the top.  Within each group, most at risk first
    (lowest ``p_realised``, then ``p_on_time``). ``totals``:
    ``value_delivered`` of the listed projects, ``business_case`` (their sum,
    a constant), ``shortfall`` (business case minus value delivered).
    ``replications``: per replication and listed project, ``delivered``,
    ``value``, ``on_time``, ``realised``.
    """
    paired = prepare(scenario, policy=policy, replications=replications, seed=seed, workers=workers, progress=progress)
    if not paired.scenario.projects:
        raise FlowsimError(
            f"{paired.source}: projects must list at least one project for whatif benefits (business cases "
            "belong to listed projects; projects from arrival streams differ between worlds), got none"
        )
    horizon = paired.scenario.horizon
    if all(project.arrival >= horizon for project in paired.scenario.projects):
        raise FlowsimError(
            f"{paired.source}: projects must list at least one project arriving before the horizon "
            f"({horizon:g}) for whatif benefits, got none (each arrives at or after it, so none is simulated)"
        )
    cases = business_cases(paired.scenario)
    frame = project_frame(paired.run(paired.scenario, "today's portfolio"))
    frame = frame[frame["template"].isna()].drop(columns="template")
    frame = frame.merge(cases, on="project", how="inner")
    notes = [
        f"{p} arrives at or after the horizon and is left out"
        for p in cases["project"]
        if p not in set(frame["project"])
    ]
    delivered = frame["delivered"].to_numpy(dtype=float)
    target = frame["target"].to_numpy(dtype=float)
    slack = 1e-9 * np.maximum(1.0, np.abs(target))
    strict = (frame["target_rule"] == "closes").to_numpy()
    on_time = np.where(strict, delivered < target, delivered <= target + slack) & ~np.isnan(delivered)
    case = frame["business_case"].to_numpy(dtype=float)
    value = frame["value"].to_numpy(dtype=float)
    frame["on_time"] = on_time
    frame["realised"] = value >= case - 1e-9 * np.maximum(1.0, np.abs(case))
    rows = []
    for project, group in frame.groupby("project", sort=False):
        first = group.iloc[0]
        times = group["delivered"].to_numpy(dtype=float)
        p50 = float(np.quantile(np.where(np.isnan(times), np.inf, times), 0.5, method="inverted_cdf"))
        # A date at or after the horizon lies beyond what the run sees: a world not delivered by
        # the horizon may still be on time, and the case's value within the horizon is nothing.
        beyond = first["target"] >= horizon
        if beyond:
            notes.append(
                f"{project}'s {first['target_rule']} date ({first['target']:g}) is at or after the horizon "
                f"({horizon:g}): whether it is on time is known only in worlds that deliver it within "
                "the horizon, and whether its business case is realised cannot be judged; "
                "lengthen the horizon to judge it"
            )
        rows.append({
            "project": project, "name": first["name"], "target": first["target"],
            "target_rule": first["target_rule"],
            "p_on_time": math.nan if beyond and np.isnan(times).any() else float(group["on_time"].mean()),
            "p_delivered": float(np.mean(~np.isnan(times))),
            "p50_delivery": p50 if math.isfinite(p50) else math.nan,
            "business_case": first["business_case"],
            **stats_columns("value", group["value"]),
            "p_realised": math.nan if beyond else float(group["realised"].mean()),
            "shortfall_mean": float(first["business_case"] - group["value"].mean()),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    table["_undated"] = table["target_rule"] == UNDATED
    table = table.sort_values(
        ["_undated", "p_realised", "p_on_time", "shortfall_mean"], ascending=[True, True, True, False], kind="stable"
    )
    table = table.drop(columns="_undated").reset_index(drop=True)
    reps = pd.RangeIndex(paired.replications, name="replication")
    portfolio = frame.groupby("replication")["value"].sum().reindex(reps, fill_value=0.0)
    total_case = float(table["business_case"].sum())
    totals = pd.DataFrame([
        totals_row("value_delivered", portfolio),
        {"metric": "business_case", "mean": total_case, "ci_low": total_case, "ci_high": total_case},
        totals_row("shortfall", total_case - portfolio),
    ])  # fmt: skip
    replications_frame = frame[["replication", "project", "delivered", "value", "target", "target_rule",
                                "business_case", "on_time", "realised"]].reset_index(drop=True)  # fmt: skip
    answer = _benefits_sentence(paired, table, portfolio, total_case)
    return WhatIf("benefits", table, totals, replications_frame, answer, paired.settings(), notes)


def _benefits_sentence(paired: Paired, table: pd.DataFrame, portfolio: pd.Series, total_case: float) -> str:
    mean, low, high = mean_ci(portfolio)
    share = f" ({mean / total_case:.0%})" if total_case > 0 else ""
    text = (
        f"The listed projects deliver {with_ci(mean, low, high)} over {span(paired.horizon, paired.unit)} "
        f"against {money(total_case)} in their business cases{share}"
    )
    unjudged = table["p_realised"].isna()  # dated at or after the horizon
    judged = table[~unjudged]
    at_risk = judged[(judged["p_realised"] < 0.95) | (judged["p_on_time"] < 0.95)]
    if judged.empty:
        pass  # every date is at or after the horizon: said below
    elif at_risk.empty:
        every = "every business case" if not unjudged.any() else "every business case it can judge"
        text += f"; {every} is on track (on time and realised in at least 95% of worlds)"
    else:
        dated = at_risk[at_risk["target_rule"] != UNDATED]
        parts = [
            f"{row.project} (on time {row.p_on_time:.0%}, business case realised {row.p_realised:.0%})"
            for row in dated.head(3).itertuples()
        ]
        if parts:
            text += "; most at risk: " + ", ".join(parts)
        undated = len(at_risk) - len(dated)
        if undated:
            # Late against a contention-free estimate is the normal state of a shared portfolio: said apart.
            text += (
                f"; {undated} without a date in {'its' if undated == 1 else 'their'} business case "
                f"{'is' if undated == 1 else 'are'} at risk against {'its' if undated == 1 else 'their'} "
                "estimated ideal delivery"
            )
        safe = len(judged) - len(at_risk)
        text += f"; {safe} of {len(table)} on track"
    if unjudged.any():
        text += f"; {count(int(unjudged.sum()), 'project')} dated at or after the horizon cannot be judged"
    return text + f" (policy {paired.policy}, {count(paired.replications, 'world')})."
