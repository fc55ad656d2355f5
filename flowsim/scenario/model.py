"""The scenario file as validated pydantic models (DESIGN sections 2-7 and 11).

Every model forbids unknown keys, so a typo is an error, never silently ignored.
Field validators here check one value at a time; checks that span the scenario
(a stage naming a missing team, dependency cycles, ...) live in ``checks.py``.
All durations and dates are in the scenario's ``time_unit``; money is in the
scenario's currency, whatever it is.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .distributions import Quantity

Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Loss = Annotated[float, Field(ge=0, lt=1)]  # a flat switching curve's loss per extra task


class Strict(BaseModel):
    # Strict types: YAML's `true` or "3" is not silently a number (ints still fill floats).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RuleRef(Strict):
    """A rule named in a policy: ``name`` or ``{rule: name, ...parameters}``.

    Parameters are checked against the rule's own parameter model by the
    registry (``flowsim.policies``), after the whole file has parsed.
    """

    rule: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name_or_mapping(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"rule": data, "params": {}}
        # ``{rule, params}`` with nothing else is how Python code builds a reference
        # (``RuleRef(rule=..., params=...)``); any other mapping is the file's flat form,
        # where every key but ``rule`` is a parameter of the rule.
        if isinstance(data, dict) and not (set(data) == {"rule", "params"} and isinstance(data["params"], dict)):
            if "rule" not in data:
                # Messages read "<path> must be <this>, got <value>" (flowsim.errors).
                raise ValueError("a rule name or {rule: NAME, ...parameters}")
            params = {k: v for k, v in data.items() if k != "rule"}
            return {"rule": data["rule"], "params": params}
        if not isinstance(data, (dict, RuleRef)):
            raise ValueError("a rule name or {rule: NAME, ...parameters}")
        return data


class CapacityChange(Strict):
    at: Positive
    capacity: Annotated[int, Field(ge=0)]


class Switching(Strict):
    """A multitasking curve: a named table, ``flat`` with a ``loss``, or a user table."""

    rule: Literal["none", "weinberg", "wheelwright_clark", "flat", "table"]
    loss: Loss | None = None
    table: list[tuple[Positive, NonNegative]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_short_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"rule": data}
        if isinstance(data, list):
            data = {"rule": "table", "table": data}
        if isinstance(data, dict) and isinstance(data.get("table"), list):
            # YAML has no tuples: each [tasks, fraction] pair becomes one (validation is strict).
            data = {**data, "table": [tuple(row) if isinstance(row, list) else row for row in data["table"]]}
        if not isinstance(data, (dict, Switching)):
            raise ValueError(
                "one of none, weinberg, wheelwright_clark, flat, {rule: flat, loss: L} "
                "or a table [[tasks, fraction], ...]"
            )
        return data

    @model_validator(mode="after")
    def _parameters_match_rule(self):
        if self.rule == "flat" and self.loss is None:
            raise ValueError("{rule: flat, loss: L} (flat needs a loss, e.g. 0.17)")
        if self.rule != "flat" and self.loss is not None:
            raise ValueError(f"without loss for rule {self.rule} (loss applies only to flat)")
        if self.rule != "table" and self.table is not None:
            raise ValueError(f"without table for rule {self.rule} (write the table itself as switching)")
        if self.rule == "table":
            points = [k for k, _ in self.table or []]
            if not points or points != sorted(points) or len(set(points)) != len(points):
                raise ValueError("a table [[tasks, fraction], ...] with strictly increasing tasks")
            # Up to one task per unit there is no switching (f = 1 by definition): a point below
            # would not show in f(1) yet bend the curve just above one task.
            if points[0] < 1 or (points[0] == 1 and self.table[0][1] != 1):
                raise ValueError("a table whose tasks start at 1 or above, with fraction 1 at 1 task (f(1) = 1)")
        return self


class Team(Strict):
    capacity: Annotated[int, Field(ge=1)]
    cost_rate: NonNegative = 0.0
    capacity_changes: list[CapacityChange] = Field(default_factory=list)
    focus: Literal["single", "shared"] = "single"
    switching: Switching | None = None
    loss: Loss | None = None

    # Field validators (run in field order, after ``focus``) rather than a model
    # validator, so the message points at the key that is out of place.
    @field_validator("switching", "loss")
    @classmethod
    def _switching_needs_shared_focus(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value
        if info.field_name == "switching" and info.data.get("focus") != "shared":
            raise ValueError("set only with focus: shared (switching is how shared work slows down)")
        if info.field_name == "loss":
            switching = info.data.get("switching")
            if switching is None or switching.rule != "flat":
                raise ValueError("set only with switching: flat")
            if switching.loss is not None:  # two losses: one would be silently ignored
                raise ValueError(f"left out when switching gives its own loss ({switching.loss:g})")
        return value

    def switching_curve(self) -> Switching:
        """The effective curve: ``none`` unless set; a team-level ``loss`` feeds ``flat``."""
        if self.switching is None:
            return Switching(rule="none")
        if self.switching.rule == "flat" and self.switching.loss is None:
            return Switching(rule="flat", loss=self.loss)
        return self.switching

    @model_validator(mode="before")
    @classmethod
    def _flat_with_team_loss(cls, data: Any) -> Any:
        # ``switching: flat`` beside a team-level ``loss: 0.17`` is the short form
        # of ``switching: {rule: flat, loss: 0.17}``.
        if isinstance(data, dict) and data.get("switching") == "flat" and "loss" in data:
            data = dict(data)
            # ``loss: null`` (or ``loss:`` left blank) gives no loss: flat is then refused for
            # lacking one, as before, never run with the stand-in below.
            if data["loss"] is None or _is_loss(data["loss"]):
                data["switching"] = {"rule": "flat", "loss": data.pop("loss")}
            else:
                # A wrong loss is refused at its own key (teams.X.loss holds it, not
                # teams.X.switching); a stand-in keeps the curve from adding a second error.
                data["switching"] = {"rule": "flat", "loss": 0.0}
        return data


_LOSS = TypeAdapter(Loss, config=ConfigDict(strict=True))


def _is_loss(value: Any) -> bool:
    try:
        _LOSS.validate_python(value)
    except ValidationError:
        return False
    return True


class Stage(Strict):
    name: str | None = None
    team: str
    effort: Quantity
    estimate: Positive | None = None
    crew: Annotated[int, Field(ge=1)] = 1
    after: list[str] | None = None
    done: bool | NonNegative = False


class Value(Strict):
    """A business case: a benefit stream from delivery (DESIGN section 5)."""

    rate: Quantity = 0.0
    estimate: NonNegative | None = None
    life: Positive | None = None
    lump: Quantity = 0.0
    profile: Literal["standard", "window", "decay", "deadline"] = "standard"
    closes: NonNegative | None = None
    closes_in: NonNegative | None = None
    half_life: Positive | None = None
    due: NonNegative | None = None
    due_in: NonNegative | None = None
    penalty: Annotated[float, Field(ge=0, le=1)] | None = None
    fine: NonNegative | None = None


class _ProjectBody(Strict):
    name: str | None = None
    value: Value = Field(default_factory=Value)
    stages: list[Stage] = Field(min_length=1)
    promised: NonNegative | None = None
    business_value: NonNegative | None = None
    time_criticality: NonNegative | None = None
    risk_reduction: NonNegative | None = None
    job_size: Positive | None = None


class Project(_ProjectBody):
    id: str
    arrival: NonNegative = 0.0
    depends_on: list[str] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # YAML reads ``id: 42`` as an integer; an id is a label, so accept it as text.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("depends_on", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # ``depends_on: [42]`` names the project ``id: 42``, read as text above.
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value


class Template(_ProjectBody):
    """A project without id, arrival and dependencies, from which arrivals are drawn."""

    # Fields of a project a template may not set: the checks refuse them with a reason
    # ("left out in a template"), so a message listing the allowed keys leaves them out.
    refused_keys: ClassVar[frozenset[str]] = frozenset({"promised"})


class ArrivalStream(Strict):
    template: str
    rate: Positive
    start: NonNegative = 0.0
    end: NonNegative | None = None
    name: str | None = None

    @property
    def stream_name(self) -> str:
        return self.name if self.name is not None else self.template


class Policy(Strict):
    intake: RuleRef = Field(default_factory=lambda: RuleRef(rule="admit_all"))
    sequencing: RuleRef = Field(default_factory=lambda: RuleRef(rule="fifo"))
    intervention: RuleRef | None = None
    preempt: bool = False
    perfect_information: bool = False


def _default_policies() -> dict[str, Policy]:
    return {"baseline": Policy()}


class Scenario(Strict):
    name: str = "unnamed scenario"
    description: str | None = None
    time_unit: Literal["week", "day"] = "week"
    horizon: Positive
    discount_rate: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    estimation_error: NonNegative = 0.0
    seed: Annotated[int, Field(ge=0)] = 0
    timeline_step: Positive = 1.0
    teams: dict[str, Team] = Field(min_length=1)
    projects: list[Project] = Field(default_factory=list)
    templates: dict[str, Template] = Field(default_factory=dict)
    arrivals: list[ArrivalStream] = Field(default_factory=list)
    policies: dict[str, Policy] = Field(default_factory=_default_policies, min_length=1)

    # Where the scenario was read from, for messages; not a key of the file.
    _source: str = PrivateAttr(default="<scenario>")

    @property
    def source(self) -> str:
        return self._source

    @property
    def periods_per_year(self) -> int:
        return 52 if self.time_unit == "week" else 365

    @property
    def baseline(self) -> str:
        return next(iter(self.policies))


ScenarioLike = Scenario | str
