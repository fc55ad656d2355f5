"""Reading a scenario: file or text -> YAML -> validated ``Scenario``.

Everything that can be wrong with the input becomes a ``Problem`` naming the
file, the key path, the rule and the value found; all of them are collected
and raised together as one ``ScenarioError`` (DESIGN section 10), so a user
fixes a file in one pass rather than one error per run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from ..errors import Described, Problem, ScenarioError, validation_problems
from .checks import check_scenario
from .model import Scenario

__all__ = ["load_scenario", "read_yaml", "scenario_from_dict"]


def load_scenario(path_or_text: str | os.PathLike | Mapping | Scenario, *, source: str | None = None) -> Scenario:
    """Load and validate a scenario.

    ``path_or_text`` is a path (``str`` or ``PathLike``) to a YAML file, YAML
    text (a ``str`` containing a line break), a mapping already parsed, or a
    ``Scenario`` (returned as is).  ``source`` names the input in messages; it
    defaults to the path as given, ``<text>`` or ``<dict>``.

    Raises ``ScenarioError`` listing every problem found.
    """
    if isinstance(path_or_text, Scenario):
        return path_or_text
    if isinstance(path_or_text, Mapping):
        return scenario_from_dict(path_or_text, source=source or "<dict>")
    data, source = read_yaml(path_or_text, source=source)
    return scenario_from_dict(data, source=source)


def scenario_from_dict(data: Any, source: str = "<dict>") -> Scenario:
    """Validate parsed scenario data (the mapping a YAML file holds) and cross-check it."""
    if data is None:
        raise ScenarioError([_whole(source, "a mapping of scenario keys (horizon, teams, ...)", "an empty file")])
    if not isinstance(data, Mapping):
        kind = {list: "a list", str: "a single text value"}.get(type(data), f"a single {type(data).__name__}")
        raise ScenarioError([_whole(source, "a mapping of scenario keys (horizon, teams, ...)", kind)])
    data = _plain(data)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        problems = validation_problems(error, data, source=source, model=Scenario)
        raise ScenarioError([*_project_file_hint(data, source), *problems]) from None
    scenario._source = source
    problems = check_scenario(scenario)
    if problems:
        raise ScenarioError(problems)
    return scenario


def _project_file_hint(data: Mapping, source: str) -> list[Problem]:
    """A file holding one project (for ``whatif admit --project``) validated as a scenario:
    say so, or its keys read as a list of unknown scenario keys."""
    hint = wrong_file_hint(data, source, "project")
    return [] if hint is None else [hint]


# What each kind of file has, what rules it out, what it must be, and the command it is for.
_FILE_KINDS = {
    "project": (("stages", "value"), "teams", "a scenario (horizon, teams, ...)",
                "a file holding one project is for flowsim whatif admit SCENARIO --project {file}"),
    "scenario": (("teams", "projects", "horizon"), "stages", "one project (id, stages, value, ...)",
                 "a scenario file is for flowsim whatif admit {file} --project PROJECT"),
}  # fmt: skip


def wrong_file_hint(data: object, source: str, looks_like: str) -> Problem | None:
    """One line for a file of the other kind (``looks_like``: "project" or "scenario") given
    where the other was expected, instead of a dozen unknown keys; None if it does not look so."""
    if not isinstance(data, Mapping):
        return None
    marks, unless, rule, command = _FILE_KINDS[looks_like]
    keys = [key for key in marks if key in data]
    if not keys or unless in data:
        return None
    file = source if not source.startswith("<") else "FILE"
    what = "one project" if looks_like == "project" else "a scenario"
    found = f"what looks like {what} ({', '.join(keys)}, no {unless})"
    return _whole(source, f"{rule}; {command.format(file=file)}", found)


def read_yaml(
    path_or_text: str | os.PathLike, *, source: str | None = None, kind: str = "scenario"
) -> tuple[Any, str]:
    """Parse a YAML file or text with the safe loader; return ``(data, source)``.

    A ``str`` with a line break is YAML text, any other ``str`` or a
    ``PathLike`` is a file path.  Raises ``ScenarioError`` for a missing,
    unreadable or malformed file; ``kind`` names what the file should be in
    the message ("an existing project file").
    """
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        source = source or "<text>"
        text = path_or_text
    else:
        path = Path(path_or_text)
        source = source or str(path_or_text)
        text = _read_text(path, source, kind)
    return _parse(text, source), source


def _plain(data: Any) -> Any:
    """``data`` with numpy scalars as the Python numbers they hold: validation is strict
    (``"3"`` or ``true`` is not a number) but a mapping built in a notebook from numpy
    values (``capacity: np.int64(3)``) means plain numbers."""
    if isinstance(data, Mapping):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_plain(value) for value in data)
    if isinstance(data, np.generic):
        return data.item()
    return data


def _whole(source: str, rule: str, found: str) -> Problem:
    """A problem with the input as a whole (no key path)."""
    return Problem(source, "", rule, Described(found))


def _read_text(path: Path, source: str, kind: str = "scenario") -> str:
    if path.is_dir():
        raise ScenarioError([_whole(source, f"a {kind} file", "a directory")])
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError([_whole(source, f"an existing {kind} file", "no such file")]) from None
    except OSError as error:
        found = f"an unreadable file ({error.strerror or error})"
        raise ScenarioError([_whole(source, f"a readable {kind} file", found)]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        found = Described(f"the byte 0x{raw[error.start]:02x} (save the file as UTF-8)")
        raise ScenarioError([Problem(source, f"line {line}", "UTF-8 text", found)]) from None


class _Loader(yaml.SafeLoader):
    """The safe loader, also recording keys repeated within one mapping.

    Plain PyYAML keeps the last of two equal keys and drops the first without a
    word; a scenario must never silently ignore a key.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self.repeated: list[tuple[yaml.Node, yaml.Node]] = []

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # ``<<: *base`` may override keys: that is its purpose
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        self.repeated.append((seen[key], key_node))
                    else:
                        seen[key] = key_node
                except TypeError:  # an unhashable key: the base loader reports it
                    pass
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads ``1e9`` or ``5E-3`` as text, since its floats need a dot;
# YAML 1.2 and every user read them as numbers, and so does a scenario.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_value(text: str) -> Any:
    """One YAML value read as a scenario file reads it (``2e6`` a number; safe tags only).
    Raises ``yaml.YAMLError`` on invalid YAML."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _parse(text: str, source: str) -> Any:
    if not text.strip():
        raise ScenarioError([_whole(source, "a mapping of scenario keys (horizon, teams, ...)", "an empty file")])
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as error:
        raise ScenarioError([_yaml_problem(error, text, source)]) from None
    finally:
        loader.dispose()
    if loader.repeated:
        raise ScenarioError(
            [
                Problem(
                    source,
                    f"line {second.start_mark.line + 1}",
                    f"a key used once in its mapping (first used at line {first.start_mark.line + 1})",
                    second.value,
                )
                for first, second in sorted(loader.repeated, key=lambda pair: pair[1].start_mark.line)
            ]
        )
    return data


def _yaml_problem(error: yaml.YAMLError, text: str, source: str) -> Problem:
    lines = text.splitlines()
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    reason = getattr(error, "problem", None) or str(error).splitlines()[0]
    if context:
        if context_mark is not None and (mark is None or mark.line >= len(lines)):
            # An error found at the end of the file started where the context did
            # (an unclosed quote or bracket): point there.
            mark = context_mark
        elif context_mark is not None and context_mark.line != mark.line:
            # The mistake is often where the context started (an unclosed bracket).
            context = f"{context} started at line {context_mark.line + 1}"
        reason = f"{context}: {reason}"
    if isinstance(error, yaml.constructor.ConstructorError) and "tag" in (reason or ""):
        rule = "plain YAML data (tags such as !!python/object are not allowed)"
    else:
        rule = f"valid YAML ({reason})"
    if mark is None:
        return Problem(source, "", rule, Described("a file that does not parse"))
    line = lines[mark.line].strip() if mark.line < len(lines) else ""
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    return Problem(source, where, rule, line if line else Described("the end of the file"))
