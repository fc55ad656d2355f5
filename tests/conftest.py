"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

import flowsim
from flowsim.policies import unregister
from flowsim.policies.protocol import Action, InterventionRule


class ScriptParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    script: list[tuple[float, str, str, str]]  # (time, action, project id, reason)


class Scripted(InterventionRule):
    """Test rule: returns ``Action(kind, project, reason)`` at the scripted times."""

    def decision_times(self, horizon):
        return sorted({at for at, *_ in self.params.script})

    def review(self, portfolio):
        return [Action(kind, pid, reason) for at, kind, pid, reason in self.params.script if at == portfolio.now]


@pytest.fixture
def scripted():
    """The name of an intervention rule that acts as its ``script`` parameter says."""
    flowsim.register("intervention", "test_scripted", params=ScriptParams, replace=True)(Scripted)
    yield "test_scripted"
    unregister("intervention", "test_scripted")
