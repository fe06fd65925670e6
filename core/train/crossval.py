"""k-fold cross-validation: one normal run per fold (each holding out another share of the rows, the classical
baseline fitted and scored on the same fold), then the mean and spread of the task's metric over the folds.

On a small table one validation split is noise (one seed 0.78, another 0.85 on the same 596 rows); the mean over
folds is the estimate to trust. Every fold's run is kept as a run of its own (each trained on all rows but its
fold); the summary names the one closest to the mean, a typical model rather than the luckiest fold's.
"""
from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..runs import events as ev
from ..runs.config import TrainConfig
from ..runs.store import RunStore
from ..tasks import get_task
from ..tasks.types import TaskData
from .callbacks import TrainerCallback
from .engine import TrainingJob

SMALL_TABLE = 2000  # rows under which one validation split is too noisy to trust alone


def small_table_hint(rows: int, val_fraction: float) -> str | None:
    """Advice for a table too small for one split to be trusted; None for a larger one."""
    if rows >= SMALL_TABLE:
        return None
    return (f"A small table ({rows:,} rows): one validation split of about {round(rows * val_fraction):,} rows is "
            "noisy. Cross-validation folds 5 (Train tab, Advanced; --folds 5) gives a mean and spread to trust; "
            "Evaluate's \"How many more labels?\" tells whether labelling more would pay.")


@dataclass
class CrossValidation:
    """The folds' scores of the fine-tune and of the classical baseline, and each fold's run."""

    metric: str
    scores: list[float] = field(default_factory=list)
    classical: list[float] = field(default_factory=list)  # empty when the task has no classical baseline
    runs: list[str] = field(default_factory=list)

    def add(self, metrics: dict, run_dir: str) -> None:
        """One fold's outcome: its score, the classical baseline's on the same fold, its run."""
        self.scores.append(metrics[self.metric])
        self.runs.append(run_dir)
        classical = (metrics.get("classical") or {}).get(self.metric)
        if classical is not None:
            self.classical.append(classical)

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
        if len(self.classical) == len(self.scores):  # a baseline skipped on a fold: no mean to compare with
            found["classical"] = {"mean": statistics.fmean(self.classical), "spread": self.spread(self.classical),
                                  "scores": self.classical}
        return found


class CrossValidationJob:
    """The folds' runs one after another behind a TrainingJob's interface (events, start, run, cancel, join, done,
    release), so the queue, the Train tab, the CLI, /train and the search follow it as one job. Each fold's events
    are passed on (its outcome as a status line); then one Finished: the typical fold's run, its metrics replaced by
    their means over the folds and the summary under "cross_validation"."""

    def __init__(self, config: TrainConfig, data: TaskData, store: RunStore | None = None, data_name: str = "data",
                 owner: str | None = None, callbacks: list[TrainerCallback] = (), tags: dict | None = None):
        self.config, self.data, self.store, self.data_name = config, data, store, data_name
        self.owner, self.callbacks, self.tags = owner, list(callbacks), dict(tags or {})
        self.task = get_task(config.task)
        self.events = ev.EventLog()
        self.summary = CrossValidation(self.task.primary_metric)
        self.current: TrainingJob | None = None
        self.folds_done: list[ev.Finished] = []
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def run_dir(self) -> Path | None:
        if self.summary.runs and self.done:
            return Path(self.summary.typical_run)
        return self.current.run_dir if self.current else None

    @property
    def done(self) -> bool:
        return self.events.done

    def start(self) -> "CrossValidationJob":
        self._thread = threading.Thread(target=self.run, name="sft-crossval", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()
        if self.current is not None:
            self.current.cancel()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def release(self) -> None:
        self.data = None
        if self.current is not None:
            self.current.release()

    def run(self) -> None:
        folds = self.config.folds
        for fold in range(folds):
            job = TrainingJob(replace(self.config, fold=fold), self.data, self.store,
                              data_name=f"{self.data_name}-fold{fold}", owner=self.owner, callbacks=self.callbacks,
                              tags={**self.tags, "folds": folds, "fold": fold})
            self.events.publish(ev.Status(f"Cross-validation: fold {fold + 1} of {folds}"))
            job.events.subscribe(self._pass_on)
            self.current = job
            if self._cancel.is_set():
                job.cancel()
            job.run()
            outcome = job.events.since(0)[-1]
            if not isinstance(outcome, ev.Finished):
                self.events.publish(outcome)  # Failed or Cancelled: the folds done so far stay as runs
                return
            self.summary.add(outcome.metrics, outcome.run_dir)
            self.folds_done.append(outcome)
            if fold < folds - 1:
                job.release()
        self.events.publish(self._finished())

    def _pass_on(self, event: ev.Event) -> None:
        if not isinstance(event, ev.TERMINAL):
            self.events.publish(event)
        elif isinstance(event, ev.Finished):
            found = f"{self.task.metric_name(self.summary.metric)} {event.metrics[self.summary.metric]:.4f}"
            self.events.publish(ev.Status(f"Fold {self.current.config.fold + 1} of {self.config.folds}: {found}"))

    def _finished(self) -> ev.Finished:
        """The typical fold's outcome with its metrics (the task's cards and the validation loss; the classical
        baseline's too) replaced by their means over the folds, and the summary."""
        typical = next(f for f in self.folds_done if f.run_dir == self.summary.typical_run)
        folds = [f.metrics for f in self.folds_done]
        scored = {key for key, _ in self.task.view.cards} | {"val_loss", self.summary.metric}
        metrics = {**typical.metrics, **fold_means(folds, scored), "cross_validation": self.summary.to_dict()}
        if all(isinstance(m.get("classical"), dict) for m in folds):
            metrics["classical"] = {**typical.metrics["classical"],
                                    **fold_means([m["classical"] for m in folds], scored)}
        return ev.Finished(typical.run_dir, metrics, sum(f.train_seconds for f in self.folds_done),
                           statistics.fmean(f.samples_per_s for f in self.folds_done))


def fold_means(metrics: list[dict], keys: set[str]) -> dict[str, float]:
    """The mean over folds of each of ``keys`` that every fold reports as a number."""
    return {key: statistics.fmean(m[key] for m in metrics) for key in keys
            if all(isinstance(m.get(key), (int, float)) for m in metrics)}
