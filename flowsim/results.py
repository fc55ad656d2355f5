"""Results as tidy pandas DataFrames, with summaries and paired comparisons.

Tables (DESIGN section 9): ``projects``, ``events``, ``timeline``, ``teams``,
``team_timeline``, plus ``replications``: one row of portfolio metrics per
policy and replication, which summaries are computed from.  Money in the
scenario's currency, times in its time unit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .stats import mean_ci
from .store import RunStore
from .tables import TABLES

# Metrics of a replication and whether more is better (+1), worse (-1) or neither (0).
DIRECTIONS = {
    "value_delivered": +1,
    "value_delayed": -1,
    "npv": +1,
    "npv_delay_cost": -1,
    "throughput": +1,
    "delivered": +1,
    "cycle_time_mean": -1,
    "cycle_time_p90": -1,
    "cancelled": 0,
    "rejected": 0,
}


_CYCLE_TIMES = ("cycle_time_mean", "cycle_time_p90")

# The columns of summary.csv and project_summary.csv (README "Outputs"): written even with
# no row (no listed project, no completed replication), so the files always read back.
SUMMARY_COLUMNS = [
    "policy", "metric", "n", "mean", "ci_low", "ci_high", "p10", "p50", "p90", "delivered",
    "diff", "diff_ci_low", "diff_ci_high", "better_share",
]  # fmt: skip
PROJECT_SUMMARY_COLUMNS = [
    "policy", "project", "p50_delivery", "p85_delivery", "p_delivered", "promised", "p_on_promise", "value_delayed",
]  # fmt: skip


class Results:
    """The outcome of ``flowsim.run``: tidy tables and their summaries."""

    def __init__(self, tables: dict[str, pa.Table] | None, manifest: dict, root: Path | None = None):
        self._tables = dict(tables or {})
        self._frames: dict[str, pd.DataFrame] = {}
        self.manifest = manifest
        self.root = root

    @classmethod
    def load(cls, root: str | Path) -> Results:
        """Open a run folder written by ``flowsim run`` (only completed chunks are read)."""
        from .errors import FlowsimError

        manifest = RunStore(root).read_manifest()  # a file that is no manifest: one line
        if manifest is None:
            raise FlowsimError(f"{root}: must be a run folder with manifest.json, got none")
        return cls(None, manifest, Path(root))

    # ------------------------------------------------------------ the tables

    def _frame(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            table = self._tables.get(name)
            if table is None:
                table = RunStore(self.root).read_table(name, self.manifest["completed_chunks"])
            self._frames[name] = table.to_pandas()
        return self._frames[name]

    def read(self, name: str, columns: list[str], rows: pc.Expression | None = None) -> pd.DataFrame:
        """Only ``columns`` of table ``name`` (and only the ``rows`` matching an Arrow
        expression): from the loaded frame when there is one, else straight from Arrow or
        the run folder, never the whole table."""
        frame = self._frames.get(name)
        if frame is not None:
            if rows is None:
                return frame[columns].reset_index(drop=True)
            return pa.Table.from_pandas(frame, preserve_index=False).filter(rows).select(columns).to_pandas()
        table = self._tables.get(name)
        if table is None:
            # Text columns dictionary-encoded: 10,000 replications repeat each project id 10,000 times.
            text = [c for c in columns if c in ("project", "template", "status", "event", "reason")]
            table = RunStore(self.root).read_table(name, self.manifest["completed_chunks"], columns, rows, text)
        else:
            table = (table if rows is None else table.filter(rows)).select(columns)
        return table.to_pandas()

    def chunks(self, name: str, columns: list[str]) -> Iterator[pd.DataFrame]:
        """``columns`` of table ``name``, one completed chunk at a time (a single frame when the
        tables are in memory): for reductions whose memory must not grow with the run."""
        if self.root is None or name in self._frames:
            yield self.read(name, columns)
            return
        store = RunStore(self.root)
        for chunk in self.manifest["completed_chunks"]:
            yield store.read_table(name, [chunk], columns).to_pandas()

    def _listed_projects(self, columns: list[str]) -> pd.DataFrame:
        """``columns`` of the listed projects' rows (no template), never the whole table."""
        return self.read("projects", columns, pc.field("template").is_null())

    projects = property(lambda self: self._frame("projects"))
    events = property(lambda self: self._frame("events"))
    timeline = property(lambda self: self._frame("timeline"))
    teams = property(lambda self: self._frame("teams"))
    team_timeline = property(lambda self: self._frame("team_timeline"))
    replications = property(lambda self: self._frame("replications"))

    @property
    def policies(self) -> list[str]:
        return list(self.manifest["policies"])

    @property
    def baseline(self) -> str:
        return self.policies[0]

    @property
    def partial(self) -> bool:
        return bool(self.manifest.get("partial"))

    def _metric_columns(self) -> list[str]:
        return [c for c in self.replications.columns if c not in ("policy", "replication")]

    def _completed_nothing(self) -> bool:
        """No replication to summarise: a run folder stopped before its first chunk."""
        return self.root is not None and not self._tables and not self.manifest["completed_chunks"]

    # ------------------------------------------------------------- summaries

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Per policy and metric: mean, CI, P10/P50/P90 over replications (``n`` of them with
        the metric defined); for the cycle times, ``delivered``: the mean number of projects
        delivered per replication they are taken over; and the paired difference from the
        baseline with its CI and the share of worlds where it did better."""
        rows = []
        if self._completed_nothing():
            return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
        by_policy = self._by_policy()
        base = by_policy[self.baseline]
        for policy in self.policies:
            frame = by_policy[policy]
            for metric in self._metric_columns():
                values = frame[metric].to_numpy(dtype=float)
                mean, low, high = mean_ci(values, level)
                finite = values[~np.isnan(values)]
                p10, p50, p90 = np.quantile(finite, [0.1, 0.5, 0.9]) if len(finite) else (math.nan,) * 3
                diff = values - base[metric].to_numpy(dtype=float)
                d_mean, d_low, d_high = mean_ci(diff, level)
                direction = DIRECTIONS.get(metric, 0)
                better = math.nan
                if direction and policy != self.baseline:
                    valid = diff[~np.isnan(diff)]
                    better = float(np.mean(direction * valid > 0)) if len(valid) else math.nan
                # Cycle times beside the number delivered they are taken over (DESIGN section 9).
                delivered = float(frame["delivered"].mean()) if metric in _CYCLE_TIMES else math.nan
                rows.append({
                    "policy": policy, "metric": metric, "n": len(finite),
                    "mean": mean, "ci_low": low, "ci_high": high, "p10": p10, "p50": p50, "p90": p90,
                    "delivered": delivered,
                    "diff": d_mean if policy != self.baseline else math.nan,
                    "diff_ci_low": d_low if policy != self.baseline else math.nan,
                    "diff_ci_high": d_high if policy != self.baseline else math.nan,
                    "better_share": better,
                })  # fmt: skip
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def compare(self, level: float = 0.95) -> pd.DataFrame:
        """Each policy's paired difference from the baseline, per metric."""
        table = self.summary(level)
        table = table[table["policy"] != self.baseline]
        return table[["policy", "metric", "n", "diff", "diff_ci_low", "diff_ci_high", "better_share"]].reset_index(
            drop=True
        )

    def _by_policy(self) -> dict[str, pd.DataFrame]:
        frame = self.replications
        out = {}
        for policy in self.policies:
            rows = frame[frame["policy"] == policy].sort_values("replication")
            out[policy] = rows.reset_index(drop=True)
        return out

    def project_summary(self) -> pd.DataFrame:
        """Per policy and listed project: P50/P85 delivery (NaN when that quantile is not
        delivered within the horizon), probability of delivery by the horizon and by
        ``promised`` (NaN when the promise is at or after the horizon and some world does not
        deliver within it: the run cannot tell whether that world keeps it), mean value
        delayed.  Projects from arrival streams differ between replications and are left out."""
        rows = []
        if self._completed_nothing():
            return pd.DataFrame(rows, columns=PROJECT_SUMMARY_COLUMNS)
        # Only the listed projects' few columns: at 10,000 replications the whole table is gigabytes.
        listed = self._listed_projects(["policy", "project", "delivered", "value_delayed"])
        promised = self._promised()
        horizon = float(self.manifest["scenario"]["horizon"])
        for (policy, project), group in listed.groupby(["policy", "project"], observed=True, sort=False):
            delivered = group["delivered"].to_numpy(dtype=float)
            filled = np.where(np.isnan(delivered), np.inf, delivered)
            p50, p85 = np.quantile(filled, [0.5, 0.85], method="inverted_cdf")
            due = promised.get(project, math.nan)
            # Promised at or after the horizon: a world not delivered before it (a delivery at the
            # horizon itself is not within it) may still keep the promise.
            unknown = due >= horizon and bool(np.isnan(delivered).any())
            rows.append({
                "policy": policy, "project": project,
                "p50_delivery": p50 if math.isfinite(p50) else math.nan,
                "p85_delivery": p85 if math.isfinite(p85) else math.nan,
                "p_delivered": float(np.mean(~np.isnan(delivered))),
                "promised": due,
                "p_on_promise": float(np.mean(filled <= due)) if math.isfinite(due) and not unknown else math.nan,
                "value_delayed": float(group["value_delayed"].mean()),
            })  # fmt: skip
        return pd.DataFrame(rows, columns=PROJECT_SUMMARY_COLUMNS)

    def _promised(self) -> dict[str, float]:
        scenario = self.manifest.get("scenario", {})
        return {p["id"]: p["promised"] for p in scenario.get("projects", []) if p.get("promised") is not None}

    def verdicts(self, metric: str = "value_delivered") -> list[str]:
        """One sentence per policy against the baseline, in money."""
        from .format import verdict

        table = self.compare()
        out = []
        horizon = self.manifest["scenario"]["horizon"]
        unit = self.manifest["scenario"]["time_unit"]
        for row in table[table["metric"] == metric].itertuples():
            out.append(verdict(row, self.baseline, horizon, unit))
        return out

    def write_summaries(self, root: str | Path) -> None:
        root = Path(root)
        self.summary().to_csv(root / "summary.csv", index=False)
        self.project_summary().to_csv(root / "project_summary.csv", index=False)


__all__ = ["DIRECTIONS", "TABLES", "Results"]
