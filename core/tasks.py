"""One place that maps a task name to its data preparation and its training job."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .assistant import AssistantJob, prepare_pairs
from .config import TrainConfig
from .data import prepare
from .engine import TrainingJob

JOBS: dict[str, type[TrainingJob]] = {"classification": TrainingJob, "assistant": AssistantJob}


def prepare_data(task: str, frame: pd.DataFrame, first_column: str | None = None, second_column: str | None = None):
    """Classification: (text, label) columns; assistant: (prompt, response) columns."""
    if task == "assistant":
        return prepare_pairs(frame, first_column, second_column)
    return prepare(frame, first_column, second_column)


def make_job(config: TrainConfig, data, store=None, data_name: str = "data", owner: str | None = None) -> TrainingJob:
    return JOBS[config.task](config, data, store, data_name=data_name, owner=owner)


def resume_job(run_dir: Path) -> TrainingJob:
    """The job that continues an interrupted run of either task."""
    return JOBS[TrainConfig.load(Path(run_dir) / "train_config.json").task].resume(run_dir)
