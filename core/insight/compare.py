"""Side by side: the curves, primary metrics, per-class F1 and settings of two or more runs (any tasks)."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..runs.run_folder import RunFolder
from ..runs.store import RunInfo
from ..tasks import get_task


@dataclass
class RunCurves:
    """A run's train loss per step and its validation loss and primary metric per evaluation."""

    run_id: str
    metric_name: str
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    eval_metric: list[float] = field(default_factory=list)


def primary_of(run: RunInfo) -> tuple[str, str]:
    """(metric key, shown name) of the run's task's primary metric."""
    task = get_task(run.task)
    key = run.metrics.get("primary_metric", task.primary_metric)
    return key, task.metric_name(key)


def run_curves(run: RunInfo) -> RunCurves:
    """Read ``history.jsonl`` (lines a crash cut short are skipped); a resumed run's replayed steps count once."""
    key, name = primary_of(run)
    curves = RunCurves(run.run_id, name)
    steps, evals = {}, {}
    for event in RunFolder(run.path).history():
        if event.get("event") == "step":
            steps[event["step"]] = event["loss"]
        elif event.get("event") == "evaluation":
            evals[event["step"]] = (event["loss"], event["metrics"].get(key))
    curves.steps, curves.losses = list(steps), list(steps.values())
    curves.eval_steps = list(evals)
    curves.eval_losses = [loss for loss, _ in evals.values()]
    curves.eval_metric = [value for _, value in evals.values()]
    return curves


def metric_table(runs: list[RunInfo]) -> pd.DataFrame:
    """One row per run: its primary metric (at the best checkpoint), validation loss and the trivial and classical
    baselines' values."""
    rows = []
    for run in runs:
        key, name = primary_of(run)
        baseline = (run.metrics.get("baseline") or {}).get(key)
        classical = (run.metrics.get("classical") or {}).get(key)
        rows.append({"run": run.run_id, "task": run.task, "metric": name, "value": run.metrics.get(key),
                     "baseline": baseline, "classical baseline": classical,
                     "validation loss": run.metrics.get("val_loss"),
                     "best step": run.metrics.get("step")})
    return pd.DataFrame(rows)


def per_class_f1(runs: list[RunInfo]) -> pd.DataFrame:
    """Classes (labels, entity types) as rows, one F1 column per run that has a per-class table."""
    columns = {run.run_id: {name: row.get("f1") for name, row in run.metrics.get("per_class", {}).items()}
               for run in runs if run.metrics.get("per_class")}
    return pd.DataFrame(columns)


def config_table(runs: list[RunInfo], differences_only: bool = False) -> pd.DataFrame:
    """Settings as rows (task, data, base model, every TrainConfig field), one column per run."""
    columns = {}
    for run in runs:
        folder = RunFolder(run.path)
        config, data = folder.config_dict(), folder.data()
        columns[run.run_id] = {"data": run.data_name, "train rows": data.get("train_rows"),
                               "validation rows": data.get("val_rows"), **config}
    table = pd.DataFrame(columns).map(lambda v: "" if v is None else str(v))
    if differences_only and len(table.columns) > 1:
        table = table[table.nunique(axis=1) > 1]
    return table.rename_axis("setting").reset_index()

