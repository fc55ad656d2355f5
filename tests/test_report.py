"""report.html: complete, escaped, self-contained; and readable in a real browser."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import flowsim
from flowsim.report import write_report

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "design_example.yaml"
CHROMIUM = "/usr/bin/chromium"
NAME = "Example <script>alert(1)</script> & co"
ODD_POLICY = 'cd3 <wip6> & "review"'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small run of DESIGN's example scenario with HTML-hostile names, and its report."""
    folder = tmp_path_factory.mktemp("report")
    data = yaml.safe_load(FIXTURE.read_text())
    data["name"] = NAME
    data["description"] = "Tags <b>must</b> stay text"
    data["policies"] = {(ODD_POLICY if k == "cd3-wip6" else k): v for k, v in data["policies"].items()}
    scenario_file = folder / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(data, sort_keys=False))
    out = folder / "run"
    results = flowsim.run(flowsim.load_scenario(scenario_file), replications=4, workers=1, out=out)
    results.write_summaries(out)
    write_report(out)
    return out


@pytest.fixture(scope="module")
def page(run_dir) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def test_report_names_every_policy_and_verdict(run_dir, page):
    results = flowsim.Results.load(run_dir)
    assert len(results.policies) == 3
    for policy in results.policies:
        assert html.escape(policy) in page
    verdicts = results.verdicts()
    assert len(verdicts) == 2
    for sentence in verdicts:
        assert html.escape(sentence) in page
    assert f"<title>{html.escape('flowsim report: ' + NAME)}</title>" in page
    assert "PARTIAL RUN" not in page
    assert "4 of 4 requested (complete)" in page


def test_report_escapes_scenario_text(page):
    assert "<script>" not in page
    assert "<b>must</b>" not in page
    assert html.escape("Tags <b>must</b> stay text") in page
    assert "<wip6>" not in page


def test_report_has_the_sections_the_user_needs(run_dir, page):
    for heading in ("Summary by policy", "Observed constraint", "Projects most at risk", "Figures"):
        assert heading in page
    # The summary table gives money with CIs, and cycle time beside the number delivered.
    for column in ("Value delivered", "Value delayed", "NPV", "Throughput (per week)", "Cycle time, P90", "Delivered"):
        assert column in page
    constraint = re.search(r"(?:the team holding the portfolio back|the top-ranked team) is <b>([^<]+)</b>", page)
    assert constraint and constraint.group(1) in ("platform", "data", "ux")
    assert "<b>pricing</b>" in page  # the only project with a promise
    assert page.count("<figcaption>") == page.count("<img")


def test_report_is_self_contained(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page
    images = re.findall(r"<img\b[^>]*>", page)
    assert len(images) == 5  # value over time, differences, flow, team load and queues, cycle time
    for tag in images:
        src = re.search(r'src="data:image/png;base64,([^"]+)"', tag)
        assert src, tag[:80]
        assert base64.b64decode(src.group(1))[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_flags_a_partial_run_and_takes_extra_sections(run_dir, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    manifest.update(partial=True, replications_requested=10)
    (partial / "manifest.json").write_text(json.dumps(manifest))
    path = write_report(partial, title="A <custom> title", extra_sections=[("Sweep <1>", "<p id='sweep'>ok</p>")])
    page = path.read_text(encoding="utf-8")
    assert path == partial / "report.html"
    assert "PARTIAL RUN: only 4 of 10 replications completed" in page
    assert page.index("PARTIAL RUN") < page.index("Summary by policy")  # before any number
    assert "<title>A &lt;custom&gt; title</title>" in page
    assert "<h2>Sweep &lt;1&gt;</h2><p id='sweep'>ok</p>" in page
    assert not (partial / "report.html.tmp").exists()


def _page_requests(net_log: Path) -> list[str]:
    """http(s) URLs the page itself asked for (Chromium's own background traffic is keyed to other sites)."""
    text = net_log.read_text(errors="replace")
    try:
        events = json.loads(text)["events"]
    except json.JSONDecodeError:  # log cut short: close the event list
        events = json.loads(text.rstrip().rstrip(",") + "]}")["events"]
    urls = []
    for event in events:
        params = event.get("params") or {}
        from_page = str(params.get("network_isolation_key", "")).startswith("file://")
        if from_page and str(params.get("url", "")).startswith(("http:", "https:")):
            urls.append(params["url"])
    return urls


@pytest.mark.browser
def test_report_renders_in_headless_chromium(run_dir, page, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed: apt-get install chromium")
    base = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    url = (run_dir / "report.html").as_uri()
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "report.png"
    shot.unlink(missing_ok=True)
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,4000", url],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        colours = image.convert("L").resize((64, 200)).getextrema()
        assert colours[1] - colours[0] > 100  # not a blank page

    net_log = tmp_path / "net.json"
    loaded = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", f"--log-net-log={net_log}", "--dump-dom", url],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    dom = loaded.stdout
    assert "<title>flowsim report: Example &lt;script&gt;" in dom
    assert len(re.findall(r'<img src="data:image/png;base64,', dom)) == 5
    assert "<script" not in dom  # the scenario name stayed text
    console = [line for line in loaded.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert _page_requests(net_log) == []


# --------------------------------------------------------------- team heatmaps and the observed constraint

IDLE = {
    "name": "idle portfolio",
    "time_unit": "day",
    "horizon": 70,
    "timeline_step": 7,
    "seed": 3,
    "teams": {"dev": {"capacity": 5}, "ops": {"capacity": 4}},
    "projects": [
        {"id": "a", "value": {"rate": 100}, "stages": [{"team": "dev", "effort": 2}]},
        {"id": "b", "value": {"rate": 50}, "stages": [{"team": "ops", "effort": 1}]},
    ],
}


def test_column_span_names_the_timeline_step():
    from flowsim.report import column_span

    assert column_span(1, "week") == "a week"
    assert column_span(1.0, "day") == "a day"
    assert column_span(7, "day") == "a week"
    assert column_span(7, "week") == "7 weeks"
    assert column_span(0.5, "week") == "0.5 weeks"


def test_an_idle_portfolio_report_names_no_constraint_and_the_real_column_step(tmp_path):
    scenario_file = tmp_path / "idle.yaml"
    scenario_file.write_text(yaml.safe_dump(IDLE, sort_keys=False))
    out = tmp_path / "run"
    results = flowsim.run(flowsim.load_scenario(scenario_file), replications=2, workers=1, out=out)
    results.write_summaries(out)
    page = write_report(out).read_text(encoding="utf-8")
    # The heatmaps' columns are 7 days apart: the caption says so.
    assert "each column a week" in page and "each column a day" not in page
    # No team has work waiting: the report never calls one the constraint, and says so once, consistently.
    section = page[page.index('<section id="constraint">') : page.index('<section id="at-risk">')]
    assert "no team clearly constrains" in section
    assert "This is the observed constraint" not in section and "holding the portfolio back" not in section
    assert "none clear (top: " in section
    assert "no row is outlined" in page and "outlined row is the" not in page


def _stub(mean_queue: float, utilisation: float = 0.9):
    from types import SimpleNamespace

    import pandas as pd

    teams = pd.DataFrame({"policy": ["p", "p"], "replication": [0, 0], "team": ["x", "y"], "max_queue": [3, 0],
                          "utilisation": [utilisation, 0.2], "mean_queue": [mean_queue, 0.0]})  # fmt: skip
    timeline = pd.DataFrame({"policy": ["p"] * 4, "replication": [0] * 4, "time": [0.0, 1.0] * 2,
                             "team": ["x", "x", "y", "y"], "queue": [0, 1, 0, 0]})  # fmt: skip
    return SimpleNamespace(teams=teams, team_timeline=timeline, baseline="p", policies=["p"])


def test_constraint_section_says_constraint_only_where_work_waits():
    from flowsim.report import _constraint

    waiting = _constraint(*[_stub(mean_queue=4.0)] * 2)  # the stub is both the results and the report's data
    assert "the team holding the portfolio back is <b>x</b>" in waiting
    assert "This is the observed constraint" in waiting and "no team clearly constrains" not in waiting
    quiet = _constraint(*[_stub(mean_queue=0.5)] * 2)
    assert "no team clearly constrains" in quiet and "the top-ranked team is <b>x</b>" in quiet
    assert "This is the observed constraint" not in quiet and "holding the portfolio back" not in quiet
    # x is busy 90% of the time: the page does not claim that demand sets the pace.
    assert "demand, not capacity" not in quiet and "could at most speed up the work it already has" in quiet
    idle = _constraint(*[_stub(mean_queue=0.5, utilisation=0.3)] * 2)
    assert "demand, not capacity, sets its pace" in idle and "speed up" not in idle


QUEUED = {
    "name": "one team, two policies",
    "horizon": 40,
    "seed": 4,
    "teams": {"dev": {"capacity": 1}, "ops": {"capacity": 2}},
    "projects": [{"id": f"p{i}", "value": {"rate": 100 * (i + 1)}, "stages": [{"team": "dev", "effort": 3}]}
                 for i in range(8)] + [{"id": "q", "value": {"rate": 10}, "stages": [{"team": "ops", "effort": 1}]}],
    # The baseline admits one project at a time (no queue at dev); push-cd3 queues everything, highest value first.
    "policies": {"wip1-fifo": {"intake": {"rule": "wip_limit", "limit": 1}, "sequencing": "fifo"},
                 "push-cd3": {"intake": "admit_all", "sequencing": "cd3"}},
}  # fmt: skip


def test_queue_heatmaps_of_the_policies_shown_share_one_colour_scale(tmp_path, monkeypatch):
    from flowsim import plots

    scenario_file = tmp_path / "queued.yaml"
    scenario_file.write_text(yaml.safe_dump(QUEUED, sort_keys=False))
    folder = tmp_path / "run"
    results = flowsim.run(flowsim.load_scenario(scenario_file), replications=2, workers=1, out=folder)
    results.write_summaries(folder)
    drawn = []
    original = plots.team_queue

    def team_queue(team_timeline, policy=None, ax=None, **kwargs):
        drawn.append((policy, kwargs.get("vmax")))
        return original(team_timeline, policy, ax, **kwargs)

    monkeypatch.setattr(plots, "team_queue", team_queue)
    page = write_report(folder).read_text(encoding="utf-8")
    policies = [policy for policy, _ in drawn]
    assert policies == ["wip1-fifo", "push-cd3"]  # the baseline and the policy delivering most value
    own = [plots.queue_scale(results.team_timeline, [p]) for p in policies]
    assert own[0] < own[1]  # each on its own scale, the baseline's empty queues would look as dark
    scale = plots.queue_scale(results.team_timeline, policies)
    assert scale == max(own) and [vmax for _, vmax in drawn] == [scale, scale]
    assert f"up to {scale:.3g} stages waiting" in page


# --------------------------------------------------------------------------- what the report reads


def test_report_data_summed_chunk_by_chunk_equals_the_whole_tables(tmp_path):
    # The report no longer loads whole tables (850 MB at 1,000 replications of bench.yaml):
    # its means are summed chunk by chunk.  They must equal the means of the whole tables;
    # chunks of unequal size (2, 2, 1), so a mean of chunk means would not.
    from flowsim.report import observed_constraint
    from flowsim.report_data import FLOW_COLUMNS, ReportData
    from flowsim.results import Results
    from flowsim.runner import execute

    scenario = flowsim.load_scenario(FIXTURE)
    execute(scenario, replications=5, workers=1, out=tmp_path / "run", chunk_size=2)
    results = Results.load(tmp_path / "run")
    assert len(results.manifest["completed_chunks"]) == 3
    data = ReportData.of(results)
    assert not results._frames  # nothing read whole
    whole = results.team_timeline.astype({"busy": float}).assign(queued=lambda f: (f["queue"] > 0).astype(float))
    keys = ["policy", "team", "time"]
    expected = whole.groupby(keys, observed=True)[["busy", "queue", "queued"]].mean().reset_index()
    got = data.team_timeline.drop(columns="replication")
    assert list(got[["policy", "team"]].astype(str).itertuples(index=False)) == list(
        expected[["policy", "team"]].astype(str).itertuples(index=False)
    )  # the scenario's order of policies and teams, as the heatmaps draw them
    for column in ("time", "busy", "queue", "queued"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-12, err_msg=column)
    flow = results.timeline.groupby(["policy", "time"], observed=True)[FLOW_COLUMNS].mean().reset_index()
    np.testing.assert_allclose(data.flow[FLOW_COLUMNS], flow[FLOW_COLUMNS], rtol=1e-12)
    values = results.timeline[["policy", "replication", "time", "value_delivered", "value_delayed"]]
    pd.testing.assert_frame_equal(data.values, values)
    delivered = results.projects.loc[results.projects["status"] == "delivered", ["policy", "status", "cycle_time"]]
    np.testing.assert_array_equal(data.cycle_times["cycle_time"], delivered["cycle_time"])
    # The constraint ranking from the shares of queued points equals the one from every row.
    for policy in results.policies:
        pd.testing.assert_frame_equal(
            observed_constraint(results.teams, data.team_timeline, policy),
            observed_constraint(results.teams, results.team_timeline, policy),
        )
    # A run held in memory (no folder) reduces to the same frames.
    memory = ReportData.of(flowsim.run(scenario, replications=5, workers=1))
    for name in ("team_timeline", "flow", "values", "cycle_times"):
        pd.testing.assert_frame_equal(getattr(memory, name), getattr(data, name), check_exact=False, rtol=1e-12)
