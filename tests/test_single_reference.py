"""Single-focus teams against a plain reference model of DESIGN sections 3 and 7 (hypothesis).

The engine dispatches lazily: it looks only at teams where something changed
since the last decision, keeps ranks in heaps under promises about how they move
(``rank_trend``), caches critical paths, and marks "stalled" teams whose best
waiting stage is a crew too large for the free units.  This test checks it
against the definition, simulated the obvious way, every queue re-ranked from
scratch at every decision:

* DESIGN section 3, allocation (``focus: single``): a team has ``capacity``
  units; a free unit goes to the waiting stage of highest priority; a stage with
  ``crew: k`` starts only when k units are free, and nothing of lower priority
  overtakes it (strict order).  ``capacity_changes``: work in progress when
  capacity drops finishes; new starts wait until fewer units are busy than the
  capacity.  A stage runs at ``crew`` effort per time unit.
* DESIGN section 7, order of events: everything at time t (completions,
  arrivals, capacity changes) is applied, then one decision is made at t.  With
  ``admit_all`` the intake admits every arrival at once, so the decision is the
  dispatch of docs/policies.md ("When rules are called"): every team, in turn,
  hands its free units to its queued stages in rank order, and stops at the
  first (best) stage whose crew is larger than its free units (the order of
  teams does not matter: a project has one stage queued at a time, and a
  start changes no rank at the instant it happens).  Priorities are
  computed at the decision, from the time t; there are no decisions between
  events, so a rank that crosses another between two events is seen at the
  next event anywhere in the portfolio (docs/policies.md says so in as many
  words).  The reference dispatches every team at every decision, as the
  definition reads; the engine dispatches only teams where something changed,
  plus "stalled" ones, and this test checks that it comes to the same.
* The horizon H: a delivery at exactly H is not within it (README, "Events at
  the horizon"): nothing due at H happens.
* Ties go to the FIFO key (section 7): the time the stage entered its team's
  queue, then the project's arrival, then its order in the file (the stage's
  order within the project never decides here: stages run in sequence, so a
  project has at most one stage queued).  A stage already under way at time 0
  (``done`` above 0) entered its queue before time 0 (README, "Work already in
  flight"), so it is first among equal ranks.  Nothing else is in flight: a
  stage ``done: true`` is simply not there, and its project's next stage enters
  its queue at 0.
* Priorities, higher first, as docs/policies.md ("Sequencing") defines them,
  from estimates (the scenarios set no ``estimation_error`` and give efforts as
  numbers, so estimates are the realised values):

  - ``fifo``: none (the FIFO key alone); ``edd``: earliest ``due`` (or window
    ``closes``), undated last;
  - ``sjf``: shortest estimated remaining critical path; for stages in sequence
    the sum of ``remaining / crew``, where a stage's estimated remaining work is
    ``max(estimate - done, 0.1 * estimate)`` (DESIGN section 4: "an overrunning
    stage is believed nearly done, never free").  Only queued projects are
    ranked, and nothing of theirs runs, so ``done`` is what was worked before
    time 0 (projects in flight: that is where the 0.1 floor shows);
  - ``value``: the cost of delay at the projected delivery ``now + remaining
    critical path``; ``cd3``: that CoD / remaining critical path;
  - ``least_slack``: least ``due (or closes) - now - remaining critical path``
    first, undated last.

  The CoD itself is ``flowsim.value.cost_of_delay``, the closed form
  docs/policies.md documents ("Cost of delay as rules see it"), fed with the
  estimated business case and the estimated ideal delivery (arrival plus the
  critical path of the work left at time 0).  It is not re-derived here:
  ``tests/test_value.py`` checks it against the accounting it is the forward
  difference of, and a re-derivation would round differently where two
  projects' CoDs tie exactly, so that the two models would serve them in
  different orders for no reason of dispatch.

Each example is a portfolio of one to three single-focus teams (one to three
units, capacity changes at whole times, down to 0 and back) and up to ten
projects of one to three stages in sequence at random teams with crews of one to
three, arriving at quarter times (many at 0, so that ties are common), some in
flight at time 0 (a stage done, or partly done), every value profile with or
without a lump and a finite life.  All six rules run on it as six policies of
one run.  Durations are on a grid of quarters and efforts are crew x duration,
so every event time is exact in binary floating point: events that coincide in
exact arithmetic coincide in both models, and exact ties of rank (which the FIFO
key must break) are exact ties in both.  Compared, per project and rule: when
its first stage started and when it was delivered (NaN if not by the horizon).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowsim
from flowsim.scenario.load import scenario_from_dict
from flowsim.value import cost_of_delay

RULES = ("fifo", "value", "sjf", "edd", "cd3", "least_slack")
PROFILES = ("standard", "window", "decay", "deadline")
# Estimated remaining work of a stage is never taken below this share of its estimate (DESIGN section 4).
FLOOR = 0.1
# Started and delivered times are sums of stage durations along the schedule.  The two models
# add the same durations but not in the same grouping (the engine's timers are SimPy timeouts
# of ``remaining / rate`` from its clock; the reference adds ``duration_left`` to the time of
# the decision), so in general they could differ by rounding: an ulp or so per event, 1e-14
# relative over a few dozen events.  Here every duration is a multiple of 1/64 (quarters, and
# 1/2 or 1/32 of 2.5, 5 or 10 for work in flight), so every sum is exact in binary floating
# point and the two agree bit for bit; REL = 1e-9 is only slack for rounding, should the grid
# ever be relaxed, and stays far below the 1/64 by which two different schedules differ.
REL = 1e-9


# --------------------------------------------------------------------------- the reference model


@dataclass
class Stage:
    team: str
    crew: int
    effort: float  # estimated = realised (no estimation error)
    done: float  # effort worked before time 0 (a project in flight)

    def remaining_estimate(self) -> float:
        """``max(estimate - done, 0.1 * estimate)``, DESIGN section 4 (the stage is not running)."""
        return max(self.effort - self.done, FLOOR * self.effort)

    def duration_left(self) -> float:
        """Time the stage takes from its start: its realised remaining effort at ``crew`` per time unit."""
        return (self.effort - self.done) / self.crew


@dataclass
class Project:
    index: int  # order in the file
    id: str
    arrival: float
    value: dict
    stages: list[Stage]  # unfinished ones only: a stage ``done: true`` is left out
    ideal: float = math.nan  # estimated ideal delivery: arrival + critical path of the work left
    current: int = 0  # the stage queued or running (len(stages) once delivered)
    queued_at: float = math.nan  # when the current stage entered its team's queue
    started: float = math.nan  # when its first stage started
    delivered: float = math.nan

    def remaining_critical_path(self) -> float:
        """Stages in sequence: the sum of estimated remaining durations ``remaining / crew``."""
        return sum(stage.remaining_estimate() / stage.crew for stage in self.stages[self.current :])

    def due_date(self) -> float:
        """The date that makes the project urgent: ``due``, or a window's ``closes``; ``inf`` if neither."""
        return self.value.get("due", self.value.get("closes", math.inf))

    def cost_of_delay(self, projected_delivery: float, horizon: float) -> float:
        v = self.value
        return cost_of_delay(
            v.get("rate", 0.0), v.get("lump", 0.0), v.get("life", math.inf), v.get("profile", "standard"),
            v.get("closes", math.inf), v.get("half_life", math.inf), v.get("due", math.inf),
            v.get("penalty", 0.0), v.get("fine", 0.0), projected_delivery, self.ideal, horizon,
        )  # fmt: skip

    def fifo_key(self) -> tuple:
        """Entered the queue, then arrival, then order in the file (one stage queued at a time)."""
        return (self.queued_at, self.arrival, self.index)


def priority(rule: str, project: Project, now: float, horizon: float) -> float:
    """The project's rank under ``rule`` at ``now``, higher first (docs/policies.md, "Sequencing")."""
    if rule == "fifo":
        return 0.0
    if rule == "edd":
        return -project.due_date()  # undated: -inf, last
    remaining = project.remaining_critical_path()  # > 0: the floor keeps every stage's share
    if rule == "sjf":
        return -remaining
    if rule == "value":
        return project.cost_of_delay(now + remaining, horizon)
    if rule == "cd3":
        return project.cost_of_delay(now + remaining, horizon) / remaining
    if rule == "least_slack":
        due = project.due_date()
        return -(due - now - remaining) if math.isfinite(due) else -math.inf
    raise ValueError(rule)


@dataclass
class Run:
    finish: float  # when the stage's work is done
    project: Project  # its current stage is the one running


def read_projects(data: dict) -> list[Project]:
    projects = []
    for index, spec in enumerate(data["projects"]):
        stages = [
            Stage(s["team"], s.get("crew", 1), float(s["effort"]), float(s.get("done", 0.0)))
            for s in spec["stages"]
            if s.get("done") is not True
        ]
        project = Project(index, spec["id"], float(spec.get("arrival", 0.0)), spec.get("value", {}), stages)
        # DESIGN section 5: the later of arrival and predecessors' ideal deliveries (none here),
        # plus the critical path at crew rates of the work left.
        project.ideal = project.arrival + sum(s.duration_left() for s in stages)
        projects.append(project)
    return projects


def reference(data: dict, rule: str) -> dict[str, tuple[float, float]]:
    """Per project id: (first stage started, delivered), NaN when not by the horizon."""
    horizon = data["horizon"]
    teams = data["teams"]
    projects = read_projects(data)
    capacity = {name: team["capacity"] for name, team in teams.items()}
    changes = sorted((c["at"], name, c["capacity"]) for name, team in teams.items()
                     for c in team.get("capacity_changes", []))  # fmt: skip
    not_arrived = sorted(projects, key=lambda p: (p.arrival, p.index))
    queues: dict[str, list[Project]] = {name: [] for name in teams}
    running: dict[str, list[Run]] = {name: [] for name in teams}

    def enter_queue(project: Project, now: float) -> None:
        stage = project.stages[project.current]
        # README, "Work already in flight": a stage under way at time 0 entered its team's
        # queue before time 0 (under FIFO it is served ahead of everything arriving at 0).
        project.queued_at = -math.inf if now == 0 and stage.done > 0 else now
        queues[stage.team].append(project)

    def free_units(team: str) -> int:
        busy = sum(run.project.stages[run.project.current].crew for run in running[team])
        return capacity[team] - busy  # below 0 after a drop: work in progress finishes

    def dispatch(team: str, now: float) -> None:
        queue = queues[team]
        while queue:
            best = min(queue, key=lambda p: (-priority(rule, p, now, horizon), p.fifo_key()))
            stage = best.stages[best.current]
            if stage.crew > free_units(team):
                return  # strict order: nothing of lower priority overtakes it (section 3)
            queue.remove(best)
            if math.isnan(best.started):
                best.started = now
            running[team].append(Run(now + stage.duration_left(), best))

    while True:
        upcoming = [run.finish for runs in running.values() for run in runs]
        upcoming += [not_arrived[0].arrival] if not_arrived else []
        upcoming += [changes[0][0]] if changes else []
        if not upcoming:
            break
        now = min(upcoming)
        if now >= horizon:  # README, "Events at the horizon": what falls at H does not happen
            break
        # Everything at `now` first (section 7): completions, arrivals, capacity changes.
        for runs in running.values():
            for run in [run for run in runs if run.finish == now]:
                runs.remove(run)
                project = run.project
                project.current += 1
                if project.current == len(project.stages):
                    project.delivered = now
                else:
                    enter_queue(project, now)
        while not_arrived and not_arrived[0].arrival == now:
            project = not_arrived.pop(0)
            if project.stages:
                enter_queue(project, now)  # admit_all: admitted, its first stage queued, at once
        while changes and changes[0][0] == now:
            _, team, units = changes.pop(0)
            capacity[team] = units
        # Then one decision: every team hands out its free units in rank order.
        for team in teams:
            dispatch(team, now)
    return {p.id: (p.started, p.delivered) for p in projects}


# --------------------------------------------------------------------------- scenarios

QUARTERS = st.integers(1, 16).map(lambda q: q / 4)  # 0.25 .. 4 time units


@st.composite
def business_cases(draw, horizon: float) -> dict:
    value: dict = {"rate": draw(st.sampled_from([0, 1, 2, 5, 10]))}
    if draw(st.booleans()):
        value["lump"] = draw(st.sampled_from([5, 20, 50]))
    if draw(st.booleans()):
        value["life"] = draw(st.sampled_from([1, 2.5, 5, 10, 20]))
    profile = draw(st.sampled_from(PROFILES))
    if profile != "standard":
        value["profile"] = profile
    if profile == "window":
        value["closes"] = draw(st.integers(1, 4 * int(horizon)).map(lambda q: q / 4))
    elif profile == "decay":
        value["half_life"] = draw(st.sampled_from([0.5, 1, 2, 4, 8]))
    elif profile == "deadline":
        value["due"] = draw(st.integers(1, 4 * int(horizon) + 8).map(lambda q: q / 4))
        terms = draw(st.sampled_from(["penalty", "fine", "both"]))
        if terms in ("penalty", "both"):
            value["penalty"] = draw(st.sampled_from([0.25, 0.5, 1.0]))
        if terms in ("fine", "both"):
            value["fine"] = draw(st.sampled_from([10, 50, 200]))
    return value


@st.composite
def portfolios(draw) -> dict:
    horizon = float(draw(st.sampled_from([10, 20, 40])))
    teams = {}
    for k in range(draw(st.integers(1, 3))):
        team: dict = {"capacity": draw(st.integers(1, 3))}
        times = draw(st.lists(st.integers(1, int(horizon) - 1), unique=True, max_size=3))
        if times:
            team["capacity_changes"] = [{"at": t, "capacity": draw(st.integers(0, 3))} for t in sorted(times)]
        teams[f"t{k}"] = team
    most = {name: max([t["capacity"], *(c["capacity"] for c in t.get("capacity_changes", []))])
            for name, t in teams.items()}  # fmt: skip
    projects = []
    for i in range(draw(st.integers(1, 10))):
        arrival = 0.0 if draw(st.booleans()) else draw(st.integers(0, 2 * int(horizon)).map(lambda q: q / 4))
        stages = []
        for j in range(draw(st.integers(1, 3))):
            team = draw(st.sampled_from(sorted(teams)))
            crew = draw(st.integers(1, most[team]))
            stage = {"name": f"s{j}", "team": team, "effort": crew * draw(QUARTERS), "crew": crew}
            stages.append(stage)
        if arrival == 0 and draw(st.integers(0, 3)) == 0:  # in flight at time 0
            first = stages[0]
            flight = draw(st.sampled_from(["finished", "half", "overrun"] if len(stages) > 1 else ["half", "overrun"]))
            if flight == "finished":
                first["done"] = True
            else:
                # 2.5, 5 or 10 time units of work keep 0.1 x effort exact; 1/32 of it left is under
                # that floor, and by more than a quarter time unit for the longer ones, so that
                # the floor changes ranks against work on the quarter grid.
                first["effort"] = first["crew"] * draw(st.sampled_from([2.5, 5.0, 10.0]))
                first["done"] = first["effort"] * (0.5 if flight == "half" else 31 / 32)
        projects.append({"id": f"p{i}", "arrival": arrival, "value": draw(business_cases(horizon)), "stages": stages})
    return {
        "horizon": horizon,
        "teams": teams,
        "projects": projects,
        "policies": {rule: {"intake": "admit_all", "sequencing": rule} for rule in RULES},
    }


# --------------------------------------------------------------------------- the comparison


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= REL * max(abs(a), abs(b), 1.0)


def check(data: dict) -> None:
    results = flowsim.run(scenario_from_dict(data, source="<hypothesis>"), replications=1, seed=0, workers=1)
    table = results.projects.assign(policy=results.projects.policy.astype(str)).set_index(["policy", "project"])
    for rule in RULES:
        for project, (started, delivered) in reference(data, rule).items():
            row = table.loc[(rule, project)]  # every project arrives before the horizon: each has a row
            assert same(row.started, started), (rule, project, "started", row.started, started)
            assert same(row.delivered, delivered), (rule, project, "delivered", row.delivered, delivered)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolios())
def test_single_focus_teams_match_the_definition(data):
    check(data)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(portfolios())
def test_single_focus_teams_match_the_definition_at_length(data):
    check(data)


# --------------------------------------------------------------------------- the reference by hand


def test_reference_by_hand():
    """The reference itself, on the case of the engine bug it was written to find (commit 35ad3e8).

    T has 2 units.  L (effort 20, rate 1000) holds one from 0 to 20.  X (crew 2, effort 2: one time
    unit; window closing at 3, rate 100) heads the queue under ``value`` and cannot start; Y (effort
    1, rate 10) waits behind it (strict order).  X's projected delivery now + 1 reaches its window's
    close at 2: its CoD falls to 0 and Y outranks it, but nothing happens until Z arrives at 4 on
    another team: that decision starts Y, 4-5.  X runs after L, 20-21.  Under ``fifo`` X stays at
    the head: Y waits for it, X 20-21, Y 21-22."""

    def job(pid, effort, rate, team="T", arrival=0.0, crew=1, **value):
        return {"id": pid, "arrival": arrival, "value": {"rate": rate, **value},
                "stages": [{"team": team, "effort": effort, "crew": crew}]}  # fmt: skip

    data = {
        "horizon": 40,
        "teams": {"T": {"capacity": 2}, "O": {"capacity": 1}},
        "projects": [job("L", 20, 1000), job("X", 2, 100, crew=2, profile="window", closes=3),
                     job("Y", 1, 10), job("Z", 1, 1, team="O", arrival=4)],
    }  # fmt: skip
    assert reference(data, "value") == {"L": (0, 20), "X": (20, 21), "Y": (4, 5), "Z": (4, 5)}
    assert reference(data, "fifo") == {"L": (0, 20), "X": (20, 21), "Y": (21, 22), "Z": (4, 5)}
    # The horizon cuts: what is due at it does not happen.
    started, delivered = reference({**data, "horizon": 21}, "fifo")["X"]
    assert started == 20 and math.isnan(delivered)


def test_strict_order_capacity_changes_and_work_in_flight_by_hand():
    """T has 1 unit, 0 from 1, 2 from 2.  A is in flight: 1/32 of its 5 units of work is left
    (0.15625), but the estimate is 0.1 x 5 = 0.5 (the floor).  B (crew 2, 0.5 time units), C (0.25)
    and D (0.5) arrive at 0.  Under ``sjf``: C (0.25) first, 0-0.25; A, B and D tie at 0.5 and A,
    in flight, entered its queue first: 0.25-0.40625.  B heads the queue and needs 2 units: D waits
    behind it (strict order) through the drop to 0, until B starts at 2 on the 2 units, 2-2.5;
    then D, 2.5-3.  Under ``fifo`` A goes first, 0-0.15625; B holds C and D back until 2; C and D
    share the 2 units after it, 2.5-2.75 and 2.5-3."""

    def job(pid, effort, crew=1, **stage):
        return {"id": pid, "value": {"rate": 1}, "stages": [{"team": "T", "effort": effort, "crew": crew, **stage}]}

    data = {
        "horizon": 10,
        "teams": {"T": {"capacity": 1, "capacity_changes": [{"at": 1, "capacity": 0}, {"at": 2, "capacity": 2}]}},
        "projects": [job("A", 5, done=5 * 31 / 32), job("B", 1, crew=2), job("C", 0.25), job("D", 0.5)],
    }
    assert reference(data, "sjf") == {"A": (0.25, 0.40625), "B": (2, 2.5), "C": (0, 0.25), "D": (2.5, 3)}
    assert reference(data, "fifo") == {"A": (0, 0.15625), "B": (2, 2.5), "C": (2.5, 2.75), "D": (2.5, 3)}
    check({**data, "policies": {rule: {"sequencing": rule} for rule in RULES}})  # and the engine agrees
