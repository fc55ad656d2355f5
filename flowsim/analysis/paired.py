"""Paired runs: a scenario and its variants simulated on the same worlds.

Every what-if and sweep compares scenarios that differ only where the question
says (a project added or removed, a team's capacity shifted, a parameter set),
each run with ``flowsim.run`` under one policy, the same seed and the same
number of replications.  Worlds are common random numbers (``flowsim.world``):
a listed project draws from its own stream keyed by its id and an arrival
stream from its own, so replication r of every variant meets the same efforts,
values and arrivals, and differences are paired replication by replication.

Variants are edits of the scenario *as a mapping in file syntax* (the YAML
the user wrote, or a validated ``Scenario`` dumped back to that form), then
validated again with ``scenario_from_dict``: a variant is checked exactly as a
file would be.  Money is in the scenario's currency, times in its time unit.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FlowsimError, ScenarioError, each_once, listing
from ..format import money
from ..results import Results
from ..runner import check_options, scenario_hash
from ..scenario import read_yaml, scenario_from_dict
from ..scenario.model import Project, Scenario
from ..stats import mean_ci

__all__ = [
    "Paired",
    "WhatIf",
    "ci_text",
    "duration",
    "pair_projects",
    "prepare",
    "project_frame",
    "user_form",
]

#: Called with a short label before each scenario is simulated (the CLI shows it).
Progress = Callable[[str], None]

#: Metrics counted in money (shown with ``flowsim.format.money``).
MONEY_METRICS = frozenset({"value_delivered", "value_ideal", "value_delayed", "npv", "npv_ideal", "npv_delay_cost"})


@dataclass
class WhatIf:
    """The answer to one of DESIGN section 1's questions.

    ``table``: the answer, one row per project or team, ranked (each function
    documents its columns); ``totals``: portfolio-level figures, one row per
    ``metric`` with ``mean``, ``ci_low``, ``ci_high`` (95% Student-t over
    replications); ``replications``: the paired values, per replication, that
    both are computed from (tidy, long); ``answer``: one sentence in money;
    ``settings``: scenario (its name and hash), policy, seed, replications,
    horizon, time unit;
    ``notes``: anything left out or assumed, for the reader.
    """

    question: str
    table: pd.DataFrame
    totals: pd.DataFrame
    replications: pd.DataFrame
    answer: str
    settings: dict
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.answer


def user_form(scenario: Scenario) -> dict:
    """A validated scenario as a mapping in file syntax (rules as ``{rule: NAME, ...parameters}``).

    ``scenario_from_dict(user_form(s)) == s``; keys left at ``None`` are omitted.
    """
    data = scenario.model_dump(mode="json", exclude_none=True)
    for policy in data.get("policies", {}).values():
        for kind in ("intake", "sequencing", "intervention"):
            ref = policy.get(kind)
            if isinstance(ref, dict) and "params" in ref:
                policy[kind] = {"rule": ref["rule"], **ref["params"]}
    return data


def scenario_data(scenario: Scenario | str | os.PathLike | Mapping) -> tuple[Scenario, dict]:
    """The validated scenario and the mapping it was read from (a private copy to edit)."""
    if isinstance(scenario, Scenario):
        return scenario, user_form(scenario)
    if isinstance(scenario, Mapping):
        data, source = copy.deepcopy(dict(scenario)), "<dict>"
    else:
        data, source = read_yaml(scenario)
    validated = scenario_from_dict(data, source=source)
    if not isinstance(data, dict):  # a Mapping that is not a dict: work on a dict
        data = dict(data)
    return validated, copy.deepcopy(data)


def resolve_policy(scenario: Scenario, policy: str | None) -> str:
    if policy is None:
        return scenario.baseline
    if policy not in scenario.policies:
        raise FlowsimError(
            f"{scenario.source}: policy (--policy) must be one of {listing(scenario.policies)}, got {policy!r}"
        )
    return policy


@dataclass
class Paired:
    """A base scenario, its mapping, and how every variant of it is run."""

    scenario: Scenario
    data: dict
    policy: str
    seed: int
    replications: int
    workers: int | None
    progress: Progress | None = None
    runs: int = 0

    @property
    def source(self) -> str:
        return self.scenario.source

    @property
    def horizon(self) -> float:
        return float(self.scenario.horizon)

    @property
    def unit(self) -> str:
        return self.scenario.time_unit

    def copy_data(self) -> dict:
        return copy.deepcopy(self.data)

    def build(self, data: dict, change: str) -> Scenario:
        """Validate an edited mapping; a problem is reported with the change that caused it."""
        try:
            return scenario_from_dict(data, source=self.source)
        except ScenarioError as error:
            # One line per problem, each saying which change caused it.
            raise FlowsimError("\n".join(f"{problem} (with {change})" for problem in error.problems)) from None

    def run(self, scenario: Scenario, label: str) -> Results:
        """Simulate ``scenario`` under the chosen policy on the shared worlds."""
        from .. import run

        if self.progress is not None:
            self.progress(label)
        self.runs += 1
        return run(
            scenario, replications=self.replications, seed=self.seed, policies=[self.policy], workers=self.workers
        )

    def settings(self, **extra: Any) -> dict:
        return {
            "scenario": self.scenario.name,
            "scenario_hash": scenario_hash(self.scenario),  # which run folders' reports may embed it
            "source": self.source,
            "policy": self.policy,
            "seed": self.seed,
            "replications": self.replications,
            "horizon": self.horizon,
            "time_unit": self.unit,
            "scenarios_simulated": self.runs,
            **extra,
        }

    def without(self, ids: Iterable[str]) -> tuple[dict, list[str]]:
        """The mapping without the listed projects ``ids`` and, in cascade, every project
        that depends on them (directly or not); returns it and the ids removed, in file order."""
        removed = set(ids)
        grew = True
        while grew:
            grew = False
            for project in self.scenario.projects:
                if project.id not in removed and removed.intersection(project.depends_on):
                    removed.add(project.id)
                    grew = True
        data = self.copy_data()
        keep = [i for i, p in enumerate(self.scenario.projects) if p.id not in removed]
        data["projects"] = [data["projects"][i] for i in keep]
        return data, [p.id for p in self.scenario.projects if p.id in removed]

    def project_ids(self) -> list[str]:
        return [p.id for p in self.scenario.projects]

    def check_ids(self, ids: Iterable[str], option: str = "--project") -> list[str]:
        known = self.project_ids()
        out: list[str] = []
        for project in ids:
            if project not in known:
                raise FlowsimError(
                    f"{self.source}: {option} must be the id of a listed project (known: {listing(known)}), "
                    f"got {project!r}"
                )
            out.append(project)
        each_once(out, option, "project", f"{self.source}: ")
        return out


def prepare(
    scenario: Scenario | str | os.PathLike | Mapping,
    *,
    policy: str | None,
    replications: int,
    seed: int | None,
    workers: int | None,
    progress: Progress | None = None,
) -> Paired:
    """Load and validate the scenario, resolve the policy and seed, check the run settings.

    The run settings are checked as ``flowsim run`` checks them (``runner.check_options``):
    same rules, same messages (``replications (--replications) must be a whole number of
    at least 1, got 0``)."""
    validated, data = scenario_data(scenario)
    _, _, replications = check_options(validated, replications=replications, seed=seed, workers=workers)
    return Paired(
        scenario=validated,
        data=data,
        policy=resolve_policy(validated, policy),
        seed=validated.seed if seed is None else int(seed),
        replications=replications,
        workers=workers,
        progress=progress,
    )


def project_frame(results: Results) -> pd.DataFrame:
    """Per replication and project: ``template`` (NA for a listed project), ``delivered``
    (NaN when not delivered within the horizon) and ``value`` (``value_delivered``)."""
    frame = results.projects
    out = pd.DataFrame({
        "replication": frame["replication"].to_numpy(dtype=np.int64),
        "project": frame["project"].astype(str).to_numpy(),
        "template": frame["template"].astype(object).to_numpy(),
        "delivered": frame["delivered"].to_numpy(dtype=float),
        "value": frame["value_delivered"].to_numpy(dtype=float),
    })  # fmt: skip
    return out


def pair_projects(before: pd.DataFrame, after: pd.DataFrame, horizon: float, names: tuple[str, str]) -> pd.DataFrame:
    """Per replication and project, the two runs side by side.

    Columns ``replication``, ``project``, ``template``, ``in_<a>``/``in_<b>``
    (the project exists in that run), ``delivered_<a>``/``_<b>`` (NaN: not
    delivered), ``value_<a>``/``_<b>`` (0 where the project does not exist),
    ``delivery_change`` (``b - a``, an undelivered project counted as delivered
    at the horizon; NaN unless in both runs) and ``value_change`` (``b - a``).
    """
    a, b = names
    merged = before.merge(after, on=["replication", "project"], how="outer", suffixes=(f"_{a}", f"_{b}"))
    merged["template"] = merged[f"template_{a}"].where(merged[f"template_{a}"].notna(), merged[f"template_{b}"])
    merged[f"in_{a}"] = merged[f"value_{a}"].notna()
    merged[f"in_{b}"] = merged[f"value_{b}"].notna()
    for name in names:
        merged[f"value_{name}"] = merged[f"value_{name}"].fillna(0.0)
    until_a = merged[f"delivered_{a}"].fillna(horizon)
    until_b = merged[f"delivered_{b}"].fillna(horizon)
    both = merged[f"in_{a}"] & merged[f"in_{b}"]
    merged["delivery_change"] = (until_b - until_a).where(both)
    merged["value_change"] = merged[f"value_{b}"] - merged[f"value_{a}"]
    columns = ["replication", "project", "template", f"in_{a}", f"in_{b}", f"delivered_{a}", f"delivered_{b}",
               f"value_{a}", f"value_{b}", "delivery_change", "value_change"]  # fmt: skip
    return merged[columns].sort_values(["replication", "project"], kind="stable").reset_index(drop=True)


def stream_label(project: str) -> str:
    """``enhancements-12`` -> ``enhancements-*``: projects of one arrival stream as one row."""
    return project.rsplit("-", 1)[0] + "-*"


def clearly_above(first, second) -> bool:
    """Whether ``first`` beats ``second`` in the same worlds (values per replication, aligned):
    the 95% CI of their paired difference lies above 0.  Never with one world."""
    _mean, low, _high = mean_ci(np.asarray(first, dtype=float) - np.asarray(second, dtype=float))
    return bool(low > 0)


def stats_columns(prefix: str, values) -> dict[str, float]:
    """``{prefix_mean, prefix_ci_low, prefix_ci_high}`` over replications (NaN dropped)."""
    mean, low, high = mean_ci(values)
    return {f"{prefix}_mean": mean, f"{prefix}_ci_low": low, f"{prefix}_ci_high": high}


def totals_row(metric: str, values) -> dict[str, Any]:
    mean, low, high = mean_ci(values)
    return {"metric": metric, "mean": mean, "ci_low": low, "ci_high": high}


def ci_text(low: float, high: float, fmt: Callable[[float], str] = money) -> str:
    """``95% CI 0.9M to 1.3M``; empty when the interval is undefined (fewer than 2 worlds)."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return ""
    return f"95% CI {fmt(low)} to {fmt(high)}"


def with_ci(mean: float, low: float, high: float, fmt: Callable[[float], str] = money) -> str:
    """``1.1M (95% CI 0.9M to 1.3M)``, or just the mean."""
    text = ci_text(low, high, fmt)
    return f"{fmt(mean)} ({text})" if text else fmt(mean)


def duration(amount: float, unit: str) -> str:
    """``6.0 weeks``; ``1 week``."""
    if amount is None or math.isnan(amount):
        return "n/a"
    text = f"{amount:.1f}"
    return f"{text} {unit}" if text in ("1.0", "-1.0") else f"{text} {unit}s"


def project_names(scenario: Scenario, extra: Iterable[Project] = ()) -> dict[str, str]:
    return {p.id: p.name or p.id for p in [*scenario.projects, *extra]}
