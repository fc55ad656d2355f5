"""Intervention rules: when to step in (DESIGN section 7)."""

from __future__ import annotations

import math
import statistics

from .protocol import Action, InterventionRule, every


class Review(InterventionRule):
    """Every ``every`` time units, cancel projects whose window has closed: active,
    in the funnel or waiting for a project they depend on (they can no longer earn
    anything, and any of them would otherwise take capacity once admitted); then
    active projects whose cost of delay per estimated remaining effort is below
    ``cancel_below`` times the median of that score over the active projects, as
    DESIGN section 7 says (a closed window's score is 0; sunk cost ignored)."""

    def decision_times(self, horizon):
        return every(self.params.every, horizon, start=self.params.every)

    def review(self, portfolio):
        now = portfolio.now
        actions, scores = [], {}
        closed = set()
        active = portfolio.active
        for project in (*active, *portfolio.funnel, *portfolio.blocked):
            if project.profile == "window" and now >= project.closes:
                actions.append(Action("cancel", project.id, f"window closed at {project.closes:g}"))
                closed.add(project.id)
        for project in active:  # (with cancel_below 0 too: a negative rate gives a negative score)
            work = project.remaining_work(now)
            scores[project.id] = project.cost_of_delay(now) / max(work, 1e-9)
        if scores:
            median = statistics.median(scores.values())
            bar = self.params.cancel_below * median
            for project_id, score in scores.items():
                if project_id not in closed and score < bar and math.isfinite(score):
                    actions.append(
                        Action(
                            "cancel",
                            project_id,
                            f"cod per remaining effort {score:.6g} below "
                            f"{self.params.cancel_below:g} x median {median:.6g}",
                        )
                    )
        return actions
