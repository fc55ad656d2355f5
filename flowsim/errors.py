"""Exceptions raised for bad input.  Every message names where the problem is.

A problem reads ``FILE: path.to.key must be RULE, got VALUE`` (DESIGN section
10).  Paths use dots for mapping keys and brackets for list positions, as in
``projects[0].stages[1].effort.low``; values are shown the way they would be
written in YAML flow style, so the user can find them in the file.
"""

from __future__ import annotations

import datetime
import decimal
import difflib
import math
import numbers
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Union, get_args, get_origin

from pydantic import Field
from pydantic.fields import FieldInfo

# Shown values longer than this are cut: a message must stay one readable line.
_MAX_SHOWN = 100

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class FlowsimError(Exception):
    """Base class of every error flowsim raises on purpose (CLI exit code 2)."""


class Described(str):
    """A value written as a description ("nothing", "a directory"), shown unquoted."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


NOTHING = Described("nothing")


def each_once(names, option: str, kind: str, where: str = "") -> None:
    """Refuse a list of names (``--policy``, ``--project``, ``--team``) that repeats one: a
    repeat would be dropped or run twice without a word.  ``where`` prefixes the message
    (``FILE: ``)."""
    names = list(names)
    repeated = list(dict.fromkeys(n for i, n in enumerate(names) if n in names[:i]))  # in order, each once
    if repeated:
        raise FlowsimError(
            f"{where}{option} must name each {kind} once, got {', '.join(map(repr, repeated))} more than once"
        )


def whole_number(value: object, name: str, minimum: int) -> int:
    """``value`` as an int when it is a whole number of at least ``minimum`` (run options:
    replications, seed, workers); else a ``FlowsimError`` naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise FlowsimError(f"{name} must be a whole number of at least {minimum}, got {show(value)}")
    return int(value)


def show(value: object, *, as_read: bool = False) -> str:
    """``value`` as a user would write it in YAML flow style, cut to one short line.

    ``as_read``: the value is the file's own (not one pydantic converted), so a
    float is shown as a float even when it is whole (``seed: 3.0`` shows 3.0)."""
    text = _show(value, as_read)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _show(value: object, as_read: bool = False) -> str:
    if isinstance(value, Described):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.date, datetime.datetime)):  # YAML reads 2024-06-30 as a date
        return value.isoformat()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        # YAML reads ``3`` as an int and pydantic turns it into 3.0: show what was written.
        if not as_read and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_show_key(k)}: {_show(v, as_read)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v, as_read) for v in value) + "]"
    if hasattr(value, "model_dump"):  # a pydantic model, e.g. a distribution
        return _show(value.model_dump(by_alias=True, exclude_defaults=False))
    if isinstance(value, (int, str)):
        return repr(value)
    return repr(value)


def _show_key(key: object) -> str:
    return key if isinstance(key, str) and _SIMPLE_KEY.match(key) else _show(key)


def format_path(parts: Iterable[str | int]) -> str:
    """``("projects", 0, "stages", 1, "effort")`` -> ``projects[0].stages[1].effort``."""
    out = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _SIMPLE_KEY.match(part):
            out += f".{part}" if out else part
        elif not isinstance(part, str):  # a mapping key YAML read as true, null, a date...
            out += f"[{_show(part)}]"
        else:
            # A key with spaces or dots would make the path ambiguous: quote it.
            out += f"[{part!r}]"
    return out


def listing(names: Iterable[object], *, limit: int = 40) -> str:
    """``a, b, c``; a long list is cut so the message stays one line."""
    names = [str(n) for n in names]
    if not names:
        return "none"
    if len(names) > limit:
        names = [*names[:limit], f"... ({len(names) - limit} more)"]
    return ", ".join(names)


def closest(name: object, known: Iterable[object]) -> str | None:
    """The known name ``name`` is most likely a typo of (None when none is close)."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return close[0] if close else None


def one_of(names: Iterable[object], found: object) -> str:
    """``one of a, b, c``, with ``(did you mean 'b'?)`` when ``found`` is text close to one."""
    names = list(names)
    close = closest(found, names) if isinstance(found, str) else None
    return f"one of {listing(names)}" + (f" (did you mean {close!r}?)" if close else "")


def readable(x: float, *, rounding: str = "nearest") -> str:
    """A computed number (a bound) for a message: whole numbers with thousands separated,
    others to 6 significant figures (``192,307``, ``142.858``, ``0.000333334``, ``5.2e-05``).  ``rounding``
    "down" or "up" keeps a stated upper or lower bound true: a rate of at most 192,307.69
    reads "at most 192,307", since 192,308 would be refused."""
    if not math.isfinite(x) or x == 0:
        return show(x)
    exact = decimal.Decimal(repr(float(x)))
    everyday = 1e-4 <= abs(x) < 1e15  # else in scientific notation: 5.2e-05
    unit = decimal.Decimal(1).scaleb(min(exact.adjusted() - 5, 0) if everyday else exact.adjusted() - 5)
    mode = {"down": decimal.ROUND_FLOOR, "up": decimal.ROUND_CEILING}.get(rounding, decimal.ROUND_HALF_EVEN)
    rounded = exact.quantize(unit, rounding=mode)
    if not everyday:
        return f"{float(rounded):.6g}"
    text = f"{rounded:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: ``FILE: path.to.key must be RULE, got VALUE``.

    ``path`` is empty for problems with the file as a whole (missing, not YAML).
    ``value`` is the value found; a ``Described`` value is shown as plain text.
    """

    source: str
    path: str
    rule: str
    value: object
    as_read: bool = field(default=False, compare=False)  # ``value`` as the file has it (see ``show``)

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where} must be {self.rule}, got {show(self.value, as_read=self.as_read)}"


class ScenarioError(FlowsimError):
    """A scenario that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class NotImplementedFeature(FlowsimError):
    """A valid scenario feature the engine cannot simulate yet."""


# --------------------------------------------------------------------------
# pydantic validation errors -> problems
#
# pydantic reports where an error is with internal labels mixed into the
# location (``float``, ``tagged-union[...]``, ``function-after[...]``, a
# distribution's tag) and reports every branch of a union that failed.  Users
# need one problem per mistake, located by the keys they wrote, so the
# location is walked against the input data (labels are what the data does not
# contain) and the branches of a union are collapsed to the branch the input
# was evidently meant for.
# --------------------------------------------------------------------------

# Type names pydantic uses as location labels for union branches.
_TYPE_LABELS = {"float", "int", "bool", "str", "bytes", "list", "dict", "tuple", "set", "none", "any"}
_LABEL_PREFIXES = ("constrained-", "function-", "lax-", "json-", "tagged-", "nullable-", "literal-")

# Errors saying the input has the wrong shape for a union branch (rather than
# the right shape with a wrong detail): branches failing only this way were not
# the branch the user meant.
_SHAPE_ERRORS = {
    "float_type", "float_parsing", "int_type", "int_parsing", "int_from_float", "bool_type",
    "bool_parsing", "string_type", "model_type", "model_attributes_type", "dict_type", "list_type",
    "tuple_type", "literal_error", "is_instance_of", "none_required",
}  # fmt: skip

_SHAPE_WORDS = {
    "float": "a number",
    "int": "a whole number",
    "bool": "true/false",  # joined with other branches: "true/false or a number"
    "string": "text",
    "model": "a mapping",
    "dict": "a mapping",
    "list": "a list",
    "tuple": "a list",
}


def _is_label(part: object) -> bool:
    if not isinstance(part, str):
        return False
    return (
        part in _TYPE_LABELS
        or part.startswith(_LABEL_PREFIXES)
        or "[" in part
        or (part[:1].isupper() and part.isidentifier())  # a model class name
    )


@dataclass
class _Located:
    error: dict
    path: tuple  # keys and indices as the user wrote them
    site: tuple | None  # path of the first union the location went through
    branch: str | None  # which branch of that union


def _locate(error: dict, data: object) -> _Located:
    loc = error["loc"]
    path: list = []
    site = branch = None
    current: object = data
    i = 0
    while i < len(loc):
        part = loc[i]
        if isinstance(current, Mapping):
            part = _key_in(current, part)
        in_mapping = isinstance(current, Mapping) and part in current
        in_list = isinstance(current, (list, tuple)) and isinstance(part, int) and 0 <= part < len(current)
        if in_mapping or in_list:
            # A mapping key YAML read as a number is still a key, not a list position.
            # (true, null or a date stay as they are, shown as YAML writes them).
            is_number = isinstance(part, (int, float)) and not isinstance(part, bool)
            path.append(str(part) if in_mapping and is_number else part)
            current = current[part]
        elif part == "[key]":
            pass  # the mapping key itself is wrong; the path already ends at it
        elif (
            isinstance(current, Mapping) and not _is_label(part) and i + 1 < len(loc)
            and _key_in(current, loc[i + 1]) in current
        ):  # fmt: skip
            pass  # a level a before-validator added (a rule's flat parameters under ``params``)
        elif _is_label(part):
            if site is None:
                site, branch = tuple(path), part
            if part.startswith("tagged-union[") and i + 1 < len(loc):
                i += 1  # the next part is the tag, e.g. ``uniform``
                if branch == part:
                    branch = f"{part}/{loc[i]}"
        elif current is not None and not isinstance(current, Mapping) and isinstance(part, str):
            # A short form a before-validator reshaped: ``switching: weinberg`` is read as
            # {rule: weinberg}, ``switching: [[1, 1], ...]`` as {rule: table, table: [...]}.
            # The key is not the user's: the path stays at what they wrote.
            pass
        else:
            # A key the input lacks (a missing field): keep the key, there is no data below it.
            path.append(part)
            current = None
        i += 1
    return _Located(error, tuple(path), site, branch)


def _key_in(mapping: Mapping, part: object) -> object:
    """The key of ``mapping`` that pydantic's error location ``part`` names.

    pydantic reports a key YAML read as ``true`` as 1, and ``null`` or a date as
    its text ('None', '2024-01-01'): find the key the file has, so that messages
    show it as written.  ``part`` itself when nothing else matches."""
    if isinstance(part, str) and part in mapping:
        return part
    for key in mapping:
        if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
            continue
        if key == part or str(part) in (str(key), repr(key)):
            return key
    return part


def _is_shape(item: _Located) -> bool:
    kind = item.error["type"]
    if item.path != item.site:
        return False
    if kind == "union_tag_not_found":
        return not isinstance(item.error.get("input"), Mapping)
    return kind in _SHAPE_ERRORS


def _shape_word(item: _Located) -> str:
    if (item.branch or "").startswith("tagged-union["):
        return "a distribution {dist: NAME, ...}"
    kind = item.error["type"]
    if kind == "literal_error":
        return one_of(_expected(item.error), item.error.get("input"))
    return _SHAPE_WORDS.get(kind.split("_")[0], "valid")


def _collapse(items: list[_Located]) -> list[_Located] | tuple[tuple, str, object]:
    """Keep the errors of the branch the input was meant for, or describe the union."""
    branches: dict[str, list[_Located]] = {}
    for item in items:
        branches.setdefault(item.branch or "", []).append(item)
    meant = {b: errs for b, errs in branches.items() if not all(_is_shape(e) for e in errs)}
    if meant:
        return min(meant.values(), key=len)
    words = list(dict.fromkeys(_shape_word(errs[0]) for errs in branches.values()))
    rule = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    return (items[0].site, rule, items[0].error.get("input"))


def _expected(error: dict) -> list[str]:
    # pydantic writes "'week' or 'day'"; users read "week, day".
    expected = (error.get("ctx") or {}).get("expected", "")
    return re.findall(r"'([^']*)'", expected) or [expected]


def validation_problems(
    error: Exception,
    data: object,
    *,
    source: str,
    model: type | None = None,
    prefix: tuple = (),
    noun: str = "key",
) -> list[Problem]:
    """Translate a pydantic ``ValidationError`` into problems, one per mistake.

    ``data`` is the input that was validated (to name locations by the keys the
    user wrote), ``model`` the model it was validated against (to list allowed
    keys), ``prefix`` the path of ``data`` within the scenario file, and
    ``noun`` what a mapping key is called in messages ("key", "parameter").
    """
    located = [_locate(e, data) for e in error.errors(include_url=False)]
    found: list[tuple[tuple, str, object]] = []
    sites: dict[tuple, list[_Located]] = {}
    for item in located:
        if item.site is None:
            found.append(_describe(item, model, noun))
        else:
            sites.setdefault(item.site, []).append(item)
    for items in sites.values():
        kept = _collapse(items)
        if isinstance(kept, tuple):
            found.append(kept)
        else:
            found.extend(_describe(item, model, noun) for item in kept)
    # ``horizn: 156`` is one mistake: report the unknown key (did you mean 'horizon'?),
    # not also the missing horizon.  Only when the suggestion is exactly the missing key.
    meant = _misspelt(located, model)
    found = [(path, rule, value) for path, rule, value in found if not (value is NOTHING and path in meant)]
    problems = [Problem(source, format_path(prefix + path), rule, value, as_read=True) for path, rule, value in found]
    # Some branches report the same thing twice; values may be unhashable, so compare texts.
    return list({str(p): p for p in problems}.values())


def _describe(item: _Located, model: type | None, noun: str) -> tuple[tuple, str, object]:
    error, path = item.error, item.path
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    bound = next((ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx), None)
    number = "a whole number" if isinstance(bound, int) and not isinstance(bound, bool) else "a number"
    if kind == "missing":
        return path, "given", NOTHING
    if kind == "extra_forbidden":
        return path, _known_key(path[-1] if path else "", model, error["loc"][:-1], noun), path[-1]
    if error["loc"] and error["loc"][-1] == "[key]":
        return path, f"a name written as text ({_quote_hint(value)})", value
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
        return (*path, _discriminator(ctx)), one_of(tags, ctx.get("tag")), ctx.get("tag")
    if kind == "union_tag_not_found":
        tags = _tags(model, error["loc"])
        return (*path, _discriminator(ctx)), "given" + (f" (one of {listing(tags)})" if tags else ""), NOTHING
    rules = {
        "greater_than": f"{number} above {show(bound)}",
        "greater_than_equal": f"{number} of at least {show(bound)}",
        "less_than": f"{number} below {show(bound)}",
        "less_than_equal": f"{number} of at most {show(bound)}",
        "finite_number": "a finite number",
        "literal_error": one_of(_expected(error), value),
        "too_short": _length(ctx, "at least", "min_length"),
        "too_long": _length(ctx, "at most", "max_length"),
    }
    if kind in rules:
        return path, rules[kind], value
    if kind in _SHAPE_ERRORS:
        word = "true or false" if kind.startswith("bool") else _SHAPE_WORDS.get(kind.split("_")[0], "valid")
        if kind == "string_type" and (value is None or isinstance(value, (bool, int, float))):
            word = f"text ({_quote_hint(value)})"  # YAML read a plain scalar as a number, boolean or null
        return path, word, value
    if kind == "invalid_key":
        return path, f"a key written as text ({_quote_hint(value)})", value
    message = error["msg"]
    for lead in ("Value error, ", "Assertion failed, ", "Input should be "):
        if message.startswith(lead):
            return path, message[len(lead) :], value
    return path, f"valid ({message})", value


def _quote_hint(key: object) -> str:
    """How to write ``key`` as text in YAML."""
    if isinstance(key, bool):
        return "quote it: YAML reads unquoted yes, no, on, off, true and false as true or false"
    if key is None:
        return "quote it: YAML reads an unquoted null or ~ as nothing"
    if isinstance(key, int):
        return f"quote it: '{key}'"
    return "quote it as you wrote it"  # a float or a date: YAML has already changed its spelling


def _length(ctx: dict, word: str, key: str) -> str:
    count = ctx.get(key)
    if ctx.get("field_type") == "Dictionary":
        return f"a mapping with {word} {count} {'entry' if count == 1 else 'entries'}"
    return f"a list of {word} {count} {'item' if count == 1 else 'items'}"


def _discriminator(ctx: dict) -> str:
    return str(ctx.get("discriminator", "dist")).strip("'\"")


def _allowed_keys(model: type | None, loc: tuple) -> list[str] | None:
    where = _model_in(_type_at(model, loc)) if model is not None else None
    if where is None:
        return None
    refused = getattr(where, "refused_keys", frozenset())
    return [f.alias or name for name, f in where.model_fields.items() if name not in refused]


def _known_key(key: object, model: type | None, loc: tuple, noun: str) -> str:
    allowed = _allowed_keys(model, loc)
    if allowed is None:
        return f"a known {noun}"
    rule = f"a known {noun} (allowed: {listing(allowed, limit=30)})"
    close = closest(key, allowed)
    return rule[:-1] + f"; did you mean {close!r}?)" if close else rule


def _misspelt(located: list[_Located], model: type | None) -> set[tuple]:
    """Paths of the keys unknown keys were evidently meant to be (``horizn`` -> ``horizon``)."""
    meant = set()
    for item in located:
        if item.error["type"] == "extra_forbidden" and item.path:
            close = closest(item.path[-1], _allowed_keys(model, item.error["loc"][:-1]) or [])
            if close is not None:
                meant.add((*item.path[:-1], close))
    return meant


# The walk below follows a pydantic location through the model's type
# annotations, to find the model at that location (for its allowed keys) or a
# tagged union (for its tags).


def _unwrap(tp: object) -> tuple[object, str | None]:
    discriminator = None
    while get_origin(tp) is Annotated:
        tp, *meta = get_args(tp)
        for m in meta:
            if isinstance(m, FieldInfo) and isinstance(m.discriminator, str):
                discriminator = m.discriminator
    return tp, discriminator


def _union_args(tp: object) -> list | None:
    if get_origin(tp) in (Union, types.UnionType):
        return [a for a in get_args(tp) if a is not type(None)]
    return None


def _is_model(tp: object) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_fields")


def _tag_of(model: object, discriminator: str) -> object:
    field = model.model_fields.get(discriminator) if _is_model(model) else None
    args = get_args(field.annotation) if field is not None else ()
    return args[0] if args else None


def _type_at(root: object, loc: tuple) -> object:
    tp, i = root, 0
    while i < len(loc):
        tp, discriminator = _unwrap(tp)
        args = _union_args(tp)
        if args is not None:
            if discriminator is not None:
                tp = next((a for a in args if _tag_of(a, discriminator) == loc[i]), None)
                i += 1
            elif len(args) == 1:
                tp = args[0]
            else:
                label = str(loc[i])
                i += 1
                if label.startswith("tagged-union["):
                    tp = next((a for a in args if _unwrap(a)[1] is not None), None)
                else:
                    tp = next((a for a in args if _is_model(a) and a.__name__ in label), None)
            if tp is None:
                return None
            continue
        part = loc[i]
        i += 1
        if _is_model(tp):
            field = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            tp = field.annotation
            if isinstance(field.discriminator, str):
                tp = Annotated[tp, Field(discriminator=field.discriminator)]
            continue
        origin, args = get_origin(tp), get_args(tp)
        if origin in (list, set, frozenset) and args:
            tp = args[0]
        elif origin is tuple and args:
            tp = args[part] if isinstance(part, int) and part < len(args) and args[-1] is not ... else args[0]
        elif origin is dict and len(args) == 2:
            tp = args[0] if part == "[key]" else args[1]
        else:
            return None
    return tp


def _model_in(tp: object) -> type | None:
    tp, _ = _unwrap(tp)
    args = _union_args(tp)
    if args is not None and len(args) == 1:
        tp, _ = _unwrap(args[0])
    return tp if _is_model(tp) else None


def _tags(model: type | None, loc: tuple) -> list:
    if model is None:
        return []
    tp, discriminator = _unwrap(_type_at(model, loc))
    args = _union_args(tp) or []
    return [_tag_of(a, discriminator) for a in args] if discriminator else []
