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
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"a rule's name must be text without surrounding spaces, got {name!r}")
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise TypeError(f"params of {kind} rule {name!r} must be a pydantic model class, got {params!r}")

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(factory):
            raise TypeError(f"{kind} rule {name!r} must be a class or function (factory(params, context)), "
                            f"got {factory!r}")  # fmt: skip
        if name in _REGISTRY[kind] and not replace:
            raise ValueError(f"{kind} rule {name!r} is already registered (pass replace=True to replace it)")
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


def _ensure_builtins() -> None:
    # The built-in rules register themselves on import; importing them lazily
    # keeps this module free of cycles (the rules import the protocol).
    from . import builtin  # noqa: F401
    from .plugins import load_entry_points

    load_entry_points()
