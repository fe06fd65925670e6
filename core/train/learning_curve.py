"""Train a finished run again on smaller shares of its own training rows (the same validation rows, settings and
seed), so core.insight.learning_curve can say whether more labels would pay. The curve is kept in the run folder."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..common.atomic import read_json, write_json_atomic
from ..common.errors import StudioError
from ..insight.learning_curve import LearningCurve, Point
from ..runs import events as ev
from ..runs.run_folder import RunFolder
from ..runs.store import RunStore
from ..tasks import get_task
from .engine import TrainingJob, run_rows
from .few_shot import few_shot_mode

SHARES = (0.25, 0.5, 0.75)  # besides the run itself (all of its training rows)


def curve_jobs(run_dir: str | Path, store: RunStore | None, owner: str | None = None,
               shares: tuple[float, ...] = SHARES) -> list[TrainingJob]:
    """One job per share of the run's training rows (not started), trained as the run was (few-shot or not)."""
    folder = RunFolder(run_dir)
    config, name = folder.config(), folder.data()["name"]
    if config.folds > 1 or config.train_share < 1:
        raise StudioError("A learning curve starts from a run trained on all of its training rows, with one split.")
    if not folder.metrics():
        raise StudioError(f"The run '{folder.path.name}' has not finished.")
    data = run_rows(folder)
    config = replace(config, few_shot="on" if few_shot_mode(config, data).on else "off")
    return [TrainingJob(replace(config, train_share=share), data, store, data_name=f"{name}-{round(share * 100)}pct",
                        owner=owner, tags={"learning_curve": folder.path.name, "share": share}) for share in shares]


def learning_curve(run_dir: str | Path, store: RunStore | None, follow: Callable[[TrainingJob], ev.Event],
                   owner: str | None = None, shares: tuple[float, ...] = SHARES) -> LearningCurve:
    """Train the shares in turn (``follow(job)`` runs a job and returns its final event), fit the curve with the
    run's own point and save it beside the run; a failed or stopped share raises a StudioError."""
    folder = RunFolder(run_dir)
    task = get_task(folder.config().task)
    metric = task.primary_metric
    points = []
    for job in curve_jobs(run_dir, store, owner, shares):
        outcome = follow(job)
        if not isinstance(outcome, ev.Finished):
            raise StudioError(getattr(outcome, "message", "") or "The learning curve was stopped.")
        points.append(Point(RunFolder(outcome.run_dir).data()["train_rows"], outcome.metrics[metric]))
    points.append(Point(folder.data()["train_rows"], folder.metrics()[metric]))
    curve = LearningCurve(metric, task.metric_name(metric), task.greater_is_better, tuple(points),
                          len(folder.data().get("label_names") or []))
    write_json_atomic(folder / RunFolder.LEARNING_CURVE, curve.to_dict())
    return curve


def saved_curve(run_dir: str | Path) -> LearningCurve | None:
    """The learning curve kept beside a run, if one was made."""
    found = read_json(RunFolder(run_dir) / RunFolder.LEARNING_CURVE, None)
    return LearningCurve.from_dict(found) if found else None
