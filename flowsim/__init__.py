"""flowsim: Monte Carlo simulation of project portfolios on SimPy.

>>> import flowsim
>>> scenario = flowsim.load_scenario("scenarios/default.yaml")        # doctest: +SKIP
>>> results = flowsim.run(scenario, replications=200, seed=1)         # doctest: +SKIP
>>> results.summary(); results.compare()                              # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.4.0"

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .errors import FlowsimError, NotImplementedFeature, Problem, ScenarioError
from .policies import known_rules, register
from .policies.protocol import ADMIT, HOLD, REJECT, STOP, Action, RuleContext
from .scenario import load_scenario
from .scenario.model import Scenario

if TYPE_CHECKING:
    from .results import Results


def __getattr__(name: str):
    # ``Results`` pulls in pandas; loaded on first use so that the engine and the
    # scenario layer import without it (a worker or a validator never needs it).
    if name == "Results":
        from .results import Results

        return Results
    raise AttributeError(f"module 'flowsim' has no attribute {name!r}")


def run(
    scenario: Scenario | str | os.PathLike,
    *,
    replications: int | None = None,
    seed: int | None = None,
    policies: Sequence[str] | str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    timeline_step: float | None = None,
    target_ci: float | None = None,
    target_metric: str | None = None,
    max_replications: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Results:
    """Simulate every policy (or those named) on the same worlds; what ``flowsim run`` does.

    ``policies`` is a name or a list of names (the first in the file is the baseline).
    ``replications`` defaults to 100 (with ``target_ci``: the minimum, default 30);
    ``seed`` to the scenario's; ``workers`` to all cores.  ``scheduler`` is a Dask
    address or ``"local"`` (needs ``flowsim[dask]``).  With ``out`` the results are
    also written as a run folder, chunk by chunk (``resume=True`` completes an
    interrupted one).  ``target_ci`` runs until every policy's 95% CI half-width of
    the paired difference in ``target_metric`` is within that fraction of the
    baseline's mean, or ``max_replications`` (default 1,000) are done.  ``progress``
    is called with (replications done, planned).  Returns a ``Results`` with tidy
    DataFrames and their summaries.
    """
    from .runner import execute

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return execute(
        scenario,
        replications=replications,
        seed=seed,
        policies=policies,
        workers=workers,
        scheduler=scheduler,
        out=out,
        resume=resume,
        timeline_step=timeline_step,
        target_ci=target_ci,
        target_metric=target_metric,
        max_replications=max_replications,
        progress=progress,
    )


__all__ = [
    "ADMIT",
    "HOLD",
    "REJECT",
    "STOP",
    "Action",
    "FlowsimError",
    "NotImplementedFeature",
    "Problem",
    "Results",
    "RuleContext",
    "Scenario",
    "ScenarioError",
    "__version__",
    "known_rules",
    "load_scenario",
    "register",
    "run",
]
