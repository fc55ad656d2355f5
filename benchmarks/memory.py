"""Peak memory of a large run streamed to Parquet: 10,000 replications x 4 policies of
scenarios/bench.yaml (about 200 projects each).

Workers write their own chunks; the parent keeps only the manifest and, per chunk,
nothing but what the progress needs, so its memory must not grow with the run.
Prints the peak RSS (``ru_maxrss``) of the parent before and after the run
(the baseline: the parent with flowsim imported) and of the largest worker,
the rows and bytes on disk per table, and what ``Results.load`` reads to make
the summary: only the ``replications`` table (the other tables stay on disk).

With ``--report`` it then writes ``report.html`` in a fresh process and prints
that process's peak RSS beside two baselines, each its own process: the same
imports with nothing read, and the whole tables a report used to load
(``timeline``, ``team_timeline``, ``teams``, ``projects``).

It takes a while (about 40,000 simulations): ``--replications`` runs fewer.

    .venv/bin/python benchmarks/memory.py [--replications 10000] [--workers 2] [--keep DIR] [--report]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import flowsim
from flowsim.runner import execute
from flowsim.tables import TABLES

ROOT = Path(__file__).resolve().parents[1]


def peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def current_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# Run in a fresh interpreter, so its peak RSS is its own; prints "<seconds> <peak MiB>".
_CHILD = """
import resource, sys, time
import matplotlib.figure, flowsim, flowsim.plots
from flowsim.report import write_report
from flowsim.results import Results
started = time.perf_counter()
{work}
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
_REPORT_WORK = {
    "imports only": "pass",
    "whole tables (as reports read them before)": "r = Results.load(sys.argv[1]); "
    "[getattr(r, t) for t in ('timeline', 'team_timeline', 'teams', 'projects', 'replications')]",
    "flowsim report": "write_report(sys.argv[1])",
}


def report_memory(out: Path) -> None:
    """Peak RSS of writing the report, against the same imports and the old whole-table read."""
    for label, work in _REPORT_WORK.items():
        code = _CHILD.format(work=work)
        done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=True)
        seconds, peak = map(float, done.stdout.split()[-2:])
        print(f"  {label:<45} peak RSS {peak:7.0f} MiB  {seconds:6.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "bench.yaml"))
    parser.add_argument("--replications", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", help="write the run folder here and keep it (default: a temporary folder)")
    parser.add_argument(
        "--project-summary",
        action="store_true",
        help="then measure project_summary() too (what `flowsim run` writes: it reads the projects table)",
    )
    parser.add_argument("--report", action="store_true", help="then measure writing report.html (see above)")
    args = parser.parse_args(argv)

    scenario = flowsim.load_scenario(args.scenario)
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="flowsim-memory-"))
    n = args.replications
    print(f"{scenario.name}: {n} replications x {len(scenario.policies)} policies -> {out}")
    before = peak_mib(resource.RUSAGE_SELF)
    print(f"parent before the run (flowsim imported): peak RSS {before:.0f} MiB")

    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.monotonic() - last[0] >= 60 or done == total:
            last[0] = time.monotonic()
            print(f"  {done}/{total} replications, parent RSS now {current_mib():.0f} MiB", file=sys.stderr)

    started = time.perf_counter()
    results = execute(scenario, replications=n, workers=args.workers, out=out, progress=progress)
    wall = time.perf_counter() - started
    after_run = peak_mib(resource.RUSAGE_SELF)
    workers = peak_mib(resource.RUSAGE_CHILDREN)
    summary = results.summary()
    after_summary = peak_mib(resource.RUSAGE_SELF)
    loaded = sorted(results._frames)  # what the summary read from disk

    print(f"wall time {wall:.0f} s ({n / wall:.1f} replications/s)")
    print(f"parent peak RSS after the run: {after_run:.0f} MiB (+{after_run - before:.0f} MiB over the baseline)")
    print(f"parent peak RSS after summary(): {after_summary:.0f} MiB ({len(summary)} summary rows)")
    print(f"largest worker peak RSS: {workers:.0f} MiB")
    print(f"tables read by summary(): {', '.join(loaded)} ({len(results.replications)} rows)")
    total_rows = total_bytes = 0
    for table in TABLES:
        files = sorted((out / f"{table}.parquet").glob("part-*.parquet"))
        rows = sum(pq.read_metadata(f).num_rows for f in files)
        size = sum(f.stat().st_size for f in files)
        total_rows += rows
        total_bytes += size
        print(f"  {table:<14} {rows:>13,} rows  {size / 2**20:9.1f} MiB on disk  {len(files)} chunks")
    print(f"  {'total':<14} {total_rows:>13,} rows  {total_bytes / 2**20:9.1f} MiB on disk")
    if args.project_summary:
        started = time.perf_counter()
        projects = results.project_summary()
        print(
            f"project_summary(): {time.perf_counter() - started:.1f} s, {len(projects)} rows; parent peak RSS "
            f"now {peak_mib(resource.RUSAGE_SELF):.0f} MiB (reads listed projects' columns only: "
            f"{sorted(results._frames)} loaded as whole frames)"
        )
    if args.report:
        print("report.html, each in a fresh process:")
        report_memory(out)
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
