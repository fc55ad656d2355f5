"""Parallel speed-up of ``flowsim run``: 1,000 replications x 4 policies of scenarios/bench.yaml.

Runs the same replications three ways in one process, so the figures share the
machine's state:

1. plain: a serial loop over ``simulate_chunk`` (no runner, no pool, no files),
   on the first ``--plain`` replications: the engine's own cost per replication;
   then the same loop split over two forked processes: the speed-up this machine
   gives any 2-process job (the ceiling for the runner's);
2. the runner at 1 worker, writing the run folder (chunks of Parquet);
3. the runner at 2 workers (and ``--dask``: a 2-worker Dask ``LocalCluster``).

Prints wall times, replications per second, the speed-up 1 -> 2 workers and the
goals (<= 60 s at 2 workers, speed-up >= 1.8x).  The machine's load average is
printed too: other processes on a 2-core machine take from the speed-up.

    .venv/bin/python benchmarks/parallel.py [--replications 1000] [--plain 100] [--dask]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import pandas.testing as pdt

import flowsim
from flowsim.runner import execute, simulate_chunk

ROOT = Path(__file__).resolve().parents[1]


def plain_loop(scenario, policies, replications) -> None:
    simulate_chunk(scenario, policies, scenario.seed, replications)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished (waited-for) children, pool workers included."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def timed_run(scenario, replications: int, workers: int, out: Path, scheduler: str | None = None):
    shutil.rmtree(out, ignore_errors=True)
    cpu = cpu_seconds()
    started = time.perf_counter()
    results = execute(scenario, replications=replications, workers=workers, out=out, scheduler=scheduler)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    return wall, cpu, results


def line(label: str, n: int, wall: float, cpu: float) -> str:
    # CPU / wall is the parallelism obtained: below the workers when other processes share the cores.
    return f"{label}: {wall:7.1f} s  {n / wall:6.1f} replications/s  {cpu:7.1f} CPU-s  {cpu / wall:4.2f} cores busy"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "bench.yaml"))
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--plain", type=int, default=100, help="replications in the plain serial loop")
    parser.add_argument("--dask", action="store_true", help="also run on a 2-worker Dask LocalCluster")
    args = parser.parse_args(argv)

    scenario = flowsim.load_scenario(args.scenario)
    policies = list(scenario.policies)
    n = args.replications
    print(f"scenario: {scenario.name}; {n} replications x {len(policies)} policies ({', '.join(policies)})")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}")

    plain_n = min(args.plain, n)
    started = time.perf_counter()
    simulate_chunk(scenario, policies, scenario.seed, range(plain_n))
    plain = (time.perf_counter() - started) / plain_n
    print(
        f"plain serial loop ({plain_n} replications): {plain * 1000:.1f} ms per replication "
        f"({plain * 1000 / len(policies):.1f} ms per policy-replication); "
        f"projected for {n}: {plain * n:.1f} s"
    )
    # The machine's own ceiling: the same loop split over two forked processes, no runner.
    halves = [(scenario, policies, range(0, plain_n, 2)), (scenario, policies, range(1, plain_n, 2))]
    started = time.perf_counter()
    with get_context("fork").Pool(2) as pool:
        pool.starmap(plain_loop, halves)
    both = time.perf_counter() - started
    print(f"plain loop in 2 processes: speed-up {plain * plain_n / both:.2f}x (any 2-process job on this machine)")

    with tempfile.TemporaryDirectory(prefix="flowsim-parallel-") as tmp:
        one, cpu, first = timed_run(scenario, n, 1, Path(tmp) / "w1")
        print(line("runner, 1 worker ", n, one, cpu) + f"  (vs plain loop: {one / (plain * n):.2f}x)")
        two, cpu, second = timed_run(scenario, n, 2, Path(tmp) / "w2")
        print(line("runner, 2 workers", n, two, cpu))
        pdt.assert_frame_equal(first.replications, second.replications)
        speedup = one / two
        print(f"speed-up 1 -> 2 workers: {speedup:.2f}x (goal >= 1.8x: {'met' if speedup >= 1.8 else 'missed'})")
        if n == 1000:
            print(f"1,000 replications at 2 workers: {two:.1f} s (goal <= 60 s: {'met' if two <= 60 else 'missed'})")
        else:
            print(f"projected to 1,000 replications at 2 workers: {two * 1000 / n:.1f} s (goal <= 60 s)")
        if args.dask:
            dask, cpu, third = timed_run(scenario, n, 2, Path(tmp) / "dask", scheduler="local")
            pdt.assert_frame_equal(first.replications, third.replications)
            print(line("Dask, 2 workers  ", n, dask, cpu) + f"  (cluster start included; speed-up {one / dask:.2f}x)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
