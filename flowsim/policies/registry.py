"""The rule registry: name -> rule, for each of the three VMO decisions.

A scenario names rules, never import paths.  Each registered rule has a
pydantic parameter model (unknown parameters are errors) and a factory that
builds the rule for one simulation from its parameters and a ``RuleContext``.
``register`` is public: users add their own rules the same way the built-in
ones are added (see ``flowsim.policies.protocol`` for what each kind must do).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Kind = Literal["intake", "sequencing", "intervention"]
KINDS: tuple[Kind, ...] = ("intake", "sequencing", "intervention")


class NoParams(BaseModel):
    """Parameter model of a rule that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class RuleInfo:
    kind: Kind
    name: str
    params: type[BaseModel]
    factory: Callable[..., Any]
    doc: str = ""


_REGISTRY: dict[str, dict[str, RuleInfo]] = {kind: {} for kind in KINDS}


class UnknownRule(LookupError):
    def __init__(self, kind: str, name: str, known: list[str] | None = None):
        self.kind, self.name = kind, name
        self.known = known_rules(kind) if known is None else known
        super().__init__(f"unknown {kind} rule {name!r}; known: {', '.join(self.known)}")

    def __reduce__(self):
        # Raised on a Dask worker, it is pickled to the client: keep the worker's list of rules.
        return (UnknownRule, (self.kind, self.name, self.known))


def register(kind: Kind, name: str, params: type[BaseModel] = NoParams, *, replace: bool = False):
    """Decorator registering ``factory(params, context) -> rule`` under ``name``.

    ``params`` is a pydantic model (``extra="forbid"``) of the rule's parameters,
    validated when the scenario is loaded.  Registering a taken name raises
    unless ``replace=True``.
    """
    if kind not in _REGISTRY:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY[kind] and not replace:
            raise ValueError(f"{kind} rule {name!r} is already registered")
        _REGISTRY[kind][name] = RuleInfo(kind, name, params, factory, (factory.__doc__ or "").strip())
        return factory

    return decorate


def unregister(kind: Kind, name: str) -> None:
    _REGISTRY[kind].pop(name, None)


def lookup(kind: Kind, name: str) -> RuleInfo:
    _ensure_builtins()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        raise UnknownRule(kind, name) from None


def known_rules(kind: Kind) -> list[str]:
    _ensure_builtins()
    return sorted(_REGISTRY[kind])


# Installed packages offer rules under this entry-point group; each entry names a module
# that registers its rules on import, e.g. in the package's pyproject.toml:
#   [project.entry-points."flowsim.rules"]
#   mycompany = "mycompany.flowsim_rules"
ENTRY_POINT_GROUP = "flowsim.rules"
_plugins_loaded = False


def _ensure_builtins() -> None:
    # The built-in rules register themselves on import; importing them lazily
    # keeps this module free of cycles (the rules import the protocol).
    from . import builtin  # noqa: F401

    _load_plugins()


def _load_plugins() -> None:
    """Import every installed ``flowsim.rules`` entry point, once per process.

    Done at the first look-up rather than at import, so that a process that
    only reads results pays nothing, and so that every process that builds
    rules (the command line, a notebook, a pool or Dask worker) sees them."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    from ..errors import FlowsimError

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except ImportError as error:
            raise FlowsimError(
                f"the {ENTRY_POINT_GROUP} entry point {entry.name!r} must name an importable module, "
                f"got {entry.value!r} ({error})"
            ) from None


_IMPORTED: list[tuple[str, str]] = []  # (spec, folder) of every import_rules, for Dask workers


def imported_rules() -> tuple[tuple[str, str], ...]:
    """What ``import_rules`` imported in this process, as ``(spec, folder)`` pairs that
    ``import_rules(spec, folder)`` repeats in another process (a Dask worker)."""
    return tuple(_IMPORTED)


def import_rules(spec: str, folder: str | None = None) -> None:
    """Import the module of a user's own rules, which registers them: a ``.py`` file, or a
    module name importable from ``folder`` (default: the current one; ``flowsim --rules``).
    Importing the same spec again does nothing.

    Errors of finding and parsing the module are bad input (``FlowsimError``); an error
    the module's own code raises keeps its traceback, since it is the rule author's bug."""
    import importlib
    import importlib.util
    import os
    import sys
    from pathlib import Path

    from ..errors import FlowsimError

    folder = folder or os.getcwd()
    path = Path(folder, spec)
    key = (str(path.resolve()), folder) if path.suffix == ".py" else (spec, folder)
    if key in _IMPORTED:
        return
    problem = None
    try:
        if path.suffix == ".py":
            if not path.is_file():
                problem = "no such file"
            else:
                name = f"flowsim_rules_{path.stem}"
                module_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module  # so pool workers and pickling find it by name
                module_spec.loader.exec_module(module)
        else:
            if folder not in sys.path:
                sys.path.insert(0, folder)  # as ``python -m`` would: the user's folder
            importlib.import_module(spec)
    except SyntaxError as error:
        problem = f"SyntaxError at line {error.lineno}: {error.msg}"
    except ImportError as error:
        problem = str(error)
    if problem is not None:
        raise FlowsimError(f"--rules must be a .py file or an importable module of rules, got {spec!r} ({problem})")
    _IMPORTED.append(key)
