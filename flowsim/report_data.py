"""What ``report.html`` reads from a run, reduced chunk by chunk.

A report draws means over replications (team load and queues, cumulative
flow), quantiles of two money columns (value over time) and the delivered
projects' cycle times.  Reading the whole tables for that held about 850 MB
for 1,000 replications of ``bench.yaml`` and grew with every replication
(``benchmarks/memory.py``).  Here each mean is summed chunk by chunk, and
only the columns a figure needs are read, so memory grows with the number of
timeline points and with the few columns kept, not with the whole tables.

The reduced frames keep the tables' column names and hold one pseudo
replication (``replication`` 0) where a mean was taken, so the plotting
functions, which take means over replications, draw them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow.compute as pc

# The cumulative flow diagram's counts (flowsim.plots.cumulative_flow).
FLOW_COLUMNS = ["arrived", "admitted", "delivered", "cancelled", "rejected", "wip", "in_system"]


@dataclass(frozen=True)
class ReportData:
    team_timeline: pd.DataFrame  # per policy, team and time: mean busy, mean queue, share queued
    flow: pd.DataFrame  # per policy and time: mean of FLOW_COLUMNS
    values: pd.DataFrame  # per policy, replication and time: value_delivered, value_delayed
    cycle_times: pd.DataFrame  # per delivered project: policy, status, cycle_time

    @classmethod
    def of(cls, results) -> ReportData:
        team_timeline = _means(
            results, "team_timeline", ["policy", "team", "time"], ["busy", "queue"],
            queued=lambda frame: (frame["queue"] > 0).astype(float),
        )  # fmt: skip
        flow = _means(results, "timeline", ["policy", "time"], FLOW_COLUMNS)
        values = results.read("timeline", ["policy", "replication", "time", "value_delivered", "value_delayed"])
        delivered = pc.field("status") == "delivered"
        cycle_times = results.read("projects", ["policy", "status", "cycle_time"], delivered)
        return cls(team_timeline, flow, values, cycle_times)


def _means(results, table: str, keys: list[str], columns: list[str], **derived) -> pd.DataFrame:
    """Mean over replications of ``columns`` (and of each ``derived`` column, computed from a
    chunk's frame) per ``keys``, summed chunk by chunk; one pseudo replication (0)."""
    sums, counts, dtypes = None, None, {}
    for frame in results.chunks(table, [*keys, *columns]):
        dtypes = dtypes or {key: frame[key].dtype for key in keys}  # categories: the scenario's order
        # float64 sums: a shared team's busy units are float32 in the table.
        frame = frame.astype(dict.fromkeys(columns, "float64"))
        frame = frame.assign(**{name: make(frame) for name, make in derived.items()})
        grouped = frame.groupby(keys, observed=True, sort=False)[[*columns, *derived]]
        part, size = grouped.sum(), grouped.size()
        sums = part if sums is None else sums.add(part, fill_value=0.0)
        counts = size if counts is None else counts.add(size, fill_value=0)
    if sums is None:
        return pd.DataFrame(columns=[*keys, "replication", *columns, *derived])
    means = sums.div(counts, axis=0).reset_index().astype(dtypes)
    means = means.sort_values(keys, kind="stable", ignore_index=True)
    means.insert(len(keys), "replication", 0)
    return means


__all__ = ["FLOW_COLUMNS", "ReportData"]
