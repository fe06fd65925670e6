"""Data preparation, the first stage of a run: exact copies dropped, the validation rows held out, the training
split augmented; and the copy of the cleaned rows a resumed run or a worker process rebuilds its data from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..runs.config import BATCH_AUGMENTATIONS, TrainConfig
from ..runs.run_folder import RunFolder
from ..tasks.base import Task
from ..tasks.rows import held_out
from ..tasks.types import TaskData
from .augment import augment


@dataclass
class Splits:
    """The rows a run trains and validates on, and the warnings of the rows they came from and of preparing them."""

    train: TaskData
    val: TaskData
    warnings: list[str]


def prepare_splits(task: Task, data: TaskData, config: TrainConfig, status: Callable[[str], None]) -> Splits:
    """Deduplicate (as configured), split, then augment the training split (``status`` shows that it is under way)."""
    train, val, dropped = held_out(task, data, config)
    warnings = [f"Dropped {dropped:,} exact duplicate row(s) before the split."] if dropped else []
    if config.train_share < 1:  # a point of a learning curve: the same validation rows, fewer training rows
        before, train = len(train), task.split(train, 1 - config.train_share, config.seed)[0]
        warnings.append(f"Trained on {len(train):,} of the {before:,} training rows (share {config.train_share:g}).")
    if config.augment not in ("off", *BATCH_AUGMENTATIONS):
        status(f"Augmenting the training split ({config.augment})")
        before, train = len(train), augment(task, train, config.augment, config.augment_copies, config.seed)
        warnings.append(f"Augmented the training split ({config.augment}): {before:,} -> {len(train):,} rows; "
                        "the validation rows are untouched.")
    return Splits(train, val, list(data.warnings) + warnings)


def save_dataset(folder: RunFolder, task: Task, data: TaskData, name: str, **split_counts) -> None:
    """Describe the data (``split_counts``: the rows of each split) and keep a copy of its cleaned rows."""
    folder.write_data({
        "name": name, "task": task.name, "columns": data.columns, "label_names": data.label_names,
        "rows_total": data.rows_total, "rows_dropped": data.rows_dropped, **split_counts,
        "class_counts": task.balance(data),
    }, task.to_frame(data))
    if data.slices is not None:
        folder.write_slices(data.slices)
