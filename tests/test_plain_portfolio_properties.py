"""The engine against the plain SimPy model on random portfolios (hypothesis).

``tests/test_plain_portfolio.py`` checks on the benchmark portfolio that the
engine under ``fifo`` / ``admit_all`` and ``benchmarks/plain_portfolio.py`` (a
process per project and per stage, a ``simpy.PriorityResource`` per team, none
of the engine's code) deliver every project at the same time.  Here the same
comparison runs on small random scenarios drawn inside the subset the plain
model supports: no capacity changes, no shared focus, no work in flight.

Each example draws 1-4 teams of 1-4 units; 1-8 listed projects of 1-4 stages in
sequence or in a DAG (``after``), each stage a crew of 1 up to its team's
capacity; ``depends_on`` on earlier listed projects (so acyclic); arrivals at 0
or anywhere in (0, 1.1 x horizon], equal arrivals included; maybe 1-2 arrival
streams of templates; continuous effort distributions only; a horizon from
short (most projects unfinished) to long (most delivered).  Each example is run
for two replications; both models must deliver exactly the same projects at the
same times (``differences``: 1e-9 relative, as in the existing test).

Why only continuous efforts: the plain model decides what happens at one
instant in FIFO-key order at time 0 only; after 0 it leaves ties to SimPy's
event order (its docstring), so it matches the engine exactly only when event
times after 0 are distinct.  Continuous efforts make completion times distinct
(with probability 1) from each other and from arrival times.  Listed arrivals
are drawn freely, so several projects may arrive at the same instant after 0:
the plain model's processes then wake in file order, which is the FIFO key's
order, so such ties are kept.  (A project whose dependencies were delivered
before it arrived used to wait on an ``all_of`` of processed events, which
SimPy schedules anew behind the other arrivals of that instant: this test
found it, ``test_a_dependant_arriving_with_a_later_project_goes_first`` pins it.)
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_plain_portfolio import _engine_deliveries, _plain_portfolio
from test_properties import draw_after, earlier_ids, effort

from flowsim.engine.setup import make_setup
from flowsim.scenario.load import scenario_from_dict
from flowsim.world import sample_world

REPLICATIONS = 2
PLAIN = _plain_portfolio()

# ----------------------------------------------------------------------------- strategies

@st.composite
def stages(draw, capacity: dict[str, int]):
    """1-4 stages, each after the one before, after none, or after any earlier subset."""
    out = []
    for j in range(draw(st.integers(1, 4))):
        team = draw(st.sampled_from(sorted(capacity)))
        stage = {"name": f"s{j}", "team": team, "effort": draw(effort(continuous_only=True))}
        crew = draw(st.integers(1, capacity[team]))
        if crew > 1 or draw(st.booleans()):
            stage["crew"] = crew
        if j > 0:
            draw_after(draw, stage, j)
        out.append(stage)
    return out


@st.composite
def scenarios(draw):
    horizon = float(draw(st.sampled_from([6, 12, 25, 50])))
    capacity = {f"t{i}": draw(st.integers(1, 4)) for i in range(draw(st.integers(1, 4)))}
    projects = []
    for i in range(draw(st.integers(1, 8))):
        arrival = draw(
            st.one_of(
                st.just(0.0),
                st.floats(0.0, horizon * 1.1, allow_nan=False, allow_infinity=False),
                st.integers(1, int(horizon)).map(float),  # whole times: equal arrivals are likely
            )
        )
        project = {"id": f"p{i}", "arrival": arrival, "stages": draw(stages(capacity))}
        if i and draw(st.integers(0, 2)) == 0:
            project["depends_on"] = draw(earlier_ids(i))
        projects.append(project)
    data = {
        "horizon": horizon,
        "seed": draw(st.integers(0, 2**16)),
        "teams": {name: {"capacity": c} for name, c in capacity.items()},
        "projects": projects,
        "policies": {"fifo": {"intake": "admit_all", "sequencing": "fifo"}},
    }
    streams = draw(st.integers(0, 2))
    if streams:
        data["templates"] = {f"idea{k}": {"stages": draw(stages(capacity))} for k in range(streams)}
        data["arrivals"] = []
        for k in range(streams):
            stream = {"name": f"ideas{k}", "template": f"idea{k}", "rate": draw(st.sampled_from([0.1, 0.3, 0.8]))}
            if draw(st.booleans()):
                start = draw(st.sampled_from([0.0, horizon / 4]))
                stream["start"] = start
                stream["end"] = start + horizon / 2
            data["arrivals"].append(stream)
    return data


# ----------------------------------------------------------------------------- the property


def test_a_dependant_arriving_with_a_later_project_goes_first():
    """p1 (depending on p0, delivered long before) and p2 arrive together at 2 on an idle
    team of one unit: the FIFO key (same queue time and arrival, p1 first in the file;
    DESIGN section 7) gives p1 the unit, in both models."""
    one_stage = [{"team": "t0", "effort": {"dist": "uniform", "low": 0.5, "high": 1.0}}]
    data = {
        "horizon": 6.0,
        "seed": 0,
        "teams": {"t0": {"capacity": 1}},
        "projects": [
            {"id": "p0", "arrival": 0.0, "stages": one_stage},
            {"id": "p1", "arrival": 2.0, "depends_on": ["p0"], "stages": one_stage},
            {"id": "p2", "arrival": 2.0, "stages": one_stage},
        ],
        "policies": {"fifo": {"intake": "admit_all", "sequencing": "fifo"}},
    }
    scenario = scenario_from_dict(data, source="<test>")
    world = sample_world(scenario, 0, 0)
    engine = _engine_deliveries(PLAIN, scenario, make_setup(scenario), world, 0)
    assert engine[0] < 1.0 and engine[1] < engine[2]  # p0 long done; p1 served before p2
    check_same_deliveries(data)


def check_same_deliveries(data: dict) -> None:
    scenario = scenario_from_dict(data, source="<hypothesis>")
    setup = make_setup(scenario)
    for replication in range(REPLICATIONS):
        world = sample_world(scenario, scenario.seed, replication)
        engine = _engine_deliveries(PLAIN, scenario, setup, world, replication)
        plain, _ = PLAIN.simulate(world, setup)
        differ = PLAIN.differences(engine, plain)
        ids = {world.projects[i].id: times for i, times in sorted(differ.items())}
        assert not differ, f"replication {replication}: deliveries differ (engine, plain): {ids}"


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=scenarios())
def test_engine_and_plain_simpy_deliver_the_same_projects_at_the_same_times(data):
    check_same_deliveries(data)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=scenarios())
def test_engine_and_plain_simpy_agree_on_many_portfolios(data):
    check_same_deliveries(data)
