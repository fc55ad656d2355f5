"""Parameter sweeps: one metric over a grid of scenario values, on the same worlds.

``sweep(scenario, {"policies.wip5-cd3.intake.limit": [2, 4, 6, 8]})`` runs the
scenario once per value (per combination, when several keys are given: their
Cartesian product, in the order given), each with the same seed and
replications under one policy, and compares every setting with the first,
replication by replication (common random numbers, ``flowsim.analysis.paired``).

A KEY is a dotted path into the scenario mapping, as the file is written:
mapping keys (``teams.data.capacity``), list items by position
(``teams.data.capacity_changes.0.capacity``) or, for lists of projects,
stages and arrival streams, by ``id``, ``name`` (a stage's defaults to its
team) or ``template`` (``projects.crm.stages.migration.effort``).  Every part
but the last must exist; the last may be a key the file leaves out (its
default), and the edited scenario is validated like a file, so a misspelt
last key is reported too.  A rule written in short form (``intake:
admit_all``) is expanded to ``{rule: admit_all}`` when a key under it is set.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..errors import FlowsimError, listing, show
from ..format import count, money, number
from ..results import DIRECTIONS
from ..scenario.load import yaml_value
from ..scenario.model import Scenario
from ..stats import mean_ci
from .paired import MONEY_METRICS, Paired, Progress, prepare, with_ci

__all__ = ["Sweep", "parse_setting", "set_path", "sweep", "write_sweep"]

ScenarioLike = Scenario | str | os.PathLike | Mapping


@dataclass
class Sweep:
    """The outcome of :func:`sweep`.

    ``table``: one row per setting, in grid order: one column per KEY (its
    value), ``setting`` (``KEY=value, ...``), ``metric``, ``n``, ``mean``,
    ``ci_low``, ``ci_high`` (95% over replications), ``diff``,
    ``diff_ci_low``, ``diff_ci_high`` (paired difference from the first
    setting; 0 for the first), ``better_share`` (share of worlds where the
    setting does better than the first; NaN for a metric without a
    direction) and ``best``.  ``replications``: per setting and replication,
    the metric and its paired difference.  ``best``: the best setting as
    ``{KEY: value}`` (None when the metric has no better direction).
    ``parameter``: the column to plot against (the one KEY that varies, or ``setting``).
    """

    table: pd.DataFrame
    replications: pd.DataFrame
    best: dict[str, Any] | None
    answer: str
    metric: str
    parameter: str
    settings: dict
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.answer


def parse_setting(text: str) -> tuple[str, list[Any]]:
    """``"KEY=v1,v2"`` -> ``(KEY, [v1, v2])``, each value read as a YAML scalar
    (``4`` an int, ``0.5`` a float, ``cd3`` text); commas inside brackets or
    braces do not split (``[1, 2]`` is one value)."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise FlowsimError(f"--set must be KEY=v1,v2,... (e.g. policies.NAME.intake.limit=2,4,6), got {text!r}")
    parts, depth, current = [], 0, ""
    for char in values:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    parsed = []
    for part in parts:
        if not part.strip():
            raise FlowsimError(f"--set {key} must list values separated by commas, got an empty value in {text!r}")
        try:
            parsed.append(yaml_value(part))
        except yaml.YAMLError:
            raise FlowsimError(f"--set {key} values must be YAML scalars, got {part.strip()!r}") from None
    return key, parsed


def _items(node: list) -> list[str | None]:
    """How each item of a list can be named in a key path."""
    names = []
    for item in node:
        if isinstance(item, Mapping):
            label = item.get("id", item.get("name", item.get("team", item.get("template"))))
            names.append(None if label is None else str(label))
        else:
            names.append(None)
    return names


def set_path(data: dict, key: str, value: Any, source: str = "<scenario>") -> None:
    """Set ``value`` at the dotted path ``key`` of the scenario mapping ``data`` (in place)."""
    parts = key.split(".")
    if not all(parts):
        raise FlowsimError(f"{source}: --set KEY must be a dotted path such as teams.data.capacity, got {key!r}")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the scenario"
        if isinstance(node, dict):
            slot = part if part in node else next((k for k in node if str(k) == part), None)
            if last:
                node[part if slot is None else slot] = value
                return
            if slot is None:
                known = listing(map(str, node))
                raise FlowsimError(
                    f"{source}: --set key must be a path of keys in the scenario ({where} has no key {part!r}; "
                    f"known: {known}), got {key!r}"
                )
        elif isinstance(node, list):
            names = _items(node)
            slot = names.index(part) if part in names else None
            if slot is None and part.isdigit() and int(part) < len(node):
                slot = int(part)
            if slot is None:
                known = listing(n if n is not None else str(i) for i, n in enumerate(names))
                raise FlowsimError(
                    f"{source}: --set key must be a path of keys in the scenario ({where} has no item {part!r}; "
                    f"known: {known}), got {key!r}"
                )
            if last:
                node[slot] = value
                return
        else:  # pragma: no cover - guarded below
            break
        child = node[slot]
        if isinstance(child, str):
            # A rule in short form, ``intake: admit_all``: its parameters need the long form.
            child = node[slot] = {"rule": child}
        elif not isinstance(child, (dict, list)):
            raise FlowsimError(
                f"{source}: --set key must be a path of keys in the scenario ({'.'.join(parts[: depth + 1])} is "
                f"the value {show(child)}, which has no keys), got {key!r}"
            )
        node = child


def _grid(settings) -> list[tuple[str, list[Any]]]:
    if isinstance(settings, str):
        settings = [settings]
    if isinstance(settings, Mapping):
        grid = [(str(k), list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in settings.items()]
    else:
        grid = [parse_setting(s) for s in settings]
    if not grid:
        raise FlowsimError("--set must be given at least once (KEY=v1,v2,...)")
    keys = [k for k, _ in grid]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise FlowsimError(f"--set keys must differ, got {', '.join(repeated)} more than once")
    for key, values in grid:
        if not values:
            raise FlowsimError(f"--set {key} must have at least one value, got none")
        repeated_values = _repeated(values)
        if repeated_values:
            # Two equal settings run the same worlds twice: a row that only repeats another.
            shown = ", ".join(show(v) for v in repeated_values)
            raise FlowsimError(f"--set {key} values must differ, got {shown} more than once")
        if key == "seed":
            # Every value must meet the same worlds; a sweep of seeds would compare worlds, not settings.
            raise FlowsimError(
                "--set KEY must be a scenario setting, not seed (every value runs on the same worlds; "
                f"choose them with --seed), got seed={','.join(map(str, values))}"
            )
    return grid


def _same(a: Any, b: Any) -> bool:
    """Whether two --set values are the same setting (``4`` and ``4.0`` are; ``1`` and ``true`` are not)."""
    return isinstance(a, bool) == isinstance(b, bool) and bool(a == b)


def _repeated(values: list[Any]) -> list[Any]:
    """The values given more than once, each once, in order (values may be unhashable)."""
    out: list[Any] = []
    for i, value in enumerate(values):
        if any(_same(value, earlier) for earlier in values[:i]) and not any(_same(value, o) for o in out):
            out.append(value)
    return out


def _known_metrics(scenario: Scenario) -> list[str]:
    # Every metric of a replication row; those without a better direction get no "best".
    return [*DIRECTIONS, "value_ideal", "npv_ideal", *(f"utilisation.{team}" for team in scenario.teams)]


def _policy_of(key: str) -> str | None:
    """The policy a key edits (``policies.NAME...``), or None for a key every policy uses."""
    parts = key.split(".")
    return parts[1] if parts[0] == "policies" and len(parts) > 1 else None


def _policies_edited(keys: list[str]) -> list[str]:
    """The policies the keys edit (``policies.NAME...``), in order."""
    out: list[str] = []
    for key in keys:
        name = _policy_of(key)
        if name is not None and name not in out:
            out.append(name)
    return out


def _check_policy_keys(keys: list[str], paired: Paired) -> None:
    """Refuse keys that cannot change the result: only the simulated policy is run, so a key
    editing another policy changes nothing (a grid of identical rows and a "best" among them).
    Keys outside ``policies`` (teams, projects, ...) change every policy's run."""
    source = paired.source
    edited = _policies_edited(keys)
    if len(edited) > 1:  # whichever is simulated, the keys of the others would change nothing
        raise FlowsimError(
            f"{source}: --set keys must edit one policy, the one simulated, got keys of policies "
            f"{', '.join(edited)} (sweep each on its own, with --policy)"
        )
    simulated = paired.policy
    stray = [key for key in keys if _policy_of(key) not in (None, simulated)]
    if not stray:
        return
    (theirs,) = edited  # the one policy the keys edit, not the one simulated
    if len(stray) == len(keys):
        if theirs in paired.scenario.policies:
            hint = f"to sweep it, simulate it: --policy {theirs}"
        else:
            hint = "a policy the scenario does not define is never simulated"
        raise FlowsimError(
            f"{source}: --set keys must be able to change the simulated policy {simulated}, "
            f"got keys that edit only policy {theirs} ({hint})"
        )
    one = len(stray) == 1
    raise FlowsimError(
        f"{source}: --set {', '.join(stray)} must edit the simulated policy {simulated} or a part of the scenario "
        f"every policy uses, got {'a key' if one else 'keys'} of policy {theirs}, which would change nothing "
        f"(drop {'it' if one else 'them'}, or sweep that policy on its own with --policy)"
    )


def sweep(
    scenario: ScenarioLike,
    settings: Mapping[str, Sequence[Any]] | Sequence[str] | str,
    *,
    metric: str = "value_delivered",
    replications: int = 100,
    seed: int | None = None,
    policy: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Sweep:
    """Run every setting of the grid on the same worlds; compare ``metric`` with the first setting.

    ``settings`` maps KEY to its values, or is a list of ``"KEY=v1,v2"``
    strings (as ``--set``).  ``metric`` is a column of
    ``Results.replications`` (``value_delivered``, ``npv``,
    ``cycle_time_mean``, ``utilisation.<team>``, ...).  The policy simulated is
    ``policy``; by default the policy the keys edit when they edit exactly one
    (``policies.NAME...``), else the scenario's baseline.  Only the simulated
    policy is run, so keys that edit another policy are refused
    (``FlowsimError``, before anything is simulated), as are keys editing
    several policies; keys outside ``policies`` (teams, projects, ...) change
    every policy's run.  A key's values must differ.  The best
    setting has the highest mean, or the lowest for a metric where less is
    better (``value_delayed``, cycle times); metrics without a direction
    (utilisation, counts of cancelled or rejected projects) have none.
    """
    grid = _grid(settings)
    keys = [k for k, _ in grid]
    paired = prepare(scenario, policy=policy, replications=replications, seed=seed, workers=workers, progress=progress)
    notes: list[str] = []
    edited = _policies_edited(keys)
    if policy is None and len(edited) == 1 and edited[0] in paired.scenario.policies:
        paired.policy = edited[0]
    known = _known_metrics(paired.scenario)
    if metric not in known:
        raise FlowsimError(f"metric (--metric) must be one of {listing(known, limit=30)}, got {metric!r}")
    combos = list(itertools.product(*(values for _, values in grid)))
    scenarios = []
    for combo in combos:
        data = paired.copy_data()
        for key, value in zip(keys, combo, strict=True):
            set_path(data, key, value, paired.source)
        change = "--set " + ", ".join(f"{k}={show(v)}" for k, v in zip(keys, combo, strict=True))
        scenarios.append(paired.build(data, change))
    # After the keys are known to be paths of the scenario (a misspelt policy is named as such),
    # before anything is simulated.
    _check_policy_keys(keys, paired)
    values = []
    for index, (combo, variant) in enumerate(zip(combos, scenarios, strict=True), start=1):
        label = ", ".join(f"{k}={show(v)}" for k, v in zip(keys, combo, strict=True))
        results = paired.run(variant, f"{label} ({index}/{len(combos)})")
        frame = results.replications.sort_values("replication")
        values.append(frame[metric].to_numpy(dtype=float))
    direction = DIRECTIONS.get(metric, 0)
    # A key given one value is a fixed part of every setting: labels name only the keys that vary.
    varying = [k for k, v in grid if len(v) > 1] or keys
    rows, frames = [], []
    for combo, metric_values in zip(combos, values, strict=True):
        diff = metric_values - values[0]
        mean, low, high = mean_ci(metric_values)
        d_mean, d_low, d_high = mean_ci(diff)
        shown = {k: (v if _scalar(v) else show(v)) for k, v in zip(keys, combo, strict=True)}
        setting = ", ".join(f"{k}={show(v)}" for k, v in zip(keys, combo, strict=True) if k in varying)
        valid = diff[~np.isnan(diff)]
        better = float(np.mean(direction * valid > 0)) if direction and len(valid) else math.nan
        rows.append({
            **shown, "setting": setting, "metric": metric, "n": int(np.sum(~np.isnan(metric_values))),
            "mean": mean, "ci_low": low, "ci_high": high, "diff": d_mean, "diff_ci_low": d_low,
            "diff_ci_high": d_high, "better_share": better,
        })  # fmt: skip
        frames.append(pd.DataFrame({
            **{k: [v] * paired.replications for k, v in shown.items()}, "setting": setting,
            "replication": np.arange(paired.replications), metric: metric_values, "diff": diff,
        }))  # fmt: skip
    table = pd.DataFrame(rows)
    if len(rows):
        # The first setting is the reference: its paired difference is exactly 0.
        table.loc[0, ["diff", "diff_ci_low", "diff_ci_high"]] = 0.0
        table.loc[0, "better_share"] = math.nan
    table["best"] = False
    best = None
    means = table["mean"].to_numpy(dtype=float)
    if direction and not np.isnan(means).all():
        i = int(np.nanargmax(means) if direction > 0 else np.nanargmin(means))
        table.loc[i, "best"] = True
        best = {k: combos[i][j] for j, k in enumerate(keys)}
    answer = _sentence(table, keys, metric, direction, paired.policy, paired.replications)
    parameter = varying[0] if len(varying) == 1 else "setting"
    return Sweep(
        table=table,
        replications=pd.concat(frames, ignore_index=True),
        best=best,
        answer=answer,
        metric=metric,
        parameter=parameter,
        settings=paired.settings(keys=keys, metric=metric),
        notes=notes,
    )


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def metric_format(metric: str) -> Callable[[float], str]:
    """How a metric's values read: money, or three significant figures; 'n/a' when missing."""
    return money if metric in MONEY_METRICS else (lambda x: number(x, ".3g"))


def _sentence(table: pd.DataFrame, keys: list[str], metric: str, direction: int, policy: str, n: int) -> str:
    fmt = metric_format(metric)
    tail = f" (policy {policy}, {count(n, 'world')})."
    if np.isnan(table["mean"].to_numpy(dtype=float)).all():
        return f"{metric} is undefined in every world at every setting (e.g. nothing delivered): no best" + tail
    if not direction:
        top = table.iloc[int(np.nanargmax(table["mean"].to_numpy(dtype=float)))]
        return (
            f"{metric} has no better direction; it is highest at {top['setting']}: "
            f"{with_ci(top['mean'], top['ci_low'], top['ci_high'], fmt)}" + tail
        )
    best = table[table["best"]].iloc[0]
    text = f"Best {best['setting']}: {metric} {with_ci(best['mean'], best['ci_low'], best['ci_high'], fmt)}"
    if len(table) == 1:
        return text + tail
    if best.name != 0:
        first = table.iloc[0]
        if math.isnan(best["diff"]):
            # No world where both are defined: no paired difference to give (e.g. nothing delivered at the first).
            text += f"; {metric} is undefined at {first['setting']} in every world, so no paired difference"
        else:
            sign = "+" if best["diff"] > 0 else ""
            text += (
                f", {sign}{with_ci(best['diff'], best['diff_ci_low'], best['diff_ci_high'], fmt)} against "
                f"{first['setting']} (better in {best['better_share']:.0%} of worlds)"
            )
    else:
        # The next best among the settings where the metric is defined (NaN: e.g. nothing delivered).
        others = table.drop(index=0)
        others = others[~np.isnan(others["mean"].to_numpy(dtype=float))]
        if len(others):
            runner = others.iloc[int(np.argmax(direction * others["mean"].to_numpy(dtype=float)))]
            text += (
                f"; the next best, {runner['setting']}, differs by "
                f"{with_ci(runner['diff'], runner['diff_ci_low'], runner['diff_ci_high'], fmt)}"
            )
        else:
            text += f"; {metric} is undefined at every other setting"
    return text + tail


def write_sweep(result: Sweep, out: str | os.PathLike) -> list[str]:
    """Write ``sweep.csv``, ``sweep.png`` (the curve) and ``sweep.html`` (a self-contained
    page with the answer, the curve and the table as the console shows it) into the folder
    ``out``; returns one line per file written."""
    from .. import plots  # matplotlib only when a figure is drawn
    from ..pages import sweep_page

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(folder / "sweep.csv", index=False)
    direction = DIRECTIONS.get(result.metric, 0)
    best = "max" if direction > 0 else "min" if direction < 0 else None
    figure = plots.metric_vs_parameter(result.table, result.parameter, result.metric, best=best).figure
    figure.savefig(folder / "sweep.png", dpi=120)
    plots.plt.close(figure)
    (folder / "sweep.html").write_text(sweep_page(result, (folder / "sweep.png").read_bytes()))
    return [f"wrote {folder / name}" for name in ("sweep.csv", "sweep.html", "sweep.png")]
