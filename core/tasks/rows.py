"""A run's rows: the cleaned rows its folder keeps (``dataset.csv``) prepared again, and the split it trains and
validates on, so training, resuming and the analyses of its validation rows (core.insight.slices) split alike."""
from __future__ import annotations

from ..data.dedup import deduplicate
from ..runs.config import TrainConfig
from ..runs.run_folder import RunFolder
from . import get_task
from .base import Task
from .types import TaskData


def run_rows(folder: RunFolder) -> TaskData:
    """The cleaned rows a run folder keeps (``dataset.csv``), prepared again for its task."""
    meta, task = folder.data(), get_task(folder.config().task)
    data = task.prepare(folder.dataset(), {role.name: role.name for role in task.roles})
    data.columns = meta.get("columns") or data.columns
    data.rows_total, data.rows_dropped = meta["rows_total"], meta["rows_dropped"]
    return data


def held_out(task: Task, data: TaskData, config: TrainConfig) -> tuple[TaskData, TaskData, int]:
    """(training rows, validation rows, exact copies dropped before the split as configured): the run's split."""
    dropped = 0
    if config.deduplicate:
        data, dropped = deduplicate(data)
    train, val = task.split(data, config.val_fraction, config.seed, config.folds, config.fold)
    return train, val, dropped
