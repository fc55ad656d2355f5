"""The built-in rules of DESIGN section 7: names and parameter models.

Names and parameters are part of the product contract.  The behaviour lives
in ``intake.py``, ``sequencing.py`` and ``intervention.py``; this module only
binds names to factories so the registry can list and validate them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from . import intake, intervention, sequencing
from .registry import register


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class WipLimitParams(_Params):
    limit: Annotated[int, Field(ge=1)]


class TeamWipParams(_Params):
    limits: dict[str, Annotated[int, Field(ge=1)]] = Field(min_length=1)


class DrumParams(_Params):
    buffer: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    team: str | None = None


class ThresholdParams(_Params):
    min: Annotated[float, Field(allow_inf_nan=False)]


class CadenceParams(_Params):
    every: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    limit: Annotated[int, Field(ge=1)] | None = None


class ReviewParams(_Params):
    every: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    cancel_below: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0


register("intake", "admit_all")(intake.AdmitAll)
register("intake", "wip_limit", WipLimitParams)(intake.WipLimit)
register("intake", "team_wip", TeamWipParams)(intake.TeamWip)
register("intake", "drum", DrumParams)(intake.Drum)
register("intake", "threshold", ThresholdParams)(intake.Threshold)
register("intake", "cadence", CadenceParams)(intake.Cadence)

for _name, _rule in sequencing.BUILTIN.items():
    register("sequencing", _name)(_rule)

register("intervention", "review", ReviewParams)(intervention.Review)
