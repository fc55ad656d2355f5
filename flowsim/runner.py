"""Monte Carlo runs: every policy on the same worlds, in chunks, in parallel.

A chunk is a fixed range of replications (its bounds do not depend on the
number of workers), simulated under every selected policy on the same worlds
(common random numbers).  Workers write their own chunks; the parent keeps
the manifest.  Results are identical whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import UTC, datetime
from multiprocessing import get_context

import numpy as np
import pyarrow as pa
import scipy
import simpy

from . import __version__
from .engine.setup import build_rules, make_setup
from .engine.simulation import Simulation
from .errors import FlowsimError
from .scenario.model import Scenario
from .store import RunStore, chunk_name
from .tables import TABLES, Categories, record_tables
from .world import sample_world

DEFAULT_CHUNK = 25


def scenario_hash(scenario: Scenario) -> str:
    text = json.dumps(scenario.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def simulate_chunk(
    scenario: Scenario,
    policies: Sequence[str],
    seed: int,
    replications: Iterable[int],
    timeline_step: float | None = None,
) -> dict[str, pa.Table]:
    """Every output table for ``replications`` under ``policies``; pure and picklable."""
    setup = make_setup(scenario, timeline_step)
    categories = Categories.of(scenario)
    parts: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
    means: dict = {}
    for replication in replications:
        world = sample_world(scenario, seed, replication, means)
        for name in policies:
            rules = build_rules(scenario, setup, name, scenario.policies[name], seed, replication)
            record = Simulation(setup, world, rules).run()
            code = categories.policies.index(name)
            for table, rows in record_tables(record, world, code, categories).items():
                parts[table].append(rows)
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


def _work(args) -> tuple[str, dict[str, pa.Table]]:
    """Process-pool task: simulate a chunk, write it if a folder is given."""
    scenario, policies, seed, first, last, timeline_step, root = args
    tables = simulate_chunk(scenario, policies, seed, range(first, last + 1), timeline_step)
    name = chunk_name(first, last)
    if root is not None:
        RunStore(root).write_chunk(name, tables)
        return name, {"replications": tables["replications"]}
    return name, tables


def chunks_of(replications: int, size: int, start: int = 0) -> list[tuple[int, int]]:
    return [(first, min(first + size, replications) - 1) for first in range(start, replications, size)]


class RunState:
    """What the parent knows while a run is in progress (for the manifest and progress)."""

    def __init__(self, requested: int):
        self.requested = requested
        self.completed_chunks: list[str] = []
        self.completed_replications = 0


def run_chunks(
    scenario: Scenario,
    *,
    policies: Sequence[str],
    seed: int,
    chunks: list[tuple[int, int]],
    workers: int,
    timeline_step: float | None,
    root: str | None,
    on_chunk: Callable[[str, int, dict[str, pa.Table]], None],
) -> None:
    """Simulate ``chunks``; ``on_chunk(name, replications, tables)`` is called as each completes."""
    tasks = [(scenario, tuple(policies), seed, first, last, timeline_step, root) for first, last in chunks]
    sizes = {chunk_name(first, last): last - first + 1 for first, last in chunks}
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            name, tables = _work(task)
            on_chunk(name, sizes[name], tables)
        return
    # fork is cheap and shares the imported modules; scenarios are small to pickle.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
        pending = set()
        queue = list(tasks)
        try:
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    pending.add(pool.submit(_work, queue.pop(0)))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    name, tables = future.result()
                    on_chunk(name, sizes[name], tables)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def manifest_for(
    scenario: Scenario, *, seed: int, requested: int, policies: Sequence[str], timeline_step, started: float
) -> dict:
    return {
        "scenario": scenario.model_dump(mode="json", by_alias=True),
        "scenario_file": scenario.source,
        "scenario_hash": scenario_hash(scenario),
        "seed": seed,
        "replications_requested": requested,
        "replications_completed": 0,
        "completed_chunks": [],
        "partial": True,
        "policies": list(policies),
        "baseline": policies[0],
        "timeline_step": timeline_step if timeline_step is not None else scenario.timeline_step,
        "versions": {
            "flowsim": __version__,
            "numpy": np.__version__,
            "simpy": simpy.__version__,
            "scipy": scipy.__version__,
            "pyarrow": pa.__version__,
        },
        "started": datetime.fromtimestamp(started, UTC).isoformat(),
        "wall_seconds": 0.0,
    }


def resolve_policies(scenario: Scenario, names: Sequence[str] | None) -> list[str]:
    if not names:
        return list(scenario.policies)
    unknown = [n for n in names if n not in scenario.policies]
    if unknown:
        raise FlowsimError(
            f"--policy must be one of {', '.join(scenario.policies)}, got {', '.join(map(repr, unknown))}"
        )
    # Keep the scenario's order so the first selected policy is the baseline.
    return [n for n in scenario.policies if n in set(names)]


def default_workers() -> int:
    return os.cpu_count() or 1


def execute(
    scenario: Scenario,
    *,
    replications: int,
    seed: int | None = None,
    policies: Sequence[str] | None = None,
    workers: int | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    timeline_step: float | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Run ``replications`` of every selected policy; see ``flowsim.run`` for the public API."""
    from .results import Results  # pandas lives above this layer

    if replications < 1:
        raise FlowsimError(f"replications must be at least 1, got {replications}")
    seed = scenario.seed if seed is None else seed
    names = resolve_policies(scenario, policies)
    workers = default_workers() if workers is None else max(1, workers)
    # Chunk bounds never depend on the number of workers, so neither do the files.
    size = chunk_size or max(1, min(DEFAULT_CHUNK, -(-replications // 8)))
    make_setup(scenario, timeline_step)  # fail fast on unsupported features, before any worker starts
    started = time.time()
    chunks = chunks_of(replications, size)
    manifest = manifest_for(
        scenario, seed=seed, requested=replications, policies=names, timeline_step=timeline_step, started=started
    )
    manifest["chunk_size"] = size
    store = RunStore(out) if out is not None else None
    memory: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
    done_before = 0
    if store is not None:
        previous = store.read_manifest() if resume else None
        if previous is not None:
            _check_resumable(previous, manifest)
            size = previous.get("chunk_size", size)
            chunks = chunks_of(replications, size)
            manifest["completed_chunks"] = list(previous["completed_chunks"])
            manifest["started"] = previous["started"]
            completed = set(manifest["completed_chunks"])
            chunks = [c for c in chunks if chunk_name(*c) not in completed]
            done_before = sum(last - first + 1 for first, last in chunks_of(replications, size)) - sum(
                last - first + 1 for first, last in chunks
            )
            manifest["replications_completed"] = done_before
            store.remove_orphans(completed)
        store.prepare()
        store.write_manifest(manifest)
    if progress:
        progress(done_before, replications)

    def on_chunk(name: str, count: int, tables: dict[str, pa.Table]) -> None:
        manifest["completed_chunks"].append(name)
        manifest["replications_completed"] += count
        if store is None:
            for table, rows in tables.items():
                memory[table].append(rows)
        else:
            manifest["wall_seconds"] = round(time.time() - started, 3)
            store.write_manifest(manifest)
        if progress:
            progress(manifest["replications_completed"], replications)

    try:
        run_chunks(
            scenario,
            policies=names,
            seed=seed,
            chunks=chunks,
            workers=workers,
            timeline_step=timeline_step,
            root=str(store.root) if store else None,
            on_chunk=on_chunk,
        )
    finally:
        if store is not None:
            manifest["partial"] = manifest["replications_completed"] < replications
            manifest["completed_chunks"].sort()
            manifest["wall_seconds"] = round(time.time() - started, 3)
            store.write_manifest(manifest)
    if store is not None:
        return Results.load(store.root)
    tables = {name: _sorted(pa.concat_tables(parts)) for name, parts in memory.items()}
    manifest.update(partial=False, wall_seconds=round(time.time() - started, 3))
    return Results(tables, manifest=manifest)


def _sorted(table: pa.Table) -> pa.Table:
    """Rows by replication; within one, the fixed order a chunk writes them in (stable sort)."""
    if not table.num_rows:
        return table
    order = np.argsort(table.column("replication").to_numpy(), kind="stable")
    return table.take(pa.array(order))


def _check_resumable(previous: dict, manifest: dict) -> None:
    for key in ("scenario_hash", "seed", "policies", "replications_requested", "timeline_step"):
        if previous.get(key) != manifest.get(key):
            raise FlowsimError(
                f"--resume must continue the same run: {key} was {previous.get(key)!r}, now {manifest.get(key)!r}"
            )
