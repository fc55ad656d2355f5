"""Intervention rules: when to step in (DESIGN section 7)."""

from __future__ import annotations

import math
import statistics

from .protocol import Action, InterventionRule, every


class Review(InterventionRule):
    """Every ``every`` time units, cancel projects whose window has closed, active
    or still in the funnel (they can no longer earn anything, and a funnel project
    would otherwise take capacity once admitted), then active projects whose cost
    of delay per estimated remaining effort is below ``cancel_below`` times the
    median over the active projects whose window is open (sunk cost ignored)."""

    def decision_times(self, horizon):
        return every(self.params.every, horizon, start=self.params.every)

    def review(self, portfolio):
        now = portfolio.now
        actions, scores = [], {}
        for project in portfolio.active:
            if project.profile == "window" and now >= project.closes:
                actions.append(Action("cancel", project.id, f"window closed at {project.closes:g}"))
                continue
            work = project.remaining_work(now)
            scores[project.id] = project.cost_of_delay(now) / max(work, 1e-9)
        for project in portfolio.funnel:
            if project.profile == "window" and now >= project.closes:
                actions.append(Action("cancel", project.id, f"window closed at {project.closes:g}"))
        if scores:
            median = statistics.median(scores.values())
            bar = self.params.cancel_below * median
            for project_id, score in scores.items():
                if score < bar and math.isfinite(score):
                    actions.append(
                        Action(
                            "cancel",
                            project_id,
                            f"cod per remaining effort {score:.6g} below "
                            f"{self.params.cancel_below:g} x median {median:.6g}",
                        )
                    )
        return actions
