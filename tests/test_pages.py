"""The what-if and sweep pages: self-contained HTML carrying the answer, the table and (sweeps) the curve."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from flowsim.cli import app

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios" / "teaching"


def _no_network(html: str) -> None:
    assert not re.search(r"""(src|href)=["']https?:""", html)


def test_sweep_page_shows_the_curve_and_every_value(tmp_path):
    result = CliRunner().invoke(
        app,
        ["sweep", str(SCENARIOS / "wip_limits.yaml"), "--set", "policies.wip2-cd3.intake.limit=1,2,4",
         "-n", "2", "-w", "1", "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (tmp_path / "sweep.html").read_text()
    _no_network(html)
    assert html.count('<img src="data:image/png;base64,') == 1
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", html)
    assert rows == ["1", "2", "4"]


def test_whatif_page_carries_the_printed_answer(tmp_path):
    result = CliRunner().invoke(
        app, ["whatif", "capacity", str(SCENARIOS / "bottleneck.yaml"), "-n", "2", "-w", "1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "whatif_capacity.html").read_text()
    _no_network(html)
    answer = next(line for line in result.output.splitlines() if "is the constraint" in line)
    assert answer.split(":")[0] in html  # "data is the constraint"
    assert "<table" in html and ">data *</td>" in html and ">dev</td>" in html  # * marks the constraint
    # The ranked answer as a figure: one embedded PNG, titled, with how to read it.
    assert html.count('<img src="data:image/png;base64,') == 1
    assert 'alt="Value of the capacity change, per team"' in html and "<figcaption>Each dot is" in html


def test_run_report_embeds_the_analyses_written_into_its_folder(tmp_path):
    scenario = str(SCENARIOS / "wip_limits.yaml")
    invoke = CliRunner().invoke
    assert invoke(app, ["run", scenario, "-n", "2", "-w", "1", "-q", "--out", str(tmp_path)]).exit_code == 0
    capacity = invoke(app, ["whatif", "capacity", scenario, "-n", "2", "-w", "1", "-q", "--out", str(tmp_path)])
    swept = invoke(app, ["sweep", scenario, "--set", "policies.wip2-cd3.intake.limit=1,2", "-n", "2", "-w", "1",
                         "-q", "--out", str(tmp_path)])  # fmt: skip
    assert capacity.exit_code == 0 and swept.exit_code == 0
    report = invoke(app, ["report", str(tmp_path)])
    assert report.exit_code == 0, report.output
    html = (tmp_path / "report.html").read_text()
    _no_network(html)
    sections = re.findall(r'<section id="(extra-\d+)"><h2>([^<]+)</h2>', html)
    assert [title for _, title in sections] == ["Where are we constrained, and what is relaxing it worth?", "Sweep"]
    answer = next(line for line in capacity.output.splitlines() if "is the constraint" in line)
    assert escape(answer, quote=False) in html
    # The run's five figures, then the capacity forest plot and the sweep's curve, in that order.
    assert html.count('<img src="data:image/png;base64,') == 7
    assert html.index('<section id="figures">') < html.index('<section id="extra-0">') < html.index(
        '<section id="extra-1">'
    )
    assert not re.search(r"<td>-?[\d.]+e[+-]\d+</td>", html)  # money as money in the embedded tables


def test_a_new_run_of_another_scenario_does_not_embed_the_old_analyses(tmp_path):
    invoke = CliRunner().invoke
    first, second = str(SCENARIOS / "wip_limits.yaml"), str(SCENARIOS / "bottleneck.yaml")
    capacity = invoke(app, ["whatif", "capacity", first, "-n", "2", "-w", "1", "-q", "--out", str(tmp_path)])
    assert capacity.exit_code == 0, capacity.output
    # The same folder now holds a run of the other scenario: the capacity page is not about it.
    run = invoke(app, ["run", second, "-n", "2", "-w", "1", "-q", "--out", str(tmp_path), "--report"])
    assert run.exit_code == 0, run.output
    html = (tmp_path / "report.html").read_text()
    titles = re.findall(r'<section id="extra-\d+"><h2>([^<]+)</h2>', html)
    assert titles == ["Analyses not included"]
    assert "whatif_capacity.html in this folder analysed another scenario" in html
    # Run again on the first scenario: the page is this run's scenario's again, and embedded.
    run = invoke(app, ["run", first, "-n", "2", "-w", "1", "-q", "--out", str(tmp_path), "--report"])
    assert run.exit_code == 0, run.output
    html = (tmp_path / "report.html").read_text()
    titles = re.findall(r'<section id="extra-\d+"><h2>([^<]+)</h2>', html)
    assert titles == ["Where are we constrained, and what is relaxing it worth?"]


# --------------------------------------------------------------- the pages' tables read like the console's

DEFAULT = SCENARIOS.parent / "default.yaml"
RAW = re.compile(r"^(nan|NaN|None|True|False|-?\d+\.\d{3,})$|_(mean|ci_low|ci_high)\b|^p_")


def _tables(html: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each ``<table>`` of a page as (headers, rows of cells), text unescaped."""
    from html import unescape

    out = []
    for table in re.findall(r"<table.*?</table>", html, flags=re.S):
        heads = [unescape(h) for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table, flags=re.S)]
        rows = [[unescape(c) for c in re.findall(r"<td(?:\s[^>]*)?>(.*?)</td>", row, flags=re.S)]
                for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S) if "<td>" in row]  # fmt: skip
        out.append((heads, rows))
    return out


def _console_header(output: str, first: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith(first + "  "))
    return re.split(r"\s{2,}", line.strip())


@pytest.mark.parametrize(
    ("args", "name", "first", "shares"),
    [
        (["whatif", "admit", str(DEFAULT), "--project", str(SCENARIOS / "new_initiative.yaml")],
         "whatif_admit", "project", ["delayed in"]),
        (["whatif", "stop", str(SCENARIOS / "bottleneck.yaml")], "whatif_stop", "project", ["better in"]),
        (["whatif", "capacity", str(SCENARIOS / "bottleneck.yaml")], "whatif_capacity", "team",
         ["better in", "utilisation"]),
        (["whatif", "benefits", str(SCENARIOS / "bottleneck.yaml")], "whatif_benefits", "project",
         ["on time", "realised"]),
        (["sweep", str(SCENARIOS / "wip_limits.yaml"), "--set", "policies.wip2-cd3.intake.limit=1,3"], "sweep",
         "policies.wip2-cd3.intake.limit", ["better in"]),
    ],
)  # fmt: skip
def test_page_tables_show_the_console_columns_in_readable_formats(tmp_path, args, name, first, shares):
    result = CliRunner().invoke(app, [*args, "-n", "2", "-w", "1", "-q", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / f"{name}.html").read_text()
    tables = _tables(html)
    heads, rows = tables[0]
    # The same columns as the console table, in the same order: one definition for both.
    assert heads == _console_header(result.output, first)
    assert rows
    for heads_, rows_ in tables:
        for header in heads_:
            assert not RAW.search(header), (name, header)  # words, not code names
        for row in rows_:
            assert len(row) == len(heads_)
            for cell in row:
                assert not RAW.search(cell), (name, heads_, row)  # no NaN, True/False, raw floats
                assert not re.search(r"\d,\d{3}", cell), (name, row)  # money as 7.31k, never 7,309
    for share in shares:
        column = heads.index(share)
        cells = [row[column] for row in rows if row[column]]
        assert cells and all(re.fullmatch(r"\d{1,3}%|n/a", c) for c in cells), (share, cells)
    # Every non-empty cell of the page is printed on the console too (same formats).
    for row in rows:
        for cell in row:
            assert cell in result.output, (name, cell)
    # The CSV beside the page keeps its raw columns, for other tools.
    csv = (tmp_path / f"{name}.csv").read_text().splitlines()[0]
    assert "_" in csv and ("ci_low" in csv)


def test_admit_page_names_time_units_and_leaves_not_applicable_cells_empty(tmp_path):
    args = ["whatif", "admit", str(DEFAULT), "--project", str(SCENARIOS / "new_initiative.yaml")]
    result = CliRunner().invoke(app, [*args, "-n", "2", "-w", "1", "-q", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (heads, rows), (_, totals) = _tables((tmp_path / "whatif_admit.html").read_text())
    assert "delay (weeks)" in heads
    initiative = next(row for row in rows if row[1] == "initiative")
    assert initiative[heads.index("delay (weeks)")] == "" and initiative[heads.index("delayed in")] == ""
    labels = [row[0] for row in totals]
    assert "the initiative's own value" in labels and "initiative_value" not in labels
    net = next(row[1] for row in totals if row[0] == "net change in value delivered")
    assert re.fullmatch(r"[+-]?[\d.]+[kMB]? \[[+-]?[\d.]+[kMB]?, [+-]?[\d.]+[kMB]?\]", net), net


def test_sweep_table_cells_never_show_python_values():
    """Booleans as the YAML the user typed, a missing metric as n/a, the first setting as the reference."""
    import pandas as pd

    from flowsim.pages import html_table, text_table

    table = pd.DataFrame({
        "policies.p.preempt": [True, False], "mean": [float("nan"), 3.0], "ci_low": [float("nan"), 2.0],
        "ci_high": [float("nan"), 4.0], "diff": [0.0, float("nan")], "diff_ci_low": [0.0, float("nan")],
        "diff_ci_high": [0.0, float("nan")], "better_share": [float("nan"), 0.5], "best": [False, True],
    })  # fmt: skip
    result = SimpleNamespace(table=table, settings={"keys": ["policies.p.preempt"], "metric": "cycle_time_mean",
                                                    "time_unit": "day"})  # fmt: skip
    [(heads, rows)] = _tables(html_table(result, "sweep"))
    assert heads == ["policies.p.preempt", "cycle time mean (days)", "vs first", "better in", "best"]
    assert rows == [["true", "n/a", "reference", "", ""], ["false", "3 [2, 4]", "n/a", "50%", "*"]]
    assert text_table(result, "sweep").splitlines()[0].split("  ")[0] == "policies.p.preempt"


def test_facts_say_what_was_run_in_the_units_of_the_answer():
    from flowsim.pages import _setting, facts

    base = {"policy": "fifo", "replications": 1, "seed": 3, "horizon": 156.0, "time_unit": "week"}
    assert facts(base) == "policy fifo, 1 paired world, seed 3; money over the horizon (156 weeks), [95% CI]"
    sweep = {**base, "replications": 8, "keys": ["policies.p.intake.limit"], "metric": "cycle_time_mean"}
    assert facts(sweep) == (
        "policy fifo, 8 paired worlds, seed 3; cycle time mean over the horizon (156 weeks), [95% CI]"
    )
    horizon = {**base, "replications": 8, "keys": ["horizon"], "metric": "value_delivered"}
    assert facts(horizon).endswith("money over each setting's horizon, [95% CI]")
    values = (None, float("nan"), True, 4.0, "weinberg")
    assert [_setting(v) for v in values] == ["null", "n/a", "true", "4", "weinberg"]


def test_benefits_totals_name_the_listed_projects_and_give_the_promise_without_an_interval():
    import pandas as pd

    from flowsim.pages import _totals_columns, render_text

    totals = pd.DataFrame({"metric": ["value_delivered", "business_case"], "mean": [4.0e5, 4.88e5],
                           "ci_low": [3.5e5, 4.88e5], "ci_high": [4.5e5, 4.88e5]})  # fmt: skip
    text = render_text(totals, _totals_columns("whatif_benefits"))
    assert "value delivered by the listed projects  400k [350k, 450k]" in text
    assert text.splitlines()[2].split() == ["value", "promised", "by", "the", "business", "cases", "488k"]
