"""``flowsim run``: Monte Carlo runs from the command line (DESIGN section 10).

Writes the run folder chunk by chunk, then ``summary.csv`` and
``project_summary.csv``, and prints a compact table per policy with a
one-line verdict in money against the baseline.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .format import count, money, number


class ProgressReporter:
    """Replications done, rate and ETA on stderr: a rich bar on a terminal, plain lines
    otherwise (at most one every ``every`` seconds, and the last), nothing when quiet.

    The rate counts only replications simulated by this process, so a resumed run's
    ETA is not flattered by the chunks it found done.

    With ``at_most`` (a ``--target-ci`` run) the total is only an upper bound: the run
    usually stops well before it, so there is no bar and no ETA, only the count
    (``replications 25 (at most 1000), 2.8/s``); the runner's last call, with done ==
    total, is the end (``replications 75, 2.8/s``).
    """

    def __init__(self, quiet: bool, every: float = 2.0, *, at_most: bool = False):
        self.quiet = quiet
        self.every = every
        self.at_most = at_most
        self.shown: tuple[int, int] | None = None  # the last plain line's (done, total)
        self.console = Console(stderr=True)
        self.bar: Progress | None = None
        self.task = None
        self.started = time.monotonic()
        self.first: int | None = None
        self.last_line = -float("inf")

    def __enter__(self):
        if not self.quiet and self.console.is_terminal:
            if self.at_most:
                columns = (TextColumn("replications {task.fields[count]}"), TextColumn("{task.fields[rate]}"),
                           TimeElapsedColumn())  # fmt: skip
            else:
                columns = (TextColumn("replications"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]}"), TimeRemainingColumn())  # fmt: skip
            self.bar = Progress(*columns, console=self.console)
            self.bar.__enter__()
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.first is None:
            self.first = done
            self.started = time.monotonic()
        elapsed = max(time.monotonic() - self.started, 1e-9)
        speed = (done - self.first) / elapsed
        rate = f"{speed:.1f}/s" if done > self.first else "-/s"
        shown = f"{done}" if done >= total else f"{done} (at most {total})"  # with at_most
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("run", total=total, completed=done, rate=rate, count=shown)
            self.bar.update(self.task, completed=done, total=total, rate=rate, count=shown)
        elif done == total or (done > self.first and time.monotonic() - self.last_line >= self.every):
            if self.shown == (done, total):  # the last chunk, then the end: one line
                return
            self.shown = (done, total)
            self.last_line = time.monotonic()
            if self.at_most:
                print(f"replications {shown}, {rate}", file=sys.stderr, flush=True)
                return
            eta = f"{(total - done) / speed:.0f}s" if speed > 0 else "?"
            print(f"replications {done}/{total}, {rate}, eta {eta}", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


def replacing_note(folder: Path, manifest: dict) -> str:
    """``note: replacing the run in DIR (FILE, N replications)`` from the replaced run's
    manifest; what it cannot read there it leaves out."""
    details = []
    source = manifest.get("scenario_file")
    if isinstance(source, str) and source:
        details.append(source)
    done = manifest.get("replications_completed")
    if isinstance(done, int) and not isinstance(done, bool) and done >= 0:
        details.append(count(done, "replication") + (", interrupted" if manifest.get("partial") is True else ""))
    more = f" ({', '.join(details)})" if details else ""
    return f"note: replacing the run in {folder}{more}"


def target_line(target: dict) -> str:
    """What a ``--target-ci`` run reached, from the manifest's ``target`` section."""
    metric = target["metric"]
    show = money if metric.startswith(("value", "npv")) else (lambda x: f"{x:.4g}")
    # The widest interval decides; with one policy it is that policy's own CI.
    what = f"{metric}, widest: {target['widest']}"
    bound = f"{show(target['threshold'])} ({target['ci']:g} x baseline mean {show(target['baseline_mean'])}; {what})"
    n = target["replications"]
    if target["status"] == "reached":
        return f"target reached after {n} replications: half-width {show(target['half_width'])} <= {bound}"
    return f"max replications reached: {n} replications, half-width {show(target['half_width'])} > {bound}"


def policy_table(results) -> Table:
    """Mean and 95% CI per policy of the headline metrics."""
    summary = results.summary()
    scenario = results.manifest["scenario"]
    unit = scenario["time_unit"]
    # Names from the scenario are text, not rich markup: a policy "wip[/b]" must print as written.
    replications = count(results.manifest["replications_completed"], "replication")
    table = Table(title=escape(f"{scenario['name']}: {replications}"))
    for column in ("policy", "value delivered", "value delayed", "cycle time (mean, P90)", "delivered", "throughput"):
        table.add_column(column, justify="left" if column == "policy" else "right")

    def cell(policy: str, metric: str, fmt) -> str:
        row = summary[(summary.policy == policy) & (summary.metric == metric)].iloc[0]
        if math.isnan(row["ci_low"]):  # one replication: no interval
            return fmt(row["mean"])
        return f"{fmt(row['mean'])} ({fmt(row['ci_low'])} to {fmt(row['ci_high'])})"

    def get(policy: str, metric: str) -> float:
        return summary[(summary.policy == policy) & (summary.metric == metric)].iloc[0]["mean"]

    for policy in results.policies:
        table.add_row(
            escape(policy),
            cell(policy, "value_delivered", money),
            cell(policy, "value_delayed", money),
            f"{number(get(policy, 'cycle_time_mean'))}, {number(get(policy, 'cycle_time_p90'))} {unit}s",
            f"{get(policy, 'delivered'):.1f}",
            f"{get(policy, 'throughput'):.3f}/{unit}",
        )
    return table


def print_results(results, out: Path | None) -> None:
    # Piped output gets a wide fixed width rather than rich's 80 columns.
    console = Console() if Console().is_terminal else Console(width=160)
    console.print(policy_table(results))
    for line in results.verdicts():
        console.print(escape(line))
    if out is not None:
        console.print(escape(f"results: {out}/"))
