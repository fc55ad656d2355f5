"""The HTML report: self-contained, complete, and rendered by a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import flowsim
from flowsim.report import write_report

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    results = flowsim.run(ROOT / "scenarios" / "default.yaml", replications=4, seed=5, workers=1, out=folder)
    results.write_summaries(folder)
    write_report(folder)
    return folder


def test_report_is_self_contained_and_names_every_policy_and_verdict(run_dir):
    html = (run_dir / "report.html").read_text()
    results = flowsim.Results.load(run_dir)
    assert not re.search(r"""(src|href)=["']https?:""", html), "the report must not fetch anything"
    for policy in results.policies:
        assert policy in html
    for verdict in results.verdicts():
        assert verdict.split(",")[0] in html  # "P delivers X more than B over 3 years"
    images = re.findall(r"<img [^>]*>", html)
    assert len(images) >= 5 and all('src="data:image/png;base64,' in image for image in images)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    page = (run_dir / "report.html").as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, *profile, "--enable-logging=stderr", "--v=0", "--dump-dom", page],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    # Every figure made it into the rendered DOM, and the page logged no console error.
    assert dom.stdout.count("data:image/png;base64,") == (run_dir / "report.html").read_text().count(
        "data:image/png;base64,"
    )
    assert "flowsim report" in dom.stdout
    assert not re.search(r"CONSOLE\(\d+\).*(Error|error)", dom.stderr)
    artefacts = ROOT / "test-artifacts"
    artefacts.mkdir(exist_ok=True)
    shot = artefacts / "report.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, *profile, f"--screenshot={shot}", "--window-size=1280,3000", page],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 50_000  # a rendered page with figures, not a blank one
