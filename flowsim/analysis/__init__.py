"""Analyses built on paired runs (DESIGN sections 1 and 10).

``flowsim.analysis.whatif``: ``admit``, ``stop``, ``capacity`` and
``benefits``, the four questions of DESIGN section 1 (``capacity`` and
``benefits`` live in modules of their own and are re-exported there);
``flowsim.analysis.sweep``: ``sweep``, one metric over a grid of scenario
values.  Every analysis runs the scenarios it compares under one policy, with
the same seed and replications, so differences are paired world by world
(``flowsim.analysis.paired``).  Results are tidy DataFrames plus a
one-sentence answer in money.

Functions are reached through their modules (``whatif.admit``,
``sweep.sweep``), never re-exported here, so no function hides a module.
"""

from .paired import WhatIf
from .sweep import Sweep

__all__ = ["Sweep", "WhatIf"]
