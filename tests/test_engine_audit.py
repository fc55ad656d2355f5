"""Audit of the engine against DESIGN sections 3, 4, 5 and 7, where earlier tests were thin.

Covered here: shared-focus teams (every switching curve at fractional load, crews, costs,
capacity changes to 0 and back, busy units, utilisation and productive share); preemption
with crews, several teams, capacity drops and pauses (progress kept, ``paused`` reasons,
FIFO key of a preempted stage); the ``review`` rule's median and closed windows;
``depends_on`` cascades after a ``threshold`` rejection; capacity changes on single-focus
teams while crews wait (and capacity 0); the order of events at one instant and every
level of the FIFO tie key.

Every test is one deterministic replication (fixed efforts, ``estimation_error`` 0) and
writes the expected numbers as the arithmetic that gives them.  Conventions as in
``test_policies.py``: "x 0-4" means project x's stage holds capacity from 0 to 4; everything
at time t is applied before the decision at t (intervention, then intake, then dispatch).

Tests marked ``xfail(strict=True)`` document engine bugs found by this audit (see
/tmp/review/engine.md): they fail on this checkout and turn into an XPASS failure once fixed.
"""

from __future__ import annotations

import math

import pytest
from test_policies import events, job, rows, stage_spans

import flowsim
from flowsim.scenario import scenario_from_dict

EXACT = 1e-9


def approx(x):
    return pytest.approx(x, rel=EXACT, abs=EXACT)


def run(data: dict) -> flowsim.Results:
    data = {"name": "test_engine_audit", **data}
    return flowsim.run(scenario_from_dict(data, source="<test_engine_audit>"), replications=1, seed=0, workers=1)


def column(results, policy: str, name: str) -> dict:
    return {pid: row[name] for pid, row in rows(results, policy).items()}


def team_row(results, policy: str, team: str = "T") -> dict:
    t = results.teams
    return t[(t.policy == policy) & (t.team == team)].iloc[0].to_dict()


def busy_levels(results, policy: str, team: str = "T") -> list[float]:
    tt = results.team_timeline
    tt = tt[(tt.policy == policy) & (tt.team == team)].sort_values("time")
    return [float(b) for b in tt.busy]


def crew_job(pid: str, effort: float, crew: int, rate: float = 1.0, team: str = "T", **extra) -> dict:
    return {"id": pid, "value": {"rate": rate}, "stages": [{"team": team, "effort": effort, "crew": crew}], **extra}


# =========================================================================== shared focus (DESIGN 3)


def test_shared_capacity_to_zero_and_back_is_reshared_at_every_change():
    """weinberg; capacity 2, then 1 at 2, 0 at 3, 3 at 5; a, b, c (effort 4 each) from 0.

      0-2: c = 2, n = 3, k = 1.5, f = 0.9 (halfway between 1 at k=1 and 0.8 at k=2):
           each at 2 x 0.9 / 3 = 0.6: 1.2 done each (2.8 left).
      2-3: c = 1, k = 3, f = 0.6: each at 1 x 0.6 / 3 = 0.2: 0.2 done (2.6 left).
      3-5: c = 0: nothing progresses.
      5-:  c = 3, k = 1, f = 1: each at min(1, 3 / 3) = 1: all done at 5 + 2.6 = 7.6.
    Busy units (min(crew, c / n) each): 2 (0-2), 1 (2-3), 0 (3-5), 3 (5-7.6).
    Capacity-time to H = 10: 2 x 2 + 1 x 1 + 0 x 2 + 3 x 5 = 20.
    """
    results = run({
        "horizon": 10,
        "teams": {"T": {"capacity": 2, "focus": "shared", "switching": "weinberg",
                        "capacity_changes": [{"at": 2, "capacity": 1}, {"at": 3, "capacity": 0},
                                             {"at": 5, "capacity": 3}]}},
        "projects": [job("a", 4), job("b", 4), job("c", 4)],
        "policies": {"p": {}},
    })  # fmt: skip
    assert column(results, "p", "delivered") == {"a": approx(7.6), "b": approx(7.6), "c": approx(7.6)}
    busy = 2 * 2 + 1 * 1 + 0 * 2 + 3 * 2.6
    assert team_row(results, "p")["utilisation"] == approx(busy / 20)
    assert team_row(results, "p")["productive"] == approx(12 / 20)
    # Team timeline at 0, 1, ..., 9 and H: the level holding just after each point.
    assert busy_levels(results, "p") == [2.0, 2.0, 1.0, 0.0, 0.0, 3.0, 3.0, 3.0, 0.0, 0.0, 0.0]


# f(1.5) for each curve (c = 2 units, n = 3 stages: k = n / c = 1.5), by DESIGN's table.
F_AT_1_5 = {
    "flat": ({"rule": "flat", "loss": 0.17}, 1 - 0.17 / 2),  # halfway between 1 and 0.83
    "wheelwright_clark": ("wheelwright_clark", (1 + 0.80 / 0.70) / 2),  # halfway between 1 and 1.142857
    "table_from_2": ([[2, 0.5]], 0.75),  # a table starting above 1 rises from f(1) = 1
    "table_point_at_1_5": ([[1, 1.0], [1.5, 0.9], [3, 0.3]], 0.9),  # the point itself
}


@pytest.mark.parametrize("name", F_AT_1_5)
def test_shared_curves_at_fractional_load_with_a_crew_and_costs(name):
    """Capacity 2, cost_rate 10, discount 0; a (effort 3), b (6) and c (9, crew 2) from 0.

      0-t1: n = 3, k = 1.5: each at r = 2 f / 3 (below every crew); a done at t1 = 3 / r.
            Units held: min(crew, 2 / 3) = 2/3 each.  b and c have 3 done.
      t1-t2: n = 2, k = 1, f = 1: share 1 each; b at min(1, 1), c at min(2, 1) = 1;
             b's 3 left: t2 = t1 + 3 (c has 6 done).  Units: min(1, 1) = 1, min(2, 1) = 1.
      t2-t3: c alone: min(2, 2 x 1 / 1) = 2: its 3 left take 1.5; t3 = t2 + 1.5.  Units 2.
    Costs (money per unit-time x units x time): a 10 x 2/3 x t1; b that + 10 x 3;
    c that + 10 x 1 x 3 + 10 x 2 x 1.5.  Value (rate 1, H = 20, no discount): 20 - d.
    npv = value - cost.  Busy is 2 units throughout [0, t3]: utilisation 2 t3 / 40;
    productive 18 / 40.
    """
    switching, f = F_AT_1_5[name]
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 2, "focus": "shared", "switching": switching, "cost_rate": 10}},
        "projects": [job("a", 3), job("b", 6), crew_job("c", 9, 2)],
        "policies": {"p": {}},
    })  # fmt: skip
    r = 2 * f / 3
    t1 = 3 / r
    t2 = t1 + 3
    t3 = t2 + 1.5
    assert column(results, "p", "delivered") == {"a": approx(t1), "b": approx(t2), "c": approx(t3)}
    cost_a = 10 * (2 / 3) * t1
    cost = {"a": cost_a, "b": cost_a + 10 * 3, "c": cost_a + 10 * 1 * 3 + 10 * 2 * 1.5}
    delivered = {"a": t1, "b": t2, "c": t3}
    assert column(results, "p", "npv") == {p: approx((20 - delivered[p]) - cost[p]) for p in cost}
    assert team_row(results, "p")["utilisation"] == approx(2 * t3 / 40)
    assert team_row(results, "p")["productive"] == approx(18 / 40)


@pytest.mark.parametrize("comeback", [True, False])
def test_shared_stage_finishing_as_capacity_drops_to_zero_is_delivered(comeback):
    """One unit, shared; a (effort 2) alone from 0 at rate 1: its work is all done at 2.
    Capacity drops to 0 at 2 (and, with ``comeback``, returns to 1 at 5); b (effort 1)
    arrives at 3.

    Completions and capacity changes at one instant are all applied (DESIGN 7): a is
    delivered at 2.  b gets capacity only from 5, alone at rate 1: delivered at 6.
    Found: the capacity change is processed first, re-shares a (remaining exactly 0) at
    rate 0, supersedes a's completion timer, and sets none: a is delivered at 5, or never.
    """
    changes = [{"at": 2, "capacity": 0}] + ([{"at": 5, "capacity": 1}] if comeback else [])
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1, "focus": "shared", "capacity_changes": changes}},
        "projects": [job("a", 2), job("b", 1, arrival=3)],
        "policies": {"p": {}},
    })  # fmt: skip
    got = rows(results, "p")
    assert got["a"]["status"] == "delivered"
    assert got["a"]["delivered"] == approx(2.0)
    if comeback:
        assert got["b"]["delivered"] == approx(6.0)


def test_shared_stage_is_started_when_it_first_receives_capacity():
    """One unit, shared, switching none; capacity 0 at 2, back to 1 at 5.
    a (effort 4) from 0; b (effort 2) arrives at 3, while the team has no unit.

      0-2: a alone at 1: 2 done.  2-5: nothing.  5-9: a and b at 0.5 each: both done at 9.
    DESIGN 9: ``started`` is when a first stage first received capacity: b at 5, not 3
    (the team timeline shows 0 busy units between 2 and 5); its started event logs the
    half unit it then holds.
    Capacity-time to H = 20: 1 x 2 + 0 x 3 + 1 x 15 = 17; busy 2 + 4 = 6; effort done 6.
    """
    results = run({
        "horizon": 20,
        "teams": {"T": {"capacity": 1, "focus": "shared",
                        "capacity_changes": [{"at": 2, "capacity": 0}, {"at": 5, "capacity": 1}]}},
        "projects": [job("a", 4), job("b", 2, arrival=3)],
        "policies": {"p": {}},
    })  # fmt: skip
    assert column(results, "p", "delivered") == {"a": approx(9.0), "b": approx(9.0)}
    assert busy_levels(results, "p")[:6] == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert column(results, "p", "started") == {"a": 0.0, "b": 5.0}
    started = events(results, "p", "started")
    assert list(zip(started.time, started.project, started.units, strict=True)) == [(0.0, "a", 1.0), (5.0, "b", 0.5)]
    assert team_row(results, "p")["utilisation"] == approx(6 / 17)
    assert team_row(results, "p")["productive"] == approx(6 / 17)


# =========================================================================== preemption (DESIGN 7)

PREEMPT_TWO_TEAMS = {
    "horizon": 30,
    "teams": {"A": {"capacity": 2}, "B": {"capacity": 1}},
    "projects": [
        job("L1", 8, 1, team="A"),
        job("L2", 8, 2, team="A"),
        {"id": "H", "arrival": 2, "value": {"rate": 10},
         "stages": [{"name": "s1", "team": "B", "effort": 1}, {"name": "s2", "team": "A", "effort": 4, "crew": 2}]},
    ],
    "policies": {"value": {"sequencing": "value"}, "pre": {"sequencing": "value", "preempt": True}},
}  # fmt: skip


@pytest.mark.parametrize("drop", [False, True])
def test_preempt_for_a_crew_arriving_from_another_team(drop):
    """A 2 units, B 1 unit; value (CoD = rate): L1 (rate 1) and L2 (rate 2) on A 0-8 (effort 8).
    H (rate 10) arrives at 2: s1 on B 2-3, then s2 on A (crew 2, effort 4).

    value: s2 waits for 2 free units (strict order): 8-10.
    pre: at 3 s2 takes both units, lowest priority first (L1 then L2, both with 3 done, 5 left):
         s2 3-5; at 5 L2 and L1 resume on the two units: 5-10.
    With ``drop`` (A down to 1 unit at 4): s2 holds its 2 units until 5 (work in progress
    finishes); from 5 only one unit: L2 (higher) 5-10, then L1 10-15.  Under ``value`` s2 needs
    2 units and A never again has them: H stays active.
    Utilisation of A with the drop, pre: busy 2 x 3 + 2 x 2 + 1 x 5 + 1 x 5 = 20 over
    capacity-time 2 x 4 + 1 x 26 = 34.
    """
    data = {**PREEMPT_TWO_TEAMS, "teams": {**PREEMPT_TWO_TEAMS["teams"]}}
    if drop:
        data["teams"]["A"] = {"capacity": 2, "capacity_changes": [{"at": 4, "capacity": 1}]}
    results = run(data)
    pre = rows(results, "pre")
    assert pre["H"]["delivered"] == approx(5.0)
    spans = stage_spans(results, "pre")
    assert spans[("H", "s2")] == [(3.0, 5.0)]
    assert spans[("L2", "A")] == [(0.0, 3.0), (5.0, 10.0)]
    assert spans[("L1", "A")] == [(0.0, 3.0), (10.0, 15.0) if drop else (5.0, 10.0)]
    paused = events(results, "pre", "paused")
    assert list(zip(paused.time, paused.project, paused.reason, strict=True)) == [
        (3.0, "L1", "preempted by H"), (3.0, "L2", "preempted by H")]  # fmt: skip
    value = rows(results, "value")
    if drop:
        assert value["H"]["status"] == "active" and math.isnan(value["H"]["delivered"])
        assert team_row(results, "pre", "A")["utilisation"] == approx(20 / 34)
    else:
        assert value["H"]["delivered"] == approx(10.0)
        assert value["L1"]["delivered"] == approx(8.0)


def test_a_preempted_stage_keeps_its_original_fifo_key():
    """T 1 unit, value, preempt.  a (rate 1, effort 4) 0-2; b (rate 1, effort 2) queues at 1;
    h (rate 5, effort 1) arrives at 2 and takes a's unit (a has 2 done): h 2-3.
    At 3 a and b have equal CoD: the FIFO key decides, and a keeps the key it entered the
    queue with (time 0, docs/policies.md), ahead of b (1): a 3-5, b 5-7.
    """
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 4, 1), job("b", 2, 1, arrival=1), job("h", 1, 5, arrival=2)],
        "policies": {"pre": {"sequencing": "value", "preempt": True}},
    })  # fmt: skip
    assert stage_spans(results, "pre") == {
        ("a", "T"): [(0.0, 2.0), (3.0, 5.0)], ("h", "T"): [(2.0, 3.0)], ("b", "T"): [(5.0, 7.0)]}  # fmt: skip


def test_preempt_among_equals_takes_the_latest_started():
    """T 2 units, value, preempt.  a (rate 1, effort 6) from 0, b (rate 1, effort 6) from 1;
    h (rate 5, effort 1) at 2 needs one unit: a and b rank equal, the latest started (b) gives
    it up with 1 done: h 2-3, b resumes 3-8 (5 left); a undisturbed 0-6.
    """
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 2}},
        "projects": [job("a", 6, 1), job("b", 6, 1, arrival=1), job("h", 1, 5, arrival=2)],
        "policies": {"pre": {"sequencing": "value", "preempt": True}},
    })  # fmt: skip
    assert stage_spans(results, "pre") == {
        ("a", "T"): [(0.0, 6.0)], ("b", "T"): [(1.0, 2.0), (3.0, 8.0)], ("h", "T"): [(2.0, 3.0)]}  # fmt: skip
    paused = events(results, "pre", "paused")
    assert list(zip(paused.time, paused.project, paused.reason, strict=True)) == [(2.0, "b", "preempted by h")]


def test_a_preempted_stage_then_paused_keeps_its_progress(scripted):
    """T 1 unit, value, preempt, admit_all.  low (rate 1, effort 6) 0-1; high (rate 5, effort 4)
    arrives at 1 and preempts it (low: 1 done, queued).  At 2 low is paused: its stage is
    queued, not running, so only the project logs ``paused``; admit_all re-admits it at once
    ("resumed").  high 1-5; low resumes 5-10 with its 5 left (10 - 5 = 5: progress kept).
    """
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 1}},
        "projects": [job("low", 6, 1), job("high", 4, 5, arrival=1)],
        "policies": {"p": {"sequencing": "value", "preempt": True,
                           "intervention": {"rule": scripted, "script": [[2, "pause", "low", "why"]]}}},
    })  # fmt: skip
    assert stage_spans(results, "p") == {("low", "T"): [(0.0, 1.0), (5.0, 10.0)], ("high", "T"): [(1.0, 5.0)]}
    e = events(results, "p")
    low = e[(e.project == "low") & e.event.isin(["paused", "admitted"])]
    assert list(zip(low.time, low.event, low.stage.fillna(""), low.reason.fillna(""), strict=True)) == [
        (0.0, "admitted", "", ""),
        (1.0, "paused", "T", "preempted by high"),
        (2.0, "paused", "", "why"),
        (2.0, "admitted", "", "resumed"),
    ]  # fmt: skip
    assert column(results, "p", "delivered") == {"low": 10.0, "high": 5.0}


# =========================================================================== review, dependencies, threshold


def test_review_median_is_over_every_active_project():
    """T 4 units (all run at once), review every 4, cancel_below 0.55.
    w (window closes at 2, rate 100), a (rate 10), b (rate 4), c (rate 2), effort 10 each.

    At 4: w's window has closed: cancelled.  CoD per estimated remaining effort (6 left each):
    w 0 (a closed window's CoD), a 10/6, b 4/6, c 2/6.  DESIGN 7: "the median over active
    projects", w included: (2/6 + 4/6) / 2 = 0.5; bar 0.55 x 0.5 = 0.275 < 2/6: c kept.
    (Leaving w out, as flowsim once did, the median is 4/6, the bar 0.3667 and c goes at 4.)
    At 8: a, b, c have 2 left each: a 10/2 = 5, b 4/2 = 2, c 2/2 = 1; median 2, bar 1.1 > 1:
    c cancelled, having held its unit 0-8.  a and b done at 10.
    """
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 4}},
        "projects": [{"id": "w", "value": {"rate": 100, "profile": "window", "closes": 2},
                      "stages": [{"team": "T", "effort": 10}]},
                     job("a", 10, 10), job("b", 10, 4), job("c", 10, 2)],
        "policies": {"rev": {"intervention": {"rule": "review", "every": 4, "cancel_below": 0.55}}},
    })  # fmt: skip
    cancelled = events(results, "rev", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, cancelled.reason, strict=True)) == [
        (4.0, "w", "window closed at 2"),
        (8.0, "c", "cod per remaining effort 1 below 0.55 x median 2"),
    ]
    assert column(results, "rev", "delivered")["a"] == 10.0
    assert column(results, "rev", "delivered")["b"] == 10.0
    assert stage_spans(results, "rev")[("c", "T")] == [(0.0, 8.0)]


def test_review_cancels_a_closed_window_project_waiting_for_its_dependency():
    """T 1 unit, review every 4.  a (effort 10) 0-10; w (window closes at 3, effort 1)
    depends on a, so it waits (neither active nor in the funnel) until 10.

    DESIGN 7: review cancels "projects whose window has closed": at 4, w ("window closed
    at 3").  (Found by the audit: w was skipped at 4 and 8, admitted at 10 and held T 10-11
    for nothing.)
    """
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 10, 1),
                     {"id": "w", "depends_on": ["a"], "value": {"rate": 50, "profile": "window", "closes": 3},
                      "stages": [{"team": "T", "effort": 1}]}],
        "policies": {"rev": {"intervention": {"rule": "review", "every": 4}}},
    })  # fmt: skip
    cancelled = events(results, "rev", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, cancelled.reason, strict=True)) == [
        (4.0, "w", "window closed at 3")]  # fmt: skip
    assert rows(results, "rev")["w"]["status"] == "cancelled"


def test_threshold_rejection_cancels_dependants_when_they_arrive():
    """T 1 unit, threshold min 1.  lo (rate 1, effort 4): CD3 1/4 = 0.25 < 1: rejected at 0.
    hi (rate 100, effort 2): 50: admitted, 0-2.  d1 (arrives 3) depends on lo: cancelled on
    arrival; d2 (arrives 5) depends on d1: cancelled on arrival (DESIGN 4: dependants of a
    rejected or cancelled project are cancelled with that reason).
    Timeline counts: rejected 1 from 0; cancelled 1 from 3, 2 from 5; in_system 1 (hi) on
    [0, 2), then 0 (d1 and d2 leave the system as they arrive).
    """
    results = run({
        "horizon": 10, "teams": {"T": {"capacity": 1}},
        "projects": [job("lo", 4, 1), {**job("d1", 1, 50, arrival=3), "depends_on": ["lo"]},
                     {**job("d2", 1, 50, arrival=5), "depends_on": ["d1"]}, job("hi", 2, 100)],
        "policies": {"th": {"intake": {"rule": "threshold", "min": 1}}},
    })  # fmt: skip
    assert column(results, "th", "status") == {
        "lo": "rejected", "d1": "cancelled", "d2": "cancelled", "hi": "delivered"}  # fmt: skip
    rejected = events(results, "th", "rejected")
    assert list(zip(rejected.time, rejected.project, rejected.reason, strict=True)) == [
        (0.0, "lo", "cd3 0.25 below min 1")]  # fmt: skip
    cancelled = events(results, "th", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, cancelled.reason, strict=True)) == [
        (3.0, "d1", "depends on lo, not delivered"), (5.0, "d2", "depends on d1, not delivered")]  # fmt: skip
    tl = results.timeline.sort_values("time")
    assert list(tl.cancelled)[:7] == [0, 0, 0, 1, 1, 2, 2]
    assert list(tl.rejected)[:3] == [1, 1, 1]
    assert list(tl.in_system)[:7] == [1, 1, 0, 0, 0, 0, 0]
    assert math.isnan(rows(results, "th")["d1"]["admitted"])


# =========================================================================== single-focus capacity changes


def test_capacity_drop_while_crews_wait_by_hand():
    """T 3 units, 1 at 2, 2 at 6; fifo.  a (crew 2, effort 8), b (effort 5), c (effort 1),
    d (crew 2, effort 2), e (effort 1), all at 0.

      0: a (2 units) and b (1) start: 3 busy; c, d, e queue.  a 0-4, b 0-5.
      2: capacity 1; a and b go on (work in progress finishes).
      4: a done: 1 busy, not fewer than the capacity 1: nothing starts.
      5: b done: 0 busy: c starts 5-6.
      6: capacity 2 and c done: d (crew 2) starts 6-7; e waits behind it (strict order).
      7: e 7-8.
    Busy: 3 (0-4), 1 (4-6), 2 (6-7), 1 (7-8): 17.  Capacity-time (H = 20): 3 x 2 + 1 x 4 +
    2 x 14 = 38.  Queue: 3 on [0, 5), 2 on [5, 6), 1 on [6, 7): 18 / 20.
    """
    results = run({
        "horizon": 20,
        "teams": {"T": {"capacity": 3, "capacity_changes": [{"at": 2, "capacity": 1}, {"at": 6, "capacity": 2}]}},
        "projects": [crew_job("a", 8, 2), job("b", 5), job("c", 1), crew_job("d", 2, 2), job("e", 1)],
        "policies": {"fifo": {}},
    })  # fmt: skip
    assert column(results, "fifo", "started") == {"a": 0.0, "b": 0.0, "c": 5.0, "d": 6.0, "e": 7.0}
    assert column(results, "fifo", "delivered") == {"a": 4.0, "b": 5.0, "c": 6.0, "d": 7.0, "e": 8.0}
    team = team_row(results, "fifo")
    assert team["utilisation"] == approx(17 / 38)
    assert team["mean_queue"] == approx(18 / 20)
    assert busy_levels(results, "fifo")[:10] == [3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 2.0, 1.0, 0.0, 0.0]


def test_capacity_zero_lets_work_in_progress_finish_and_holds_new_starts():
    """T 1 unit, 0 at 1, 1 again at 4.  a (effort 3) 0-3 (it finishes although the capacity is
    0 from 1); b (effort 1) waits: at 3 nothing is busy but the capacity is 0; b 4-5.
    Capacity-time (H = 10): 1 + 0 x 3 + 1 x 6 = 7; busy 3 + 1 = 4.
    """
    results = run({
        "horizon": 10,
        "teams": {"T": {"capacity": 1, "capacity_changes": [{"at": 1, "capacity": 0}, {"at": 4, "capacity": 1}]}},
        "projects": [job("a", 3), job("b", 1)],
        "policies": {"fifo": {}},
    })  # fmt: skip
    assert column(results, "fifo", "started") == {"a": 0.0, "b": 4.0}
    assert column(results, "fifo", "delivered") == {"a": 3.0, "b": 5.0}
    assert team_row(results, "fifo")["utilisation"] == approx(4 / 7)


# =========================================================================== one instant, FIFO key (DESIGN 7)


def test_capacity_drop_finish_and_arrival_at_one_instant_are_applied_before_deciding():
    """T 2 units, 1 at 3.  a (effort 3) 0-3, b (effort 10) 0-10; c (effort 1) arrives at 3.

    At 3 a finishes, the capacity drops to 1 and c arrives; the decision sees all three:
    1 unit busy (b), capacity 1: c waits until 10: c 10-11.  (Deciding after a's finish or
    c's arrival alone would start c at 3.)
    """
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 2, "capacity_changes": [{"at": 3, "capacity": 1}]}},
        "projects": [job("a", 3), job("b", 10), job("c", 1, arrival=3)],
        "policies": {"fifo": {}},
    })  # fmt: skip
    assert column(results, "fifo", "started") == {"a": 0.0, "b": 0.0, "c": 10.0}
    assert column(results, "fifo", "delivered") == {"a": 3.0, "b": 10.0, "c": 11.0}


@pytest.mark.parametrize("rule", ["fifo", "value", "cd3"])
def test_fifo_tie_key_at_every_level(rule):
    """T and U 1 unit each; all rates 1 and every T stage effort 1, so value and cd3 tie
    everywhere (cd3: CoD 1 / remaining critical path 1) and only the FIFO key orders T.

      blk (arrival 0) holds T 0-2.
      q  (arrival 0.5): u on U 0.5-1, then its T stage enters T's queue at 1.
      p  (arrival 1): two parallel stages s0, s1 (after: []) enter T's queue at 1.
      r  (arrival 1, listed after p): enters at 1.
      z  (arrival 0.8): enters at 0.8.
    Key (time entered, arrival, file order, stage order): z (0.8) first; then at 1: q
    (arrival 0.5) before p and r (arrival 1); p before r (file order); s0 before s1.
    T: z 2-3, q 3-4, p.s0 4-5, p.s1 5-6, r 6-7.
    """
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}, "U": {"capacity": 1}},
        "projects": [
            job("blk", 2),
            {"id": "p", "arrival": 1, "value": {"rate": 1},
             "stages": [{"name": "s0", "team": "T", "effort": 1, "after": []},
                        {"name": "s1", "team": "T", "effort": 1, "after": []}]},
            {"id": "q", "arrival": 0.5, "value": {"rate": 1},
             "stages": [{"name": "u", "team": "U", "effort": 0.5}, {"name": "t", "team": "T", "effort": 1}]},
            job("r", 1, arrival=1),
            job("z", 1, arrival=0.8),
        ],
        "policies": {rule: {"sequencing": rule}},
    })  # fmt: skip
    spans = stage_spans(results, rule)
    on_t = sorted((span[0][0], key) for key, span in spans.items() if key != ("q", "u"))
    assert on_t == [(0.0, ("blk", "T")), (2.0, ("z", "T")), (3.0, ("q", "t")), (4.0, ("p", "s0")),
                    (5.0, ("p", "s1")), (6.0, ("r", "T"))]  # fmt: skip


# ----------------------------------------------------------------- a crew at the head of a queue
# T has 2 units.  L (effort 20) holds one from 0 to 20; X (crew 2, effort 2: 1 time unit) heads the
# queue and cannot start; Y (effort 1) waits behind it (strict order).  Z arrives at 4 on another team:
# a decision in the portfolio with nothing to do on T.  Found by a conformance audit against DESIGN.
BLOCKED = {
    "horizon": 40,
    "teams": {"T": {"capacity": 2}, "O": {"capacity": 1}},
    "projects": [
        job("L", 20, rate=1000),
        {"id": "X", "value": {"rate": 100, "profile": "window", "closes": 3},
         "stages": [{"team": "T", "effort": 2, "crew": 2}]},
        job("Y", 1, rate=10),
        job("Z", 1, rate=1, team="O", arrival=4),
    ],
}  # fmt: skip


def test_a_cancelled_crew_at_the_head_of_a_queue_lets_the_next_stage_take_the_free_unit():
    # A review every time unit cancels X at 3, when its window closes (closed windows are cancelled
    # wherever they wait).  Y then takes the free unit at once, 3-4; it used to wait for T's next
    # event, L's end at 20.
    data = {**BLOCKED, "policies": {"fifo": {"sequencing": "fifo", "intervention": {"rule": "review", "every": 1}}}}
    results = run(data)
    cancelled = events(results, "fifo", "cancelled")
    assert list(zip(cancelled.time, cancelled.reason, strict=True)) == [(3.0, "window closed at 3")]
    assert column(results, "fifo", "status")["X"] == "cancelled"
    assert stage_spans(results, "fifo")[("Y", "T")] == [(3.0, 4.0)]
    assert column(results, "fifo", "delivered")["Y"] == 4.0


def test_a_rank_that_falls_below_a_waiting_stage_is_seen_at_the_next_decision_anywhere():
    # Under `value` X (CoD 100 while its window is open) heads the queue; its projected delivery
    # now + 1 reaches closes = 3 at 2, when its CoD falls to 0 and Y (CoD 10) outranks it.  Nothing
    # happens on T until 20, but Z's arrival at 4 is a decision: Y starts then, 4-5, on the unit
    # free since 0 (it used to wait until 20).  X runs after L, 20-21.
    results = run({**BLOCKED, "policies": {"value": {"sequencing": "value"}}})
    spans = stage_spans(results, "value")
    assert spans[("Y", "T")] == [(4.0, 5.0)]
    assert spans[("X", "T")] == [(20.0, 21.0)]
