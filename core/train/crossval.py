"""k-fold cross-validation: one normal run per fold (each holding out another share of the rows, the classical
baseline fitted and scored on the same fold), then the mean and spread of the task's metric over the folds.

On a small table one validation split is noise (one seed 0.78, another 0.85 on the same 596 rows); the mean over
folds is the estimate to trust. Every fold's run is kept as a run of its own (each trained on all rows but its
fold); the summary names the one closest to the mean, a typical model rather than the luckiest fold's.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from ..runs import events as ev
from ..runs.store import RunStore
from ..tasks import get_task
from .service import RunPlan, make_job


@dataclass
class CrossValidation:
    """The folds' scores of the fine-tune and of the classical baseline, and each fold's run."""

    metric: str
    greater_is_better: bool
    scores: list[float] = field(default_factory=list)
    classical: list[float] = field(default_factory=list)  # empty when the task has no classical baseline
    runs: list[str] = field(default_factory=list)

    @staticmethod
    def spread(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def typical_run(self) -> str:
        """The fold's run whose score is closest to the mean."""
        return self.runs[min(range(len(self.scores)), key=lambda i: abs(self.scores[i] - self.mean))]

    def to_dict(self) -> dict:
        found = {"metric": self.metric, "folds": len(self.scores), "mean": self.mean,
                 "spread": self.spread(self.scores), "scores": self.scores, "runs": [Path(r).name for r in self.runs],
                 "typical_run": Path(self.typical_run).name}
        if self.classical:
            found["classical"] = {"mean": statistics.fmean(self.classical), "spread": self.spread(self.classical),
                                  "scores": self.classical}
        return found

    def describe(self) -> str:
        """E.g. "macro_f1 over 5 folds: 0.812 ± 0.031 (folds 0.78, ...); classical 0.774 ± 0.020"."""
        folds = ", ".join(f"{s:.3f}" for s in self.scores)
        line = f"{self.metric} over {len(self.scores)} folds: {self.mean:.4f} ± {self.spread(self.scores):.4f} ({folds})"
        if self.classical:
            mean = statistics.fmean(self.classical)
            line += f"; classical baseline {mean:.4f} ± {self.spread(self.classical):.4f}"
            better = self.mean > mean if self.greater_is_better else self.mean < mean
            line += f": the fine-tune is {'better' if better else 'not better'} on average"
        return f"{line}. A typical fold's model: {Path(self.typical_run).name}."


def fold_plans(plan: RunPlan) -> list[RunPlan]:
    """The plan of every fold's run (``plan.config.folds`` of them, each named after its fold)."""
    return [replace(plan, config=replace(plan.config, fold=fold), data_name=f"{plan.data_name}-fold{fold}")
            for fold in range(plan.config.folds)]


def cross_validate(plan: RunPlan, store: RunStore | None, follow: Callable, owner: str | None = None) -> \
        CrossValidation | ev.Event:
    """Train every fold in turn; ``follow(job)`` starts a job and returns its final event. Returns the summary, or
    the first fold's Failed or Cancelled event (the finished folds' runs stay)."""
    task = get_task(plan.config.task)
    found = CrossValidation(task.primary_metric, task.greater_is_better)
    for fold_plan in fold_plans(plan):
        job = make_job(fold_plan, store, owner, tags={"folds": plan.config.folds, "fold": fold_plan.config.fold})
        outcome = follow(job)
        if not isinstance(outcome, ev.Finished):
            return outcome
        found.scores.append(outcome.metrics[task.primary_metric])
        found.runs.append(outcome.run_dir)
        classical = (outcome.metrics.get("classical") or {}).get(task.primary_metric)
        if classical is not None:
            found.classical.append(classical)
    if len(found.classical) < len(found.scores):
        found.classical = []  # a baseline skipped on some fold: no mean to compare with
    return found
