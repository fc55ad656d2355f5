"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

import flowsim
from flowsim.policies import known_rules, unregister
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


KINDS = ("intake", "sequencing", "intervention")


@pytest.fixture
def registry_guard():
    """Unregister every rule a test adds, whatever happens in the test."""
    before = {kind: set(known_rules(kind)) for kind in KINDS}
    yield
    for kind in KINDS:
        for name in set(known_rules(kind)) - before[kind]:
            unregister(kind, name)
    assert {kind: set(known_rules(kind)) for kind in KINDS} == before


FLOWSIM = str(Path(sys.executable).with_name("flowsim"))


def run_in_terminal(*args: str) -> tuple[int, str]:
    """``flowsim ARGS`` with stderr on a pseudo-terminal; returns its exit code and what it drew."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([FLOWSIM, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=slave, env=env)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")
