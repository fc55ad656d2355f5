"""Runs on a Dask distributed cluster (``--scheduler ADDRESS|local``, DESIGN section 8).

The tasks are the runner's chunks (many replications each: one task per
replication spends its time in the scheduler) and a worker runs the same
``_work`` function as the local process pool, writing its own chunk files,
so the results are identical to a local run.  With a run folder, the workers
must see it at the same path (a shared filesystem on a remote cluster).
Dask workers are separate interpreters: a rule registered with
``flowsim.register`` must be registered there too (the local pool forks, so it
inherits the parent's registry).  Installed ``flowsim.rules`` entry points load
in every process by themselves; modules imported with ``--rules`` are imported
again on each worker present when the run starts (a remote worker must see the
file at the same path).

Dask is an optional extra (``pip install 'flowsim[dask]'``), imported only here
and only when a scheduler is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import FlowsimError

NEEDS_DASK = "--scheduler needs Dask: pip install 'flowsim[dask]'"
CONNECT_TIMEOUT = "10s"  # to reach an existing scheduler


def _distributed():
    try:
        import dask.distributed
    except ImportError as error:
        raise FlowsimError(NEEDS_DASK) from error
    return dask.distributed


@contextmanager
def dask_client(scheduler: str, workers: int) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a new ``LocalCluster`` for ``"local"``.

    A local cluster has ``workers`` single-threaded worker processes (the
    simulation holds the GIL, so threads would not run in parallel) and is
    closed on exit; an existing cluster is left running.
    """
    distributed = _distributed()
    cluster = None
    try:
        if scheduler == "local":
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # Workers' own logs stay quiet: a heartbeat racing the cluster's shutdown logs a
                # CommClosedError traceback now and then. Task errors still reach the client.
                silence_logs=logging.CRITICAL,
            )
            client = distributed.Client(cluster)
        else:
            try:
                client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as error:
                raise FlowsimError(
                    f"--scheduler must be the address of a running Dask scheduler or 'local', "
                    f"got {scheduler!r} ({error})"
                ) from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def run_on_dask(
    work: Callable[[tuple], tuple[str, dict]],
    tasks: Sequence[tuple],
    *,
    client: Any,
    on_result: Callable[[str, dict], bool],
) -> None:
    """Run ``work(task)`` for every task on the cluster of ``client`` (``dask_client``);
    ``on_result(name, tables)`` as each finishes, in completion order; it returns True to
    stop (pending tasks are cancelled).

    Tasks are submitted in order and at most two per worker thread are in flight,
    so the first chunks finish first and a stopped run wastes little.
    """
    from .policies.plugins import import_rules, imported_rules
    from .policies.registry import UnknownRule

    distributed = _distributed()
    for spec, folder in imported_rules():
        client.run(import_rules, spec, folder)
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values())
    ahead = 2 * max(1, threads)
    queue = list(tasks)
    submitted = []

    def submit():
        # pure=False: a chunk writes files, so Dask must not deduplicate or cache it.
        submitted.append(client.submit(work, queue.pop(0), pure=False))
        return submitted[-1]

    pending = distributed.as_completed([submit() for _ in range(min(ahead, len(queue)))])
    try:
        for future in pending:
            try:
                name, tables = future.result()
            except UnknownRule as error:  # the scenario validated here: the worker lacks the rule
                raise FlowsimError(
                    f"--scheduler must reach workers that know every rule of the scenario, got a worker "
                    f"without the {error.kind} rule {error.name!r} (install it there as a flowsim.rules "
                    "entry point, or pass --rules a file the workers see at the same path)"
                ) from None
            if on_result(name, tables):
                # Let the chunks already in flight finish: a cancelled task may still be
                # running on its worker and would write its files after the run ended.
                distributed.wait(submitted)
                return
            if queue:
                pending.add(submit())
    except BaseException:
        for future in submitted:
            future.cancel()
        raise
