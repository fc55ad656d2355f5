"""``report.html``: one self-contained page per run folder (DESIGN section 9).

The page embeds its figures as base64 PNG and its CSS inline, and fetches
nothing from the network.  Every text taken from the scenario (names,
descriptions, policy and team names) is HTML-escaped.  Money in the
scenario's currency, times in its time unit.

``observed_constraint`` lives here, not in ``flowsim.plots``, so that code
without matplotlib can rank teams; this module imports matplotlib only inside
``write_report``.
"""

from __future__ import annotations

import base64
import io
import math
import os
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from .format import money, span
from .report_data import ReportData

__all__ = ["embed_figure", "embed_png", "observed_constraint", "write_report"]


def observed_constraint(teams_df: pd.DataFrame, team_timeline_df: pd.DataFrame, policy: str | None = None):
    """Rank teams by how much they hold the portfolio back, with the evidence (ex post).

    ``teams_df`` is ``Results.teams`` (columns ``team``, ``utilisation``,
    ``mean_queue``, ``max_queue`` per policy and replication) and
    ``team_timeline_df`` is ``Results.team_timeline`` (``team``, ``queue`` per
    timeline point); both restricted to ``policy`` when given, else pooled.

    Returns one row per team, most constraining first, with columns:
    ``team``; ``utilisation`` (mean over replications of busy capacity-time /
    capacity-time, 0-1); ``mean_queue`` (mean over replications of the
    time-weighted number of stages waiting; on a shared team, in progress beyond one per
    unit); ``max_queue`` (largest queue seen in any replication); ``queue_share`` (share of timeline points, over all
    replications, at which the team had a queue, 0-1); ``score`` (sum of the
    team's ranks by utilisation and by mean queue, 1 = highest; lower is more
    constraining); ``constraint`` (True for the first row only).  Ties on the
    score go to the longer mean queue, then the higher utilisation: waiting
    work, not busyness alone, is what delays value.
    """
    teams_df = _only(teams_df, policy)
    team_timeline_df = _only(team_timeline_df, policy)
    evidence = (
        teams_df.assign(team=teams_df["team"].astype(str))
        .groupby("team")
        .agg(utilisation=("utilisation", "mean"), mean_queue=("mean_queue", "mean"), max_queue=("max_queue", "max"))
    )
    # ``queued``, when given, is already the share of replications with a queue at each point
    # (flowsim.report_data's means); else each row says whether its queue was non-empty.
    queued = team_timeline_df["queued"] if "queued" in team_timeline_df else team_timeline_df["queue"] > 0
    queued = team_timeline_df.assign(team=team_timeline_df["team"].astype(str), queued=queued)
    evidence["queue_share"] = queued.groupby("team")["queued"].mean().reindex(evidence.index)
    ranks = evidence["utilisation"].rank(ascending=False, method="min", na_option="bottom") + evidence[
        "mean_queue"
    ].rank(ascending=False, method="min", na_option="bottom")
    evidence["score"] = ranks
    evidence = evidence.sort_values(["score", "mean_queue", "utilisation"], ascending=[True, False, False])
    evidence = evidence.reset_index()
    evidence["constraint"] = evidence.index == 0
    return evidence


def _only(frame: pd.DataFrame, policy: str | None) -> pd.DataFrame:
    return frame if policy is None else frame[frame["policy"] == policy]


def embed_figure(fig, alt: str, caption: str = "") -> str:
    """A matplotlib figure as an ``<figure>`` with a base64 PNG and an optional caption (HTML, escaped)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return embed_png(base64.b64encode(buffer.getvalue()).decode("ascii"), alt, caption)


def embed_png(data: str, alt: str, caption: str = "") -> str:
    """A base64-encoded PNG (``data``) as an ``<figure>`` with an optional caption (HTML, escaped)."""
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">{text}</figure>'


# --------------------------------------------------------------------------- the page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f;
max-width:1100px;margin:0 auto;padding:1.5rem 2rem 4rem;line-height:1.45;background:#fff}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:2px solid #e4e4e4;padding-bottom:.2rem}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border-bottom:1px solid #e4e4e4;padding:.35rem .7rem;text-align:right;vertical-align:top}
th{background:#f5f6f8}td:first-child,th:first-child{text-align:left}
.ci{display:block;color:#666;font-size:.8rem;white-space:nowrap}
.facts td{text-align:left}.facts td:first-child{color:#555;padding-right:1.5rem}
.alert{background:#fdecea;border:2px solid #c62828;color:#7f1010;padding:.8rem 1rem;border-radius:6px;
font-weight:600;margin:1rem 0}
.ok{color:#2e7d32}.bad{color:#c62828}
ul.verdicts li{margin:.3rem 0}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:.9rem;margin-top:.3rem}
nav a{margin-right:1rem}code{background:#f3f3f3;padding:0 .2rem}
"""

SUMMARY_METRICS = [
    ("value_delivered", "Value delivered", money),
    ("value_delayed", "Value delayed", money),
    ("npv", "NPV", money),
]


# The part of a what-if or sweep page that the run's report embeds as a section.
SECTION_START, SECTION_END = "<!-- flowsim:section -->", "<!-- /flowsim:section -->"
_SCENARIO_META = "flowsim-scenario"
_ANALYSIS_TITLES = {
    "whatif_admit": "What if we admit it?",
    "whatif_stop": "Which project would we miss least?",
    "whatif_capacity": "Where are we constrained, and what is relaxing it worth?",
    "whatif_benefits": "Are the promised benefits on track?",
    "sweep": "Sweep",
}


def analysis_page(title: str, body: str, scenario_hash: str | None = None) -> str:
    """A what-if or sweep page: self-contained, in the report's style, its ``body`` (HTML,
    escaped by the caller) marked as the section a run's report embeds.  ``scenario_hash``
    (``flowsim.runner.scenario_hash`` of the scenario analysed) lets a run's report embed
    the page only when the run simulated that same scenario."""
    stamp = f"<meta name='{_SCENARIO_META}' content='{escape(scenario_hash)}'>" if scenario_hash else ""
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{stamp}<title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{SECTION_START}{body}{SECTION_END}"
        "</body></html>\n"
    )


def analysis_sections(run_dir, scenario_hash: str | None = None) -> list[tuple[str, str]]:
    """``(title, html)`` of each what-if or sweep page that ``--out`` wrote into ``run_dir``
    (``whatif_<question>.html``, ``sweep.html``), in the order of the questions.

    With ``scenario_hash`` (the run's), a page made from another scenario, or from a
    version that did not record its scenario, is left out, and a last section names
    it: a folder reused for a new run must not present an old analysis as this run's.
    """
    run_dir = Path(run_dir)
    sections, foreign = [], []
    for name, heading in _ANALYSIS_TITLES.items():
        path = run_dir / f"{name}.html"
        if not path.is_file():
            continue
        page = path.read_text(encoding="utf-8")
        start, end = page.find(SECTION_START), page.find(SECTION_END)
        if start < 0 or end <= start:  # not a page of this kind
            continue
        if scenario_hash is not None and _page_scenario(page) != scenario_hash:
            foreign.append(path.name)
            continue
        sections.append((heading, page[start + len(SECTION_START) : end]))
    if foreign:
        listed = ", ".join(escape(name) for name in foreign)
        sections.append((
            "Analyses not included",
            f"<p class='alert'>{listed} in this folder analysed another scenario than this run's "
            "(or an earlier version of it): run the analysis again with <code>--out</code> this folder "
            "to include it.</p>",
        ))  # fmt: skip
    return sections


def _page_scenario(page: str) -> str | None:
    """The scenario hash an analysis page was stamped with, or None."""
    marker = f"<meta name='{_SCENARIO_META}' content='"
    at = page.find(marker)
    if at < 0:
        return None
    start = at + len(marker)
    end = page.find("'", start)
    return page[start:end] if end > start else None


def write_report(run_dir, *, title: str | None = None, extra_sections: list[tuple[str, str]] | None = None) -> Path:
    """Write ``run_dir/report.html`` from a run folder and return its path.

    ``title`` defaults to "flowsim report: <scenario name>".  ``extra_sections``
    appends ``(title, html)`` sections: the title is escaped, the HTML is
    inserted as given (escape any scenario text in it; ``embed_figure`` turns a
    figure into HTML).  What-if and sweep pages written into the folder with
    ``--out`` follow as sections of their own (``analysis_sections``), if they
    analysed the run's scenario.  The
    file is replaced atomically.
    """
    from .results import Results

    run_dir = Path(run_dir)
    results = Results.load(run_dir)
    scenario = results.manifest["scenario"]
    title = title or f"flowsim report: {scenario.get('name', run_dir.name)}"
    parts = [f"<h1>{escape(title)}</h1>", _facts(results)]
    if results.manifest.get("replications_completed", 0) and len(results.replications):
        data = ReportData.of(results)
        sections = [
            ("summary", "Summary by policy", _summary_table(results) + _verdicts(results)),
            ("constraint", "Observed constraint", _constraint(results, data)),
            ("at-risk", "Projects most at risk of missing their promise", _at_risk(results)),
            ("figures", "Figures", _figures(results, data)),
        ]
    else:
        sections = [("summary", "Summary", "<p class='alert'>No replication completed: nothing to report.</p>")]
    analyses = analysis_sections(run_dir, results.manifest.get("scenario_hash"))
    for i, (name, html) in enumerate([*(extra_sections or []), *analyses]):
        sections.append((f"extra-{i}", name, html))
    nav = " ".join(f'<a href="#{key}">{escape(name)}</a>' for key, name, _ in sections)
    parts.append(f"<nav>{nav}</nav>")
    parts += [f'<section id="{key}"><h2>{escape(name)}</h2>{html}</section>' for key, name, html in sections]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    path = run_dir / "report.html"
    partial_path = run_dir / "report.html.tmp"
    partial_path.write_text(page, encoding="utf-8")
    os.replace(partial_path, path)
    return path


def _rule(ref) -> str:
    if not ref:
        return "none"
    params = ref.get("params") or {}
    if not params:
        return ref["rule"]
    return f"{ref['rule']}({', '.join(f'{k}={v}' for k, v in params.items())})"


def _facts(results) -> str:
    m = results.manifest
    s = m["scenario"]
    done, asked = m.get("replications_completed", 0), m.get("replications_requested", 0)
    # A --target-ci run plans --max-replications and stops earlier once its target is met:
    # fewer replications than planned is then the complete run, not a partial one.
    target = m.get("target") or {}
    stopped = target.get("status") in ("reached", "max_replications")
    partial = results.partial or (done < asked and not stopped)
    out = []
    if partial:
        out.append(
            f'<div class="alert" role="alert">PARTIAL RUN: only {done} of {asked} replications completed. '
            "Everything below is computed from the completed replications only; complete the run with "
            "<code>flowsim run ... --resume</code> before relying on it.</div>"
        )
    if s.get("description"):
        out.append(f'<p class="sub">{escape(str(s["description"]))}</p>')
    policies = []
    for i, name in enumerate(results.policies):
        p = s.get("policies", {}).get(name, {})
        rules = f"intake {_rule(p.get('intake'))}, sequencing {_rule(p.get('sequencing'))}"
        if p.get("intervention"):
            rules += f", intervention {_rule(p['intervention'])}"
        rules += "".join(f", {flag}" for flag in ("preempt", "perfect_information") if p.get(flag))
        baseline = " (baseline)" if i == 0 else ""
        policies.append(f"<li><b>{escape(name)}</b>{baseline}: {escape(rules)}</li>")
    unit = s.get("time_unit", "week")
    rows = [
        ("Scenario", escape(str(s.get("name", "")))),
        ("Scenario file", escape(str(m.get("scenario_file", "")))),
        ("Horizon", f"{s.get('horizon', 0):g} {unit}s ({span(s.get('horizon', 0), unit)})"),
        ("Replications", _replications_fact(done, asked, target, partial)),
        ("Seed", escape(str(m.get("seed")))),
        ("Discount rate", f"{s.get('discount_rate', 0):.1%} per year"),
        ("Policies", f"<ul>{''.join(policies)}</ul>"),
        ("Run", escape(f"started {m.get('started', '?')}, {m.get('wall_seconds', float('nan')):.1f} s, "
                       f"flowsim {m.get('versions', {}).get('flowsim', '?')}")),
    ]  # fmt: skip
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return "\n".join(out) + f'<table class="facts">{body}</table>'


def _replications_fact(done: int, asked: int, target: dict, partial: bool) -> str:
    if partial:
        return f"{done} of {asked} requested <b class='bad'>(partial)</b>"
    if target.get("status") == "reached":
        return f"{done} (complete: --target-ci {target.get('ci', float('nan')):g} reached; at most {asked})"
    if target.get("status") == "max_replications":
        return f"{done} (complete: --max-replications reached before --target-ci {target.get('ci', float('nan')):g})"
    return f"{done} of {asked} requested (complete)"


def _cell(row, fmt) -> str:
    if row is None or math.isnan(row["mean"]):
        return "n/a"
    ci = "" if math.isnan(row["ci_low"]) else f'<span class="ci">{fmt(row["ci_low"])} to {fmt(row["ci_high"])}</span>'
    return f"{fmt(row['mean'])}{ci}"


def _summary_table(results) -> str:
    summary = results.summary()
    unit = results.manifest["scenario"].get("time_unit", "week")
    index = {(r["policy"], r["metric"]): r for r in summary.to_dict("records")}
    head = ["Policy", *(label for _m, label, _f in SUMMARY_METRICS),
            f"Throughput (per {unit})", f"Cycle time, mean ({unit}s)", f"Cycle time, P90 ({unit}s)",
            "Delivered"]  # fmt: skip
    rows = []
    for policy in results.policies:
        cells = [f"<b>{escape(policy)}</b>"]
        cells += [_cell(index.get((policy, metric)), fmt) for metric, _label, fmt in SUMMARY_METRICS]
        cells.append(_cell(index.get((policy, "throughput")), lambda v: f"{v:.3f}"))
        cells.append(_cell(index.get((policy, "cycle_time_mean")), lambda v: f"{v:.1f}"))
        cells.append(_cell(index.get((policy, "cycle_time_p90")), lambda v: f"{v:.1f}"))
        cells.append(_cell(index.get((policy, "delivered")), lambda v: f"{v:.1f}"))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    th = "".join(f"<th>{h}</th>" for h in head)
    note = (
        "<p>Mean over replications, with its 95% confidence interval below. Money over the horizon, "
        "undiscounted except NPV; cycle time (arrival to delivery) over the projects delivered within the "
        "horizon, whose mean number per replication is the last column.</p>"
    )
    return f"{note}<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _verdicts(results) -> str:
    compare = results.compare()
    compared = list(compare.loc[compare["metric"] == "value_delivered", "policy"].astype(str))
    sentences = dict(zip(compared, results.verdicts(), strict=True))
    items = [f"<li><b>{escape(results.baseline)}</b>: the baseline every other policy is compared with, "
             "in the same simulated worlds.</li>"]  # fmt: skip
    for policy in results.policies[1:]:
        row = compare[(compare["policy"] == policy) & (compare["metric"] == "value_delivered")]
        css = ""
        if len(row):
            low, high = row["diff_ci_low"].iloc[0], row["diff_ci_high"].iloc[0]
            css = "ok" if low > 0 else "bad" if high < 0 else ""
        text = sentences.get(policy, f"{policy}: no comparison available")
        items.append(f'<li class="{css}">{escape(text)}.</li>')
    return f'<h3>Verdicts (value delivered, paired with the baseline)</h3><ul class="verdicts">{"".join(items)}</ul>'


def _constraint(results, data: ReportData) -> str:
    teams, timeline = results.teams, data.team_timeline
    baseline = observed_constraint(teams, timeline, results.baseline)
    top = baseline.iloc[0]
    evidence = (
        f"<b>{escape(str(top['team']))}</b>: busy {top['utilisation']:.0%} of its capacity, "
        f"{top['mean_queue']:.1f} stages in its queue on average (at most {top['max_queue']:.0f}), "
        f"and a queue at {top['queue_share']:.0%} of the timeline points"
    )
    if _constrains(top):
        out = [
            f"<p>Under the baseline <b>{escape(results.baseline)}</b>, the team holding the portfolio back is "
            f"{evidence}. This is the observed constraint (ex post, from queues and utilisation), not the "
            "planning bottleneck that rules estimate ex ante.</p>"
        ]
    else:
        # Below one stage waiting on average, the top of the ranking is the busiest team, not a bottleneck.
        busy = top["utilisation"] >= 0.8
        why = "" if busy else ", so demand, not capacity, sets its pace"
        after = (". It is busy, but with no queue to clear, more capacity there could at most speed up the work "
                 "it already has" if busy else "")  # fmt: skip
        out = [
            f"<p>Under the baseline <b>{escape(results.baseline)}</b>, <b>no team clearly constrains this "
            "portfolio</b>: little work waits anywhere (under one stage on average, even at the top of the "
            f"ranking){why}; the top-ranked team is {evidence}{after}.</p>"
        ]
    rows = []
    for policy in results.policies:
        r = observed_constraint(teams, timeline, policy).iloc[0]
        team = escape(str(r["team"])) if _constrains(r) else f"none clear (top: {escape(str(r['team']))})"
        rows.append(f"<tr><td>{escape(policy)}</td><td>{team}</td><td>{r['utilisation']:.0%}</td>"
                    f"<td>{r['mean_queue']:.1f}</td><td>{r['max_queue']:.0f}</td>"
                    f"<td>{r['queue_share']:.0%}</td></tr>")  # fmt: skip
    head = "<tr><th>Policy</th><th>Constraint</th><th>Utilisation</th><th>Mean queue</th><th>Max queue</th>"
    out.append(f"<table><thead>{head}<th>Time with a queue</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    ranking = "".join(
        f"<tr><td>{escape(str(r.team))}</td><td>{r.utilisation:.0%}</td><td>{r.mean_queue:.1f}</td>"
        f"<td>{r.max_queue:.0f}</td><td>{r.queue_share:.0%}</td></tr>"
        for r in baseline.itertuples()
    )
    out.append(f"<details><summary>Every team under {escape(results.baseline)}, most constraining first</summary>"
               f"<table><thead><tr><th>Team</th><th>Utilisation</th><th>Mean queue</th><th>Max queue</th>"
               f"<th>Time with a queue</th></tr></thead><tbody>{ranking}</tbody></table></details>")  # fmt: skip
    return "".join(out)


def column_span(step: float, unit: str) -> str:
    """What one timeline step spans, as in "each column a week": 'a week', '7 days' -> 'a week', '2 weeks'."""
    if unit == "day" and math.isclose(step, 7):
        return "a week"
    if math.isclose(step, 1):
        return f"a {unit}"
    return f"{step:g} {unit}s"


def _timeline_step(results, data: ReportData) -> float:
    """The time between the team timeline's points: as drawn (the heatmaps' columns), else as recorded."""
    times = np.unique(data.team_timeline["time"].to_numpy(dtype=float))
    if len(times) > 1:
        return float(np.median(np.diff(times)))
    step = results.manifest.get("timeline_step") or results.manifest["scenario"].get("timeline_step")
    return float(step or 1.0)


def _constrains(top) -> bool:
    """Whether the top team of ``observed_constraint`` is a constraint: at least one stage waits
    for it on average.  Below that, little work waits anywhere and no team clearly constrains."""
    return bool(top["mean_queue"] >= 1)


def _at_risk(results, top: int = 10) -> str:
    summary = results.project_summary()
    unit = results.manifest["scenario"].get("time_unit", "week")
    promised = summary[summary["promised"].notna()] if len(summary) else summary
    if not len(promised):
        return "<p>No project in the scenario gives a <code>promised</code> delivery: nothing to check.</p>"
    names = {p["id"]: p.get("name") or "" for p in results.manifest["scenario"].get("projects", [])}
    wide = promised.pivot_table(index="project", columns="policy", values="p_on_promise", observed=True)
    wide = wide[[p for p in results.policies if p in wide.columns]]
    base = promised[promised["policy"] == results.baseline].set_index("project")
    order = wide.assign(_worst=wide.min(axis=1)).sort_values([results.baseline, "_worst"]).index[:top]
    head = "".join(f"<th>{escape(p)}</th>" for p in wide.columns)
    rows = []
    for project in order:
        cells = "".join(f"<td>{'n/a' if np.isnan(v) else f'{v:.0%}'}</td>" for v in wide.loc[project])
        p85 = base["p85_delivery"].get(project, np.nan)
        name = names.get(project, "")
        name = "" if name == project else f" {escape(str(name))}"
        rows.append(f"<tr><td><b>{escape(str(project))}</b>{name}</td>"
                    f"<td>{base['promised'].get(project, np.nan):g}</td>"
                    f"<td>{'not by the horizon' if np.isnan(p85) else f'{p85:.1f}'}</td>{cells}</tr>")  # fmt: skip
    shown = (
        "the listed project with a promise"
        if len(order) == 1
        else (f"the {len(order)} listed projects with a promise least likely to keep it under the baseline")
    )
    note = (f"<p>Probability of delivery by the promised {unit}, per policy, for {shown}. "
            f"P85 delivery is the {unit} by "
            "which the baseline delivers in 85% of worlds.</p>")  # fmt: skip
    return (f"{note}<table><thead><tr><th>Project</th><th>Promised ({unit})</th><th>P85 delivery, baseline</th>"
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")  # fmt: skip


def _figures(results, data: ReportData) -> str:
    from matplotlib.figure import Figure

    from . import plots

    scenario = results.manifest["scenario"]
    unit = scenario.get("time_unit", "week")
    policies = results.policies
    out = []

    fig = Figure(figsize=(10, 5), layout="constrained")
    plots.value_over_time(data.values, fig.add_subplot(), unit=unit)
    out.append(embed_figure(fig, "value delivered and delayed over time",
        "Cumulative money per policy: a solid line (value delivered) that climbs faster and a dashed line "
        "(value delayed) that stays lower is better; the band holds 80% of the simulated worlds."))  # fmt: skip

    compare = results.compare()
    if len(compare):
        fig = Figure(figsize=(10, 0.5 * len(policies) + 4), layout="constrained")
        axes = fig.subplots(2, 1)
        plots.policy_differences(compare, "value_delivered", axes[0], baseline=results.baseline, unit=unit)
        plots.policy_differences(compare, "cycle_time_mean", axes[1], baseline=results.baseline, unit=unit)
        out.append(embed_figure(fig, "paired differences from the baseline",
            "Each dot is a policy's mean difference from the baseline in the same worlds, the bar its 95% CI: "
            "green when the whole interval is better than the baseline, red when worse, grey when it "
            "crosses zero (no clear difference)."))  # fmt: skip

    ncols = 2 if len(policies) > 1 else 1
    nrows = math.ceil(len(policies) / ncols)
    fig = Figure(figsize=(11, 3.8 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    for ax, policy in zip(axes, policies, strict=False):
        plots.cumulative_flow(data.flow, policy, ax, unit=unit)
    for ax in axes[len(policies) :]:
        ax.set_visible(False)
    out.append(embed_figure(fig, "cumulative flow diagrams",
        "Projects over time (mean of the worlds): the orange band's height is work in progress and the blue "
        "band's the funnel waiting for admission; a wide band means long waits, a steep green band fast "
        "delivery."))  # fmt: skip

    summary = results.summary()
    delivered = summary[summary["metric"] == "value_delivered"].set_index("policy")["mean"]
    best = str(delivered.reindex(policies).idxmax())
    shown = [results.baseline] + ([best] if best != results.baseline else [])
    rows_per = data.team_timeline["team"].nunique()
    fig = Figure(figsize=(11, (0.42 * rows_per + 1.6) * len(shown)), layout="constrained")
    axes = fig.subplots(len(shown), 2, squeeze=False)
    teams = scenario["teams"]
    scale = plots.queue_scale(data.team_timeline, shown)  # one colour scale: equal blues, equal queues
    outlined = False
    for (load_ax, queue_ax), policy in zip(axes, shown, strict=True):
        top = observed_constraint(results.teams, data.team_timeline, policy).iloc[0]
        # Outline a team only where work waits for it: otherwise no team clearly constrains (see _constraint).
        constraint = str(top["team"]) if _constrains(top) else ""
        outlined = outlined or bool(constraint)
        plots.team_load(data.team_timeline, teams, policy, load_ax, unit=unit, constraint=constraint)
        plots.team_queue(data.team_timeline, policy, queue_ax, unit=unit, constraint=constraint, vmax=scale)
    who = "the baseline" + (f" and the policy delivering most value ({best})" if len(shown) > 1 else "")
    column = column_span(_timeline_step(results, data), unit)
    marked = ("an outlined row is the policy's observed constraint" if outlined
              else "no row is outlined: little work waits anywhere, no team clearly constrains")  # fmt: skip
    out.append(embed_figure(fig, "team load and queues",
        f"For {who}: each row is a team, each column {column}; dark red on the left means every unit busy, "
        f"dark blue on the right a long queue (one colour scale for every policy shown, up to {scale:.3g} "
        f"stages waiting); {marked}."))  # fmt: skip

    fig = Figure(figsize=(10, 4.8), layout="constrained")
    plots.cycle_time_distribution(data.cycle_times, fig.add_subplot(), unit=unit)
    out.append(embed_figure(fig, "cycle time distributions",
        f"Share of delivered projects (y) delivered within a given number of {unit}s of arriving (x): "
        "a curve further left is faster; where it crosses the dotted line is its P90."))  # fmt: skip
    return "\n".join(out)
