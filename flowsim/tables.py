"""Engine records to Arrow tables with the columns of DESIGN section 9.

Categorical columns (policy, status, event, team, template) are Arrow
dictionaries whose dictionary is taken from the scenario, never from the rows,
so chunks written by different workers always agree and pandas reads them as
categoricals with the same categories.  Money and times are float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

from .engine.events import EVENT_NAMES
from .engine.record import OUTPUT_STATUSES, Record
from .scenario.model import Scenario
from .world import World

TABLES = ("projects", "events", "timeline", "teams", "team_timeline", "replications")


@dataclass(frozen=True)
class Categories:
    policies: tuple[str, ...]
    teams: tuple[str, ...]
    templates: tuple[str, ...]

    @classmethod
    def of(cls, scenario: Scenario) -> Categories:
        return cls(tuple(scenario.policies), tuple(scenario.teams), tuple(scenario.templates))


@lru_cache(maxsize=64)
def _strings(names: tuple[str | None, ...]) -> pa.StringArray:
    """``names`` as an Arrow array, built once: a dictionary, or the values a column takes."""
    return pa.array(list(names), type=pa.string())


def _categorical(codes: np.ndarray, names: tuple[str, ...], index_type=pa.int16()) -> pa.DictionaryArray:
    """Codes into ``names``; code -1 is a missing value."""
    codes = np.asarray(codes)
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int16), type=index_type, mask=mask if mask.any() else None)
    return pa.DictionaryArray.from_arrays(indices, _strings(names))


def _constant(code: int, n: int, names: tuple[str, ...]) -> pa.DictionaryArray:
    return _categorical(np.full(n, code, dtype=np.int16), names)


def _key(policy_code: int, replication: int, n: int, categories: Categories) -> dict[str, pa.Array]:
    return {
        "policy": _constant(policy_code, n, categories.policies),
        "replication": pa.array(np.full(n, replication, dtype=np.int32)),
    }


def record_tables(
    record: Record, world: World, policy_code: int, categories: Categories
) -> dict[str, pa.Table]:
    """The five output tables of one (policy, replication), plus its metric row."""
    replication = world.replication
    rows = record.projects
    n = len(rows["project"])
    lookup = _world_lookup(world, categories)
    projects = {
        **_key(policy_code, replication, n, categories),
        "project": lookup["ids"].take(rows["project"]),
        "template": _categorical(lookup["templates"][rows["project"]], categories.templates),
    }
    for name, values in rows.items():
        if name == "project":
            continue
        if name == "status":
            projects[name] = _categorical(values, OUTPUT_STATUSES)
        else:
            projects[name] = pa.array(values)

    events = record.events
    m = len(events["time"])
    stage_names = lookup["stage_names"]  # its last entry is null: the stage of a project-level event
    stage_uid = np.where(events["stage"] >= 0, lookup["first_stage"][events["project"]] + events["stage"],
                         len(stage_names) - 1)  # fmt: skip
    event_table = {
        **_key(policy_code, replication, m, categories),
        "time": pa.array(events["time"]),
        "project": lookup["ids"].take(events["project"]),
        "stage": stage_names.take(stage_uid),
        "team": _categorical(events["team"], categories.teams),
        "event": _categorical(events["event"], EVENT_NAMES),
        "units": pa.array(events["units"]),
        # Reasons vary per run (they name projects): not worth caching like the dictionaries.
        "reason": pa.array([None, *record.reasons[1:]], type=pa.string()).take(events["reason"]),
    }

    timeline = record.timeline
    k = len(timeline["time"])
    timeline_table = {**_key(policy_code, replication, k, categories)}
    timeline_table.update({name: pa.array(values) for name, values in timeline.items()})

    teams = record.teams
    t = len(teams["team"])
    teams_table = {
        **_key(policy_code, replication, t, categories),
        "team": _categorical(teams["team"], categories.teams),
    }
    teams_table.update({name: pa.array(v) for name, v in teams.items() if name != "team"})

    tt = record.team_timeline
    q = len(tt["time"])
    team_timeline = {
        **_key(policy_code, replication, q, categories),
        "time": pa.array(tt["time"]),
        "team": _categorical(tt["team"], categories.teams),
        "busy": pa.array(tt["busy"]),
        "queue": pa.array(tt["queue"]),
    }
    return {
        "projects": pa.table(projects),
        "events": pa.table(event_table),
        "timeline": pa.table(timeline_table),
        "teams": pa.table(teams_table),
        "team_timeline": pa.table(team_timeline),
        "replications": pa.table(replication_metrics(record, world, policy_code, categories)),
    }


def _world_lookup(world: World, categories: Categories) -> dict:
    """Project ids, template codes and stage names of a world as arrays, built once per world."""
    key = ("tables", categories.templates)
    cached = world.derived.get(key)
    if cached is None:
        projects = world.projects
        sizes = np.fromiter((len(p.stages) for p in projects), dtype=np.int64, count=len(projects))
        cached = {
            "ids": pa.array([p.id for p in projects], type=pa.string()),
            "templates": np.array(
                [categories.templates.index(p.template) if p.template is not None else -1 for p in projects],
                dtype=np.int16,
            ),
            "first_stage": np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
            "stage_names": pa.array([s.name for p in projects for s in p.stages] + [None], type=pa.string()),
        }
        world.derived[key] = cached
    return cached


def replication_metrics(record: Record, world: World, policy_code: int, categories: Categories) -> dict:
    """One row of portfolio metrics for a (policy, replication): what summaries are made of.

    Money over the horizon; cycle times in time units over projects delivered
    within the horizon; throughput in deliveries per time unit.
    """
    rows = record.projects
    delivered = rows["status"] == OUTPUT_STATUSES.index("delivered")
    cycle = rows["cycle_time"][delivered]
    metrics = {
        "value_delivered": rows["value_delivered"].sum(),
        "value_ideal": rows["value_ideal"].sum(),
        "value_delayed": rows["value_delayed"].sum(),
        "npv": rows["npv"].sum(),
        "npv_ideal": rows["npv_ideal"].sum(),
        "npv_delay_cost": (rows["npv_ideal"] - rows["npv"]).sum(),
        "delivered": float(delivered.sum()),
        "throughput": float(delivered.sum()) / world.horizon,
        "cycle_time_mean": float(cycle.mean()) if len(cycle) else np.nan,
        "cycle_time_p90": float(np.quantile(cycle, 0.9)) if len(cycle) else np.nan,
        "cancelled": float((rows["status"] == OUTPUT_STATUSES.index("cancelled")).sum()),
        "rejected": float((rows["status"] == OUTPUT_STATUSES.index("rejected")).sum()),
    }
    for team, utilisation in zip(categories.teams, record.teams["utilisation"], strict=True):
        metrics[f"utilisation.{team}"] = utilisation
    table = _key(policy_code, world.replication, 1, categories)
    # One float64 array sliced per column: far cheaper than an Arrow array per Python list.
    values = pa.array(np.fromiter(metrics.values(), dtype=np.float64, count=len(metrics)))
    table.update({name: values.slice(i, 1) for i, name in enumerate(metrics)})
    return table
