"""The analyses' tables, read by people: each table's columns defined once, drawn as text or HTML.

``flowsim whatif ...`` and ``flowsim sweep`` print ``text_table(result, name)``
on the console; their ``--out`` pages (``whatif_<question>.html``,
``sweep.html``, embedded by a run's ``report.html``) show ``html_table`` of the
same columns, so both read alike: headers in words, times with their unit,
shares as percentages, money as 1.2M with a sign on changes, "n/a" where a
number is missing.  The CSV files written beside the pages keep the raw
columns: they are data for other tools.

``name`` is the file name of the analysis: ``whatif_admit``, ``whatif_stop``,
``whatif_capacity``, ``whatif_benefits`` or ``sweep``.  This module imports
neither pandas nor matplotlib at import time (``flowsim --help`` starts fast).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

from .format import count, money, number, signed_money

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["answer_table", "html_table", "sweep_page", "text_table", "whatif_page"]

Cell = Callable[["pd.Series"], str]
Columns = list[tuple[str, Cell]]


def pct(x: float | None) -> str:
    """A share (0-1) as a percentage, '89%'; 'n/a' when missing."""
    return number(x, ".0%")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def ci(fmt: Callable[[float], str], prefix: str = "", *, mean: str | None = None, missing: str = "") -> Cell:
    """A cell ``mean [low, high]`` from the columns ``<prefix>_mean`` (or ``mean``), ``<prefix>_ci_low``
    and ``<prefix>_ci_high`` (without a prefix: ``mean``, ``ci_low``, ``ci_high``); ``missing`` when the
    mean is, the mean alone when the interval is."""
    stem = f"{prefix}_" if prefix else ""
    mean = mean or f"{stem}mean"

    def cell(row: pd.Series) -> str:
        centre, low, high = row[mean], row[f"{stem}ci_low"], row[f"{stem}ci_high"]
        if _missing(centre):
            return missing
        if _missing(low) or _missing(high):
            return fmt(centre)
        return f"{fmt(centre)} [{fmt(low)}, {fmt(high)}]"

    return cell


def _setting(value: Any) -> str:
    """A swept value as written in YAML: true/false, null, 4, 0.5, a name; 'n/a' when missing."""
    import numpy as np

    if value is None:  # a swept `null` (e.g. a life without end), not a missing number
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if _missing(value) or (isinstance(value, np.floating) and np.isnan(value)):
        return "n/a"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


# --------------------------------------------------------------- the columns of each analysis


def _admit(result) -> tuple[pd.DataFrame, Columns, str]:
    unit = result.settings["time_unit"]
    table = result.table
    tol = 1e-9 * max(1.0, result.settings["horizon"])
    affected = table[(table["role"].isin(["initiative", "dependant"])) | (table["delay_mean"].abs() > tol)
                     | (table["cost_mean"].abs() > 1e-6)]  # fmt: skip
    columns = [
        ("project", lambda r: r["project"]),
        ("role", lambda r: r["role"]),
        (f"delay ({unit}s)", ci(number, "delay")),
        ("delayed in", lambda r: pct(r["p_delayed"]) if r["role"] not in ("initiative", "dependant") else ""),
        ("cost (value without - with)", ci(money, "cost")),
    ]
    unaffected = len(table) - len(affected)
    note = f"({count(unaffected, 'other project row')} unaffected: delay 0, cost 0)"
    return affected, columns, note if unaffected else ""


def _stop(result) -> tuple[pd.DataFrame, Columns, str]:
    return result.table, [
        ("project", lambda r: r["project"] + (f" (+{r['also_stopped']})" if r["also_stopped"] else "")),
        ("net change if stopped", ci(signed_money, "net")),
        ("own value lost", ci(money, "lost")),
        ("freed capacity brings", ci(signed_money, "freed")),
        ("better in", lambda r: pct(r["p_better"])),
    ], ""  # fmt: skip


def _capacity(result) -> tuple[pd.DataFrame, Columns, str]:
    delta = result.settings["delta"]
    return result.table, [
        ("team", lambda r: r["team"] + (" *" if r["constraint"] else "")),
        ("capacity", lambda r: f"{r['capacity']} -> {r['capacity'] + r['delta']}"),
        (f"value of {delta:+d}", ci(signed_money, "value_change")),
        ("per unit", lambda r: signed_money(r["value_per_unit_mean"])),
        ("better in", lambda r: pct(r["p_better"])),
        ("utilisation", lambda r: pct(r["utilisation"])),
        ("mean queue", lambda r: number(r["mean_queue"])),
    ], "* the constraint: where a unit of capacity is worth most, its 95% CI above zero" if any(
        result.table["constraint"]) else ""  # fmt: skip


def _benefits(result) -> tuple[pd.DataFrame, Columns, str]:
    unit = result.settings["time_unit"]
    return result.table, [
        ("project", lambda r: r["project"]),
        (f"target ({unit}s)", lambda r: f"{number(r['target'])} ({r['target_rule']})"),
        ("on time", lambda r: pct(r["p_on_time"])),
        (f"P50 delivery ({unit}s)", lambda r: number(r["p50_delivery"])),
        ("business case", lambda r: money(r["business_case"])),
        ("value delivered", ci(money, "value")),
        ("realised", lambda r: pct(r["p_realised"])),
    ], ""  # fmt: skip


def _sweep(result) -> tuple[pd.DataFrame, Columns, str]:
    from .analysis.sweep import metric_format

    metric = result.settings["metric"]
    fmt = metric_format(metric)
    unit = f" ({result.settings['time_unit']}s)" if metric.startswith("cycle_time") else ""
    signed = ci(lambda x: ("+" if x > 0 else "") + fmt(x), "diff", mean="diff", missing="n/a")
    return result.table, [
        *((key, (lambda r, k=key: _setting(r[k]))) for key in result.settings["keys"]),
        (metric.replace("_", " ") + unit, ci(fmt, missing="n/a")),
        ("vs first", lambda r: "reference" if r.name == 0 else signed(r)),
        ("better in", lambda r: "" if _missing(r["better_share"]) else pct(r["better_share"])),
        ("best", lambda r: "*" if r["best"] else ""),
    ], ""  # fmt: skip


_TABLES: dict[str, Callable[[Any], tuple[pd.DataFrame, Columns, str]]] = {
    "whatif_admit": _admit, "whatif_stop": _stop, "whatif_capacity": _capacity,
    "whatif_benefits": _benefits, "sweep": _sweep,
}  # fmt: skip

# The portfolio totals of a what-if (``result.totals``, rows ``metric``, ``mean``, ``ci_low``, ``ci_high``).
_TOTALS = {
    "initiative_value": ("the initiative's own value", money),
    "cost_to_others": ("value the other projects lose", money),
    "net": ("net change in value delivered", signed_money),
    "value_without": ("value delivered without the initiative", money),
    "value_with": ("value delivered with the initiative", money),
    "value_delivered": ("value delivered (today's portfolio)", money),
    "business_case": ("value promised by the business cases", money),
}
# Where an analysis's row means something narrower than the label above.
_TOTALS_OF = {"whatif_benefits": {"value_delivered": "value delivered by the listed projects"}}


def _totals_columns(name: str) -> Columns:
    labels = {metric: label for metric, (label, _fmt) in _TOTALS.items()} | _TOTALS_OF.get(name, {})

    def value(row: pd.Series) -> str:
        fmt = _TOTALS.get(row["metric"], ("", money))[1]
        if row["metric"] == "business_case":  # a sum of stated figures: no interval to give
            return fmt(row["mean"])
        return ci(fmt, missing="n/a")(row)

    return [
        ("portfolio", lambda r: labels.get(r["metric"], str(r["metric"]).replace("_", " "))),
        ("value [95% CI]", value),
    ]


def answer_table(result, name: str) -> tuple[pd.DataFrame, Columns, str]:
    """The rows shown, the columns (header, cell of a row) and a note under the table ('' for none)."""
    return _TABLES[name](result)


# --------------------------------------------------------------- drawing


def render_text(table: pd.DataFrame, columns: Columns) -> str:
    """A plain-text table: a header, then one line per row, columns left-aligned."""
    cells = [[header for header, _ in columns]]
    cells += [[str(get(row)) for _, get in columns] for _, row in table.iterrows()]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells)


def render_html(table: pd.DataFrame, columns: Columns) -> str:
    """The same table in HTML (every cell escaped), in the report's style."""
    head = "".join(f"<th>{escape(header)}</th>" for header, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(get(row)))}</td>" for _, get in columns) + "</tr>"
        for _, row in table.iterrows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_table(result, name: str) -> str:
    """The console table of an analysis, its note below."""
    rows, columns, note = answer_table(result, name)
    return render_text(rows, columns) + (f"\n{note}" if note else "")


def html_table(result, name: str) -> str:
    """The page's table of an analysis, its note below."""
    rows, columns, note = answer_table(result, name)
    return render_html(rows, columns) + (f"<p class='sub'>{escape(note)}</p>" if note else "")


# --------------------------------------------------------------- pages


# Per what-if: the ranked column drawn (a forest of means with 95% CIs), its rows, axis label, title, caption.
_FIGURES = {
    "whatif_capacity": (
        "value_change", "team", lambda r: r.table,
        "change in value delivered (95% CI)", "Value of the capacity change, per team",
        "Each dot is the paired change in value delivered when that team gets the change, in the same worlds; "
        "the bar is its 95% CI: green when the whole interval is a gain, grey when it straddles zero.",
    ),
    "whatif_stop": (
        "net", "project", lambda r: r.table,
        "net change in portfolio value if stopped now (95% CI)", "Stopping a project: what the portfolio gains",
        "Top first: the project we would miss least. Net = what the freed capacity brings the others minus the "
        "project's own lost value; right of zero, stopping it pays.",
    ),
    "whatif_admit": (
        "cost", "project", lambda r: r.table[r.table["role"] != "initiative"],
        "value delayed by the initiative (95% CI)", "What the initiative delays, per project",
        "Each dot is the value another project loses, in the same worlds, when the initiative is admitted; "
        "the bar is its 95% CI.",
    ),
}  # fmt: skip


def _figure(result, name: str) -> str:
    """The what-if's ranked answer as an embedded figure ('' for kinds without one)."""
    spec = _FIGURES.get(name)
    if spec is None:
        return ""
    from . import plots
    from .report import embed_figure

    column, label, rows, xlabel, title, caption = spec
    shown = rows(result)
    if not len(shown):
        return ""
    ax = plots.ranked_effects(shown, column, label=label, xlabel=xlabel, title=title)
    html = embed_figure(ax.figure, title, caption)
    plots.plt.close(ax.figure)
    return html


def facts(settings: dict) -> str:
    """What an analysis ran: 'policy P, 100 paired worlds, seed 1; money over the horizon (156 weeks), [95% CI]'."""
    if "horizon" in settings.get("keys", ()):  # a sweep of the horizon itself
        over = "each setting's horizon"
    else:
        over = f"the horizon ({settings['horizon']:g} {settings['time_unit']}s)"
    from .analysis.paired import MONEY_METRICS

    metric = settings.get("metric")  # a sweep's: money or not
    amounts = "money" if metric is None or metric in MONEY_METRICS else metric.replace("_", " ")
    return (
        f"policy {settings['policy']}, {count(settings['replications'], 'paired world')}, seed {settings['seed']}; "
        f"{amounts} over {over}, [95% CI]"
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _notes(result) -> str:
    notes = "".join(f"<li>{escape(note)}</li>" for note in result.notes)
    return f"<ul>{notes}</ul>" if notes else ""


def whatif_page(result, name: str) -> str:
    """A what-if's answer, figure and tables as a self-contained page in the report's style."""
    from .report import analysis_page

    settings = result.settings
    title = f"flowsim {name.replace('_', ' ')}: {settings['scenario']}"
    tables = [_figure(result, name), html_table(result, name)]
    totals = getattr(result, "totals", None)
    if totals is not None and len(totals):
        tables.append("<h3>Portfolio</h3>" + render_html(totals, _totals_columns(name)))
    rows = "team" if name == "whatif_capacity" else "project"
    return analysis_page(
        title,
        f"<p class='sub'>{escape(_sentence(facts(settings)))}</p><p><strong>{escape(result.answer)}</strong></p>"
        f"<h3>By {rows}</h3>{''.join(tables)}{_notes(result)}",
        settings.get("scenario_hash"),
    )


def sweep_page(result, png: bytes | None) -> str:
    """A sweep's answer, curve (``png``, as written to sweep.png; None: no figure) and table as a page."""
    from .report import analysis_page, embed_png

    figure = ""
    if png:
        caption = (
            f"Mean {result.metric} over replications for each value of {result.parameter}, with its 95% CI; "
            "every value was simulated on the same worlds, so differences between points are paired."
        )
        figure = embed_png(base64.b64encode(png).decode("ascii"), f"{result.metric} against {result.parameter}",
                           caption)  # fmt: skip
    body = (
        f"<p class='sub'>{escape(_sentence(facts(result.settings)))}</p><p><strong>{escape(result.answer)}</strong></p>"
        f"{figure}<h3>Values</h3>{html_table(result, 'sweep')}{_notes(result)}"
    )
    return analysis_page(f"flowsim sweep: {result.parameter}", body, result.settings.get("scenario_hash"))
