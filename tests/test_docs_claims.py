"""The prose of docs/scenario.md and docs/policies.md, claim by claim, against behaviour.

Each test quotes the sentence it pins (doc, section) and computes the expected
numbers by hand, on scenarios small enough to follow: fixed efforts, one unit per
team.  Claims already pinned elsewhere (value profiles, the FIFO key, preemption,
the review rule, the shared-focus curves, ...) are not repeated here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import flowsim
from flowsim.policies.protocol import IntakeRule, InterventionRule, SequencingRule

DOCS = Path(__file__).resolve().parent.parent / "docs"


def run(data, **kwargs):
    kwargs.setdefault("replications", 1)
    return flowsim.run(flowsim.load_scenario(data), workers=1, **kwargs)


def by_project(results, policy=None):
    rows = results.projects if policy is None else results.projects[results.projects.policy == policy]
    return {row.project: row for row in rows.itertuples(index=False)}


def job(pid, effort, team="dev", **extra):
    return {"id": pid, "stages": [{"team": team, "effort": effort}], **extra}


def problems(data) -> list[str]:
    with pytest.raises(flowsim.ScenarioError) as caught:
        flowsim.load_scenario(data)
    return [str(problem) for problem in caught.value.problems]


# ------------------------------------------------------------------ scenario.md


def _wsjf_example() -> str:
    """The complete scenario of scenario.md that starts ``name: WSJF example``."""
    text = (DOCS / "scenario.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(name: WSJF example\n.*?)```", text, re.S)
    assert block, "the WSJF example is no longer in docs/scenario.md"
    return block.group(1)


def test_the_wsjf_example_orders_the_work_as_the_doc_says():
    """scenario.md, Projects: "With one developer the order matters: `fifo` builds
    `search` first, `wsjf` builds `login` (score 8) first and also puts each `fix`
    (score 6) ahead of `search` (score 3)".

    Scores (business_value + time_criticality + risk_reduction) / job_size:
    login (13 + 8 + 3) / 3 = 8, fix (2 + 3 + 1) / 1 = 6, search (8 + 5 + 2) / 5 = 3.
    fifo: search 0-5 (file order), then login 5-8.
    wsjf: login 0-3; then every fix that has arrived by the time dev is free goes
    before search, so search starts when no fix is waiting (no preemption).
    """
    results = run(_wsjf_example(), seed=0)
    fifo, wsjf = by_project(results, "fifo"), by_project(results, "wsjf")
    assert (fifo["search"].started, fifo["search"].delivered) == (0.0, 5.0)
    assert (fifo["login"].started, fifo["login"].delivered) == (5.0, 8.0)
    assert (wsjf["login"].started, wsjf["login"].delivered) == (0.0, 3.0)
    search = wsjf["search"].started
    fixes = [row for pid, row in wsjf.items() if pid.startswith("fix-")]
    before = [row for row in fixes if row.arrival < search]
    assert before, "no fix arrived before search started: the example shows nothing"
    assert all(row.started < search for row in before)  # each waiting fix went first
    # dev is never idle from 0 until search starts: login 3 + one time unit per fix ahead.
    assert search == pytest.approx(max(3.0, max(row.delivered for row in before)))


def test_a_policy_subset_takes_its_baseline_in_file_order():
    """scenario.md, Policies: "`flowsim run --policy NAME` runs a subset; the first
    selected, in file order, is then the baseline."

    Asked for [p3, p2], the baseline is p2 (listed before p3 in the file), and the
    paired differences are p3's.  b (rate 10) and a (rate 5), effort 1 each:
    p2 (value) does b 0-1, a 1-2; p3 (sjf, a tie) does a 0-1, b 1-2 by the FIFO key.
    value_delayed: p2 a 5 x 1 = 5; p3 b 10 x 1 = 10; difference p3 - p2 = 5.
    """
    data = {
        "horizon": 10, "teams": {"dev": {"capacity": 1}},
        "projects": [job("a", 1, value={"rate": 5}), job("b", 1, value={"rate": 10})],
        "policies": {"p1": {"sequencing": "fifo"}, "p2": {"sequencing": "value"}, "p3": {"sequencing": "sjf"}},
    }  # fmt: skip
    results = run(data, policies=["p3", "p2"])
    assert results.baseline == "p2"
    assert set(results.projects.policy.astype(str)) == {"p2", "p3"}
    compare = results.compare()
    row = compare[(compare.policy == "p3") & (compare.metric == "value_delayed")].iloc[0]
    assert row["diff"] == 5.0


def test_timeline_points_are_every_step_from_0_and_at_the_horizon():
    """scenario.md, Top level, `timeline_step`: "points at 0, the step, twice the
    step, ..., and a last one at the `horizon`" (README: "the last is at the horizon").

    horizon 5, step 2: 0, 2, 4 and 5; step 1.5: 0, 1.5, 3, 4.5 and 5.
    """
    for step, times in ((2, [0.0, 2.0, 4.0, 5.0]), (1.5, [0.0, 1.5, 3.0, 4.5, 5.0])):
        results = run({"horizon": 5, "timeline_step": step, "teams": {"dev": {"capacity": 1}}})
        assert results.timeline.time.tolist() == times
        assert results.team_timeline.time.tolist() == times


def test_listed_ids_of_an_arrival_streams_form_are_refused():
    """scenario.md, Templates and arrivals: "A listed project may not have an id of
    that form, `<name>-` followed by digits, such as `requests-3` (or `requests-0`)
    while a stream is named `requests`"; a stream's name defaults to its template's.
    Other ids that merely start with the stream's name are fine.
    """

    def data(pid, stream=None):
        arrival = {"template": "t", "rate": 1, **({"name": stream} if stream else {})}
        return {
            "horizon": 10, "teams": {"dev": {"capacity": 1}}, "projects": [job(pid, 1)],
            "templates": {"t": {"stages": [{"team": "dev", "effort": 1}]}}, "arrivals": [arrival],
        }  # fmt: skip

    rule = "must be different from the names of arriving projects (stream {!r} names its own), got {!r}"
    for pid, stream in (("requests-3", "requests"), ("requests-0", "requests"), ("t-1", None), ("t-01", None)):
        assert problems(data(pid, stream)) == [f"<dict>: projects[0].id {rule.format(stream or 't', pid)}"]
    for pid, stream in (("requests-x", "requests"), ("requests3", "requests"), ("t-1", "requests")):
        flowsim.load_scenario(data(pid, stream))


def test_in_flight_projects_are_admitted_at_0_whatever_the_intake_rule():
    """scenario.md, Projects: an in-flight project "is admitted at time 0 whatever the
    intake rule"; "`done: 0` is no work done" (policies.md, Intake: "Projects already
    in flight are admitted at time 0 whatever the intake rule").

    dev 1 unit.  f1: dev 4 with 3 done (1 left); f2: qa done, dev 2; w: dev 1; z: dev 2, done 0.
    threshold min 1e6 rejects w and z (no value: CD3 0), but f1 and f2 are not candidates.
    wip_limit 1 admits f1 and f2 at 0 although that makes two active; w waits for
    both to be delivered: dev f1 0-1, f2 1-3, then w admitted at 3 (3-4), z at 4 (4-6).
    """
    data = {
        "horizon": 20, "teams": {"dev": {"capacity": 1}, "qa": {"capacity": 1}},
        "projects": [
            job("w", 1),
            {"id": "f1", "stages": [{"team": "dev", "effort": 4, "done": 3}]},
            {"id": "f2", "stages": [{"team": "qa", "effort": 2, "done": True}, {"team": "dev", "effort": 2}]},
            {"id": "z", "stages": [{"team": "dev", "effort": 2, "done": 0}]},
        ],
        "policies": {"thr": {"intake": {"rule": "threshold", "min": 1e6}},
                     "wip": {"intake": {"rule": "wip_limit", "limit": 1}}},
    }  # fmt: skip
    results = run(data)
    thr, wip = by_project(results, "thr"), by_project(results, "wip")
    statuses = {p: r.status for p, r in thr.items()}
    assert statuses == {"w": "rejected", "f1": "delivered", "f2": "delivered", "z": "rejected"}
    assert {p: r.admitted for p, r in wip.items()} == {"w": 3.0, "f1": 0.0, "f2": 0.0, "z": 4.0}
    assert {p: r.delivered for p, r in wip.items()} == {"w": 4.0, "f1": 1.0, "f2": 3.0, "z": 6.0}


def test_a_templates_allowed_keys_leave_out_promised():
    """scenario.md, Templates and arrivals: "A template takes the project keys
    **except** `id`, `arrival`, `depends_on` and `promised`"; the checks table:
    "`templates.*.promised` | Not allowed".  The message for an unknown template key
    lists the allowed keys: `promised` must not be among them, since writing it is
    then refused ("must be left out in a template").
    """
    data = {"horizon": 10, "teams": {"dev": {"capacity": 1}},
            "templates": {"t": {"id": "x", "stages": [{"team": "dev", "effort": 1}]}}}  # fmt: skip
    (message,) = problems(data)
    allowed = re.search(r"allowed: ([^;)]*)", message).group(1).split(", ")
    assert "id" not in allowed and "promised" not in allowed, message


def test_a_team_level_loss_out_of_range_is_reported_at_its_own_key():
    """scenario.md, Validation and error messages: every problem is reported as
    "`FILE: path.to.key must be RULE, got VALUE`", the value "as YAML read it"; the
    forms table: "flat, loss beside it | `switching: flat` and, at team level,
    `loss: 0.17`", where `loss` is "a number from 0 up to (not including) 1".

    `loss: 1` beside `switching: flat` is the team's `loss` key that is wrong; the
    message must name `teams.dev.loss` (the key holding 1), not `teams.dev.switching`
    (which holds 'flat').
    """
    team = {"capacity": 1, "focus": "shared", "switching": "flat", "loss": 1}
    assert problems({"horizon": 5, "teams": {"dev": team}}) == [
        "<dict>: teams.dev.loss must be a number below 1, got 1"
    ]


def test_a_blank_team_level_loss_beside_flat_is_still_refused():
    """The stand-in curve used while a wrong team-level ``loss`` is refused must never run:
    ``loss:`` left blank (YAML null) beside ``switching: flat`` gives flat no loss, which
    scenario.md refuses ("flat needs a loss"), and was run as a flat curve of loss 0."""
    text = "horizon: 5\nteams:\n  dev: {capacity: 1, focus: shared, switching: flat, loss: }\n"
    (message,) = problems(text)
    assert message.startswith("<text>: teams.dev.switching must be {rule: flat, loss: L} (flat needs a loss"), message


# ------------------------------------------------------------------ policies.md


def test_intake_runs_only_while_the_funnel_is_not_empty_and_reviews_before_the_horizon(registry_guard):
    """policies.md, When rules are called: intake runs "at every decision instant
    while the funnel is not empty, plus its own planning points"; intervention "at its
    own review times only"; decision times "at or after the horizon are never reached".

    a arrives at 0, b at 3 (horizon 10).  The intake rule's planning points 0.5, 10
    and 12: at 0.5 the funnel is empty (a was admitted at 0), so no pass.  Passes at
    0 (a) and 3 (b) only.  Review times 2.5, 10, 11: only 2.5 is before the horizon;
    the decisions at 0, 1 (a delivered), 3 and 4 (b delivered) review nothing.
    """
    passes, reviews = [], []

    class Spy(IntakeRule):
        def decision_times(self, horizon):
            return [0.5, 10.0, 12.0]

        def start_pass(self, portfolio):
            passes.append((portfolio.now, tuple(p.id for p in portfolio.funnel)))
            return True

        def decide(self, candidate, portfolio):
            return flowsim.ADMIT

    class Watch(InterventionRule):
        def decision_times(self, horizon):
            return [2.5, 10.0, 11.0]

        def review(self, portfolio):
            reviews.append(portfolio.now)
            return []

    flowsim.register("intake", "test_docs_spy")(Spy)
    flowsim.register("intervention", "test_docs_watch")(Watch)
    data = {
        "horizon": 10, "teams": {"dev": {"capacity": 1}},
        "projects": [job("a", 1), job("b", 1, arrival=3)],
        "policies": {"p": {"intake": "test_docs_spy", "intervention": "test_docs_watch"}},
    }  # fmt: skip
    results = run(data)
    assert passes == [(0.0, ("a",)), (3.0, ("b",))]
    assert reviews == [2.5]
    assert {p: r.delivered for p, r in by_project(results).items()} == {"a": 1.0, "b": 4.0}


def test_drum_admits_only_while_the_load_is_strictly_under_the_buffer():
    """policies.md, Intake, `drum`: admits "while the drum's estimated load from
    admitted projects ... is under `buffer x capacity`".

    dev (the drum) 1 unit, buffer 2: the bar is 2 x 1 = 2 units of dev work.
    t=0: A (dev 2): load 0 < 2, admitted; load 2.  B (dev 2): 2 is not under 2, held.
      C (qa only, no drum work): admitted although the drum is full.
    t=1 (C delivered): load = A's remaining 2 - 1 = 1 < 2: B admitted; load 3.
    t=2 (A delivered): load 2 (B), not under 2: D held.  t=4 (B delivered): D admitted.
    dev: A 0-2, B 2-4, D 4-5.
    """
    data = {
        "horizon": 30, "teams": {"dev": {"capacity": 1}, "qa": {"capacity": 1}},
        "projects": [job("A", 2), job("B", 2), job("D", 1), job("C", 1, team="qa")],
        "policies": {"drum": {"intake": {"rule": "drum", "buffer": 2, "team": "dev"}}},
    }  # fmt: skip
    got = by_project(run(data))
    assert {p: r.admitted for p, r in got.items()} == {"A": 0.0, "B": 1.0, "D": 4.0, "C": 0.0}
    assert {p: r.delivered for p, r in got.items()} == {"A": 2.0, "B": 4.0, "D": 5.0, "C": 1.0}


def test_the_planning_bottleneck_ignores_estimation_error_and_ties_go_to_the_first_team(registry_guard):
    """policies.md, Intake, `drum`: the planning bottleneck is "the team with the
    highest estimated demand over the horizon (... each an explicit `estimate` or the
    mean, without estimation error, so the same team in every replication) per unit
    of mean capacity; ties go to the team listed first".

    a: dev 4, b: qa 4, one unit each: 4 per unit on both, a tie, so dev (listed
    first), or qa when qa is listed first.  With estimation_error 1 the rules see a's
    and b's efforts perturbed by different factors; in some replication b looks
    bigger than a (checked below), and still the bottleneck is dev in every one.
    """
    seen = []

    class Spy(SequencingRule):
        def priority(self, project, now):
            seen.append((self.context.bottleneck, project.id, project.stages[0].estimate))
            return 0.0

    flowsim.register("sequencing", "test_docs_bottleneck")(Spy)

    def data(teams, error=0.0):
        return {
            "horizon": 20, "estimation_error": error, "teams": {t: {"capacity": 1} for t in teams},
            "projects": [job("a", 4, team="dev"), job("b", 4, team="qa")],
            "policies": {"p": {"sequencing": "test_docs_bottleneck"}},
        }  # fmt: skip

    run(data(["qa", "dev"]))
    assert {b for b, _, _ in seen} == {"qa"}
    seen.clear()
    replications = 6
    run(data(["dev", "qa"], error=1.0), replications=replications, seed=3)
    assert {b for b, _, _ in seen} == {"dev"}
    # One (a, b) estimate pair per replication: a's and b's first views in each.
    estimates: dict[str, list[float]] = {"a": [], "b": []}
    for _, pid, estimate in seen:
        if not estimates[pid] or estimates[pid][-1] != estimate:
            estimates[pid].append(estimate)
    assert any(b > a for a, b in zip(estimates["a"], estimates["b"], strict=False)), estimates


def test_project_view_terms_that_do_not_apply(registry_guard):
    """policies.md, What rules see, `ProjectView`: "`life`, `closes`, `due` and
    `half_life` are `inf` when they do not apply; `penalty` and `fine` are 0"; times
    are "NaN when not reached or not given".

    s: a standard stream without end; d: a deadline with a penalty and no fine.
    """
    seen = {}
    terms = ("life", "closes", "due", "half_life", "penalty", "fine", "lump", "promised", "admitted_at")

    class Spy(SequencingRule):
        def priority(self, project, now):
            seen.setdefault(project.id, {k: getattr(project, k) for k in terms})
            return 0.0

    flowsim.register("sequencing", "test_docs_terms")(Spy)
    data = {
        "horizon": 20, "teams": {"dev": {"capacity": 1}},
        "projects": [job("s", 1, value={"rate": 5}),
                     job("d", 1, value={"rate": 5, "profile": "deadline", "due": 4, "penalty": 0.5})],
        "policies": {"p": {"sequencing": "test_docs_terms"}},
    }  # fmt: skip
    run(data)
    s, d = seen["s"], seen["d"]
    assert [s[k] for k in ("life", "closes", "due", "half_life")] == [math.inf] * 4
    assert (s["penalty"], s["fine"], s["lump"]) == (0.0, 0.0, 0.0)
    assert (d["due"], d["penalty"], d["fine"], d["closes"]) == (4.0, 0.5, 0.0, math.inf)
    assert math.isnan(s["promised"]) and math.isnan(s["admitted_at"])  # ranked in the funnel, not yet admitted


def test_a_paused_project_is_judged_again_by_the_intake_rule(scripted):
    """policies.md, Intervention, `pause`: "The intake rule decides on it again like on
    any candidate: it admits it later (event `admitted`, reason `resumed`), ...; or it
    rejects it (`threshold`, if its score has fallen below `min`)."

    dev 1 unit.  blk (rate 100, dev 4) runs 0-4.  A: window closes 3, rate 10, dev 2.
    t=0: A's projected delivery 0 + 2 = 2 < 3, CoD 10, CD3 10 / 2 = 5 >= min 3: admitted.
    t=2: paused; back in the funnel, projected delivery 2 + 2 = 4 >= 3: CoD 0,
    CD3 0 < 3: rejected at once ("cd3 0 below min 3").
    Under admit_all the same pause is answered at once with `resumed`; A then runs
    4-6, after blk (its window closed, so it earns nothing, but it is delivered).
    """
    data = {
        "horizon": 20, "teams": {"dev": {"capacity": 1}},
        "projects": [job("blk", 4, value={"rate": 100}),
                     job("A", 2, value={"rate": 10, "profile": "window", "closes": 3})],
        "policies": {
            "thr": {"intake": {"rule": "threshold", "min": 3},
                    "intervention": {"rule": scripted, "script": [[2, "pause", "A", "hold"]]}},
            "push": {"intervention": {"rule": scripted, "script": [[2, "pause", "A", "hold"]]}},
        },
    }  # fmt: skip
    results = run(data)
    events = results.events[(results.events.project == "A") & results.events.stage.isna()]
    logged = {
        policy: [
            (e.time, e.event, e.reason if isinstance(e.reason, str) else None)
            for e in rows.itertuples(index=False)
            if e.event != "arrived"
        ]
        for policy, rows in events.groupby("policy", observed=True)
    }
    assert logged["thr"] == [(0.0, "admitted", None), (2.0, "paused", "hold"), (2.0, "rejected", "cd3 0 below min 3")]
    assert logged["push"] == [(0.0, "admitted", None), (2.0, "paused", "hold"), (2.0, "admitted", "resumed"),
                              (6.0, "delivered", None)]  # fmt: skip
    assert by_project(results, "thr")["A"].status == "rejected"
