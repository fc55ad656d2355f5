"""The what-if and sweep pages: self-contained HTML carrying the answer, the table and (sweeps) the curve."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

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
    assert "<table" in html and ">data</td>" in html and ">dev</td>" in html
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
