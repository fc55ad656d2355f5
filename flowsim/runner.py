"""Monte Carlo runs: every policy on the same worlds, in chunks, in parallel.

A chunk is a fixed range of replications (its bounds do not depend on the
number of workers or the backend), simulated under every selected policy on
the same worlds (common random numbers).  Workers write their own chunks; the
parent keeps the manifest and only the small per-replication metric table.
Results are identical whatever the number of workers or the backend: a local
process pool (``workers``) or a Dask cluster (``scheduler``, see
``flowsim.distributed``).

With ``target_ci`` the run stops at the first chunk boundary, in replication
order, where every policy's paired CI is narrow enough (``TargetTracker``), so
the number of replications is a function of the scenario, seed and options
only, never of which worker finished first.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import os
import pickle
import signal
import time
import traceback
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
from .engine.simulation import Simulation, paused_collector
from .errors import FlowsimError, each_once, show, whole_number
from .scenario.checks import timeline_step_rule
from .scenario.model import Scenario
from .store import RunStore, chunk_name
from .tables import TABLES, Categories, record_tables
from .target import TARGET_METRIC_ALONE, Target, TargetTracker, make_target
from .world import sample_world

DEFAULT_CHUNK = 25
DEFAULT_REPLICATIONS = 100


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
    cache: dict = {}  # what every replication of this scenario computes alike
    for replication in replications:
        with paused_collector():  # a replication's objects are many and short-lived
            world = sample_world(scenario, seed, replication, cache)
            for name in policies:
                rules = build_rules(scenario, setup, name, scenario.policies[name], seed, replication)
                record = Simulation(setup, world, rules).run()
                code = categories.policies.index(name)
                for table, rows in record_tables(record, world, code, categories).items():
                    parts[table].append(rows)
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


class WorkerError(RuntimeError):
    """An exception from a worker that could not travel back to the parent as itself
    (one whose ``__init__`` takes other arguments than its message cannot be unpickled):
    its type, message and traceback, as text."""


def _work(args) -> tuple[str, dict[str, pa.Table]]:
    """A task of any backend: simulate a chunk; with a folder, write it and return only its metrics."""
    scenario, policies, seed, first, last, timeline_step, root = args
    try:
        tables = simulate_chunk(scenario, policies, seed, range(first, last + 1), timeline_step)
    except FlowsimError:
        raise
    except Exception as error:  # a rule's own bug, say: the parent must see it, not a broken pool
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:
            raise WorkerError("".join(traceback.format_exception(error)).rstrip()) from None
        raise
    name = chunk_name(first, last)
    if root is not None:
        RunStore(root).write_chunk(name, tables)
        return name, {"replications": tables["replications"]}
    return name, tables


def chunks_of(replications: int, size: int, start: int = 0) -> list[tuple[int, int]]:
    return [(first, min(first + size, replications) - 1) for first in range(start, replications, size)]


def default_chunk_size(replications: int) -> int:
    # At least 8 chunks for small runs (progress, load balance), at most 25 replications each.
    return max(1, min(DEFAULT_CHUNK, -(-replications // 8)))


# ----------------------------------------------------------------- backends


def _init_worker(parent: int) -> None:
    """Pool worker set-up: Ctrl-C is the parent's to handle, and a killed parent takes its workers along."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Linux: deliver SIGKILL to this worker when the parent dies (kill -9 leaves no orphans).
    with contextlib.suppress(OSError, AttributeError):  # elsewhere there is no prctl
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop at once, running chunks included (Python 3.14's ``terminate_workers``)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = dict(getattr(pool, "_processes", None) or {})  # before shutdown clears it
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        if process.is_alive():
            process.terminate()
    for process in processes.values():
        process.join(timeout=5)


def _run_pool(tasks: list[tuple], workers: int, on_result: Callable[[str, dict], bool]) -> None:
    # fork is cheap and shares the imported modules (and any rule registered by the caller).
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("fork"), initializer=_init_worker, initargs=(os.getpid(),)
    )
    queue = list(tasks)
    pending: set = set()
    try:
        while queue or pending:
            # Submitted in chunk order, two per worker ahead: the first chunks finish first.
            while queue and len(pending) < 2 * workers:
                pending.add(pool.submit(_work, queue.pop(0)))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: f.result()[0]):
                if on_result(*future.result()):
                    queue.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    return
    except BaseException:
        # Ctrl-C or a failed chunk: do not wait for the running chunks (the manifest
        # does not list them, so --resume recomputes them).
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def run_chunks(
    scenario: Scenario,
    *,
    policies: Sequence[str],
    seed: int,
    chunks: list[tuple[int, int]],
    workers: int,
    timeline_step: float | None,
    root: str | None,
    on_chunk: Callable[[str, int, dict[str, pa.Table]], bool | None],
    client=None,
) -> None:
    """Simulate ``chunks``; ``on_chunk(name, replications, tables)`` is called as each
    completes (in completion order) and returns True to stop the run.  With a Dask
    ``client`` they run on its cluster, else in local processes."""
    tasks = [(scenario, tuple(policies), seed, first, last, timeline_step, root) for first, last in chunks]
    sizes = {chunk_name(first, last): last - first + 1 for first, last in chunks}

    def on_result(name: str, tables: dict[str, pa.Table]) -> bool:
        return bool(on_chunk(name, sizes[name], tables))

    if not tasks:
        return
    if client is not None:
        from .distributed import run_on_dask

        run_on_dask(_work, tasks, client=client, on_result=on_result)
    elif workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            if on_result(*_work(task)):
                return
    else:
        _run_pool(tasks, workers, on_result)


# --------------------------------------------------------------- manifest


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


def resolve_policies(scenario: Scenario, names: Sequence[str] | str | None) -> list[str]:
    """The selected policies in the scenario's order (the first is the baseline); all by default."""
    if not names:
        return list(scenario.policies)
    if isinstance(names, str):  # ``flowsim.run(..., policies="fifo")``: one name, not its letters
        names = [names]
    each_once(names, "--policy", "policy")
    unknown = [n for n in names if n not in scenario.policies]
    if unknown:
        raise FlowsimError(
            f"--policy must be one of {', '.join(scenario.policies)}, got {', '.join(map(repr, unknown))}"
        )
    # Keep the scenario's order so the first selected policy is the baseline.
    return [n for n in scenario.policies if n in set(names)]


def default_workers() -> int:
    return os.cpu_count() or 1


def check_options(
    scenario: Scenario,
    *,
    replications: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    policies: Sequence[str] | None = None,
    scheduler: str | None = None,
    target_ci: float | None = None,
    target_metric: str | None = None,
    max_replications: int | None = None,
) -> tuple[list[str], Target | None, int]:
    """Validate a run's options: the policies, the ``--target-ci`` settings (or None) and
    the number of replications planned (the maximum with a target).

    ``target_metric`` None is the default metric (``value_delivered``); given without
    ``target_ci`` it is refused, as it would be silently ignored."""
    if seed is not None:  # it roots the SeedSequence tree, which takes only whole numbers >= 0
        whole_number(seed, "seed (--seed)", 0)
    if workers is not None:
        whole_number(workers, "workers (--workers)", 1)
    names = resolve_policies(scenario, policies)
    if scheduler is not None:
        from .distributed import _distributed

        _distributed()  # Dask installed?
    if target_ci is not None:
        target = make_target(
            scenario, ci=target_ci, metric=target_metric, replications=replications, max_replications=max_replications
        )
        return names, target, target.max_replications
    if max_replications is not None:
        raise FlowsimError("--max-replications bounds a --target-ci run; give --target-ci too, or --replications")
    if target_metric is not None:
        raise FlowsimError(TARGET_METRIC_ALONE)
    total = (
        DEFAULT_REPLICATIONS if replications is None else whole_number(replications, "replications (--replications)", 1)
    )
    return names, None, total


def execute(
    scenario: Scenario,
    *,
    replications: int | None = None,
    seed: int | None = None,
    policies: Sequence[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    timeline_step: float | None = None,
    chunk_size: int | None = None,
    target_ci: float | None = None,
    target_metric: str | None = None,
    max_replications: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    replacing: Callable[[dict], None] | None = None,
):
    """Run every selected policy on the same worlds; see ``flowsim.run`` for the public API.

    ``replications`` defaults to 100.  With ``target_ci`` the run goes on chunk
    by chunk until the target is met or ``max_replications`` (default 1,000)
    are done, and ``replications`` is the minimum before stopping (default 30).
    ``scheduler`` (a Dask address or ``"local"``) replaces the local process pool;
    ``workers`` is then the size of a local cluster.  With ``out`` the tables are
    written there chunk by chunk and the returned ``Results`` reads them lazily.
    ``replacing(manifest)`` is called just before a fresh run (not ``resume``) replaces
    the run an ``out`` folder holds, with that run's manifest (a ``manifest.json``
    flowsim did not write is refused instead).
    """
    if resume and out is None:
        raise FlowsimError("--resume needs the run folder to complete (--out)")
    names, target, total = check_options(
        scenario, replications=replications, seed=seed, workers=workers, policies=policies, scheduler=scheduler,
        target_ci=target_ci, target_metric=target_metric, max_replications=max_replications,
    )  # fmt: skip
    seed = scenario.seed if seed is None else int(seed)
    workers = default_workers() if workers is None else int(workers)
    # Chunk bounds never depend on the number of workers, so neither do the files.
    size = chunk_size or default_chunk_size(total)
    step = scenario.timeline_step if timeline_step is None else timeline_step
    if (rule := timeline_step_rule(scenario.horizon, step)) is not None:
        where = f"{scenario.source}: timeline_step" if timeline_step is None else "timeline_step (--timeline-step)"
        raise FlowsimError(f"{where} must be {rule}, got {show(step)}")
    make_setup(scenario, timeline_step)  # fail fast on unsupported features, before any worker starts
    started = time.time()
    manifest = manifest_for(
        scenario, seed=seed, requested=total, policies=names, timeline_step=timeline_step, started=started
    )
    manifest["chunk_size"] = size
    if target is not None:
        manifest["target"] = {**target.settings(), "status": "running"}
    manifest["execution"] = {"backend": "dask" if scheduler else "processes", "workers": workers}
    if scheduler:
        manifest["execution"]["scheduler"] = scheduler
    # What the folder holds is checked before anything is started or touched: a run to resume,
    # a run to replace, or someone else's manifest.json (refused).
    store = RunStore(out) if out is not None else None
    previous = old = None
    if store is not None:
        store.check_folder()
        previous = store.read_manifest() if resume else None
        if previous is None:
            old = store.existing_manifest()
        else:
            _check_resumable(previous, manifest, store.root)
    fill = functools.partial(
        _fill, scenario, manifest, names=names, target=target, total=total, seed=seed, workers=workers, size=size,
        store=store, previous=previous, old=old, timeline_step=timeline_step, started=started, progress=progress,
        replacing=replacing,
    )  # fmt: skip
    if not scheduler:
        return fill(client=None)
    from .distributed import dask_client

    # Reach the cluster before the folder is touched: a wrong address must not cost the run it holds.
    with dask_client(scheduler, workers) as client:
        return fill(client=client)


def _fill(
    scenario: Scenario,
    manifest: dict,
    *,
    names: list[str],
    target,
    total: int,
    seed: int,
    workers: int,
    size: int,
    store: RunStore | None,
    previous: dict | None,
    old: dict | None,
    timeline_step: float | None,
    started: float,
    progress,
    replacing,
    client,
):
    """The part of ``execute`` that writes: prepare the folder (``previous``: the manifest of
    the run resumed; ``old``: of the run replaced), simulate, save the manifest."""
    from .results import Results  # pandas lives above this layer

    earlier_wall = 0.0
    if store is not None:
        if previous is None:
            if replacing is not None and old is not None:
                replacing(old)
            store.clear()  # a fresh run: no earlier run's tables, summaries or report left to mislead
        else:
            size = manifest["chunk_size"] = previous.get("chunk_size", size)
            manifest["completed_chunks"] = sorted(previous["completed_chunks"])
            manifest["started"] = previous["started"]
            earlier_wall = float(previous.get("wall_seconds", 0.0))
        # Files of chunks the manifest does not list (a killed run's, or an older run's) go.
        store.remove_orphans(set(manifest["completed_chunks"]))
        store.prepare()
    chunks = chunks_of(total, size)
    sizes = {chunk_name(*c): c[1] - c[0] + 1 for c in chunks}
    manifest["replications_completed"] = sum(sizes[n] for n in manifest["completed_chunks"])
    tracker = TargetTracker(target, names, Categories.of(scenario), chunks) if target is not None else None
    if tracker is not None and store is not None:
        for name in manifest["completed_chunks"]:  # a resumed run judges its earlier chunks again
            tracker.add(name, store.read_table("replications", [name]))
    done = set(manifest["completed_chunks"])
    todo = [] if tracker is not None and tracker.status else [c for c in chunks if chunk_name(*c) not in done]

    def save() -> None:
        manifest["wall_seconds"] = round(earlier_wall + time.time() - started, 3)
        store.write_manifest(manifest)

    if store is not None:
        save()
    memory: dict[str, dict[str, pa.Table]] = {}
    if progress:
        progress(manifest["replications_completed"], total)

    def on_chunk(name: str, count: int, tables: dict[str, pa.Table]) -> bool:
        manifest["completed_chunks"].append(name)
        manifest["replications_completed"] += count
        if store is None:
            memory[name] = tables
        else:
            save()
        if progress:
            progress(manifest["replications_completed"], total)
        return tracker.add(name, tables["replications"]) if tracker is not None else False

    try:
        run_chunks(
            scenario,
            policies=names,
            seed=seed,
            chunks=todo,
            workers=workers,
            timeline_step=timeline_step,
            root=str(store.root.resolve()) if store else None,
            on_chunk=on_chunk,
            client=client,
        )
    finally:
        finished = manifest["replications_completed"] >= total
        if tracker is not None and tracker.status is not None:
            # Chunks past the stopping point (simulated ahead by idle workers) are dropped.
            kept = [n for n in manifest["completed_chunks"] if n in sizes and _last(n) < tracker.stop]
            manifest["completed_chunks"] = kept
            manifest["replications_completed"] = sum(sizes[n] for n in kept)
            manifest["target"].update(tracker.status)
            finished = True
        manifest["completed_chunks"].sort()
        manifest["partial"] = not finished
        if store is not None:
            if finished:
                store.remove_orphans(set(manifest["completed_chunks"]))
            save()
    if progress and tracker is not None:
        progress(manifest["replications_completed"], manifest["replications_completed"])
    if store is not None:
        return Results.load(store.root)
    kept = sorted(n for n in memory if n in set(manifest["completed_chunks"]))  # names sort in replication order
    tables = {table: pa.concat_tables([memory[n][table] for n in kept]) for table in TABLES}
    manifest["wall_seconds"] = round(time.time() - started, 3)
    return Results(tables, manifest=manifest)


def _last(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def _check_resumable(previous: dict, manifest: dict, folder: os.PathLike | str = "the folder") -> None:
    if previous.get("scenario_hash") != manifest["scenario_hash"]:
        # Two hashes alone do not say which scenario the folder holds: name the files.
        was, now = previous.get("scenario_file"), manifest["scenario_file"]
        digest = f"scenario_hash {str(previous.get('scenario_hash'))[:8]}\u2026"
        if was is not None and os.path.normpath(str(was)) == os.path.normpath(str(now)):
            raise FlowsimError(
                f"--resume must continue the same run: {folder} holds a run of {was} as it was then ({digest}, "
                f"now {manifest['scenario_hash'][:8]}\u2026): the file changed since; start afresh, without --resume"
            )
        raise FlowsimError(
            f"--resume must continue the same run: {folder} holds a run of {was or 'another scenario'} "
            f"({digest}), not of {now}; or the file changed since"
        )
    for key in ("seed", "policies", "replications_requested", "timeline_step"):
        if previous.get(key) != manifest.get(key):
            raise FlowsimError(
                f"--resume must continue the same run: {key} was {previous.get(key)!r}, now {manifest.get(key)!r}"
            )
    # A new version of flowsim or of a library that draws or simulates may change the numbers:
    # chunks from two versions would make one run of two models.  (pyarrow only stores them.)
    for library in ("flowsim", "numpy", "scipy", "simpy"):
        was, now = previous.get("versions", {}).get(library), manifest["versions"][library]
        if was != now:
            raise FlowsimError(
                f"--resume must continue the same run: {library} version was {was!r}, now {now!r} "
                "(start the run afresh, without --resume)"
            )
    before = previous.get("target")
    now = manifest.get("target")
    # The whole stopping rule: a run written before ``judged_from`` (flowsim 0.3) is refused
    # above, by its version, since it judged its stop from its minimum on.
    was = {k: before.get(k) for k in Target.SETTINGS} if before else None
    new = {k: now.get(k) for k in Target.SETTINGS} if now else None
    if was != new:
        raise FlowsimError(f"--resume must continue the same run: target was {was!r}, now {new!r}")
