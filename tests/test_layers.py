"""Layering rules: the engine stays free of pandas and matplotlib; modules stay small."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "flowsim"


def test_engine_and_world_import_neither_pandas_nor_matplotlib():
    code = (
        "import sys\n"
        "import flowsim.engine.simulation, flowsim.engine.setup, flowsim.world, flowsim.value\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'matplotlib')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_matplotlib_is_imported_only_by_plotting_and_report_modules():
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(
            line.lstrip().startswith(("import matplotlib", "from matplotlib"))
            for line in path.read_text().splitlines()
        )
    }
    assert importers <= {"plots.py", "report.py"}


def test_modules_stay_under_600_lines():
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 600} == {}
