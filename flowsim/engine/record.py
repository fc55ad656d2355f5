"""One simulation's results as numpy columns (DESIGN section 9), no pandas.

``collect`` reads the finished simulation and returns a ``Record``: five tables
as dicts of equal-length numpy arrays (project, event, timeline, team and team
timeline rows).  Policy and replication columns are added by the runner.
An event's reason is a code into ``Record.reasons``, whose code 0 is "no
reason", so the log stays numeric until the runner writes it.
Money stays float64 so that sums and the value identity stay exact; times not
reached are NaN, never a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..value import ValueTerms, present_value, realised, value_ideal, value_timeline
from .events import EVENT_NAMES
from .state import STATUS_NAMES

# Output status per internal code; a project that has not arrived has no row.
STATUS_OUTPUT = ("waiting", "waiting", "active", "delivered", "rejected", "cancelled")
OUTPUT_STATUSES = ("delivered", "active", "waiting", "rejected", "cancelled")
_STATUS_CODE = tuple(OUTPUT_STATUSES.index(name) for name in STATUS_OUTPUT)


_LOG_DTYPE = np.dtype(
    [("time", "f8"), ("project", "i8"), ("stage", "i4"), ("team", "i4"), ("event", "i1"), ("units", "f8"),
     ("reason", "i4")]
)  # fmt: skip


@dataclass
class Record:
    projects: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    timeline: dict[str, np.ndarray]
    teams: dict[str, np.ndarray]
    team_timeline: dict[str, np.ndarray]
    reasons: tuple[str, ...] = ("",)  # events["reason"] codes into this; 0: no reason


def _terms(specs) -> ValueTerms:
    columns = list(zip(*[(s.rate, s.lump, s.life, s.profile, s.closes, s.half_life, s.due, s.penalty, s.fine)
                         for s in specs], strict=True)) if specs else [()] * 9
    arrays = [np.asarray(c, dtype=np.float64) for c in columns]
    return ValueTerms(
        rate=arrays[0], lump=arrays[1], life=arrays[2], profile=arrays[3].astype(np.int8),
        closes=arrays[4], half_life=arrays[5], due=arrays[6], penalty=arrays[7], fine=arrays[8],
    )  # fmt: skip


def world_columns(world, rho: float) -> dict:
    """Project columns that depend on the world only, computed once per world.

    Rows are the projects that arrive within the horizon, in world order.
    """
    key = ("record", rho)
    cached = world.derived.get(key)
    if cached is not None:
        return cached
    horizon = world.horizon
    worlds = [w for w in world.projects if w.arrival < horizon]
    n = len(worlds)
    ideal = np.fromiter((w.ideal_delivery for w in worlds), dtype=np.float64, count=n)
    terms = _terms([w.value_actual for w in worlds])
    columns = {
        "index": np.fromiter((w.index for w in worlds), dtype=np.int64, count=n),
        "arrival": np.fromiter((w.arrival for w in worlds), dtype=np.float64, count=n),
        "ideal": ideal,
        "terms": terms,
        "value_ideal": value_ideal(terms, ideal, horizon),
        "benefits_ideal": present_value(terms, ideal, ideal, horizon, rho),
        "effort_estimate": np.fromiter((_remaining_estimate(w) for w in worlds), dtype=np.float64, count=n),
        "effort_actual": np.fromiter(
            (sum(w.remaining_actual(i) for i in range(len(w.stages))) for w in worlds), dtype=np.float64, count=n
        ),
    }
    world.derived[key] = columns
    return columns


def _ideal_timeline(world, static: dict, setup) -> tuple[np.ndarray, np.ndarray]:
    """The timeline's grid (the setup's, which team states sample too) and ``V_ideal`` on it:
    world-only, so computed once per world and timeline step."""
    key = ("ideal timeline", setup.timeline_step)
    cached = world.derived.get(key)
    if cached is None:
        grid = np.array(setup.grid, dtype=np.float64)
        ideal = static["ideal"]
        v_ideal = value_timeline(static["terms"], ideal, ideal, world.horizon, grid)[1]
        for shared in (grid, v_ideal):  # every policy's record holds these very arrays
            shared.flags.writeable = False
        cached = world.derived[key] = (grid, v_ideal)
    return cached


def collect(sim) -> Record:
    """The record of a finished simulation, with the timeline at the setup's grid points."""
    world = sim.world
    horizon = sim.horizon
    static = world_columns(world, sim.rho)
    index = static["index"]
    arrived = [sim.projects[i] for i in index]

    def column(attribute: str) -> np.ndarray:
        return np.fromiter((getattr(p, attribute) for p in arrived), dtype=np.float64, count=len(arrived))

    delivered = column("delivered_at")
    ideal = static["ideal"]
    terms = static["terms"]
    grid, v_ideal_t = _ideal_timeline(world, static, sim.setup)
    v_delivered, benefits, v = realised(terms, delivered, ideal, horizon, sim.rho, grid)
    v_ideal = static["value_ideal"]
    cost = column("cost_pv")
    npv = benefits - cost
    npv_ideal = static["benefits_ideal"] - cost
    arrival = static["arrival"]
    projects = {
        "project": index,
        "arrival": arrival,
        "admitted": column("admitted_at"),
        "started": column("started_at"),
        "delivered": delivered,
        "status": np.fromiter((_STATUS_CODE[p.status] for p in arrived), dtype=np.int8, count=len(arrived)),
        "cycle_time": delivered - arrival,
        "ideal_delivery": ideal,
        "effort_estimate": static["effort_estimate"],
        "effort_actual": static["effort_actual"],
        "value_delivered": v_delivered,
        "value_ideal": v_ideal,
        "value_delayed": v_ideal - v_delivered,
        "npv": npv,
        "npv_ideal": npv_ideal,
    }

    log = np.array(sim.log, dtype=_LOG_DTYPE)
    events = {
        "time": log["time"],
        "project": log["project"],
        "stage": log["stage"],
        "team": log["team"],
        "event": log["event"],
        "units": log["units"],
        "reason": log["reason"],
    }

    timeline = {"time": grid, "value_delivered": v, "value_ideal": v_ideal_t, "value_delayed": v_ideal_t - v}
    levels = np.asarray([(0.0, 0, 0, 0, 0, 0, 0, 0), *sim.levels], dtype=np.float64)
    at = np.searchsorted(levels[:, 0], grid, side="right") - 1
    for offset, name in enumerate(("wip", "in_system", "arrived", "admitted", "delivered", "cancelled",
                                   "rejected"), start=1):  # fmt: skip
        timeline[name] = levels[at, offset].astype(np.int32)

    teams_out = {
        "team": np.arange(len(sim.teams), dtype=np.int32),
        "utilisation": np.array([t.busy_area / t.capacity_area if t.capacity_area > 0 else math.nan
                                 for t in sim.teams]),
        "productive": np.array([t.effort_area / t.capacity_area if t.capacity_area > 0 else math.nan
                                for t in sim.teams]),
        "mean_queue": np.array([t.queue_area / horizon for t in sim.teams]),
        "max_queue": np.array([t.max_queue for t in sim.teams], dtype=np.int32),
    }  # fmt: skip
    team_rows = {"time": [], "team": [], "busy": [], "queue": []}
    for t in sim.teams:
        changes = np.asarray(t.timeline, dtype=np.float64)
        at = np.searchsorted(changes[:, 0], grid, side="right") - 1
        team_rows["time"].append(grid)
        team_rows["team"].append(np.full(len(grid), t.index, dtype=np.int32))
        # float: a shared team's units are time-sliced shares (7 stages on 2 units hold 2/7 each).
        team_rows["busy"].append(changes[at, 1].astype(np.float32))
        team_rows["queue"].append(changes[at, 2].astype(np.int32))
    team_timeline = {k: np.concatenate(v) if v else np.empty(0) for k, v in team_rows.items()}
    return Record(projects, events, timeline, teams_out, team_timeline, tuple(sim.reasons))


def _remaining_estimate(world_project) -> float:
    """Estimated effort still to work at arrival: ``max(estimate - done, 0.1 estimate)``, 0 when done."""
    total = 0.0
    for spec, estimate in zip(world_project.stages, world_project.effort_estimate, strict=True):
        if not spec.done_fully:
            total += max(estimate - spec.done_effort, 0.1 * estimate)
    return total


__all__ = ["EVENT_NAMES", "OUTPUT_STATUSES", "STATUS_NAMES", "Record", "collect"]
