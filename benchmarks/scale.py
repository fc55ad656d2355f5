"""Cost per project as queues grow: benchmarks/scale.yaml at 200 and 5,000 projects.

The scenario is overloaded (arrivals well above capacity), so the team's queue
grows with the horizon: to about 85 projects at 200 projects, about 2,100 at
5,000.  Each size is the same scenario with a longer horizon (same rates).  For
every rule it prints seconds per project per replication (engine run, then
engine + output tables), the largest queue seen, and the growth ratio of the
cost per project from the smallest to the largest size.  A rule whose queue
operations are O(log n) keeps the ratio near 1 (goal: within 1.3x for fifo, cd3,
team_wip-cd3 and drum-cd3); a rule that re-ranked the whole queue at every decision would grow with
the queue (value, cd3 and least_slack did, 6-10x, before ranks could promise a
trend: see flowsim/engine/queue.py), and so did team_wip and drum intake (15-27x,
before a pass went by hold key: flowsim/engine/funnel.py).  World sampling is timed apart: every rule
shares it, and garbage is collected before each timed run.

``--standard`` also runs a variant with every value profile set to standard, where
value and cd3 ranks do not change with time at all.  ``--shared`` also runs one
where every team has ``focus: shared``: every admitted stage is in progress at
once (about 2,100 at 5,000 projects; its "max queue" is the stages beyond one
per unit), and a shared team's crew clocks (flowsim/engine/sharing.py) must keep
each event O(log n); before them, a change of rates visited every stage in
progress, and fifo grew 16.5x from 200 to 5,000 projects.

    .venv/bin/python benchmarks/scale.py [--replications 2] [--sizes 200,5000] [--standard] [--shared]
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import time
from pathlib import Path

import yaml

from flowsim.engine.setup import build_rules, make_setup
from flowsim.engine.simulation import Simulation
from flowsim.scenario import scenario_from_dict
from flowsim.tables import Categories, record_tables
from flowsim.world import sample_world

HERE = Path(__file__).resolve().parent
GOALS = ("fifo", "cd3", "team_wip-cd3", "drum-cd3")  # policies held to a growth of at most 1.3x
PROFILE_KEYS = ("profile", "closes", "closes_in", "half_life", "due", "due_in", "penalty", "fine")


def sized(data: dict, projects: int, variant: str) -> dict:
    """The scenario at a size: ``variant`` is "" (as written), "standard" or "shared"."""
    data = copy.deepcopy(data)
    rate = sum(stream["rate"] for stream in data["arrivals"])
    data["horizon"] = projects / rate
    if variant == "shared":
        for team in data["teams"].values():
            team["focus"] = "shared"
    if variant == "standard":
        for template in data["templates"].values():
            for key in PROFILE_KEYS:
                template["value"].pop(key, None)
    return data


def measure(data: dict, replications: int) -> dict[str, dict[str, float]]:
    """Per policy: seconds per project (engine; engine + tables), mean projects, max queue."""
    scenario = scenario_from_dict(data, source="scale.yaml")
    setup = make_setup(scenario)
    categories = Categories.of(scenario)
    out = {p: {"engine": 0.0, "tables": 0.0, "projects": 0, "max_queue": 0} for p in scenario.policies}
    sampling, projects = 0.0, 0
    cache: dict = {}
    for replication in range(replications):
        started = time.perf_counter()
        world = sample_world(scenario, scenario.seed, replication, cache)
        sampling += time.perf_counter() - started
        projects += len(world.projects)
        for code, (name, policy) in enumerate(scenario.policies.items()):
            rules = build_rules(scenario, setup, name, policy, scenario.seed, replication)
            # The previous run's garbage is collected here, not inside the next rule's timing.
            gc.collect()
            started = time.perf_counter()
            record = Simulation(setup, world, rules).run()
            middle = time.perf_counter()
            record_tables(record, world, code, categories)
            ended = time.perf_counter()
            out[name]["engine"] += middle - started
            out[name]["tables"] += ended - middle
            out[name]["max_queue"] = max(out[name]["max_queue"], int(record.teams["max_queue"].max()))
    for row in out.values():
        row["engine"] /= projects
        row["tables"] /= projects
        row["projects"] = projects / replications
    out["(world sampling)"] = {"engine": sampling / projects, "tables": 0.0, "projects": projects / replications}
    return out


def report(title: str, data: dict, sizes: list[int], replications: int, variant: str = "") -> None:
    print(f"\n{title}")
    measure(sized(data, sizes[0], variant), 1)  # warm-up: caches, lazy imports
    results = {}
    for size in sizes:
        # As many projects simulated at every size: more replications of the small ones.
        count = max(replications, round(replications * sizes[-1] / size))
        started = time.perf_counter()
        results[size] = measure(sized(data, size, variant), count)
        print(f"  size {size}: {time.perf_counter() - started:.1f} s for {count} replications")
    small, large = sizes[0], sizes[-1]
    print(f"  {'rule':<18}" + "".join(
        f"{f'{s} proj: us/project':>22}{'(+tables)':>11}{'max queue':>10}" for s in sizes
    ) + f"{'growth':>9}{'(+tables)':>11}")  # fmt: skip
    for name in results[small]:
        row = f"  {name:<18}"
        for size in sizes:
            r = results[size][name]
            row += f"{r['engine'] * 1e6:22.1f}{(r['engine'] + r['tables']) * 1e6:11.1f}{r.get('max_queue', 0):10d}"
        a, b = results[small][name], results[large][name]
        growth = b["engine"] / a["engine"]
        with_tables = (b["engine"] + b["tables"]) / (a["engine"] + a["tables"])
        goal = " (goal <= 1.3x: " + ("met)" if growth <= 1.3 else "missed)") if name in GOALS else ""
        print(f"{row}{growth:8.2f}x{with_tables:10.2f}x{goal}")
    print("  mean projects per replication: " + ", ".join(
        f"{s}: {results[s]['fifo']['projects']:.0f}" for s in sizes))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(HERE / "scale.yaml"))
    parser.add_argument("--replications", type=int, default=2, help="at the largest size; more at smaller ones")
    parser.add_argument("--sizes", default="200,5000", help="expected projects per replication, comma-separated")
    parser.add_argument("--standard", action="store_true", help="also run with every value profile standard")
    parser.add_argument("--shared", action="store_true", help="also run with every team's focus shared")
    args = parser.parse_args(argv)
    data = yaml.safe_load(Path(args.scenario).read_text())
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; times are per project per replication")
    report("mixed value profiles (scale.yaml)", data, sizes, args.replications)
    if args.standard:
        report("standard value profiles only", data, sizes, args.replications, "standard")
    if args.shared:
        report("every team focus: shared", data, sizes, args.replications, "shared")


if __name__ == "__main__":
    main()
