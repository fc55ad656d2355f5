"""Every built-in rule and action on a deterministic scenario worked out by hand (DESIGN section 7).

Efforts and value rates are fixed numbers and ``estimation_error`` is 0, so one
replication is fully determined.  Each test writes the schedule it expects as the
arithmetic that produces it (start-end of every stage, in time units) and checks
statuses, events (with their reasons) and delivery times against it.

Conventions of the hand schedules: "x 0-4" means project x's stage holds a unit
from time 0 to time 4.  Everything at time t (arrivals, completions) is applied
before the decision at t, which runs intervention, then intake, then dispatch.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

import flowsim
from flowsim.engine.setup import planning_bottleneck
from flowsim.policies import unregister
from flowsim.policies.protocol import SequencingRule
from flowsim.policies.sequencing import LeastSlack, Value
from flowsim.scenario import scenario_from_dict
from flowsim.value import DEADLINE, DECAY, WINDOW, cost_of_delay
from flowsim.world import opaque_stream

EXACT = 1e-12


def approx(x):
    return pytest.approx(x, rel=EXACT, abs=EXACT)


def run(data: dict, *, replications: int = 1, seed: int = 0) -> flowsim.Results:
    data = {"name": "test_policies", **data}
    return flowsim.run(scenario_from_dict(data, source="<test_policies>"), replications=replications, seed=seed,
                       workers=1)  # fmt: skip


def job(pid: str, effort: float, rate: float = 1.0, team: str = "T", **extra) -> dict:
    """A one-stage project on ``team`` with a standard value stream of ``rate``."""
    return {"id": pid, "value": {"rate": rate}, "stages": [{"team": team, "effort": effort}], **extra}


def rows(results: flowsim.Results, policy: str, replication: int = 0) -> dict[str, dict]:
    p = results.projects
    p = p[(p.policy == policy) & (p.replication == replication)]
    return {r["project"]: r for r in p.to_dict("records")}


def events(results: flowsim.Results, policy: str, event: str | None = None, replication: int = 0) -> pd.DataFrame:
    e = results.events
    e = e[(e.policy == policy) & (e.replication == replication)]
    if event is not None:
        e = e[e.event == event]
    return e.reset_index(drop=True)


def stage_spans(results: flowsim.Results, policy: str, replication: int = 0) -> dict[tuple[str, str], list]:
    """(project, stage) -> [(start, end), ...]: the spans a stage held capacity (one per start)."""
    e = events(results, policy, replication=replication)
    e = e[e.stage.notna()]
    spans: dict[tuple[str, str], list] = {}
    open_: dict[tuple[str, str], float] = {}
    for r in e.itertuples():
        key = (r.project, r.stage)
        if r.event == "started":
            open_[key] = r.time
        elif r.event in ("finished", "paused") and key in open_:
            spans.setdefault(key, []).append((open_.pop(key), r.time))
    return spans


def check_schedule(results, policy: str, plan: dict[str, tuple[float, float]], team: str = "T") -> None:
    """One-stage projects: ``plan[id] = (start, delivery)``."""
    got = rows(results, policy)
    for pid, (start, end) in plan.items():
        assert got[pid]["started"] == approx(start), (policy, pid, "started")
        assert got[pid]["delivered"] == approx(end), (policy, pid, "delivered")
        assert got[pid]["status"] == "delivered", (policy, pid)


def delivery_order(results, policy: str) -> list[str]:
    got = rows(results, policy)
    return sorted(got, key=lambda pid: (got[pid]["delivered"], pid))


# =========================================================================== intake


def test_admit_all_admits_every_arrival_at_once():
    # T has 1 unit.  a (4) and b (3) arrive at 0, c (1) at 1; all admitted on arrival.
    # FIFO: a 0-4, b 4-7, c 7-8 (c entered T's queue at 1, after b at 0).
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 4), job("b", 3), job("c", 1, arrival=1)],
        "policies": {"push": {"intake": "admit_all"}},
    })  # fmt: skip
    got = rows(results, "push")
    assert {pid: got[pid]["admitted"] for pid in "abc"} == {"a": 0.0, "b": 0.0, "c": 1.0}
    check_schedule(results, "push", {"a": (0, 4), "b": (4, 7), "c": (7, 8)})
    # b waited 4 in T's queue, c 6: inside the portfolio, not in the funnel.
    assert got["c"]["cycle_time"] == approx(8 - 1)


def test_wip_limit_holds_projects_in_the_funnel():
    # T has 1 unit; limit 2.  a (2), b (3), c (1) all arrive at 0.
    # t=0: a and b admitted (2 active); c waits in the funnel.
    # T: a 0-2.  t=2: a delivered -> 1 active -> c admitted at 2, queued behind b (b entered T's
    # queue at 0): b 2-5, c 5-6.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 2), job("b", 3), job("c", 1)],
        "policies": {"wip2": {"intake": {"rule": "wip_limit", "limit": 2}}},
    })  # fmt: skip
    got = rows(results, "wip2")
    assert [got[p]["admitted"] for p in "abc"] == [0.0, 0.0, 2.0]
    check_schedule(results, "wip2", {"a": (0, 2), "b": (2, 5), "c": (5, 6)})
    timeline = results.timeline
    assert timeline.wip.max() == 2
    assert list(timeline.wip[timeline.time.isin([0.0, 1.0, 2.0, 5.0, 6.0])]) == [2, 2, 2, 1, 0]


def test_team_wip_counts_queued_or_running_stages_per_team():
    # Teams A and B, 1 unit each.  p1: A 2 -> B 4; p2: A 1 -> B 1; p3: B 1 (no A work).
    #
    # limits {A: 1}: t=0 p1 admitted (A wip 0 < 1; p1's B stage is blocked, not counted);
    #   p2 needs A where wip is now 1: hold; p3 needs only B, which has no limit: admitted.
    #   A: p1 0-2.  B: p3 0-1.  t=2: p1.A finishes (A wip 0), p1.B queues -> p2 admitted at 2.
    #   A: p2 2-3.  B: p1 2-6, p2 6-7.
    # limits {A: 1, B: 1}: t=0 as above, p3 admitted too (B wip 0 at the pass: p1.B blocked).
    #   t=2: p1.B queued, B wip 1 -> p2 held (needs B).  t=6: p1.B done, B wip 0 -> p2 admitted
    #   at 6: A 6-7, B 7-8.
    results = run({
        "horizon": 30, "teams": {"A": {"capacity": 1}, "B": {"capacity": 1}},
        "projects": [
            {"id": "p1", "value": {"rate": 1}, "stages": [{"team": "A", "effort": 2}, {"team": "B", "effort": 4}]},
            {"id": "p2", "value": {"rate": 1}, "stages": [{"team": "A", "effort": 1}, {"team": "B", "effort": 1}]},
            job("p3", 1, team="B"),
        ],
        "policies": {
            "a1": {"intake": {"rule": "team_wip", "limits": {"A": 1}}},
            "a1b1": {"intake": {"rule": "team_wip", "limits": {"A": 1, "B": 1}}},
        },
    })  # fmt: skip
    a1, a1b1 = rows(results, "a1"), rows(results, "a1b1")
    assert {p: a1[p]["admitted"] for p in a1} == {"p1": 0.0, "p2": 2.0, "p3": 0.0}
    assert {p: a1[p]["delivered"] for p in a1} == {"p1": 6.0, "p2": 7.0, "p3": 1.0}
    assert {p: a1b1[p]["admitted"] for p in a1b1} == {"p1": 0.0, "p2": 6.0, "p3": 0.0}
    assert {p: a1b1[p]["delivered"] for p in a1b1} == {"p1": 6.0, "p2": 8.0, "p3": 1.0}
    spans = stage_spans(results, "a1")
    assert spans[("p2", "A")] == [(2.0, 3.0)] and spans[("p2", "B")] == [(6.0, 7.0)]


DRUM = {
    "horizon": 30,
    # dev is listed first so that "first listed" cannot explain the choice of the drum.
    "teams": {"dev": {"capacity": 2}, "data": {"capacity": 1}},
    "projects": [
        {"id": f"p{i}", "value": {"rate": 1}, "stages": [{"team": "data", "effort": 2}, {"team": "dev", "effort": 1}]}
        for i in (1, 2, 3)
    ],
    "policies": {
        "named": {"intake": {"rule": "drum", "buffer": 3, "team": "data"}},
        "planned": {"intake": {"rule": "drum", "buffer": 3}},
        "dev": {"intake": {"rule": "drum", "buffer": 3, "team": "dev"}},
    },
}


def test_drum_admits_while_the_bottleneck_load_is_under_the_buffer():
    # Planning bottleneck: estimated demand per unit of capacity over the horizon,
    # data 3 x 2 / 1 = 6 > dev 3 x 1 / 2 = 1.5, so data is the drum when none is named.
    assert planning_bottleneck(scenario_from_dict(DRUM)) == "data"
    # Buffer 3 time units x capacity 1 = 3 units of data work.
    # t=0: p1: load 0 < 3, admitted (load 2); p2: 2 < 3, admitted (load 4); p3: 4 >= 3, held.
    # data: p1 0-2.  t=2: p1.data done, admitted data work left = p2's 2 < 3 -> p3 admitted at 2.
    # data: p2 2-4, p3 4-6; dev: p1 2-3, p2 4-5, p3 6-7.
    # On dev (buffer 3 x 2 units = 6 > 3 units of dev work in all) nothing is ever held.
    results = run(DRUM)
    for policy, admitted in {"named": [0, 0, 2], "planned": [0, 0, 2], "dev": [0, 0, 0]}.items():
        got = rows(results, policy)
        assert [got[f"p{i}"]["admitted"] for i in (1, 2, 3)] == admitted, policy
        assert [got[f"p{i}"]["delivered"] for i in (1, 2, 3)] == [3.0, 5.0, 7.0], policy


def test_drum_projects_without_drum_work_are_admitted():
    # data 1 unit, buffer 1: p1 (data 2) admitted at 0 (load 0 < 1, then 2); p2 (data 2) held;
    # q (dev only) has no work on the drum: admitted at 0 although the load is over the buffer.
    results = run({
        "horizon": 20, "teams": {"data": {"capacity": 1}, "dev": {"capacity": 1}},
        "projects": [job("p1", 2, team="data"), job("p2", 2, team="data"), job("q", 1, team="dev")],
        "policies": {"drum": {"intake": {"rule": "drum", "buffer": 1, "team": "data"}}},
    })  # fmt: skip
    got = rows(results, "drum")
    # t=2: p1 delivered, load 0 < 1 -> p2 admitted at 2, runs 2-4.
    assert {p: got[p]["admitted"] for p in got} == {"p1": 0.0, "p2": 2.0, "q": 0.0}
    assert {p: got[p]["delivered"] for p in got} == {"p1": 2.0, "p2": 4.0, "q": 1.0}


def test_threshold_rejects_low_cd3_with_reason_and_cascades():
    # CD3 = CoD / remaining critical path = rate / effort here:
    #   hi 100 / 2 = 50, mid 30 / 1 = 30, lo 10 / 4 = 2.5 (< 20: rejected).
    # dep depends on lo: cancelled when lo is rejected, with that reason.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("hi", 2, 100), job("mid", 1, 30), job("lo", 4, 10),
                     {**job("dep", 1, 50), "depends_on": ["lo"]}],
        "policies": {"threshold": {"intake": {"rule": "threshold", "min": 20}}},
    })  # fmt: skip
    got = rows(results, "threshold")
    assert {p: got[p]["status"] for p in got} == {
        "hi": "delivered", "mid": "delivered", "lo": "rejected", "dep": "cancelled"}  # fmt: skip
    assert math.isnan(got["lo"]["admitted"]) and math.isnan(got["lo"]["delivered"])
    rejected = events(results, "threshold", "rejected")
    assert list(rejected.project) == ["lo"] and list(rejected.time) == [0.0]
    assert rejected.reason[0] == "cd3 2.5 below min 20"
    cancelled = events(results, "threshold", "cancelled")
    assert list(cancelled.project) == ["dep"]
    assert cancelled.reason[0] == "depends on lo, not delivered"
    check_schedule(results, "threshold", {"hi": (0, 2), "mid": (2, 3)})
    assert results.timeline.rejected.iloc[-1] == 1 and results.timeline.cancelled.iloc[-1] == 1


def test_cadence_admits_only_at_planning_points_up_to_the_limit():
    # Plenty of capacity (T has 10 units), every project effort 1.
    # Planning points 0, 4, 8, ... at most 2 admissions each.
    # p1..p5 arrive at 0, p6 at 5, p7 at 9.
    # t=0: p1, p2; t=4: p3, p4; t=8: p5, p6 (p6 waited from 5); t=12: p7 (waited from 9).
    # Arrivals and completions between points never admit anything.
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 10}},
        "projects": [job(f"p{i}", 1) for i in range(1, 6)] + [job("p6", 1, arrival=5), job("p7", 1, arrival=9)],
        "policies": {"cadence": {"intake": {"rule": "cadence", "every": 4, "limit": 2}},
                     "unlimited": {"intake": {"rule": "cadence", "every": 4}}},
    })  # fmt: skip
    got = rows(results, "cadence")
    admitted = {"p1": 0, "p2": 0, "p3": 4, "p4": 4, "p5": 8, "p6": 8, "p7": 12}
    assert {p: got[p]["admitted"] for p in got} == admitted
    assert {p: got[p]["delivered"] for p in got} == {p: t + 1.0 for p, t in admitted.items()}
    # Without a limit every waiting project goes at the next point.
    free = rows(results, "unlimited")
    assert {p: free[p]["admitted"] for p in free} == {
        "p1": 0, "p2": 0, "p3": 0, "p4": 0, "p5": 0, "p6": 8, "p7": 12}  # fmt: skip


# =========================================================================== sequencing

# One unit of capacity, everything in the backlog at time 0, one stage each, so the rule's
# order is the schedule.  (id, effort, rate, wsjf fields business_value, time_criticality,
# risk_reduction, job_size):
BACKLOG = [
    ("a", 4, 8, (1, 1, 1, 1)),  # cd3 8/4 = 2,    wsjf 3/1 = 3
    ("b", 1, 3, (2, 0, 0, 4)),  # cd3 3/1 = 3,    wsjf 2/4 = 0.5
    ("c", 2, 10, (1, 0, 0, 1)),  # cd3 10/2 = 5,  wsjf 1/1 = 1
    ("d", 3, 1, (6, 2, 2, 2)),  # cd3 1/3 = 0.33, wsjf 10/2 = 5
]
EFFORT = {pid: effort for pid, effort, _, _ in BACKLOG}


def backlog(policies: dict, **extra) -> dict:
    projects = [
        {"id": pid, "value": {"rate": rate}, "stages": [{"team": "T", "effort": effort}],
         "business_value": bv, "time_criticality": tc, "risk_reduction": rr, "job_size": size}
        for pid, effort, rate, (bv, tc, rr, size) in BACKLOG
    ]  # fmt: skip
    return {"horizon": 40, "teams": {"T": {"capacity": 1}}, "projects": projects, "policies": policies, **extra}


def plan_of(order: str) -> dict[str, tuple[float, float]]:
    """Back-to-back on one unit in ``order``: (start, delivery) per project."""
    clock, plan = 0.0, {}
    for pid in order:
        plan[pid] = (clock, clock + EFFORT[pid])
        clock += EFFORT[pid]
    return plan


def test_static_sequencing_rules_by_hand():
    results = run(backlog({rule: {"sequencing": rule} for rule in ("fifo", "value", "sjf", "cd3", "wsjf")}))
    expected = {
        "fifo": "abcd",  # file order: a 0-4, b 4-5, c 5-7, d 7-10
        "value": "cabd",  # rates 10, 8, 3, 1: c 0-2, a 2-6, b 6-7, d 7-10
        "sjf": "bcda",  # efforts 1, 2, 3, 4: b 0-1, c 1-3, d 3-6, a 6-10
        "cd3": "cbad",  # 5, 3, 2, 0.33: c 0-2, b 2-3, a 3-7, d 7-10
        "wsjf": "dacb",  # 5, 3, 1, 0.5: d 0-3, a 3-7, c 7-9, b 9-10
    }
    assert plan_of("cbad") == {"c": (0, 2), "b": (2, 3), "a": (3, 7), "d": (7, 10)}
    for policy, order in expected.items():
        check_schedule(results, policy, plan_of(order))


def test_fifo_key_is_queue_entry_then_arrival_then_file_order():
    # T 1 unit.  x arrives at 0 (effort 3); z (listed before y) and y both arrive at 1;
    # w arrives at 0.5.  FIFO: x 0-3, then w (queued 0.5), then z (queued 1, listed before y), y.
    # Two-stage v: A 1 -> T 1, arrives at 0: its T stage enters T's queue at 1, with z and y,
    # but v arrived at 0, before them: v goes before z and y.
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 1}, "A": {"capacity": 1}},
        "projects": [job("x", 3), job("z", 1, arrival=1), job("y", 1, arrival=1), job("w", 1, arrival=0.5),
                     {"id": "v", "value": {"rate": 1},
                      "stages": [{"team": "A", "effort": 1}, {"team": "T", "effort": 1}]}],
        "policies": {"fifo": {"sequencing": "fifo"}},
    })  # fmt: skip
    check_schedule(results, "fifo", {"x": (0, 3), "w": (3, 4), "v": (0, 5), "z": (5, 6), "y": (6, 7)})
    assert stage_spans(results, "fifo")[("v", "T")] == [(4.0, 5.0)]


def test_random_is_reproducible_from_its_own_stream():
    results = run(backlog({"fifo": {"sequencing": "fifo"}, "rnd": {"sequencing": "random"}}), replications=3, seed=11)
    again = run(backlog({"fifo": {"sequencing": "fifo"}, "rnd": {"sequencing": "random"}}), replications=3, seed=11)
    pd.testing.assert_frame_equal(results.projects, again.projects)
    orders = []
    for replication in range(3):
        # One uniform draw per project from stream "rule:<policy>:sequencing" (opaque: seeded
        # from a hash of its place in the tree), in the order the projects are first ranked:
        # they all arrive at 0, in file order.
        draws = opaque_stream(11, replication, "rule:rnd:sequencing").random(len(BACKLOG))
        order = "".join(BACKLOG[i][0] for i in np.argsort(-draws, kind="stable"))
        got = rows(results, "rnd", replication)
        plan = plan_of(order)
        for pid, (start, end) in plan.items():
            assert got[pid]["started"] == approx(start) and got[pid]["delivered"] == approx(end)
        orders.append(order)
    assert any(order != "abcd" for order in orders), "random never differed from fifo"
    assert len(set(orders)) > 1, "random gave the same order in every replication"


def test_adding_a_random_policy_leaves_other_policies_unchanged():
    """A rule's randomness comes from its own stream: it never shifts the worlds or other rules."""
    base = {
        "horizon": 60, "estimation_error": 0.3,
        "teams": {"T": {"capacity": 2}},
        "templates": {"job": {"value": {"rate": {"dist": "uniform", "low": 1, "high": 10}},
                              "stages": [{"team": "T", "effort": {"dist": "exponential", "mean": 1}}]}},
        "arrivals": [{"template": "job", "rate": 1.6}],
    }  # fmt: skip
    two = {"fifo": {"sequencing": "fifo"}, "cd3": {"sequencing": "cd3"}}
    three = {"fifo": {"sequencing": "fifo"}, "rnd": {"sequencing": "random"}, "cd3": {"sequencing": "cd3"}}
    without = run({**base, "policies": two}, replications=3, seed=4).projects
    with_random = run({**base, "policies": three}, replications=3, seed=4).projects
    for policy in two:
        a = without[without.policy == policy].drop(columns="policy").reset_index(drop=True)
        b = with_random[with_random.policy == policy].drop(columns="policy").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    rnd = with_random[with_random.policy == "rnd"].reset_index(drop=True)
    fifo = with_random[with_random.policy == "fifo"].reset_index(drop=True)
    assert not np.allclose(rnd.started.fillna(-1), fifo.started.fillna(-1))


DATED = {
    "horizon": 40,
    "teams": {"T": {"capacity": 1}},
    "projects": [
        {"id": "e1", "value": {"rate": 1, "profile": "deadline", "due": 10, "fine": 100},
         "stages": [{"team": "T", "effort": 8}]},
        {"id": "e2", "value": {"rate": 1, "profile": "deadline", "due": 6, "fine": 100},
         "stages": [{"team": "T", "effort": 1}]},
        {"id": "e3", "value": {"rate": 1, "profile": "window", "closes": 5}, "stages": [{"team": "T", "effort": 2}]},
        job("e4", 1),  # no date
    ],
    "policies": {"edd": {"sequencing": "edd"}, "slack": {"sequencing": "least_slack"}},
}  # fmt: skip


def test_edd_and_least_slack_by_hand():
    results = run(DATED)
    # edd: due/closes 5 (e3), 6 (e2), 10 (e1), none (e4) last: e3 0-2, e2 2-3, e1 3-11, e4 11-12.
    check_schedule(results, "edd", {"e3": (0, 2), "e2": (2, 3), "e1": (3, 11), "e4": (11, 12)})
    # least_slack at 0: slack = due - now - remaining: e1 10 - 8 = 2, e3 5 - 2 = 3, e2 6 - 1 = 5,
    # e4 none (last).  e1 0-8.  At 8: e3 5 - 8 - 2 = -5, e2 6 - 8 - 1 = -3: e3 8-10, e2 10-11, e4 11-12.
    check_schedule(results, "slack", {"e1": (0, 8), "e3": (8, 10), "e2": (10, 11), "e4": (11, 12)})
    # Fines: under edd e1 is late (11 > 10); under least_slack e2 (11 > 6).
    assert rows(results, "edd")["e1"]["value_delivered"] == approx(0.5 * 0 + 1 * (40 - 11) - 100)
    assert rows(results, "slack")["e2"]["value_delivered"] == approx(1 * (40 - 11) - 100)
    # e3's window closed at 5: under least_slack it is delivered at 10, worth nothing.
    assert rows(results, "slack")["e3"]["value_delivered"] == 0.0


# =========================================================================== policy options


def test_preempt_takes_the_unit_and_keeps_progress():
    """A waiting stage takes a unit from a team whose units are all busy (crew 1, capacity 1)."""
    # T 1 unit.  low (effort 4, rate 1) arrives at 0; high (effort 2, rate 100) arrives at 1.
    # value without preemption: low 0-4, high 4-6.
    # value with preempt: low 0-1, preempted at 1 by high (1-3), low resumes 3-6 with 3 left:
    # low finishes 6 - 4 = 2 later, exactly the 2 time units it was preempted for.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("low", 4, 1), job("high", 2, 100, arrival=1)],
        "policies": {"value": {"sequencing": "value"}, "preempt": {"sequencing": "value", "preempt": True}},
    })  # fmt: skip
    check_schedule(results, "value", {"low": (0, 4), "high": (4, 6)})
    got = rows(results, "preempt")
    assert got["high"]["started"] == 1.0 and got["high"]["delivered"] == 3.0
    assert got["low"]["started"] == 0.0 and got["low"]["delivered"] == 6.0
    preemption = got["high"]["delivered"] - got["high"]["started"]
    assert got["low"]["delivered"] - rows(results, "value")["low"]["delivered"] == approx(preemption)
    assert stage_spans(results, "preempt")[("low", "T")] == [(0.0, 1.0), (3.0, 6.0)]
    paused = events(results, "preempt", "paused")
    assert list(zip(paused.project, paused.time, paused.reason, strict=True)) == [("low", 1.0, "preempted by high")]
    # Work done adds up to the effort: 1 + 3 = 4; utilisation = 6 busy / 20.
    teams = results.teams.set_index("policy")
    assert teams.utilisation["preempt"] == approx(6 / 20)
    # One stage waits at a time: high 1-1 (taken at once), low 1-3; mean 2 / 20.
    assert teams.max_queue["preempt"] == 1 and teams.mean_queue["preempt"] == approx(2 / 20)


def test_preempt_for_a_crew_keeps_progress():
    # T 2 units.  low (effort 4, rate 1) runs on one unit from 0; high (effort 4, crew 2: 2 time
    # units on both units, rate 100) arrives at 1, when one unit is free.
    # value without preemption (strict order, high waits for 2 free units): low 0-4, high 4-6.
    # value with preempt: high takes low's unit at 1: high 1-3, low resumes 3-6 with 4 - 1 = 3
    # left: low finishes 6 - 4 = 2 later, exactly the time it was preempted for.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 2}},
        "projects": [job("low", 4, 1), {**job("high", 4, 100, arrival=1),
                                        "stages": [{"team": "T", "effort": 4, "crew": 2}]}],
        "policies": {"value": {"sequencing": "value"}, "preempt": {"sequencing": "value", "preempt": True}},
    })  # fmt: skip
    check_schedule(results, "value", {"low": (0, 4), "high": (4, 6)})
    check_schedule(results, "preempt", {"low": (0, 6), "high": (1, 3)})
    preemption = 3 - 1
    late = rows(results, "preempt")["low"]["delivered"] - rows(results, "value")["low"]["delivered"]
    assert late == approx(preemption)
    assert stage_spans(results, "preempt")[("low", "T")] == [(0.0, 1.0), (3.0, 6.0)]
    paused = events(results, "preempt", "paused")
    assert list(zip(paused.project, paused.time, paused.reason, strict=True)) == [("low", 1.0, "preempted by high")]
    started = events(results, "preempt", "started")
    assert list(zip(started.project, started.time, started.units, strict=True)) == [
        ("low", 0.0, 1), ("high", 1.0, 2), ("low", 3.0, 1)]  # fmt: skip


def test_preempt_never_takes_from_equal_priority():
    # fifo ranks everything 0: nothing is strictly lower, so preempt changes nothing.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 4), job("b", 1, arrival=1)],
        "policies": {"fifo": {"sequencing": "fifo", "preempt": True}},
    })  # fmt: skip
    check_schedule(results, "fifo", {"a": (0, 4), "b": (4, 5)})
    assert events(results, "fifo", "paused").empty


def test_perfect_information_ranks_by_realised_values():
    # short is believed 5 long but takes 1; long is believed 1 and takes 5 (explicit estimates).
    # sjf on estimates: long 0-5, short 5-6.  With perfect information: short 0-1, long 1-6.
    # value: cheap's business case says 50 a week but it earns 1; rich says 2 and earns 20.
    # value on estimates: cheap 0-1 then rich 1-2; with perfect information rich 0-1, cheap 1-2.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}, "U": {"capacity": 1}},
        "projects": [
            {"id": "long", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 5, "estimate": 1}]},
            {"id": "short", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 1, "estimate": 5}]},
            {"id": "cheap", "value": {"rate": 1, "estimate": 50}, "stages": [{"team": "U", "effort": 1}]},
            {"id": "rich", "value": {"rate": 20, "estimate": 2}, "stages": [{"team": "U", "effort": 1}]},
        ],
        "policies": {
            "sjf": {"sequencing": "sjf"},
            "sjf-pi": {"sequencing": "sjf", "perfect_information": True},
            "value": {"sequencing": "value"},
            "value-pi": {"sequencing": "value", "perfect_information": True},
        },
    })  # fmt: skip
    check_schedule(results, "sjf", {"long": (0, 5), "short": (5, 6)})
    check_schedule(results, "sjf-pi", {"short": (0, 1), "long": (1, 6)})
    check_schedule(results, "value", {"cheap": (0, 1), "rich": (1, 2)})
    check_schedule(results, "value-pi", {"rich": (0, 1), "cheap": (1, 2)})
    # Accounting always uses realised values: rich delivered at 1 earns 20 x 19.
    assert rows(results, "value-pi")["rich"]["value_delivered"] == approx(20 * (20 - 1))
    assert rows(results, "value")["rich"]["value_delivered"] == approx(20 * (20 - 2))


# =========================================================================== intervention: review

REVIEW = {
    "horizon": 30,
    "teams": {"T": {"capacity": 3}},
    "projects": [
        job("good1", 20, 100),
        job("good2", 20, 100),
        job("zombie", 20, 1),
        {"id": "win", "value": {"rate": 50, "profile": "window", "closes": 3}, "stages": [{"team": "T", "effort": 10}]},
        {**job("dep", 1, 10), "depends_on": ["win"]},
        job("good3", 20, 100),
    ],
    "policies": {
        "fifo": {"sequencing": "fifo"},
        "review": {"sequencing": "fifo", "intervention": {"rule": "review", "every": 4, "cancel_below": 0.3}},
    },
}


def test_review_cancels_low_value_and_closed_windows_with_cascade():
    # T 3 units, fifo: good1, good2, zombie run from 0; win and good3 queue; dep waits for win.
    # Reviews at 4, 8, ..., 28.  At t=4:
    #   win: window closed at 3 -> cancelled ("window closed at 3"); dep cascades.
    #   CoD per estimated remaining effort over every active project: good1 100 / 16 = 6.25,
    #   good2 6.25, zombie 1 / 16 = 0.0625, good3 (queued) 100 / 20 = 5, win 0 (its window has
    #   closed); median 5, bar 0.3 x 5 = 1.5: zombie cancelled.
    # good3 takes zombie's unit at 4: 4-24.  good1, good2 0-20.
    # Later reviews cancel nothing: t=16: 100/4 = 25, 25, good3 100/8 = 12.5 >= 0.3 x 25;
    # t=20, 24: good1 and good2 are delivered (completions come before the decision).
    results = run(REVIEW)
    got = rows(results, "review")
    assert {p: got[p]["status"] for p in got} == {
        "good1": "delivered", "good2": "delivered", "zombie": "cancelled", "win": "cancelled",
        "dep": "cancelled", "good3": "delivered"}  # fmt: skip
    cancelled = events(results, "review", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, cancelled.reason, strict=True)) == [
        (4.0, "win", "window closed at 3"),
        (4.0, "dep", "depends on win, not delivered"),
        (4.0, "zombie", "cod per remaining effort 0.0625 below 0.3 x median 5"),
    ]
    assert got["good3"]["started"] == 4.0 and got["good3"]["delivered"] == 24.0
    assert got["good1"]["delivered"] == 20.0 and got["good2"]["delivered"] == 20.0
    # zombie's stage was taken off T at 4 with its 4 units of progress.
    assert stage_spans(results, "review")[("zombie", "T")] == [(0.0, 4.0)]
    # Without the review, fifo keeps them all: good1, good2, zombie 0-20; win and good3 wait for
    # units until 20; win (20-30) is not delivered before the horizon 30, so dep never starts.
    base = rows(results, "fifo")
    assert base["zombie"]["delivered"] == 20.0 and base["good3"]["started"] == 20.0
    assert base["win"]["started"] == 20.0 and base["win"]["value_delivered"] == 0.0
    assert base["dep"]["status"] == "waiting"  # win not delivered by the horizon (20 + 10 = 30)


def test_review_cancels_closed_windows_still_in_the_funnel():
    # T 1 unit, wip_limit 1, fifo.  a (effort 6) admitted at 0, runs 0-6; w (window closes at
    # 3, effort 5) and b (effort 2) wait in the funnel.  Review at 4: w's window has closed
    # -> cancelled from the funnel, never admitted.  b admitted at 6 (a delivered), runs 6-8.
    # Without the review, w is admitted at 6 and holds T 6-11 for nothing; b runs 11-13.
    data = {
        "horizon": 20,
        "teams": {"T": {"capacity": 1}},
        "projects": [
            job("a", 6, 10),
            job("w", 5, value={"rate": 50, "profile": "window", "closes": 3}),
            job("b", 2, 10),
        ],
        "policies": {
            "plain": {"intake": {"rule": "wip_limit", "limit": 1}, "sequencing": "fifo"},
            "review": {"intake": {"rule": "wip_limit", "limit": 1}, "sequencing": "fifo",
                       "intervention": {"rule": "review", "every": 4}},
        },
    }  # fmt: skip
    results = run(data)
    got = rows(results, "review")
    assert got["w"]["status"] == "cancelled" and math.isnan(got["w"]["admitted"])
    cancelled = events(results, "review", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, cancelled.reason, strict=True)) == [
        (4.0, "w", "window closed at 3")
    ]
    assert got["b"]["admitted"] == 6.0 and got["b"]["delivered"] == 8.0
    plain = rows(results, "plain")
    assert plain["w"]["admitted"] == 6.0 and plain["w"]["delivered"] == 11.0 and plain["w"]["value_delivered"] == 0.0
    assert plain["b"]["delivered"] == 13.0


# =========================================================================== user actions


# The scripted intervention rule (fixture ``scripted``) is in conftest.py.


def test_pause_returns_to_the_funnel_keeping_progress(scripted):
    # T 1 unit, wip_limit 1.  p1 (effort 4), p2 (effort 3) at 0: p1 admitted, p2 waits.
    # p1 0-2; at 2 p1 is paused ("make room"): back to the funnel with 2 done.
    # The intake pass at 2: funnel in fifo order: p2 (entered 0) before p1 (re-entered at 2):
    # p2 admitted at 2, runs 2-5.  t=5: p2 delivered, p1 resumed (admitted, "resumed"), 5-7.
    # p1's stage worked 2 + 2 = 4 = its effort.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("p1", 4), job("p2", 3)],
        "policies": {"pause": {"intake": {"rule": "wip_limit", "limit": 1},
                               "intervention": {"rule": scripted, "script": [[2, "pause", "p1", "make room"]]}}},
    })  # fmt: skip
    got = rows(results, "pause")
    assert got["p1"]["admitted"] == 0.0 and got["p2"]["admitted"] == 2.0
    assert got["p2"]["started"] == 2.0 and got["p2"]["delivered"] == 5.0
    assert got["p1"]["delivered"] == 7.0 and got["p1"]["status"] == "delivered"
    spans = stage_spans(results, "pause")[("p1", "T")]
    assert spans == [(0.0, 2.0), (5.0, 7.0)]
    assert sum(end - start for start, end in spans) == approx(4.0)
    e = events(results, "pause")
    p1 = e[(e.project == "p1") & e.event.isin(["paused", "admitted"])]
    assert list(zip(p1.time, p1.event, p1.stage.fillna(""), p1.reason.fillna(""), strict=True)) == [
        (0.0, "admitted", "", ""),
        (2.0, "paused", "T", "project withdrawn"),
        (2.0, "paused", "", "make room"),
        (5.0, "admitted", "", "resumed"),
    ]
    # wip: 1 until 2 (p1), p2 2-5, p1 5-7; admitted counts each project once.
    timeline = results.timeline.set_index("time")
    assert timeline.loc[[1.0, 3.0, 6.0, 8.0], "wip"].tolist() == [1, 1, 1, 0]
    assert timeline.admitted.iloc[-1] == 2


def test_pause_under_admit_all_only_loses_the_queue_place(scripted):
    # T 1 unit, admit_all, fifo.  p1 (effort 4), p2 (effort 3) at 0: p1 0-2, p2 queued.
    # At 2 p1 is paused, and intake (same decision) admits it again at once ("resumed"):
    # its stage re-enters T's queue at 2, behind p2 (entered at 0): p2 2-5, p1 5-7.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("p1", 4), job("p2", 3)],
        "policies": {"pause": {"intervention": {"rule": scripted, "script": [[2, "pause", "p1", "why"]]}}},
    })  # fmt: skip
    e = events(results, "pause")
    p1 = e[(e.project == "p1") & e.event.isin(["paused", "admitted"]) & e.stage.isna()]
    assert list(zip(p1.time, p1.event, p1.reason.fillna(""), strict=True)) == [
        (0.0, "admitted", ""), (2.0, "paused", "why"), (2.0, "admitted", "resumed"),
    ]  # fmt: skip
    assert stage_spans(results, "pause") == {("p1", "T"): [(0.0, 2.0), (5.0, 7.0)], ("p2", "T"): [(2.0, 5.0)]}


def test_expedite_under_preempt_takes_a_unit_at_once(scripted):
    # T 1 unit, fifo, preempt.  a (effort 10) runs from 0; b (effort 1) waits.  At 2 b is
    # expedited: it now outranks a, so it takes a's unit at once: b 2-3, a resumes 3-11.
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 10), job("b", 1)],
        "policies": {"x": {"sequencing": "fifo", "preempt": True,
                           "intervention": {"rule": scripted, "script": [[2, "expedite", "b", "urgent"]]}}},
    })  # fmt: skip
    assert stage_spans(results, "x") == {("a", "T"): [(0.0, 2.0), (3.0, 11.0)], ("b", "T"): [(2.0, 3.0)]}
    paused = events(results, "x", "paused")
    assert list(zip(paused.time, paused.project, paused.reason, strict=True)) == [(2.0, "a", "preempted by b")]


def test_expedite_goes_to_the_front(scripted):
    # T 1 unit, fifo.  a, b, c (effort 2 each) at 0: a 0-2.  At 1 c is expedited: c 2-4, b 4-6.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 2), job("b", 2), job("c", 2)],
        "policies": {"exp": {"intervention": {"rule": scripted, "script": [[1, "expedite", "c", "ceo asked"]]}}},
    })  # fmt: skip
    check_schedule(results, "exp", {"a": (0, 2), "c": (2, 4), "b": (4, 6)})
    expedited = events(results, "exp", "expedited")
    assert list(zip(expedited.time, expedited.project, expedited.reason, strict=True)) == [(1.0, "c", "ceo asked")]


def test_an_expedited_stage_behind_a_blocked_crew_takes_the_free_unit_at_once(scripted):
    # T 2 units, fifo (constant ranks).  L (effort 20) holds one unit from 0; X (crew 2) heads
    # the queue and cannot start; Y (effort 1) waits behind it (strict order).  Y is expedited at
    # 3: it now outranks X and fits the free unit, so it runs 3-4 (not after L, at 20).
    results = run({
        "horizon": 40, "teams": {"T": {"capacity": 2}},
        "projects": [job("L", 20), {"id": "X", "value": {"rate": 1}, "stages": [{"team": "T", "effort": 2, "crew": 2}]},
                     job("Y", 1)],
        "policies": {"exp": {"sequencing": "fifo",
                             "intervention": {"rule": scripted, "script": [[3, "expedite", "Y", "urgent"]]}}},
    })  # fmt: skip
    assert stage_spans(results, "exp") == {("L", "T"): [(0.0, 20.0)], ("Y", "T"): [(3.0, 4.0)],
                                           ("X", "T"): [(20.0, 21.0)]}  # fmt: skip


def test_expedite_beats_every_score(scripted):
    # cd3 ranks x (rate 100, effort 1: 100) far above y (rate 1, effort 1: 1); y is expedited at 0.5
    # while blk (rate 1000) runs 0-1: y 1-2, x 2-3.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("blk", 1, 1000), job("x", 1, 100), job("y", 1, 1)],
        "policies": {"exp": {"sequencing": "cd3",
                             "intervention": {"rule": scripted, "script": [[0.5, "expedite", "y", "urgent"]]}}},
    })  # fmt: skip
    check_schedule(results, "exp", {"blk": (0, 1), "y": (1, 2), "x": (2, 3)})


def test_user_cancel_cascades_to_dependants(scripted):
    # a runs 0-4 (T 1 unit); b depends on a.  a is cancelled at 1: b cancelled with the reason.
    results = run({
        "horizon": 20, "teams": {"T": {"capacity": 1}},
        "projects": [job("a", 4), {**job("b", 1), "depends_on": ["a"]}],
        "policies": {"stop": {"intervention": {"rule": scripted, "script": [[1, "cancel", "a", "no longer needed"]]}}},
    })  # fmt: skip
    cancelled = events(results, "stop", "cancelled")
    assert list(zip(cancelled.time, cancelled.project, cancelled.reason, strict=True)) == [
        (1.0, "a", "no longer needed"), (1.0, "b", "depends on a, not delivered")]  # fmt: skip
    assert results.teams.utilisation.iloc[0] == approx(1 / 20)


# =========================================================================== live scores


class Recording(SequencingRule):
    """Test rule: ranks like ``inner`` and records (now, id, priority, cost_of_delay, remaining)."""

    inner = Value
    log: ClassVar[list] = []

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        self._inner = self.inner(params, context)

    def priority(self, project, now):
        score = self._inner.priority(project, now)
        rcp = project.remaining_critical_path(now)
        type(self).log.append((now, project.id, score, project.cost_of_delay(now), rcp, project.ideal_estimate))
        return score


@pytest.fixture
def recording():
    def make(inner):
        cls = type(f"Recording{inner.__name__}", (Recording,), {"inner": inner, "log": []})
        name = f"test_recording_{inner.__name__.lower()}"
        flowsim.register("sequencing", name, replace=True)(cls)
        made.append(name)
        return name, cls

    made: list[str] = []
    yield make
    for name in made:
        unregister("sequencing", name)


def test_value_reorders_a_queue_as_a_window_nears(recording):
    # T 1 unit.  blk (rate 100, effort 7) runs 0-7.  win: rate 10, window closes at 8, effort 2;
    # std: rate 5, effort 2.  At 0: CoD(win) = 10 (projected 0 + 2 < 8) > CoD(std) = 5.
    # At 7: win's projected delivery 7 + 2 = 9 >= 8: CoD 0 < 5: std 7-9, win 9-11.
    name, cls = recording(Value)
    results = run({
        "horizon": 30, "teams": {"T": {"capacity": 1}},
        "projects": [job("blk", 7, 100),
                     {"id": "win", "value": {"rate": 10, "profile": "window", "closes": 8},
                      "stages": [{"team": "T", "effort": 2}]},
                     job("std", 2, 5)],
        "policies": {"value": {"sequencing": name}},
    })  # fmt: skip
    check_schedule(results, "value", {"blk": (0, 7), "std": (7, 9), "win": (9, 11)})
    seen = {(now, pid): cod for now, pid, _, cod, _, _ in cls.log}
    assert seen[(0.0, "win")] == 10.0 and seen[(0.0, "std")] == 5.0  # order at 0: win, std
    assert seen[(7.0, "win")] == 0.0 and seen[(7.0, "std")] == 5.0  # order at 7: std, win


def test_least_slack_reorders_a_queue_as_work_progresses(recording):
    # Teams A and B, 1 unit each.  blk: B 5, deadline due 5 (slack 0 at 0: served first).
    # X: xa (A, 6) and xb (B, 1) in parallel (after: []), due 12; Y: yb (B, 2), due 9.
    # At 0: slack X = 12 - 0 - max(6, 1) = 6, Y = 9 - 0 - 2 = 7: X ahead of Y.
    # At 5 (B free): xa has worked 5 of 6 -> X's remaining path max(1, 1) = 1, slack 12 - 5 - 1 = 6;
    # Y 9 - 5 - 2 = 2: Y ahead.  B: blk 0-5, yb 5-7, xb 7-8.
    name, cls = recording(LeastSlack)
    results = run({
        "horizon": 30, "teams": {"A": {"capacity": 1}, "B": {"capacity": 1}},
        "projects": [
            {"id": "blk", "value": {"rate": 1, "profile": "deadline", "due": 5, "fine": 1},
             "stages": [{"team": "B", "effort": 5}]},
            {"id": "X", "value": {"rate": 1, "profile": "deadline", "due": 12, "fine": 1},
             "stages": [{"name": "xa", "team": "A", "effort": 6, "after": []},
                        {"name": "xb", "team": "B", "effort": 1, "after": []}]},
            {"id": "Y", "value": {"rate": 1, "profile": "deadline", "due": 9, "fine": 1},
             "stages": [{"name": "yb", "team": "B", "effort": 2}]},
        ],
        "policies": {"slack": {"sequencing": name}},
    })  # fmt: skip
    spans = stage_spans(results, "slack")
    assert spans[("blk", "B")] == [(0.0, 5.0)]
    assert spans[("Y", "yb")] == [(5.0, 7.0)] and spans[("X", "xb")] == [(7.0, 8.0)]
    assert spans[("X", "xa")] == [(0.0, 6.0)]
    # The score is -slack without the -now every project shares (the same order at any instant).
    score = {(now, pid): s + now for now, pid, s, *_ in cls.log}
    assert score[(0.0, "X")] == approx(-6.0) and score[(0.0, "Y")] == approx(-7.0)
    assert score[(5.0, "X")] == approx(-6.0) and score[(5.0, "Y")] == approx(-2.0)


def test_cost_of_delay_seen_by_rules_is_live_and_matches_the_closed_form(recording):
    """Decay and deadline CoD change with time; the view's number is flowsim.value.cost_of_delay
    at the projected delivery, and both equal the closed forms of DESIGN section 5 by hand."""
    # T 1 unit, value sequencing.  blk (rate 10^6, effort 7) runs 0-7 while dec and dl queue.
    # dec: decay, rate 1000, half_life 10, effort 2: ideal (estimated) delivery r = 2.
    # dl: deadline due 9, penalty 0.5, fine 5000, rate 100, effort 2.  H = 50, life without end.
    # At 7: dl (CoD 7100 below) > dec (about 2265): dl 7-9, dec 9-11.
    H = 50.0
    name, cls = recording(Value)
    run({
        "horizon": H, "teams": {"T": {"capacity": 1}},
        "projects": [job("blk", 7, 1e6),
                     {"id": "dec", "value": {"rate": 1000, "profile": "decay", "half_life": 10},
                      "stages": [{"team": "T", "effort": 2}]},
                     {"id": "dl", "value": {"rate": 100, "profile": "deadline", "due": 9, "penalty": 0.5,
                                            "fine": 5000},
                      "stages": [{"team": "T", "effort": 2}]}],
        "policies": {"value": {"sequencing": name}},
    })  # fmt: skip
    seen = {(now, pid): (cod, rcp, ideal) for now, pid, _, cod, rcp, ideal in cls.log}
    q = 2 ** (-1 / 10)

    def decay_by_hand(p):  # g (rate L(p) - q rate L(p + 1)), L(x) = H - x (no end of life)
        return 2 ** (-(p - 2) / 10) * 1000 * ((H - p) - q * (H - p - 1))

    # dec at 0: projected p = 0 + 2 = 2 (g = 1); at 7: p = 9.
    for now, p in ((0.0, 2.0), (7.0, 9.0)):
        cod, rcp, ideal = seen[(now, "dec")]
        assert rcp == 2.0 and ideal == 2.0
        assert cod == pytest.approx(decay_by_hand(p), rel=1e-12)
        assert cod == cost_of_delay(1000, 0, math.inf, DECAY, math.inf, 10, math.inf, 0, 0, p, 2.0, H)
    assert decay_by_hand(2.0) == pytest.approx(1000 * (48 - q * 47))
    assert seen[(7.0, "dec")][0] < seen[(0.0, "dec")][0]  # live: less left to lose as it decays
    # dl at 0: p = 2, on time a unit later too (3 <= 9): rate x dL = 100 x 1 = 100.
    # dl at 7: p = 9 <= due 9 < 10: crossing: rate (L(9) - 0.5 L(10)) + fine = 100 (41 - 20) + 5000.
    assert seen[(0.0, "dl")][0] == approx(100.0)
    assert seen[(7.0, "dl")][0] == approx(100 * ((H - 9) - 0.5 * (H - 10)) + 5000) == approx(7100.0)
    assert seen[(7.0, "dl")][0] == cost_of_delay(100, 0, math.inf, DEADLINE, math.inf, math.inf, 9, 0.5, 5000,
                                                 9.0, 2.0, H)  # fmt: skip
    # Already late (p > due): rate (1 - penalty) x dL = 50; the fine is sunk.
    assert cost_of_delay(100, 0, math.inf, DEADLINE, math.inf, math.inf, 9, 0.5, 5000, 9.5, 2.0, H) == 50.0
    # A window's CoD as the rule sees it: rate before closes, 0 after (checked on the profile code).
    assert cost_of_delay(7, 0, math.inf, WINDOW, 5, math.inf, math.inf, 0, 0, 4.9, 1, H) == 7
    assert cost_of_delay(7, 0, math.inf, WINDOW, 5, math.inf, math.inf, 0, 0, 5.0, 1, H) == 0
